"""centerdet's CPU kernels (dependency/cpu_ops), run by MindSpore as AOT custom operators.

Why: MindSpore 2.10 hands its bundled oneDNN plain NCHW tensors, so on CPU every k×k convolution
is im2col + GEMM, and above AVX2 those kernels fall back to reference code (runtime.py caps them at
AVX2). This library links its own oneDNN copy, reorders each convolution's operands to the blocked
layouts oneDNN's direct JIT kernels want (as PyTorch does) and may use AVX-512; for inference a
ReLU/ReLU6 after a (BatchNorm-folded) conv runs inside it. It also holds a max pool (MindSpore's
CPU MaxPoolGrad is ~10× PyTorch's), BatchNorm's training pass with the ReLU/ReLU6 after it, the
loss-scale division and all-finite check over the gradients in one pass, the focal loss and the
sampling step of deformable convolutions.

The layers in centerdet.models.layers use these kernels when ``enabled()``: the library was built
and loaded, MindSpore's device target is CPU, and neither ``set_enabled(False)`` (the config key
``cpu_kernels: mindspore``) nor ``CENTERDET_CPU_KERNELS=mindspore`` switched them off. Export
always builds the network with MindSpore's own operators, so MINDIR/AIR/ONNX files hold only
standard ones.
"""
import ctypes
import glob
import itertools
import os

import numpy as np

ENV = "CENTERDET_CPU_KERNELS"
_HERE = os.path.dirname(os.path.abspath(__file__))
_state = {"lib": None, "path": None, "error": None, "loaded": False, "override": None}
_instances = itertools.count()


def _load():
    if _state["loaded"]:
        return _state["lib"]
    _state["loaded"] = True
    paths = sorted(glob.glob(os.path.join(_HERE, "_cpu_ops*.so")))
    if not paths:
        _state["error"] = "not built (no oneDNN wheel for this platform at install time)"
        return None
    try:
        # RTLD_DEEPBIND: the library's dnnl_* calls bind to its own oneDNN copy even if MindSpore's
        # libdnnl.so.3 (same C API, capped at AVX2) is visible in the process.
        lib = ctypes.CDLL(paths[0], mode=os.RTLD_NOW | os.RTLD_DEEPBIND)
    except OSError as exc:
        _state["error"] = f"cannot be loaded: {exc}"
        return None
    for name in ("CenterdetLastError", "CenterdetOneDnnVersion", "ConvImplementations"):
        getattr(lib, name).restype = ctypes.c_char_p
    _state["lib"], _state["path"] = lib, paths[0]
    return lib


def available():
    return _load() is not None


def status(net=None, training: bool = True) -> str:
    """One line: which kernels run and why; given the network, only the kernels it uses and the
    layout of its activations (channel-blocked backbone and neck, or plain NCHW)."""
    if not available():
        return f"MindSpore's CPU kernels (centerdet's oneDNN kernels {_state['error']})"
    if not enabled():
        return "MindSpore's CPU kernels (centerdet's oneDNN kernels switched off)"
    if net is None:
        return (f"centerdet oneDNN {onednn_version()} kernels for convolutions and max pooling, own kernels for "
                "BatchNorm (training), the focal loss and DCN sampling")
    cells = [c for _, c in net.cells_and_names()]
    names = {type(c).__name__ for c in cells}
    own = (["BatchNorm"] if training else []) + (["the focal loss"] if training else []) + (
        ["DCN sampling"] if "ModulatedDeformConv2d" in names else [])
    blocked = [part for part in ("backbone", "neck") if getattr(getattr(net, part, None), "layout_block", 0)]
    if blocked:
        block = max(getattr(net, part).layout_block for part in blocked)
        plain = getattr(getattr(net, "backbone", None), "plain_channels", ()) if "backbone" in blocked else ()
        plain = f"; the backbone's {'/'.join(map(str, plain))}-channel maps plain" if plain else ""
        layout = f"{' and '.join(blocked)} activations channel-blocked (nChw{block}c{plain})"
    else:
        layout = "plain NCHW activations" + (f" ({LAYOUT_ENV}=plain)" if os.environ.get(LAYOUT_ENV, "").lower()
                                             == "plain" else "")
    pools = " and max pooling" if "MaxPool2d" in names else ""
    text = f"centerdet oneDNN {onednn_version()} kernels for convolutions{pools}"
    if own:
        text += ", own kernels for " + (", ".join(own[:-1]) + " and " + own[-1] if len(own) > 1 else own[0])
    return f"{text}; {layout}"


def set_enabled(flag):
    """Force the kernels on (True), off (False) or back to the default (None). Layers decide when
    they are constructed, so call this before building a network."""
    _state["override"] = flag


def enabled():
    if _state["override"] is False or os.environ.get(ENV, "").lower() == "mindspore":
        return False
    if not available():
        return False
    import mindspore as ms

    return ms.get_context("device_target") == "CPU"


def set_threads(n):
    """Threads per kernel call (0: all cores); data-parallel workers on one machine share them."""
    if available():
        _load().CenterdetSetThreads(int(n))


LAYOUT_ENV = "CENTERDET_CPU_LAYOUT"


def channel_block():
    """The channel block B in which ResNet keeps its activations between these kernels, as
    (N, C/B, H, W, B) tensors (oneDNN's nChw{B}c: 16 with AVX-512, 8 with AVX2), so that its
    convolutions reorder only their weights; 0 (plain NCHW everywhere) when the kernels are off,
    neither block has a direct kernel here, or ``CENTERDET_CPU_LAYOUT=plain``."""
    if not enabled() or os.environ.get(LAYOUT_ENV, "").lower() == "plain":
        return 0
    return int(_load().ConvChannelBlock())


def layout_block_for(channels, block=None) -> int:
    """``block`` (default channel_block()) if every count in ``channels`` splits into such blocks,
    else 0 (plain): the layout maps of these channel counts keep between the kernels."""
    block = channel_block() if block is None else block
    return block if block and all(int(c) % block == 0 for c in channels) else 0


def onednn_version():
    return _load().CenterdetOneDnnVersion().decode() if available() else None


def conv_implementations():
    """{problem key: oneDNN implementation name} of every convolution run so far."""
    if not available():
        return {}
    text = _load().ConvImplementations().decode()
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if line)


def packed_weights() -> int:
    """How many frozen layers' weights the convolution kernels hold reordered (conv_params' frozen)."""
    return int(_load().ConvPackedWeights()) if available() else 0


def _custom(func, out_shape, out_dtype=None, bprop=None):
    from mindspore import ops

    extra = {"bprop": bprop} if bprop is not None else {}
    op = ops.Custom(f"{_state['path']}:{func}", out_shape=out_shape, out_dtype=out_dtype or (lambda *types: types[0]),
                    func_type="aot", **extra)
    # MindSpore caches a primitive's backward graph by its attributes; without a distinct one, every
    # convolution would share the first one's bprop (and its shapes).
    op.add_prim_attr("centerdet_instance", next(_instances))
    return op


# Activation codes the convolution and BatchNorm kernels read (conv.cc, bnorm.cc).
ACTIVATIONS = {None: 0, "relu": 1, "relu6": 2}


_frozen_ids = itertools.count(1)


def frozen_id() -> int:
    """A fresh id for conv_params' ``frozen``: one per layer whose weights stop changing."""
    return next(_frozen_ids)


def conv_params(stride, dilation, groups, pad_mode, padding, activation=None, frozen=0):
    """The int64 vector the convolution kernels read (see dependency/cpu_ops/conv.cc); an
    ``activation`` ("relu", "relu6") is applied to a forward convolution's output, for inference
    only (the kernels' gradients do not know it). ``frozen`` (a frozen_id()) says the weights no
    longer change, so the kernel keeps them reordered into its layout between calls."""
    from mindspore import Tensor

    pads = tuple(padding) if isinstance(padding, (tuple, list)) else (padding,) * 4
    if pad_mode != "pad":
        pads = (0, 0, 0, 0)
    values = [stride[0], stride[1], dilation[0], dilation[1], groups, int(pad_mode == "same"), *pads,
              ACTIVATIONS[activation], frozen]
    return Tensor(np.array(values, np.int64))


def _conv_length(n, k, stride, dilation, pads, same):
    if same:
        return (n + stride - 1) // stride
    return (n + pads - (k - 1) * dilation - 1) // stride + 1


def conv2d_op(out_channels, kernel_size, stride, dilation, pad_mode, padding, weight_shape, bias=False,
              out_block=0, residual=False, padded=False):
    """(x, w, params) -> conv(x, w), differentiable in x and w; with ``bias``, (x, w, b, params) ->
    conv(x, w) + b, the bias added inside the kernel. x may be plain or channel-blocked (5-D); the
    output is blocked by ``out_block`` channels (see channel_block) or plain (0); with ``padded``
    (inference only, MobileNetV2.fuse_folded) a last block the channels do not fill holds zeros. ``residual``
    (inference only, not differentiable): (x, w, b, r, params) -> conv(x, w) + b + r, r shaped like
    the output, then the params' activation."""
    from mindspore import ops

    pads = tuple(padding) if isinstance(padding, (tuple, list)) else (padding,) * 4
    if pad_mode != "pad":
        pads = (0, 0, 0, 0)
    same = pad_mode == "same"
    weight_shape = tuple(weight_shape)

    if out_block and out_channels % out_block and not padded:
        raise ValueError(f"{out_channels} output channels do not split into blocks of {out_block}")

    def out_shape(x, w, p):
        h = _conv_length(x[2], kernel_size[0], stride[0], dilation[0], pads[0] + pads[1], same)
        w = _conv_length(x[3], kernel_size[1], stride[1], dilation[1], pads[2] + pads[3], same)
        if out_block:
            return (x[0], -(-out_channels // out_block), h, w, out_block)
        return (x[0], out_channels, h, w)

    if residual:
        return _custom("ConvForwardBiasSum", lambda x, w, b, r, p: out_shape(x, w, p))
    grad_input = _custom("ConvBackwardDataLike", lambda dy, w, p, like: like)
    grad_weight = _custom("ConvBackwardWeights", lambda dy, x, p: weight_shape)
    if bias:
        import mindspore as ms

        grad_weight_bias = _custom("ConvBackwardWeightsBias", lambda dy, x, p: [weight_shape, (out_channels,)],
                                   lambda *types: [ms.float32, ms.float32])

        def bprop_bias(x, w, b, p, out, dout):
            dw, db = grad_weight_bias(dout, x, p)
            return grad_input(dout, w, p, x), dw, db, ops.zeros_like(p)

        return _custom("ConvForwardBias", lambda x, w, b, p: out_shape(x, w, p), bprop=bprop_bias)

    def bprop(x, w, p, out, dout):
        return grad_input(dout, w, p, x), grad_weight(dout, x, p), ops.zeros_like(p)

    return _custom("ConvForward", out_shape, bprop=bprop)


def conv_depthwise_op(out_channels, dw_stride, out_block):
    """Inference only (not differentiable): (x, w, b, wd, bd, params, dw_params) ->
    dw_act(depthwise(act(conv1x1(x, w) + b), wd) + bd): a 1×1 stride-1 conv and the 3×3 depthwise
    conv after it (pad 1, ``dw_stride``, weights wd (C, 1, 3, 3)) in one oneDNN kernel, whose
    intermediate map stays in cache instead of going through memory. params and dw_params are
    the two convs' conv_params vectors (activation and frozen id each). The output is
    channel-blocked by ``out_block`` (> 0)."""
    if not out_block or out_channels % out_block:
        raise ValueError(f"{out_channels} channels do not split into blocks of {out_block}")

    def out_shape(x, w, b, wd, bd, p, dp):
        h, w_ = ((n - 1) // dw_stride + 1 for n in (x[2], x[3]))
        return (x[0], out_channels // out_block, h, w_, out_block)

    return _custom("ConvForwardBiasDw", out_shape)


def conv_transpose2d_op(in_channels, out_channels, kernel_size, stride, dilation, pad_mode, padding, weight_shape,
                        block=0):
    """(x, w, params) -> conv_transpose(x, w) as nn.Conv2dTranspose computes it (weight (in, out, kh, kw)),
    differentiable in x and w: it is the backward-data pass of the convolution from the output back.
    With ``block``, x and the output are both channel-blocked by that many channels."""
    from mindspore import ops

    for channels in (in_channels, out_channels) if block else ():
        if channels % block:
            raise ValueError(f"{channels} channels do not split into blocks of {block}")

    pads = tuple(padding) if isinstance(padding, (tuple, list)) else (padding,) * 4
    if pad_mode != "pad":
        pads = (0, 0, 0, 0)
    weight_shape = tuple(weight_shape)

    def length(n, k, s, d, pad):  # nn.Conv2dTranspose's output size
        span = k + (k - 1) * (d - 1)
        if pad_mode == "same":
            return n * s
        if pad_mode == "valid":
            return n * s + max(span - s, 0)
        return n * s - pad + span - s

    def shaped(n, channels, h, w):
        return (n, channels // block, h, w, block) if block else (n, channels, h, w)

    def out_shape(x, w, p):
        return shaped(x[0], out_channels, length(x[2], kernel_size[0], stride[0], dilation[0], pads[0] + pads[1]),
                      length(x[3], kernel_size[1], stride[1], dilation[1], pads[2] + pads[3]))

    def back_shape(g, w, p):
        same = pad_mode == "same"
        return shaped(g[0], in_channels,
                      _conv_length(g[2], kernel_size[0], stride[0], dilation[0], pads[0] + pads[1], same),
                      _conv_length(g[3], kernel_size[1], stride[1], dilation[1], pads[2] + pads[3], same))

    grad_input = _custom("ConvForward", back_shape)
    grad_weight = _custom("ConvBackwardWeights", lambda dy, x, p: weight_shape)

    def bprop(x, w, p, out, dout):
        # The transposed conv's input plays the convolution's output gradient.
        return grad_input(dout, w, p), grad_weight(x, dout, p), ops.zeros_like(p)

    return _custom("ConvBackwardData", out_shape, bprop=bprop)


def bias_act_op(activation=None, residual=False):
    """Inference only (not differentiable): (x, b, params) -> act(x + b), or with ``residual``
    (x, b, r, params) -> act(x + b) + r, in one pass (dependency/cpu_ops/eltwise.cc); x and r share
    a shape, plain or channel-blocked, and b holds x's channels."""
    from mindspore import Tensor

    params = Tensor(np.array([ACTIVATIONS[activation]], np.int64))
    if residual:
        return _custom("BiasActAdd", lambda x, b, r, p: x), params
    return _custom("BiasAct", lambda x, b, p: x), params


def max_pool_op(kernel_size, stride, padding):
    """(x, params) -> max pool with ``padding`` on every side, differentiable in x."""
    from mindspore import Tensor, ops

    params = Tensor(np.array([kernel_size, kernel_size, stride, stride] + [padding] * 4, np.int64))

    def out_shape(x, p):  # plain or channel-blocked (N, C/B, H, W, B), as x
        return (x[0], x[1], (x[2] + 2 * padding - kernel_size) // stride + 1,
                (x[3] + 2 * padding - kernel_size) // stride + 1, *x[4:])

    grad = _custom("MaxPoolBackward", lambda dy, x, p: x)

    def bprop(x, p, out, dout):
        return grad(dout, x, p), ops.zeros_like(p)

    return _custom("MaxPoolForward", out_shape, bprop=bprop), params


def deform_sample_op(kernel_size, stride, padding, dilation=1):
    """(x, om, params) -> cols: the sampling half of a DCNv2 conv (dependency/cpu_ops/deform.cc).
    ``om`` is the offset conv's output in the DCNv2 layout (dy/dx pairs, then mask logits); cols
    (N, C·k², Ho, Wo) times the weights as a 1×1 conv is the deformable convolution."""
    import mindspore as ms
    from mindspore import Tensor, ops

    taps = kernel_size * kernel_size
    params = Tensor(np.array([kernel_size, kernel_size, stride, stride, padding, padding, dilation, dilation],
                             np.int64))
    grad = _custom("DeformSampleBackward", lambda dcols, x, om, p: [x, om],
                   lambda *types: [ms.float32, ms.float32])

    def bprop(x, om, p, out, dout):
        dx, dom = grad(dout, x, om, p)
        return dx, dom, ops.zeros_like(p)

    op = _custom("DeformSample", lambda x, om, p: (x[0], x[1] * taps, om[2], om[3]), bprop=bprop)
    return op, params


def batch_norm_train_op(eps, momentum, activation=None):
    """(x, gamma, beta, moving_mean, moving_variance, params) -> y: BatchNorm on batch statistics,
    then ``activation`` (None, "relu" or "relu6") in the same pass; differentiable in x, gamma and
    beta; the kernel updates the moving averages in place (dependency/cpu_ops/bnorm.cc).
    ``momentum`` is the batch statistics' weight."""
    import mindspore as ms
    from mindspore import Tensor, ops

    act = ACTIVATIONS[activation]
    params = Tensor(np.array([eps, momentum, act], np.float32))
    grad = _custom("BatchNormTrainGrad", lambda dy, x, g, y, p: [x, g, g],
                   lambda *types: [ms.float32, ms.float32, ms.float32])

    def bprop(x, gamma, beta, mean, var, p, out, dout):
        # the activation's mask comes from its output; without one, x stands in (nothing more kept)
        dx, dgamma, dbeta = grad(dout, x, gamma, out if act else x, p)
        return dx, dgamma, dbeta, ops.zeros_like(mean), ops.zeros_like(var), ops.zeros_like(p)

    op = _custom("BatchNormTrain", lambda x, g, b, m, v, p: x, bprop=bprop)
    # Declared as MindSpore's own BatchNorm declares them: the averages are written in place, so the
    # graph hands over the parameters themselves (not a loaded copy) and orders the write.
    from mindspore.ops import signature as sig

    op.set_signatures((sig.make_sig("x"), sig.make_sig("gamma"), sig.make_sig("beta"),
                       sig.make_sig("moving_mean", sig.sig_rw.RW_WRITE),
                       sig.make_sig("moving_variance", sig.sig_rw.RW_WRITE), sig.make_sig("params")))
    op.add_prim_attr("side_effect_mem", True)
    return op, params


def focal_loss_op(alpha, beta, eps):
    """(logits, target, params) -> float32[2] (S, P) of dependency/cpu_ops/focal.cc: the focal
    loss is −S / max(P, 1); differentiable in logits."""
    import mindspore as ms
    from mindspore import Tensor, ops

    params = Tensor(np.array([alpha, beta, eps], np.float32))
    grad = _custom("FocalLossGrad", lambda dout, x, t, p: x)

    def bprop(x, t, p, out, dout):
        return grad(dout, x, t, p), ops.zeros_like(t), ops.zeros_like(p)

    return _custom("FocalLoss", lambda x, t, p: (2,), lambda *types: ms.float32, bprop=bprop), params


def unscale_all_finite_op():
    """(scale, g_1, ..., g_n) -> (g_1 / scale, ..., g_n / scale, finite): finite a bool tensor of
    shape (1,), true when every element of every g_i is finite."""
    import mindspore as ms

    return _custom("UnscaleAllFinite", lambda scale, *grads: list(grads) + [(1,)],
                   lambda scale, *types: list(types) + [ms.bool_])
