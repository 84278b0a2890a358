"""ResNet v1.5 (stride on the 3×3 conv) with torchvision's attribute names, so that a torchvision
``state_dict`` maps onto it by renaming BN suffixes only. No pooling head: returns the stride-32 map,
or with ``all_levels`` the outputs of layer1..layer4 (strides 4, 8, 16, 32) for skip-connected necks.

On centerdet's CPU kernels the activations stay channel-blocked from the stem conv's output to the
returned maps (cpu_ops.channel_block), which saves every convolution two reorders per pass; the
returned maps are plain NCHW unless ``blocked_levels`` (for a neck that reads blocked maps), and the
parameters and checkpoints are the same.
"""
from mindspore import nn
from mindspore.common.initializer import HeNormal

from centerdet import cpu_ops
from centerdet.models.layers import BatchNorm2d, Conv2d, MaxPool2d, to_plain

DEPTHS = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
    "resnet101": ("bottleneck", [3, 4, 23, 3]),
}


def conv(cin, cout, k, stride=1, layout_block=0):
    return Conv2d(cin, cout, k, stride=stride, pad_mode="pad", padding=k // 2, has_bias=False,
                  weight_init=HeNormal(mode="fan_out", nonlinearity="relu"), out_block=layout_block)


def bn(c, act=None):
    # PyTorch momentum 0.1 == MindSpore momentum 0.9 (weight of the running value). A ReLU right
    # after the BN runs inside its cell (one kernel in training on CPU).
    return BatchNorm2d(c, eps=1e-5, momentum=0.9, activation=act)


class _Residual(nn.Cell):
    """relu(branch(x) + x, or + downsample(x) where the block changes the shape). Subclasses build
    their branch, then call ``_add_shortcut`` (so the parameters keep torchvision's order)."""

    fused = False  # inference: the last conv adds the shortcut and applies the ReLU (models/fuse.py)
    last = ("conv2", "bn2")

    def fuse_folded(self) -> bool:
        """Inference, once the last BatchNorm is folded away: its conv adds the shortcut and applies
        the ReLU inside its kernel (Conv2d.fuse_residual); False where it cannot."""
        conv, bn = (getattr(self, name) for name in self.last)
        self.fused = isinstance(bn, nn.Identity) and conv.fuse_residual("relu")
        return self.fused

    def _add_shortcut(self, downsample):
        self.relu = nn.ReLU()
        self.downsample = downsample

    def construct(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        if self.fused:
            return self.fused_branch(x, identity)
        return self.relu(self.branch(x) + identity)

    def to_onnx(self, g, x):
        identity = x if self.downsample is None else g.emit(self.downsample, x)
        out = x
        for name in ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3"):
            if hasattr(self, name):
                out = g.emit(getattr(self, name), out)
        return g.activation(g.op("Add", [out, identity]), "relu")


class BasicBlock(_Residual):
    expansion = 1

    def __init__(self, cin, planes, stride=1, downsample=None, layout_block=0):
        super().__init__()
        self.conv1 = conv(cin, planes, 3, stride, layout_block)
        self.bn1 = bn(planes, "relu")
        self.conv2 = conv(planes, planes, 3, 1, layout_block)
        self.bn2 = bn(planes)
        self._add_shortcut(downsample)

    def branch(self, x):
        return self.bn2(self.conv2(self.bn1(self.conv1(x))))

    def fused_branch(self, x, identity):
        return self.conv2.forward_add(self.bn1(self.conv1(x)), identity)


class Bottleneck(_Residual):
    expansion = 4
    last = ("conv3", "bn3")

    def __init__(self, cin, planes, stride=1, downsample=None, layout_block=0):
        super().__init__()
        self.conv1 = conv(cin, planes, 1, 1, layout_block)
        self.bn1 = bn(planes, "relu")
        self.conv2 = conv(planes, planes, 3, stride, layout_block)
        self.bn2 = bn(planes, "relu")
        self.conv3 = conv(planes, planes * 4, 1, 1, layout_block)
        self.bn3 = bn(planes * 4)
        self._add_shortcut(downsample)

    def branch(self, x):
        return self.bn3(self.conv3(self.bn2(self.conv2(self.bn1(self.conv1(x))))))

    def fused_branch(self, x, identity):
        return self.conv3.forward_add(self.bn2(self.conv2(self.bn1(self.conv1(x)))), identity)


class ResNet(nn.Cell):
    def __init__(self, block, layers, all_levels=False, blocked_levels=False):
        super().__init__()
        self.all_levels = all_levels
        self.layout_block = cpu_ops.channel_block()
        self.blocked_levels = blocked_levels and self.layout_block > 0
        self.conv1 = Conv2d(3, 64, 7, stride=2, pad_mode="pad", padding=3, has_bias=False,
                            weight_init=HeNormal(mode="fan_out", nonlinearity="relu"), out_block=self.layout_block)
        self.bn1 = bn(64, "relu")
        # 3×3/2 over 1 px of padding; its input is post-ReLU, as MaxPool2d requires.
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.inplanes = 64
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.level_channels = tuple(c * block.expansion for c in (64, 128, 256, 512))
        self.out_channels = self.level_channels if all_levels else self.inplanes

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.SequentialCell([conv(self.inplanes, planes * block.expansion, 1, stride, self.layout_block),
                                            bn(planes * block.expansion)])
        cells = [block(self.inplanes, planes, stride, downsample, self.layout_block)]
        self.inplanes = planes * block.expansion
        cells += [block(self.inplanes, planes, layout_block=self.layout_block) for _ in range(1, blocks)]
        return nn.SequentialCell(cells)

    def construct(self, x):
        x = self.maxpool(self.bn1(self.conv1(x)))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        if self.all_levels:
            return self._plain(c2), self._plain(c3), self._plain(c4), self._plain(c5)
        return self._plain(c5)

    def to_onnx(self, g, x):
        x = g.emit(self.maxpool, g.emit(self.bn1, g.emit(self.conv1, x)))
        levels = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = g.emit(layer, x)
            levels.append(x)
        return tuple(levels) if self.all_levels else x

    def _plain(self, x):
        return to_plain(x) if self.layout_block and not self.blocked_levels else x


def resnet(name, all_levels=False, blocked_levels=False):
    kind, layers = DEPTHS[name]
    return ResNet(BasicBlock if kind == "basic" else Bottleneck, layers, all_levels, blocked_levels)
