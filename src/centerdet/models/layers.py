"""Convolution, BatchNorm and pooling layers that run on centerdet's CPU kernels (centerdet.cpu_ops)
when those are enabled, and on MindSpore's own operators otherwise.

Conv2d, Conv2dTranspose and BatchNorm2d subclass MindSpore's cells: same arguments, parameter names
and checkpoints, and the same numbers (to float32 rounding); only the kernel differs. The choice is
made when a layer is built (cpu_ops.enabled() then), and is a constant of the compiled graph.
"""
from mindspore import nn, ops

from centerdet import cpu_ops


class _FrozenWeights:
    """The kernel parameter vector of a oneDNN conv layer, and freezing its weights for inference."""

    fused_activation = None  # applied inside the kernel, or with the bias right after it (fuse_activation)
    residual_activation = None  # applied inside the kernel after forward_add's sum (Conv2d.fuse_residual)
    adds_residual = False  # forward_add's kernel built (Conv2d.fuse_residual)
    padded_output = False  # a zero-padded last block allowed (Conv2d.write_blocked, inference)
    frozen = 0  # a cpu_ops.frozen_id() once freeze_weights ran

    def _set_params(self):
        self.onednn_params = cpu_ops.conv_params(self.stride, self.dilation, self.group, self.pad_mode,
                                                 self.padding, self.fused_activation or self.residual_activation,
                                                 self.frozen)

    def freeze_weights(self):
        """Inference only: the weights will not change any more, so the kernel reorders them into
        its layout once instead of at every call (a no-op on MindSpore's kernels)."""
        if self.onednn:
            self.frozen = cpu_ops.frozen_id()
            self._set_params()


class Conv2d(_FrozenWeights, nn.Conv2d):
    """nn.Conv2d; on centerdet's kernels its input may be channel-blocked (5-D) and ``out_block``
    channels per block makes its output so (cpu_ops.channel_block; 0: plain NCHW)."""

    def __init__(self, *args, out_block=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.onednn = cpu_ops.enabled() and self.data_format == "NCHW"
        self.out_block = out_block if self.onednn else 0
        if out_block and not self.onednn:
            raise ValueError("a channel-blocked output needs centerdet's CPU kernels (cpu_ops.channel_block())")
        if self.onednn:
            self._build_ops()
            self._set_params()

    def _build_ops(self):
        geometry = (self.out_channels, self.kernel_size, self.stride, self.dilation, self.pad_mode, self.padding,
                    self.weight.shape)
        layout = dict(out_block=self.out_block, padded=self.padded_output)
        self.onednn_conv = cpu_ops.conv2d_op(*geometry, **layout)
        # Also without a bias now: folding BatchNorm in (models/fuse.py) gives the conv one later.
        self.onednn_conv_bias = cpu_ops.conv2d_op(*geometry, bias=True, **layout)
        if self.adds_residual:
            self.onednn_conv_sum = cpu_ops.conv2d_op(*geometry, bias=True, residual=True, **layout)

    def write_blocked(self, block, padded=False) -> bool:
        """Inference only: write the output channel-blocked by ``block`` channels (a layout its
        readers take as it is) instead of plain NCHW, with ``padded`` also where the channels do
        not fill the last block (zeros there: readers must be convs, adds or to_plain(x, channels));
        False (nothing changed) on MindSpore's kernels or where the channels do not split."""
        if not (self.onednn and block and (padded or self.out_channels % block == 0)):
            return False
        self.out_block, self.padded_output = block, padded
        self._build_ops()
        return True

    def _plain_pointwise(self):
        # conv.cc runs these on NCHW through GEMM, where a post-op made CenterFace's forward at
        # 512² twice as slow (169 against 82 ms; ResNet-50's 1×1s: 396 against 367 ms)
        pads = self.padding if isinstance(self.padding, (tuple, list)) else (self.padding,)
        return (not self.out_block and tuple(self.kernel_size) == (1, 1) and tuple(self.stride) == (1, 1)
                and (self.pad_mode != "pad" or not any(pads)))

    def fuse_activation(self, activation):
        """Inference only: apply ``activation`` ("relu", "relu6") inside the (biased) convolution
        kernel; returns False (nothing changed) where that is not possible or not faster:
        MindSpore's kernels, no bias (models/fuse.py gives the conv one when it folds a BatchNorm
        in), or a 1×1 stride-1 conv (run as a plain GEMM, where the post-op is slow)."""
        if not (self.onednn and self.has_bias) or self._plain_pointwise():
            return False
        self.fused_activation = activation
        self._set_params()
        return True

    def fuse_residual(self, activation=None):
        """Inference only: forward_add(x, r) will add ``r`` (shaped like the output) inside the
        kernel and apply ``activation`` ("relu" or None) after the sum; returns False (nothing
        changed) where that is not possible: MindSpore's kernels, no bias, an activation already
        fused, or a 1×1 stride-1 conv (a plain GEMM, where post-ops are slow)."""
        if not (self.onednn and self.has_bias) or self.fused_activation or self._plain_pointwise():
            return False
        self.residual_activation, self.adds_residual = activation, True
        self._set_params()
        self._build_ops()
        return True

    def fuse_depthwise(self, dw) -> bool:
        """Inference only: forward_depthwise(x, dw) will run this 1×1 stride-1 conv and the 3×3
        depthwise conv ``dw`` reading its output (pad 1, stride 1 or 2) in one kernel, each with
        its fused activation; returns False (nothing changed) where that is not possible:
        MindSpore's kernels, no biases, a plain output, or other geometries."""
        pads = {self.padding} if isinstance(self.padding, int) else set(self.padding)
        dw_pads = {dw.padding} if isinstance(dw.padding, int) else set(dw.padding)
        if not (isinstance(dw, Conv2d) and self.onednn and dw.onednn and self.has_bias and dw.has_bias
                and self.out_block and dw.out_block == self.out_block and not self.adds_residual
                and tuple(self.kernel_size) == (1, 1) and tuple(self.stride) == (1, 1) and pads <= {0}
                and dw.group == dw.in_channels == dw.out_channels == self.out_channels
                and tuple(dw.kernel_size) == (3, 3) and dw.stride[0] == dw.stride[1] in (1, 2)
                and tuple(dw.dilation) == (1, 1) and dw.pad_mode == "pad" and dw_pads == {1}):
            return False
        self.onednn_conv_dw = cpu_ops.conv_depthwise_op(self.out_channels, dw.stride[0], self.out_block)
        return True

    def forward_depthwise(self, x, dw):
        """dw(self(x)) in one kernel, after fuse_depthwise(dw)."""
        return self.onednn_conv_dw(x, self.weight, self.bias, dw.weight, dw.bias, self.onednn_params,
                                   dw.onednn_params)

    def forward_add(self, x, residual):
        """act(conv(x) + residual) in one kernel, after fuse_residual(act)."""
        return self.onednn_conv_sum(x, self.weight, self.bias, residual, self.onednn_params)

    def construct(self, x):
        if self.onednn:
            if self.has_bias:
                return self.onednn_conv_bias(x, self.weight, self.bias, self.onednn_params)
            return self.onednn_conv(x, self.weight, self.onednn_params)
        out = self.conv2d(x, self.weight)
        if self.has_bias:
            out = self.bias_add(out, self.bias)
        return out


class Conv2dTranspose(_FrozenWeights, nn.Conv2dTranspose):
    """nn.Conv2dTranspose; on centerdet's kernels ``block`` > 0 makes its input and output
    channel-blocked (cpu_ops.channel_block)."""

    def __init__(self, *args, block=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.onednn = cpu_ops.enabled() and self.output_padding == 0
        self.out_block = block if self.onednn else 0
        if block and not self.onednn:
            raise ValueError("a channel-blocked transposed conv needs centerdet's CPU kernels")
        if self.onednn:
            self._build_op()
            self._set_params()

    def _build_op(self):
        self.onednn_conv = cpu_ops.conv_transpose2d_op(self.in_channels, self.out_channels, self.kernel_size,
                                                       self.stride, self.dilation, self.pad_mode, self.padding,
                                                       self.weight.shape, self.out_block)

    def write_blocked(self, block) -> bool:
        """Inference only: write the output channel-blocked by ``block`` channels whatever the input's
        layout (the kernel reads either); False (nothing changed) on MindSpore's kernels or where the
        channels do not split into such blocks."""
        if not (self.onednn and block and self.in_channels % block == 0 and self.out_channels % block == 0):
            return False
        self.out_block = block
        self._build_op()
        return True

    def fuse_activation(self, activation):
        """Inference only: add the bias and apply ``activation`` ("relu", "relu6") in one pass after
        the kernel (which takes neither) instead of two; forward_then_add can add a third tensor in
        the same pass. Returns False (nothing changed) on MindSpore's kernels or without a bias."""
        if not (self.onednn and self.has_bias):
            return False
        self.fused_activation = activation
        self.bias_act, self.bias_act_params = cpu_ops.bias_act_op(activation)
        self.bias_act_add, _ = cpu_ops.bias_act_op(activation, residual=True)
        return True

    def forward_then_add(self, x, other):
        """act(conv_transpose(x) + b) + other in one pass after the kernel, after fuse_activation(act)."""
        return self.bias_act_add(self.onednn_conv(x, self.weight, self.onednn_params), self.bias, other,
                                 self.bias_act_params)

    def construct(self, x):
        if not self.onednn:
            return super().construct(x)
        out = self.onednn_conv(x, self.weight, self.onednn_params)
        if self.fused_activation:
            return self.bias_act(out, self.bias, self.bias_act_params)
        if self.has_bias and self.out_block:  # a BatchNorm folded in (models/fuse.py); bias_add knows only NCHW
            return out + self.bias.reshape(1, -1, 1, 1, self.out_block)
        if self.has_bias:
            out = self.bias_add(out, self.bias)
        return out


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d, optionally followed by ``activation`` ("relu" or "relu6"), whose training-mode
    pass runs on centerdet's CPU kernel: batch statistics, the activation in the same pass, and the
    moving averages updated in place inside the kernel as MindSpore's BatchNorm does (biased
    variance to normalise, unbiased into the average). Updating them through ops.assign instead
    cost CenterFace's train step ~10 % in time and ~150 MB of peak memory (the side effects order
    the graph); the separate ReLU kept one more tensor per BN-ReLU pair alive until the backward.
    Evaluation uses MindSpore's op on the averages (or is folded away, models/fuse.py), then the
    activation; so do MindSpore's kernels. The parameters are nn.BatchNorm2d's either way."""

    ACTIVATIONS = {"relu": ops.ReLU, "relu6": ops.ReLU6}

    def __init__(self, *args, activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        if activation is not None and activation not in self.ACTIVATIONS:
            raise ValueError(f"BatchNorm2d activation must be one of {sorted(self.ACTIVATIONS)} or None, "
                             f"got {activation!r}")
        self.activation = activation
        self.act = self.ACTIVATIONS[activation]() if activation else None
        self.onednn = cpu_ops.enabled() and self.use_batch_statistics is None and self.format == "NCHW"
        if self.onednn:
            # nn.BatchNorm2d keeps 1 − momentum: the batch statistics' weight
            self.onednn_bn, self.onednn_params = cpu_ops.batch_norm_train_op(self.eps, self.momentum, activation)

    def construct(self, x):
        if self.onednn and self.training:
            return self.onednn_bn(x, self.gamma, self.beta, self.moving_mean, self.moving_variance,
                                  self.onednn_params)
        if x.ndim == 5:
            out = self._blocked_inference(x)
        else:
            out = super().construct(x)
        if self.act is not None:
            out = self.act(out)
        return out

    def _blocked_inference(self, x):
        # eval mode on a channel-blocked (N, C/B, H, W, B) map: MindSpore's op knows only NCHW
        block = x.shape[4]
        scale = self.gamma / ops.sqrt(self.moving_variance + self.eps)
        shift = self.beta - self.moving_mean * scale
        return x * scale.reshape(1, -1, 1, 1, block) + shift.reshape(1, -1, 1, 1, block)


def to_plain(x, channels=None):
    """(N, C/B, H, W, B) -> (N, C, H, W); ``channels`` (< C) drops a zero-padded last block's tail."""
    n, cb, h, w, b = x.shape
    out = ops.transpose(x, (0, 1, 4, 2, 3)).reshape(n, cb * b, h, w)
    return out[:, :channels] if channels is not None and channels < cb * b else out


def zero_border(x, width=1):
    """``x`` (N, C, H, W) with ``width`` pixels of zeros around it. Drawn by concatenation: on CPU
    ops.Pad took ~50 ms for a 64×256² map, 5× the pool it fed."""
    n, c, h, w = x.shape
    rows = ops.zeros((n, c, width, w), x.dtype)
    x = ops.concat((rows, x, rows), 2)
    cols = ops.zeros((n, c, h + 2 * width, width), x.dtype)
    return ops.concat((cols, x, cols), 3)


class MaxPool2d(nn.Cell):
    """k×k max pool with stride s over ``padding`` pixels of border, for inputs ≥ 0 (after a ReLU).

    On MindSpore's operators the border is zeros plus an unpadded pool (MindSpore's ONNX exporter
    has no converter for its padded pool); the oneDNN kernel ignores padded positions instead, as
    PyTorch does. For non-negative inputs the two agree exactly: a zero never beats a real value.
    """

    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.onednn = cpu_ops.enabled()
        if self.onednn:
            self.onednn_pool, self.onednn_params = cpu_ops.max_pool_op(kernel_size, stride, padding)
        else:
            self.pool = nn.MaxPool2d(kernel_size=kernel_size, stride=stride, pad_mode="valid")

    def construct(self, x):
        if self.onednn:
            return self.onednn_pool(x, self.onednn_params)
        return self.pool(zero_border(x, self.padding))

    def to_onnx(self, g, x):
        # ONNX's pool ignores padded positions, as the oneDNN kernel and PyTorch do
        return g.op("MaxPool", [x], kernel_shape=[self.kernel_size] * 2, strides=[self.stride] * 2,
                    pads=[self.padding] * 4)
