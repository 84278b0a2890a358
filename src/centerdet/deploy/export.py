"""export.py's work: a checkpoint → MINDIR (any target), AIR (Ascend) or ONNX (where MindSpore's
exporter converts every operator), with a fixed input shape. The network is built on MindSpore's
own operators (cpu_kernels mindspore), so the file holds no centerdet custom operator."""
import dataclasses
import os
import re
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
        x = ms.Tensor(np.zeros(shape, np.float32))
        try:
            if fmt == "ONNX":
                ms.onnx.export(net, x, file_name=os.path.join(tmp_dir, "net"))
            else:
                ms.export(net, x, file_name=os.path.join(tmp_dir, "net"), file_format=fmt)
        except RuntimeError as exc:
            m = re.search(r"Can not find key (\w+) in convert map", str(exc))
            if m is None:
                raise
            raise CenterDetError(f"{fmt} export: MindSpore's exporter cannot convert the {m.group(1)} operator of "
                                 f"this network" + (" (the deformable convs: use_dcn true)"
                                                    if "Deformable" in m.group(1) else "")
                                 + "; export MINDIR instead") from None
        written = os.path.join(tmp_dir, "net" + SUFFIX[fmt])
        if fmt == "ONNX":
            fix_onnx_conv_transpose(written)
        os.chmod(written, 0o644)  # MindSpore writes read-only files; a later export must replace it
        os.replace(written, out)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    log(f"export: {cfg.load_checkpoint_path} -> {out} ({fmt}, input {list(shape)})")
    return out


def fix_onnx_conv_transpose(path):
    """MindSpore 2.10 writes ConvTranspose's output_shape with batch and channels; ONNX wants the
    spatial sizes only, and onnxruntime refuses the file otherwise."""
    try:
        import onnx
    except ImportError:
        raise CenterDetError("ONNX export needs the onnx package to repair MindSpore's ConvTranspose "
                             "attributes: pip install onnx") from None
    model = onnx.load(path)
    changed = False
    for node in model.graph.node:
        for attr in node.attribute:
            if node.op_type == "ConvTranspose" and attr.name == "output_shape" and len(attr.ints) == 4:
                spatial = list(attr.ints)[2:]
                del attr.ints[:]
                attr.ints.extend(spatial)
                changed = True
    if changed:
        os.chmod(path, 0o644)
        onnx.save(model, path)
