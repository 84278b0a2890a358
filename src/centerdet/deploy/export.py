"""export.py's work: a checkpoint → MINDIR (any target) or AIR (Ascend) through MindSpore's exporter,
with a fixed input shape, or ONNX through centerdet's writer (deploy/onnx_export.py), any input size.
The network is built on MindSpore's own operators (cpu_kernels mindspore), so the file holds no
centerdet custom operator."""
import dataclasses
import os
import shutil
import tempfile

import numpy as np

from centerdet.errors import CenterDetError
from centerdet.fileio import refuse_overwrite

SUFFIX = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}
NET_MULTIPLE = 32


def export_shape(cfg):
    """(batch, 3, H, W): input_res_test padded to the backbone stride, as eval.py's canvas is."""
    h, w = (-(-r // NET_MULTIPLE) * NET_MULTIPLE for r in cfg.input_res_test)
    return cfg.export_batch_size, 3, h, w


def export_network(cfg, log=print):
    """Write the exported file next to ``export_name``; returns its path."""
    import mindspore as ms

    from centerdet.engine.evaluator import load_detector

    fmt = cfg.file_format
    if fmt == "AIR" and cfg.device_target != "Ascend":
        raise CenterDetError(f"AIR export needs an Ascend device (device_target Ascend), this run targets "
                             f"{cfg.device_target}; export MINDIR (or ONNX) here")
    if cfg.export_batch_size < 1:
        raise CenterDetError(f"config key 'export_batch_size' must be positive, got {cfg.export_batch_size}")
    # MindSpore's standard operators, so that the file runs anywhere (not centerdet's CPU kernels)
    out = (cfg.export_name or cfg.model) + SUFFIX[fmt]
    refuse_overwrite(out, "export_name", cfg.overwrite)
    net = load_detector(dataclasses.replace(cfg, cpu_kernels="mindspore"), log, log_kernels=False)
    shape = export_shape(cfg)
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".export.", dir=folder)
    try:
        written = os.path.join(tmp_dir, "net" + SUFFIX[fmt])
        if fmt == "ONNX":
            from centerdet.deploy.onnx_export import export_onnx

            export_onnx(net, cfg, written)
        else:
            ms.export(net, ms.Tensor(np.zeros(shape, np.float32)), file_name=written[:-len(SUFFIX[fmt])],
                      file_format=fmt)
        os.chmod(written, 0o644)  # MindSpore writes read-only files; a later export must replace it
        os.replace(written, out)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    size = "any input size" if fmt == "ONNX" else f"input {list(shape)}"
    log(f"export: {cfg.load_checkpoint_path} -> {out} ({fmt}, {size})")
    return out

