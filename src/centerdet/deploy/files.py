"""The file contract shared by preprocess, the runners (Python and ascend310_infer) and postprocess.

preprocess writes into its output folder
    meta.json                 model, input shape, head names/shapes (the task's heads), and per
                              image: name, key (its metric's id), source path, centre, scale,
                              output size (what postprocess needs)
    images/<name>.bin         the network input, float32 (1, 3, H, W), C order
a runner writes into its output folder
    <name>_<k>.bin            head k (meta.json "heads" order, e.g. hm, wh, reg[, lm]), float32 (C_k, H/4, W/4)
"""
import os

import numpy as np

from centerdet.errors import CenterDetError
from centerdet.fileio import read_json, write_bytes, write_json

META = "meta.json"


def head_layout(cfg, height, width):
    """(head names, (C, H/down, W/down) per head) of the task's network for an input of height × width."""
    from centerdet import tasks

    specs = tasks.of(cfg).heads(cfg)
    return [s.name for s in specs], [[s.channels, height // cfg.down_ratio, width // cfg.down_ratio] for s in specs]


def input_path(folder, name):
    return os.path.join(folder, "images", f"{name}.bin")


def output_path(folder, name, k):
    return os.path.join(folder, f"{name}_{k}.bin")


def write_array(path, array):
    write_bytes(path, np.ascontiguousarray(array, np.float32).tobytes())


def read_array(path, shape):
    """float32 array of ``shape`` from a raw .bin; a missing or wrongly sized file names itself."""
    if not os.path.isfile(path):
        raise CenterDetError(f"missing output file {path}: did the runner process every input?")
    data = np.fromfile(path, np.float32)
    if data.size != int(np.prod(shape)):
        raise CenterDetError(f"{path} holds {data.size} floats, expected {int(np.prod(shape))} for shape "
                             f"{tuple(shape)}: it comes from another model or input size")
    return data.reshape(shape)


def save_meta(folder, meta):
    write_json(os.path.join(folder, META), meta, indent=1)


def load_meta(folder):
    meta = read_json(os.path.join(folder, META), "preprocess meta file")
    for key in ("model", "input_shape", "heads", "head_shapes", "images"):
        if key not in meta:
            raise CenterDetError(f"{os.path.join(folder, META)} has no '{key}': not written by preprocess.py")
    return meta
