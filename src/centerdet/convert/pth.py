"""Read PyTorch ``.pth`` files without PyTorch.

``torch.save`` (PyTorch >= 1.6) writes a zip: ``<root>/data.pkl`` pickles the object and refers to
tensor storages by key, each stored raw in ``<root>/data/<key>``. Older files (torchvision's
MobileNetV2 download among them) are a sequence of pickles followed by the raw storages. The
unpickler below rebuilds tensors as numpy arrays and refuses every class it does not know, so
reading a checkpoint cannot run code hidden in it (plain ``pickle`` would).
"""
import collections
import os
import pickle
import zipfile

import numpy as np

from centerdet.errors import CenterDetError

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


class _StorageType:
    def __init__(self, name):
        self.name = name


def _rebuild_tensor(storage, offset, size, stride, *_):
    if storage is None:  # the legacy reader's first pass: only storage types are wanted
        return None
    size, stride = tuple(size), tuple(stride)
    if not size:
        return storage[offset:offset + 1].reshape(()).copy()
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=tuple(s * itemsize for s in stride), writeable=False)
    return np.array(view)


def _rebuild_parameter(data, *_):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.nn.parameter", "Parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    """Rebuilds tensors from the arrays ``storage(key, type name)`` hands out; refuses other classes."""

    def __init__(self, file, path, storage=None):
        super().__init__(file)
        self._path, self._storage = path, storage

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise CenterDetError(f"{self._path}: holds a {module}.{name} object; only tensors and (nested) dicts "
                             f"of tensors can be converted (save the model's state_dict())")

    def persistent_load(self, pid):
        if not (self._storage is not None and isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise CenterDetError(f"{self._path}: unknown storage reference {pid!r}")
        arr = self._storage(str(pid[2]), pid[1].name)
        view = pid[5] if len(pid) > 5 else None  # legacy files may point into part of a storage
        return arr[view[1]:view[1] + view[2]] if view and arr is not None else arr


def _itemsize(type_name):
    dtype = _STORAGE_DTYPES[type_name]
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _as_array(raw, type_name):
    dtype = _STORAGE_DTYPES[type_name]
    if dtype == "bfloat16":  # numpy has no bfloat16: widen the 16 stored bits to float32
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"))


def _read_zip(archive, path):
    pkls = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    if len(pkls) != 1:
        raise CenterDetError(f"{path}: a zip, but not one written by torch.save (no single */data.pkl)")
    root = pkls[0][:-len("/data.pkl")]
    if f"{root}/byteorder" in archive.namelist() and archive.read(f"{root}/byteorder") != b"little":
        raise CenterDetError(f"{path}: big-endian checkpoints are not supported")
    cache = {}

    def storage(key, type_name):
        if key not in cache:
            cache[key] = _as_array(archive.read(f"{root}/data/{key}"), type_name)
        return cache[key]

    with archive.open(pkls[0]) as f:
        return _Unpickler(f, path, storage).load()


def _read_legacy(f, path):
    """PyTorch < 1.6 layout: magic number, version, system info, the object's pickle, its storage keys,
    then each storage as an int64 element count and raw bytes. The object is unpickled twice: once to
    learn the storage types, then, with the storages read, for real."""
    if _Unpickler(f, path).load() != _LEGACY_MAGIC:
        raise CenterDetError(f"{path}: a pickle, but not a PyTorch checkpoint")
    _Unpickler(f, path).load()  # protocol version
    _Unpickler(f, path).load()  # system info
    start, types = f.tell(), {}

    def record(key, type_name):
        types[key] = type_name

    _Unpickler(f, path, record).load()
    data = {}
    for key in _Unpickler(f, path).load():
        size = int.from_bytes(f.read(8), "little") * _itemsize(types[key])
        raw = f.read(size)
        if len(raw) < size:
            raise CenterDetError(f"{path}: truncated (storage {key} ends early)")
        data[key] = _as_array(raw, types[key])
    f.seek(start)
    return _Unpickler(f, path, lambda key, _: data[key]).load()


def read_pth(path):
    """Everything a ``torch.save`` file holds (zip or legacy layout), tensors as numpy arrays."""
    if not os.path.isfile(path):
        raise CenterDetError(f"weights file not found: {path}")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _read_zip(archive, path)
        with open(path, "rb") as f:
            if f.read(1) != b"\x80":
                raise CenterDetError(f"{path}: not a PyTorch checkpoint (torch.save file) or truncated")
            f.seek(0)
            return _read_legacy(f, path)
    except (KeyError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, TypeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise CenterDetError(f"{path}: truncated or damaged PyTorch checkpoint ({type(exc).__name__}: "
                             f"{detail})") from None


def state_dict_of(obj, path):
    """The flat name → array mapping inside a loaded checkpoint: the object itself, or the
    ``state_dict`` / ``model`` entry training scripts wrap it in (CenterNet saves {'epoch', 'state_dict'})."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise CenterDetError(f"{path}: holds no state_dict (expected a dict of tensors)")
    flat = {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
    if not flat:
        raise CenterDetError(f"{path}: the dict holds no tensors")
    return flat
