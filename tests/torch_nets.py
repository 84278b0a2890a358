"""Plain-PyTorch ImageNet backbones with torchvision's module names and layouts (classifier
included), written here as independent references for the converter tests. Import only after
``pytest.importorskip("torch")``."""
import numpy as np
import torch
from torch import nn

RESNET_LAYERS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
                 "resnet50": ("bottleneck", (3, 4, 6, 3)), "resnet101": ("bottleneck", (3, 4, 23, 3))}
# MobileNetV2 (expansion, channels, repeats, first stride)
MBV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
MBV2_TAPS = (3, 6, 13, 17)


class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # stride on the 3x3 (torchvision v1.5)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    def __init__(self, name):
        super().__init__()
        kind, layers = RESNET_LAYERS[name]
        block = Basic if kind == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or cin != planes * block.expansion:
                down = nn.Sequential(nn.Conv2d(cin, planes * block.expansion, 1, stride, bias=False),
                                     nn.BatchNorm2d(planes * block.expansion))
            blocks = [block(cin, planes, stride, down)]
            cin = planes * block.expansion
            blocks += [block(cin, planes, 1, None) for _ in range(1, n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, 1000)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def conv_bn_act(cin, cout, k, stride=1, groups=1, act=nn.ReLU6):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), act())


class Inverted(nn.Module):
    def __init__(self, cin, cout, stride, expand, act=nn.ReLU6):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [conv_bn_act(cin, hidden, 1, act=act)]
        layers += [conv_bn_act(hidden, hidden, 3, stride, hidden, act), nn.Conv2d(hidden, cout, 1, bias=False),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, act=nn.ReLU6):
        super().__init__()
        layers, cin = [conv_bn_act(3, 32, 3, 2, act=act)], 32
        for expand, cout, repeats, stride in MBV2:
            for i in range(repeats):
                layers.append(Inverted(cin, cout, stride if i == 0 else 1, expand, act))
                cin = cout
        layers.append(conv_bn_act(320, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x):
        taps = []
        for i, layer in enumerate(self.features[:18]):
            x = layer(x)
            if i in MBV2_TAPS:
                taps.append(x)
        return taps


class CenterFace(nn.Module):
    """CenterFace: MobileNetV2 tapped at strides 4/8/16/32, a 1x1 projection of the stride-32 map,
    three 2x2 stride-2 up-convolutions each summed with a 1x1 projection of the matching tap, a 3x3
    fusion conv and 1x1 heads (heatmap, size, offset, landmarks). ``release=True`` is the authors'
    released model: width 24, ReLU backbone, a sigmoid on the heatmap output."""

    def __init__(self, width=64, act=nn.ReLU6, release=False):
        super().__init__()
        self.release = release
        self.backbone = MobileNetV2(act)
        self.top = conv_bn_act(320, width, 1, act=nn.ReLU)
        self.ups = nn.ModuleList(nn.Sequential(nn.ConvTranspose2d(width, width, 2, 2, bias=False),
                                               nn.BatchNorm2d(width), nn.ReLU()) for _ in range(3))
        self.laterals = nn.ModuleList(conv_bn_act(c, width, 1, act=nn.ReLU) for c in (96, 32, 24))
        self.fuse = conv_bn_act(width, width, 3, act=nn.ReLU)
        self.heads = nn.ModuleList(nn.Conv2d(width, n, 1) for n in (1, 2, 2, 10))

    def forward(self, x):
        taps = self.backbone(x)
        y = self.top(taps[-1])
        for up, lateral, tap in zip(self.ups, self.laterals, reversed(taps[:-1])):
            y = up(y) + lateral(tap)
        y = self.fuse(y)
        outs = [head(y) for head in self.heads]
        if self.release:
            outs[0] = torch.sigmoid(outs[0])
        return outs


def build(arch, seed=0):
    """A randomly initialised reference in eval mode, with non-trivial BatchNorm statistics and
    affines so that a swapped or misnamed BatchNorm tensor changes the output."""
    torch.manual_seed(seed)
    net = MobileNetV2() if arch == "mobilenet_v2" else ResNet(arch)
    randomize_bn(net, np.random.default_rng(seed))
    return net.eval()


def randomize_bn(net, rng):
    """Non-trivial BatchNorm affines and statistics (and step counters) for every BN of ``net``."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, c).astype(np.float32)))
                m.bias.copy_(torch.from_numpy(rng.normal(0, 0.2, c).astype(np.float32)))
                m.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.2, c).astype(np.float32)))
                m.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, c).astype(np.float32)))
                m.num_batches_tracked.fill_(int(rng.integers(1, 1000)))


class ModulatedDeformConv(nn.Module):
    """DCNv2 3x3 in plain torch ops: a conv predicts [o1 | o2 | mask logits] (3*9 channels); o1 and o2
    together are (dy, dx) per kernel tap, tap-major; each tap samples the input bilinearly (zero outside)
    at its shifted position, scaled by sigmoid(mask), and the samples are summed with the weights."""

    def __init__(self, cin, cout):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3) / np.sqrt(cin * 9))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.conv_offset_mask = nn.Conv2d(cin, 27, 3, 1, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        om = self.conv_offset_mask(x)
        offset, mask = om[:, :18], torch.sigmoid(om[:, 18:])
        ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
        taps = []
        for t in range(9):
            ky, kx = divmod(t, 3)
            py = ys - 1 + ky + offset[:, 2 * t]
            px = xs - 1 + kx + offset[:, 2 * t + 1]
            grid = torch.stack([2 * px / (w - 1) - 1, 2 * py / (h - 1) - 1], -1)
            sampled = nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            taps.append(sampled * mask[:, t:t + 1])
        cols = torch.stack(taps, 2)  # (n, c, 9, h, w)
        out = torch.einsum("nckhw,ock->nohw", cols, self.weight.reshape(self.weight.shape[0], c, 9))
        return out + self.bias[None, :, None, None]


class CenterNetResDCN(nn.Module):
    """CenterNet's ``resdcn`` ctdet model with its module names: ResNet, deconv_layers (DCN 3x3, BN,
    ReLU, 4x4 stride-2 transposed conv, BN, ReLU; x3 to 256/128/64 channels) and hm/wh/reg heads."""

    def __init__(self, arch, num_classes, head_conv=64, use_dcn=True):
        super().__init__()
        self.resnet = ResNet(arch)
        cin, layers = self.resnet.fc.in_features, []
        for cout in (256, 128, 64):
            conv = ModulatedDeformConv(cin, cout) if use_dcn else nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
            layers += [conv, nn.BatchNorm2d(cout), nn.ReLU(),
                       nn.ConvTranspose2d(cout, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.deconv_layers = nn.Sequential(*layers)
        for name, n in (("hm", num_classes), ("wh", 2), ("reg", 2)):
            setattr(self, name, nn.Sequential(nn.Conv2d(64, head_conv, 3, 1, 1), nn.ReLU(), nn.Conv2d(head_conv, n, 1)))

    def state_dict_like_ctdet(self):
        """Keys as ctdet saves them: ResNet tensors at the top level, no ``resnet.`` prefix."""
        return {k[len("resnet."):] if k.startswith("resnet.") else k: v for k, v in self.state_dict().items()}

    def forward(self, x):
        y = self.deconv_layers(self.resnet(x))
        return [self.hm(y), self.wh(y), self.reg(y)]


def build_ctdet(arch, num_classes, seed=0):
    """A random ctdet model in eval mode with BN statistics and offsets of a few pixels."""
    torch.manual_seed(seed)
    net = CenterNetResDCN(arch, num_classes)
    net.resnet = build(arch, seed)
    randomize_bn(net.deconv_layers, np.random.default_rng(seed + 1))
    with torch.no_grad():
        for m in net.deconv_layers.modules():
            if isinstance(m, ModulatedDeformConv):
                w = m.conv_offset_mask.weight
                w.copy_(torch.randn(w.shape) * 2.0 / np.sqrt(w.shape[1] * 9))
                m.conv_offset_mask.bias.copy_(torch.randn(27) * 1.5)
                m.bias.copy_(torch.randn(m.bias.shape) * 0.1)
    return net.eval()
