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

    def to_onnx(self, g, x):
        """ONNX's DeformConv (opset 19), or with ``g.options["dcn"] == "decomposed"`` the sampling
        of ``_sampled_conv`` in standard operators (GridSample, opset 16) and a 1×1 Conv."""
        n = self.taps
        om = g.emit(self.conv_offset_mask, x)
        mask = g.op("Sigmoid", [g.op("Slice", [om, g.ints([2 * n]), g.ints([3 * n]), g.ints([1])])])
        bias = g.param(self.bias, "dcn.bias")
        pad, stride = self.padding[0], self.strides[2]
        if g.options.get("dcn", "deformconv") == "deformconv":
            # DCNv2's [(dy, dx) per tap] is the operator's offset layout (torchvision's)
            offset = g.op("Slice", [om, g.ints([0]), g.ints([2 * n]), g.ints([1])])
            weight = g.param(self.weight, "dcn.weight")
            return g.op("DeformConv", [x, weight, offset, bias, mask], kernel_shape=list(self.kernel_size),
                        pads=[pad] * 4, strides=[stride] * 2)
        c_in, c_out = self.weight.shape[1], self.weight.shape[0]
        k = self.kernel_size[0]

        def grid_axis(channels, out_axis, in_axis, taps):
            # pixel position stride·i − pad + tap + offset, then grid_sample's (2p + 1) / size − 1
            size = g.op("Cast", [g.dims(x, in_axis, in_axis + 1)], to=1)
            steps = g.op("Cast", [g.op("Range", [g.const(np.array(0, np.int64)),
                                                 g.op("Squeeze", [g.dims(om, out_axis, out_axis + 1)]),
                                                 g.const(np.array(1, np.int64))])], to=1)
            shape = [1, 1, -1, 1] if out_axis == 2 else [1, 1, 1, -1]
            base = g.op("Reshape", [g.op("Add", [g.op("Mul", [steps, g.scalar(float(stride))]), g.scalar(-pad)]),
                                    g.ints(shape)])
            taps = g.const(taps.reshape(1, n, 1, 1).astype(np.float32), "dcn.taps")
            pos = g.op("Add", [g.op("Add", [g.op("Gather", [om, g.ints(channels)], axis=1), base]), taps])
            unit = g.op("Sub", [g.op("Div", [g.op("Add", [g.op("Mul", [pos, g.scalar(2.0)]), g.scalar(1.0)]),
                                             size]), g.scalar(1.0)])
            return g.op("Unsqueeze", [unit, g.ints([4])])

        gy = grid_axis(list(range(0, 2 * n, 2)), 2, 2, np.repeat(np.arange(k), k))
        gx = grid_axis(list(range(1, 2 * n, 2)), 3, 3, np.tile(np.arange(k), k))
        out_hw = g.dims(om, 2, 4)
        # (N, taps, Ho, Wo, 2) -> (N, taps·Ho, Wo, 2): one GridSample call samples every tap
        grid = g.op("Reshape", [g.op("Concat", [gx, gy], axis=4),
                                g.op("Concat", [g.ints([0, -1]), g.dims(om, 3, 4), g.ints([2])], axis=0)])
        sampled = g.op("GridSample", [x, grid], mode="bilinear", padding_mode="zeros", align_corners=0)
        sampled = g.op("Reshape", [sampled, g.op("Concat", [g.ints([0, 0, n]), out_hw], axis=0)])
        sampled = g.op("Mul", [sampled, g.op("Unsqueeze", [mask, g.ints([1])])])
        cols = g.op("Reshape", [sampled, g.op("Concat", [g.ints([0, c_in * n]), out_hw], axis=0)])
        return g.conv(cols, g.param(self.weight, "dcn.weight", (c_out, c_in * n, 1, 1)), bias, (1, 1), (0, 0, 0, 0))


def _padding_for_vector_loop(rows, cols):
    """Columns to add so that rows·(cols + extra) is a multiple of 8."""
    step = 1 if rows % 8 == 0 else 2 if rows % 4 == 0 else 4 if rows % 2 == 0 else 8
    return (step - cols % step) % step
