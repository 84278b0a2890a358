"""MindSpore ``.ckpt`` files read and sealed in Python, so MindSpore's own parser never sees them.

The file is a run of serialized ``Checkpoint`` protobuf messages (one ``Value`` per tensor slice:
tag, dims, type name, raw bytes), optionally followed by MindSpore's CRC trailer (``crc_num`` and
the CRC32 of everything before it, 10 bytes big-endian; ``load_checkpoint(crc_check=True)``
checks it). MindSpore turns a value's bytes into a tensor of its dims without comparing their
sizes, so a damaged file can overrun the heap and abort the process; here every size is checked
first and the tensors are built from NumPy arrays.

Checkpoints centerdet writes are sealed: a first entry ``centerdet_digest`` holds the SHA-256 and
length of the bytes after it (a truncation or a flipped byte anywhere fails it, even one that
removes or damages the CRC trailer), and the CRC trailer covers the whole file.
"""
import binascii
import hashlib
import math
import os
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from centerdet.errors import CenterDetError

DIGEST_ENTRY = "centerdet_digest"
TRAILER = b"crc_num"
TRAILER_SIZE = len(TRAILER) + 10
NUMPY_TYPES = {"Int8": np.int8, "UInt8": np.uint8, "Int16": np.int16, "UInt16": np.uint16, "Int32": np.int32,
               "UInt32": np.uint32, "Int64": np.int64, "UInt64": np.uint64, "Float16": np.float16,
               "Float32": np.float32, "Float64": np.float64, "Bool": np.bool_}
OTHER_TYPES = ("BFloat16", "Int4")  # MindSpore builds these tensors


class Entry:
    """One checkpoint entry: its slices joined."""

    def __init__(self, tag: str, type_name: str, dims: Tuple[int, ...], content: bytes):
        self.tag, self.type_name, self.dims, self.content = tag, type_name, dims, content


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("a length runs past the end of the file")


def _digest_text(body: bytes) -> str:
    return f"sha256 {hashlib.sha256(body).hexdigest()} {len(body)}"


def _value_message(tag: str, text: str) -> bytes:
    from mindspore.train.checkpoint_pb2 import Checkpoint

    message = Checkpoint()
    value = message.value.add()
    value.tag = tag
    value.tensor.dims.extend([0])
    value.tensor.tensor_type = "str"
    value.tensor.tensor_content = text.encode("utf-32-le")
    return message.SerializeToString()


def seal(path: str) -> None:
    """Put the digest entry in front of a checkpoint ms.save_checkpoint wrote (without its CRC)
    and MindSpore's CRC trailer behind it, in place."""
    with open(path, "rb") as f:
        body = f.read()
    data = _value_message(DIGEST_ENTRY, _digest_text(body)) + body
    with open(path, "wb") as f:
        f.write(data + TRAILER + binascii.crc32(data).to_bytes(10, "big"))
        f.flush()
        os.fsync(f.fileno())


def _check_integrity(data: bytes) -> Tuple[bytes, Optional[str]]:
    """(protobuf bytes, what verified them: 'digest and CRC', 'CRC' or None); raises ValueError."""
    crc = None
    if data[-TRAILER_SIZE:-10] == TRAILER:
        data, crc = data[:-TRAILER_SIZE], int.from_bytes(data[-10:], "big")
        if binascii.crc32(data) != crc:
            raise ValueError("its CRC32 does not match: the file is damaged")
    if data[:1] != b"\x0a":  # field 1, length-delimited: a Value
        raise ValueError("it does not start with a checkpoint entry")
    size, start = _varint(data, 1)
    first = _parse(data[:start + size])[0]
    if first.tag != DIGEST_ENTRY:
        return data, ("CRC" if crc is not None else None)
    text = first.content.decode("utf-32-le", errors="replace")
    if crc is None:
        raise ValueError("its CRC trailer is missing or damaged: the file is truncated or damaged")
    if text != _digest_text(data[start + size:]):
        raise ValueError("its SHA-256 digest does not match: the file is damaged")
    return data[start + size:], "digest and CRC"


def _parse(data: bytes) -> List[Entry]:
    from google.protobuf.message import DecodeError
    from mindspore.train.checkpoint_pb2 import Checkpoint

    message = Checkpoint()
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "DecodeError"
        raise ValueError(f"its protobuf does not parse ({reason}): not a MindSpore checkpoint, or truncated "
                         f"or damaged") from None
    entries: List[Entry] = []
    for value in message.value:
        if not value.HasField("tensor"):
            raise ValueError(f"entry {value.tag!r} is a map tensor (MapParameter), which centerdet does not read")
        tensor = value.tensor
        dims = tuple(int(d) for d in tensor.dims)
        if entries and entries[-1].tag == value.tag:  # a large tensor is written in slices
            last = entries[-1]
            if (last.type_name, last.dims) != (tensor.tensor_type, dims):
                raise ValueError(f"the slices of entry {value.tag!r} disagree on type or shape")
            last.content += tensor.tensor_content
            continue
        if any(e.tag == value.tag for e in entries):
            raise ValueError(f"entry {value.tag!r} appears twice")
        entries.append(Entry(value.tag, tensor.tensor_type, dims, tensor.tensor_content))
    for entry in entries:
        _check_entry(entry)
    return entries


def _check_entry(entry: Entry) -> None:
    name, dims = entry.type_name, entry.dims
    if name == "str":
        if len(entry.content) % 4:
            raise ValueError(f"text entry {entry.tag!r} is not whole UTF-32 characters")
        return
    if name not in NUMPY_TYPES and name not in OTHER_TYPES:
        raise ValueError(f"entry {entry.tag!r} has unknown type {name!r}")
    if dims == (0,):  # MindSpore's way of writing a scalar
        entry.dims = dims = ()
    if any(d < 0 for d in dims):
        raise ValueError(f"entry {entry.tag!r} has a negative dimension {dims}")
    count = math.prod(dims)  # Python integers: no overflow on damaged dims
    if name in NUMPY_TYPES:
        need = count * np.dtype(NUMPY_TYPES[name]).itemsize
    else:
        need = count * 2 if name == "BFloat16" else (count + 1) // 2  # Int4: two per byte
    if need != len(entry.content):
        raise ValueError(f"entry {entry.tag!r} holds {len(entry.content)} bytes, not the {need} its shape "
                         f"{list(dims)} of {name} needs")


def parse_file(path: str) -> Tuple[List[Entry], Optional[str]]:
    """(checked entries, what verified the file or None); a one-line CenterDetError otherwise."""
    if not path or not os.path.isfile(path):
        raise CenterDetError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise CenterDetError(f"checkpoint is empty (0 bytes): {path}")
    try:
        body, verified = _check_integrity(data)
        entries = _parse(body)
    except ValueError as exc:
        raise CenterDetError(f"cannot read checkpoint {path}: {exc}") from None
    if not entries:
        raise CenterDetError(f"cannot read checkpoint {path}: it holds no tensors")
    return entries, verified


def to_values(entries: List[Entry], choice_func: Optional[Callable[[str], bool]] = None
              ) -> Dict[str, Union[str, "object"]]:
    """name → Parameter (text entries → str), built from the checked bytes."""
    import mindspore as ms
    from mindspore import Parameter, Tensor

    values = {}
    for entry in entries:
        if entry.tag == DIGEST_ENTRY or (choice_func is not None and not choice_func(entry.tag)):
            continue
        if entry.type_name == "str":
            values[entry.tag] = entry.content.decode("utf-32-le", errors="replace").rstrip("\x00")
            continue
        if entry.type_name in NUMPY_TYPES:
            array = np.frombuffer(entry.content, NUMPY_TYPES[entry.type_name]).reshape(entry.dims).copy()
            tensor = Tensor(array)
        else:  # sizes checked above, so MindSpore's converter reads inside the buffer
            from mindspore._c_expression import TensorPy

            dtype = {"BFloat16": ms.bfloat16, "Int4": ms.int4}[entry.type_name]
            tensor = TensorPy.convert_bytes_to_tensor(entry.content, entry.dims, dtype)
        values[entry.tag] = Parameter(tensor, name=entry.tag)
    return values
