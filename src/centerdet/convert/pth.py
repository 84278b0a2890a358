"""Read PyTorch ``.pth`` files without PyTorch.

``torch.save`` (PyTorch >= 1.6) writes a zip: ``<root>/data.pkl`` pickles the object and refers to
tensor storages by key, each stored raw in ``<root>/data/<key>``. Older files (torchvision's
MobileNetV2 download among them) are a sequence of pickles followed by the raw storages. The
unpickler below rebuilds tensors as numpy arrays and refuses every class it does not know, so
reading a checkpoint cannot run code hidden in it (plain ``pickle`` would).
"""
import collections
import io
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
    # as_strided does not check bounds: a damaged file must not make it read past the storage
    extent = offset + sum((n - 1) * st for n, st in zip(size, stride)) + 1 if min(size) > 0 else 0
    if offset < 0 or min(stride, default=0) < 0 or len(size) != len(stride) or extent > len(storage):
        raise ValueError(f"a tensor of size {size}, stride {stride} at offset {offset} does not fit its "
                         f"storage of {len(storage)} elements")
    if int(np.prod(size, dtype=object)) > len(storage):  # stride-0 views would copy out more than stored
        raise ValueError(f"a tensor of size {size} holds more elements than its storage of {len(storage)}")
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


class _Unpickler(pickle._Unpickler):
    """Rebuilds tensors from the arrays ``storage(key, type name)`` hands out; refuses other classes.
    The pure-Python unpickler: C's sizes its memo by the largest index a file names, so one damaged
    BINPUT asks for gigabytes; this one keeps the memo in a dict."""

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
    limit = os.path.getsize(path)
    for info in archive.infolist():  # torch.save stores members uncompressed: none can exceed the file
        if info.compress_type != zipfile.ZIP_STORED or info.file_size > limit:
            raise CenterDetError(f"{path}: member {info.filename} is compressed or claims {info.file_size} bytes "
                                 f"in a {limit}-byte file; not written by torch.save, or damaged")
    cache = {}

    def storage(key, type_name):
        if key not in cache:
            cache[key] = _as_array(archive.read(f"{root}/data/{key}"), type_name)
        return cache[key]

    return _Unpickler(io.BytesIO(archive.read(pkls[0])), path, storage).load()


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
    keys = _Unpickler(f, path).load()
    data, here = {}, f.tell()
    end, _ = f.seek(0, io.SEEK_END), f.seek(here)
    if not isinstance(keys, list) or any(k not in types for k in keys):
        raise CenterDetError(f"{path}: its storage list does not match its tensors; truncated or damaged")
    for key in keys:
        size = int.from_bytes(f.read(8), "little") * _itemsize(types[key])
        if size > end - f.tell():  # a damaged count must not become a huge allocation
            raise CenterDetError(f"{path}: truncated (storage {key} claims {size} bytes, {end - f.tell()} are left)")
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
            # in memory: a damaged length in a pickle then reads what is there, not a buffer of that size
            return _read_legacy(io.BytesIO(f.read()), path)
    except CenterDetError:
        raise
    except Exception as exc:  # noqa: BLE001  (a damaged pickle or zip fails in many ways; all are one line)
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
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


class _Ref:
    """A module-level name the pickle refers to (written as a GLOBAL opcode; never imported here)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle insists that a reduce function be callable
        raise TypeError(f"{self.module}.{self.name} is only a name in a pickle")


class _Call:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class _Storage:
    def __init__(self, key, type_name, numel):
        self.key, self.type_name, self.numel = key, type_name, numel


class _Pickler(pickle._Pickler):  # the pure-Python pickler: its save() can be intercepted
    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _Ref):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            return
        super().save(obj, save_persistent_id)

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", _Ref("torch", obj.type_name), obj.key, "cpu", obj.numel)
        return None


_TYPE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
               np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage",
               np.dtype(np.int32): "IntStorage", np.dtype(np.uint8): "ByteStorage", np.dtype(np.bool_): "BoolStorage"}


def write_pth(state, path, wrap=None):
    """Write {name: numpy array} as a ``torch.save`` zip that ``torch.load`` reads (weights_only too),
    without PyTorch; all or nothing. ``wrap`` (e.g. {"epoch": 0}) stores {**wrap, "state_dict": state}
    instead, the layout training scripts such as CenterNet's save."""
    from centerdet.fileio import atomic_path

    root = "archive"
    tensors, blobs = collections.OrderedDict(), []
    for i, (name, value) in enumerate(state.items()):
        arr = np.require(np.asarray(value), requirements="C")
        if arr.dtype not in _TYPE_NAMES:
            raise CenterDetError(f"tensor {name}: dtype {arr.dtype} cannot be written to a .pth")
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        stride = tuple(s // arr.itemsize for s in arr.strides) if arr.ndim else ()
        storage = _Storage(str(i), _TYPE_NAMES[arr.dtype], arr.size)
        tensors[name] = _Call(_Ref("torch._utils", "_rebuild_tensor_v2"),
                              (storage, 0, tuple(arr.shape), stride, False,
                               _Call(_Ref("collections", "OrderedDict"), ())))
        blobs.append(arr.tobytes())
    buf = io.BytesIO()
    obj = _Call(_Ref("collections", "OrderedDict"), (list(tensors.items()),))
    _Pickler(buf, protocol=2).dump({**wrap, "state_dict": obj} if wrap is not None else obj)
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
            z.writestr(f"{root}/data.pkl", buf.getvalue())
            z.writestr(f"{root}/byteorder", "little")
            for i, blob in enumerate(blobs):
                z.writestr(f"{root}/data/{i}", blob)
            z.writestr(f"{root}/version", "3\n")
