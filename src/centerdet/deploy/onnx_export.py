"""export.py --file_format ONNX: the network written with the ``onnx`` package (deploy/onnx_graph.py),
every operator in ONNX's standard domain, batch, height and width symbolic.

Deformable convolutions become ONNX's DeformConv (opset 19, ``onnx_dcn: deformconv``) or bilinear
GridSample taps and a 1×1 Conv (opset 16, ``onnx_dcn: decomposed``) for runtimes without it. The
file records the task, its head names and the training config (``metadata_props``), so that
``--backend onnxruntime`` decodes its outputs as the checkpoint's.
"""
import json
from typing import Dict, Optional

from centerdet.errors import CenterDetError

OPSET = {"deformconv": 19, "decomposed": 16}
INPUT = "input"


def build_onnx(net, head_channels: Optional[Dict[str, int]] = None, dcn: str = "deformconv",
               metadata: Optional[Dict[str, str]] = None):
    """The onnx ModelProto of ``net`` (a CenterDetector in eval mode); checked by onnx.checker.
    ``head_channels`` (output name → channels) defaults to the network's own heads."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise CenterDetError("ONNX export needs the onnx package: pip install onnx (or: pip install .[onnx])") from None
    from centerdet.deploy.onnx_graph import OnnxGraph

    if dcn not in OPSET:
        raise CenterDetError(f"config key 'onnx_dcn' must be one of {sorted(OPSET)}, got {dcn!r}")
    if head_channels is None:
        head_channels = {name: getattr(net, name)[-1].out_channels for name in net.head_names}
    g = OnnxGraph({"dcn": dcn})
    outs = g.emit(net, INPUT)
    # name the outputs after the heads: an Identity each, so a head's own tensor names stay free
    names = list(head_channels)
    if len(outs) != len(names):
        raise CenterDetError(f"ONNX export: the network gives {len(outs)} outputs for the heads {names}")
    for out, name in zip(outs, names):
        g.nodes.append(helper.make_node("Identity", [out], [name], name=f"{name}.output"))
    graph = helper.make_graph(
        g.nodes, "centerdet",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", c, "out_height", "out_width"])
         for n, c in head_channels.items()],
        initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET[dcn])],
                              producer_name="centerdet")
    model.ir_version = min(model.ir_version, 9)  # readable by onnxruntime releases of the last years
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(net, cfg, path: str) -> None:
    """Write ``net`` (built from ``cfg``) to ``path`` as ONNX."""
    from centerdet import tasks
    from centerdet.config import to_dict
    from centerdet.engine.checkpoint import stored_config

    specs = tasks.of(cfg).heads(cfg)
    # the checkpoint's training config where it records one (what eval compares a config with)
    trained = stored_config(cfg.load_checkpoint_path) if cfg.load_checkpoint_path else None
    metadata = {"centerdet.model": cfg.model, "centerdet.heads": json.dumps([s.name for s in specs]),
                "centerdet.config": json.dumps(trained or to_dict(cfg))}
    model = build_onnx(net, {s.name: s.channels for s in specs}, cfg.onnx_dcn, metadata)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
