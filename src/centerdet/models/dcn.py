"""Modulated deformable 3×3 convolution (DCNv2) on MindSpore's ``ops.deformable_conv2d``.

Parameters keep the DCNv2 layout used by CenterNet checkpoints: ``weight`` (Cout, Cin, k, k),
``bias`` (Cout), and ``conv_offset_mask`` predicting 3·k² channels [o1 | o2 | m]. DCNv2 reads the
first 2·k² channels as interleaved (dy, dx) pairs per kernel tap and the last k² through a sigmoid
as the modulation mask; MindSpore's op wants [all dx | all dy | mask], so the channels are
regrouped here rather than in the weights (checkpoints then convert by renaming only).
"""
import math

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Uniform, initializer


class ModulatedDeformConv2d(nn.Cell):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1):
        super().__init__()
        k = kernel_size
        self.kernel_size = (k, k)
        self.strides = (1, 1, stride, stride)
        self.padding = (padding, padding, padding, padding)
        self.taps = k * k
        bound = 1.0 / math.sqrt(in_channels * k * k)
        self.weight = Parameter(initializer(Uniform(bound), (out_channels, in_channels, k, k)), name="weight")
        self.bias = Parameter(Tensor(np.zeros(out_channels, np.float32)), name="bias")
        # Zero init: offsets start at 0 and the mask at sigmoid(0) = 0.5, as in DCNv2.
        self.conv_offset_mask = nn.Conv2d(in_channels, 3 * k * k, k, stride=stride, pad_mode="pad",
                                          padding=padding, has_bias=True, weight_init="zeros",
                                          bias_init="zeros")
        self.sigmoid = ops.Sigmoid()
        # [dx of every tap | dy of every tap | mask logits]; a gather, because strided slices have
        # no working gradient on CPU in MindSpore 2.10.
        n = k * k
        order = [2 * t + 1 for t in range(n)] + [2 * t for t in range(n)] + list(range(2 * n, 3 * n))
        self.order = Tensor(np.array(order, np.int32))

    def construct(self, x):
        om = ops.gather(self.conv_offset_mask(x), self.order, 1)
        n2 = 2 * self.taps
        offsets = ops.concat((om[:, :n2], self.sigmoid(om[:, n2:])), 1)
        return ops.deformable_conv2d(x, self.weight, offsets, self.kernel_size, self.strides,
                                     self.padding, bias=self.bias)
