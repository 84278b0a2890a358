"""MobileNetV2 (width 1.0) with torchvision's attribute names, so that a torchvision ``state_dict``
maps onto it by renaming BN suffixes only. The 320→1280 conv (features.18), pooling and classifier
are left out: CenterFace only needs the four feature taps at strides 4, 8, 16 and 32.

On centerdet's CPU kernels the activations stay channel-blocked (cpu_ops.channel_block) from the
stem's output on, as ResNet's do, wherever a map's channels split into blocks (with AVX-512's
16-channel blocks the 24-channel stage's maps stay plain in training, the convs around them read
and write both layouts; an inference network keeps them blocked too, zero-padded): every depthwise conv then runs on oneDNN's direct kernel without reordering its
input and output, and the 1×1 convs apply their ReLU6 inside the kernel at inference. The taps come
out plain NCHW unless ``blocked_taps`` (for a neck that reads blocked maps).
"""
from mindspore import nn
from mindspore.common.initializer import HeNormal

from centerdet import cpu_ops
from centerdet.models.layers import BatchNorm2d, Conv2d, to_plain

# (expand ratio t, output channels c, repeats n, first stride s), as in the paper and torchvision.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# Last block of each stride (4, 8, 16, 32): the tap points used by the CenterFace neck.
TAPS = (3, 6, 13, 17)


def conv(cin, cout, k, stride=1, group=1, block=0):
    # torchvision initialises every conv, depthwise included, with kaiming_normal_(mode="fan_out").
    return Conv2d(cin, cout, k, stride=stride, pad_mode="pad", padding=k // 2, group=group,
                  has_bias=False, weight_init=HeNormal(mode="fan_out", nonlinearity="relu"), out_block=block)


def bn(c, act=None):
    # PyTorch momentum 0.1 == MindSpore momentum 0.9 (weight of the running value).
    return BatchNorm2d(c, eps=1e-5, momentum=0.9, activation=act)


ACTIVATIONS = ("relu6", "relu")


def conv_bn_act(cin, cout, k, stride=1, group=1, act="relu6", block=0):
    # A SequentialCell (not a named Cell) so the keys come out as <i>.0.weight / <i>.1.gamma; the
    # activation runs inside the BatchNorm cell (one kernel in training on CPU).
    if act not in ACTIVATIONS:
        raise ValueError(f"MobileNetV2 activation must be one of {ACTIVATIONS}, got {act!r}")
    return nn.SequentialCell([conv(cin, cout, k, stride, group, block), bn(cout, act)])


class InvertedResidual(nn.Cell):
    def __init__(self, cin, cout, stride, expand_ratio, act="relu6", block=0):
        super().__init__()
        hidden = cin * expand_ratio
        self.out_channels = cout
        # A Python bool fixed at build time: graph mode folds the branch away per block.
        self.use_res = stride == 1 and cin == cout
        # per map: AVX-512's 16-channel blocks do not fit the 24-channel stage, which stays plain
        inner, outer = cpu_ops.layout_block_for([hidden], block), cpu_ops.layout_block_for([cout], block)
        layers = [] if expand_ratio == 1 else [conv_bn_act(cin, hidden, 1, act=act, block=inner)]
        layers += [conv_bn_act(hidden, hidden, 3, stride, group=hidden, act=act, block=inner),
                   conv(hidden, cout, 1, block=outer),  # linear bottleneck: no activation after the projection
                   bn(cout)]
        self.conv = nn.SequentialCell(layers)

    fused_depthwise = False  # inference: the expand conv and the depthwise conv in one kernel (fuse_folded)

    def fuse_folded(self) -> bool:
        """Inference, once the BatchNorms are folded: the expand 1×1 conv and the depthwise conv
        after it run as one kernel (Conv2d.fuse_depthwise), so the expanded map, the block's
        largest, never goes through memory; False where it cannot."""
        if len(self.conv) != 4 or not all(isinstance(c, nn.SequentialCell) and isinstance(c[1], nn.Identity)
                                          for c in (self.conv[0], self.conv[1])):
            return False
        self.fused_depthwise = self.conv[0][0].fuse_depthwise(self.conv[1][0])
        return self.fused_depthwise

    def _residual_branch(self, x):
        if self.fused_depthwise:
            return self.conv[3](self.conv[2](self.conv[0][0].forward_depthwise(x, self.conv[1][0])))
        return self.conv(x)

    def construct(self, x):
        if self.use_res:
            return x + self._residual_branch(x)
        return self._residual_branch(x)

    def to_onnx(self, g, x):
        out = g.emit(self.conv, x)
        return g.op("Add", [x, out]) if self.use_res else out


class MobileNetV2(nn.Cell):
    level_channels = (24, 32, 96, 320)
    out_channels = 320

    def __init__(self, act="relu6", blocked_taps=False):
        """``act``: "relu6" as torchvision (and its ImageNet weights); "relu" as the CenterFace
        authors' released model."""
        super().__init__()
        self.layout_block = block = cpu_ops.channel_block()
        channels = sorted({32} | {c * f for _, c, _, _ in SETTINGS for f in (1, 6)})
        self.plain_channels = tuple(c for c in channels if block and not cpu_ops.layout_block_for([c], block))
        self.blocked_taps = blocked_taps and block > 0
        layers = [conv_bn_act(3, 32, 3, 2, act=act, block=cpu_ops.layout_block_for([32], block))]
        cin = 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t, act, self.layout_block))
                cin = c
        self.features = nn.SequentialCell(layers)

    padded = False  # inference: the maps of plain_channels kept blocked too, zero-padded (fuse_folded)

    def fuse_folded(self) -> bool:
        """Inference: the maps whose channels do not split into blocks (the 24-channel stage with
        AVX-512's 16) are kept channel-blocked too, their last block zero-padded, instead of
        being reordered to plain NCHW and back around every conv; their readers are convs
        (which take the real count from their weights), residual adds and the taps."""
        projections = [layer.conv[len(layer.conv) - 2] for layer in self.features
                       if isinstance(layer, InvertedResidual) and layer.out_channels in self.plain_channels]
        self.padded = bool(projections) and all([c.write_blocked(self.layout_block, padded=True)
                                                 for c in projections])
        return self.padded

    def construct(self, x):
        # Walk features ourselves rather than splitting it into stage cells: re-registering the
        # same cells under a second attribute renames their parameters (features.* -> stages.*).
        # Graph mode unrolls this loop, and `i in TAPS` is a compile-time constant.
        outs = ()
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                outs += (to_plain(x, layer.out_channels) if x.ndim == 5 and not self.blocked_taps else x,)
        return outs

    def to_onnx(self, g, x):
        outs = []
        for i, layer in enumerate(self.features):
            x = g.emit(layer, x)
            if i in TAPS:
                outs.append(x)
        return tuple(outs)


def mobilenet_v2(act="relu6", blocked_taps=False):
    return MobileNetV2(act, blocked_taps)
