"""Modulated deformable 3×3 convolution (DCNv2) on MindSpore's ``ops.deformable_conv2d``.

Parameters keep the DCNv2 layout used by CenterNet checkpoints: ``weight`` (Cout, Cin, k, k),
``bias`` (Cout), and ``conv_offset_mask`` predicting 3·k² channels [o1 | o2 | m]. DCNv2 reads the
first 2·k² channels as interleaved (dy, dx) pairs per kernel tap and the last k² through a sigmoid
as the modulation mask; MindSpore's op wants [all dx | all dy | mask], so the channels are
regrouped here rather than in the weights (checkpoints then convert by renaming only).

On CPU with centerdet's kernels (cpu_ops.enabled()), the sampling runs in dependency/cpu_ops/
deform.cc straight from the offset conv's DCNv2-layout output, and the weights apply as a 1×1
convolution over the C·k² sampled channels on the oneDNN kernels; MindSpore's CPU
DeformableOffsetsGrad alone took ~40 % of a CenterNet-DCN train step.

On MindSpore's kernels, ``train_sampling`` computes the same function another way in training
mode: every tap's bilinear samples come from one ``ops.grid_sample`` call, then the 1×1
convolution. Its backward is faster than ``deformable_conv2d``'s (CenterNet-DCN train steps
14-15 % shorter) but it keeps the sampled tensor (16-27 % more peak memory), and its forward is
slower on large maps, so inference always uses the fused op.
"""
import math

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Uniform, initializer

from centerdet import cpu_ops
from centerdet.models.layers import Conv2d


class ModulatedDeformConv2d(nn.Cell):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, train_sampling=False):
        super().__init__()
        self.train_sampling = train_sampling
        k = kernel_size
        self.kernel_size = (k, k)
        self.strides = (1, 1, stride, stride)
        self.padding = (padding, padding, padding, padding)
        self.taps = k * k
        bound = 1.0 / math.sqrt(in_channels * k * k)
        self.weight = Parameter(initializer(Uniform(bound), (out_channels, in_channels, k, k)), name="weight")
        self.bias = Parameter(Tensor(np.zeros(out_channels, np.float32)), name="bias")
        # Zero init: offsets start at 0 and the mask at sigmoid(0) = 0.5, as in DCNv2.
        self.conv_offset_mask = Conv2d(in_channels, 3 * k * k, k, stride=stride, pad_mode="pad",
                                          padding=padding, has_bias=True, weight_init="zeros",
                                          bias_init="zeros")
        self.sigmoid = ops.Sigmoid()
        # [dx of every tap | dy of every tap | mask logits]; a gather, because strided slices have
        # no working gradient on CPU in MindSpore 2.10.
        n = k * k
        order = [2 * t + 1 for t in range(n)] + [2 * t for t in range(n)] + list(range(2 * n, 3 * n))
        self.order = Tensor(np.array(order, np.int32))
        # Training path: the same channels as separate [dy | dx | mask] groups, and each tap's
        # position inside the kernel window.
        self.dy_index = Tensor(np.arange(0, 2 * n, 2, dtype=np.int32))
        self.dx_index = Tensor(np.arange(1, 2 * n, 2, dtype=np.int32))
        self.mask_index = Tensor(np.arange(2 * n, 3 * n, dtype=np.int32))
        self.tap_y = Tensor(np.repeat(np.arange(k), k).astype(np.float32).reshape(n, 1, 1))
        self.tap_x = Tensor(np.tile(np.arange(k), k).astype(np.float32).reshape(n, 1, 1))
        self.conv_1x1 = ops.Conv2D(out_channel=out_channels, kernel_size=1)
        self.onednn = cpu_ops.enabled()
        if self.onednn:
            self.sample, self.sample_params = cpu_ops.deform_sample_op(k, stride, padding)
            self.cols_conv = cpu_ops.conv2d_op(out_channels, (1, 1), (1, 1), (1, 1), "valid", 0,
                                               (out_channels, in_channels * n, 1, 1), bias=True)
            self.cols_params = cpu_ops.conv_params((1, 1), (1, 1), 1, "valid", 0)

    def construct(self, x):
        if self.onednn:
            cols = self.sample(x, self.conv_offset_mask(x), self.sample_params)
            # (Cout, Cin, kh, kw) flattens in cols' channel order c·k² + tap
            weight = self.weight.reshape(self.weight.shape[0], -1, 1, 1)
            return self.cols_conv(cols, weight, self.bias, self.cols_params)
        if self.training and self.train_sampling:
            return self._sampled_conv(x)
        om = ops.gather(self.conv_offset_mask(x), self.order, 1)
        n2 = 2 * self.taps
        offsets = ops.concat((om[:, :n2], self.sigmoid(om[:, n2:])), 1)
        return ops.deformable_conv2d(x, self.weight, offsets, self.kernel_size, self.strides,
                                     self.padding, bias=self.bias)

    def _sampled_conv(self, x):
        n, c, h, w = x.shape
        om = self.conv_offset_mask(x)
        ho, wo = om.shape[2], om.shape[3]
        taps, stride, pad = self.taps, self.strides[2], self.padding[0]
        rows = ops.arange(ho).astype(x.dtype).reshape(1, 1, ho, 1) * stride - pad
        cols = ops.arange(wo).astype(x.dtype).reshape(1, 1, 1, wo) * stride - pad
        y = ops.gather(om, self.dy_index, 1) + rows + self.tap_y  # (n, taps, ho, wo), pixels
        x_pos = ops.gather(om, self.dx_index, 1) + cols + self.tap_x
        mask = self.sigmoid(ops.gather(om, self.mask_index, 1))
        # Pixel centres in grid_sample's [-1, 1] without align_corners: valid for maps of size 1
        # too; zero padding gives DCNv2's rule for samples that leave the image.
        grid = ops.stack(((2.0 * x_pos + 1.0) / w - 1.0, (2.0 * y + 1.0) / h - 1.0), -1)
        grid = grid.reshape(n, taps * ho, wo, 2)
        # MindSpore's CPU grid-sample backward logs a (harmless) memcpy error for every image whose
        # sample count leaves a remainder of 1-4 in its 8-wide vector loop: pad the rows with
        # samples far outside (value and gradient 0) up to a multiple of 8, and drop them after.
        extra = _padding_for_vector_loop(taps * ho, wo)
        if extra:
            grid = ops.concat((grid, ops.full((n, taps * ho, extra, 2), -4.0, dtype=grid.dtype)), 2)
        sampled = ops.grid_sample(x, grid, "bilinear", "zeros", False)
        if extra:
            sampled = ops.gather(sampled, ops.arange(wo), 3)
        sampled = sampled.reshape(n, c, taps, ho, wo) * mask.reshape(n, 1, taps, ho, wo)
        # (c, tap) flattened in the order of the weight's (Cin, kh, kw)
        out = self.conv_1x1(sampled.reshape(n, c * taps, ho, wo), self.weight.reshape(-1, c * taps, 1, 1))
        return ops.bias_add(out, self.bias)


def _padding_for_vector_loop(rows, cols):
    """Columns to add so that rows·(cols + extra) is a multiple of 8."""
    step = 1 if rows % 8 == 0 else 2 if rows % 4 == 0 else 4 if rows % 2 == 0 else 8
    return (step - cols % step) % step
