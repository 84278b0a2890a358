"""An ONNX graph written from a MindSpore cell tree with the ``onnx`` package (standard domain only).

``OnnxGraph.emit(cell, x)`` gives the ONNX value of ``cell(x)``: MindSpore's own layers
(convolutions, BatchNorm, activations, containers) have their forms here; centerdet's composite
cells carry a ``to_onnx(graph, x)`` method beside their ``construct``, which mirrors it. Values
are tensor names; shapes stay symbolic (batch, height, width), so a file runs at any input size.
"""
from typing import Dict, List, Sequence

import numpy as np

from centerdet.errors import CenterDetError


def _pair(v) -> List[int]:
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def _pads(cell) -> List[int]:
    """A conv's explicit padding as ONNX's [top, left, bottom, right]."""
    if cell.pad_mode != "pad":
        return [0, 0, 0, 0]
    p = cell.padding
    top, bottom, left, right = (p, p, p, p) if isinstance(p, int) else p
    return [top, left, bottom, right]


class OnnxGraph:
    """Nodes and initializers of one graph; ``options`` carries choices of the export (``dcn``)."""

    def __init__(self, options: Dict[str, str]):
        self.options = options
        self.nodes, self.initializers = [], []
        self._count: Dict[str, int] = {}

    def name(self, base: str) -> str:
        n = self._count.get(base, 0)
        self._count[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def const(self, array, base: str = "const") -> str:
        from onnx import numpy_helper

        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def param(self, parameter, base: str, shape: Sequence[int] = None) -> str:
        value = parameter.asnumpy().astype(np.float32)
        return self.const(value.reshape(shape) if shape is not None else value, base)

    def ints(self, values: Sequence[int]) -> str:
        return self.const(np.array(values, np.int64), "ints")

    def scalar(self, value: float) -> str:
        return self.const(np.array(value, np.float32), "scalar")

    def op(self, op_type: str, inputs: Sequence[str], **attrs) -> str:
        from onnx import helper

        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    # shapes, for the reshapes whose sizes follow the input's
    def dims(self, x: str, start: int, end: int) -> str:
        """Dimensions start..end-1 of ``x`` as a 1-D int64 tensor."""
        return self.op("Shape", [x], start=start, end=end)

    def emit(self, cell, x):
        """The ONNX value(s) of ``cell(x)``."""
        from mindspore import nn

        if hasattr(cell, "to_onnx"):
            return cell.to_onnx(self, x)
        for kind, form in FORMS:
            if isinstance(cell, kind if isinstance(kind, type) else getattr(nn, kind)):
                return form(self, cell, x)
        raise CenterDetError(f"ONNX export: no ONNX form for the {type(cell).__name__} cell of this network "
                             f"({type(cell).__module__}); export MINDIR instead")

    def activation(self, x: str, kind) -> str:
        if kind is None:
            return x
        if kind == "relu":
            return self.op("Relu", [x])
        if kind == "relu6":
            return self.op("Clip", [x, self.scalar(0.0), self.scalar(6.0)])
        raise CenterDetError(f"ONNX export: no ONNX form for the activation {kind!r}")

    def conv(self, x: str, weight: str, bias, strides, pads, dilations=(1, 1), group: int = 1,
             auto_pad: str = None) -> str:
        attrs = dict(strides=list(strides), dilations=list(dilations), group=group)
        if auto_pad:
            attrs["auto_pad"] = auto_pad
        else:
            attrs["pads"] = list(pads)
        return self.op("Conv", [x, weight] + ([bias] if bias else []), **attrs)


def _conv2d(g: OnnxGraph, cell, x):
    if cell.data_format != "NCHW":
        raise CenterDetError("ONNX export: only NCHW convolutions have an ONNX form here")
    weight = g.param(cell.weight, "conv.weight")
    bias = g.param(cell.bias, "conv.bias") if cell.has_bias else None
    out = g.conv(x, weight, bias, _pair(cell.stride), _pads(cell), _pair(cell.dilation), cell.group,
                 "SAME_UPPER" if cell.pad_mode == "same" else None)
    # centerdet's CPU kernels may apply the ReLU after a folded BatchNorm inside the conv (models/fuse.py)
    return g.activation(out, getattr(cell, "fused_activation", None))


def _conv2d_transpose(g: OnnxGraph, cell, x):
    k, s, d = _pair(cell.kernel_size), _pair(cell.stride), _pair(cell.dilation)
    pads = _pads(cell)
    if cell.pad_mode == "same":
        # MindSpore's 'same' gives in·stride; explicit pads only where that needs none
        if any((kk - 1) * dd + 1 - ss for kk, ss, dd in zip(k, s, d)):
            raise CenterDetError(f"ONNX export: no ONNX form for a 'same' transposed conv of kernel {k}, stride {s}")
    weight = g.param(cell.weight, "deconv.weight")
    bias = [g.param(cell.bias, "deconv.bias")] if cell.has_bias else []
    out_pad = _pair(getattr(cell, "output_padding", 0))
    return g.op("ConvTranspose", [x, weight] + bias, strides=s, pads=pads, dilations=d, group=cell.group,
                output_padding=out_pad)


def _batch_norm(g: OnnxGraph, cell, x):
    params = [g.param(p, f"bn.{p.name.split('.')[-1]}") for p in
              (cell.gamma, cell.beta, cell.moving_mean, cell.moving_variance)]
    out = g.op("BatchNormalization", [x] + params, epsilon=float(cell.eps))
    return g.activation(out, getattr(cell, "activation", None))


def _sequential(g: OnnxGraph, cell, x):
    for child in cell:
        x = g.emit(child, x)
    return x


FORMS = (
    ("SequentialCell", _sequential),
    ("Identity", lambda g, cell, x: x),
    ("ReLU", lambda g, cell, x: g.activation(x, "relu")),
    ("ReLU6", lambda g, cell, x: g.activation(x, "relu6")),
    ("Sigmoid", lambda g, cell, x: g.op("Sigmoid", [x])),
    ("Conv2dTranspose", _conv2d_transpose),
    ("Conv2d", _conv2d),
    ("BatchNorm2d", _batch_norm),
)
