"""Plain-PyTorch peer of CenterFace for speed comparisons (benchmarks only; never imported at runtime).

The same layers as `centerdet.models` builds for `model: centerface`: MobileNetV2 width 1.0 tapped
at strides 4/8/16/32, a 1x1 projection of the stride-32 map, three 2x2 stride-2 up-convolutions each
summed with a 1x1 projection of the matching tap, a 3x3 fusion conv and four 1x1 heads. The training
step uses stand-in losses of the same cost class (dense BCE on the heatmap, gathered L1 on the
regression slots), Adam, and 2 threads like MindSpore here.
"""
import time

import torch
from torch import nn

# (expansion, channels, repeats, first stride): torchvision's MobileNetV2 settings
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
             (6, 320, 1, 1))
_TAPS = (3, 6, 13, 17)  # feature indices ending at strides 4, 8, 16, 32


def _conv_bn(cin, cout, k, stride=1, groups=1, act=nn.ReLU6):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)


class _Inverted(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [_conv_bn(cin, hidden, 1)]
        layers += [_conv_bn(hidden, hidden, 3, stride, hidden), _conv_bn(hidden, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class TorchCenterFace(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        features, cin = [_conv_bn(3, 32, 3, 2)], 32
        for expand, cout, repeats, stride in _SETTINGS:
            for i in range(repeats):
                features.append(_Inverted(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        self.features = nn.ModuleList(features)
        self.top = _conv_bn(320, width, 1, act=nn.ReLU)
        self.ups = nn.ModuleList(nn.Sequential(nn.ConvTranspose2d(width, width, 2, 2, bias=False),
                                               nn.BatchNorm2d(width), nn.ReLU()) for _ in range(3))
        self.laterals = nn.ModuleList(_conv_bn(c, width, 1, act=nn.ReLU) for c in (96, 32, 24))
        self.fuse = _conv_bn(width, width, 3, act=nn.ReLU)
        self.heads = nn.ModuleList(nn.Conv2d(width, n, 1) for n in (1, 2, 2, 10))

    def forward(self, x):
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                taps.append(x)
        y = self.top(taps[-1])
        for up, lateral, tap in zip(self.ups, self.laterals, reversed(taps[:-1])):
            y = up(y) + lateral(tap)
        y = self.fuse(y)
        return [head(y) for head in self.heads]


def _loss(outputs, hm, ind, targets):
    loss = nn.functional.binary_cross_entropy_with_logits(outputs[0], hm)
    for out, target in zip(outputs[1:], targets):
        flat = out.flatten(2).transpose(1, 2)  # (B, HW, C)
        picked = torch.gather(flat, 1, ind[..., None].expand(-1, -1, flat.shape[2]))
        loss = loss + (picked - target).abs().mean()
    return loss


def time_peer(res, batch, eval_res, steps=3, eval_images=5, max_objs=32, threads=2):
    """(train seconds per step, eval seconds per image) of the PyTorch peer on random inputs."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = TorchCenterFace()
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    out = res // 4
    x = torch.randn(batch, 3, res, res)
    hm = torch.rand(batch, 1, out, out) * 0.5
    ind = torch.randint(0, out * out, (batch, max_objs))
    targets = [torch.randn(batch, max_objs, n) for n in (2, 2, 10)]

    def step():
        opt.zero_grad()
        _loss(net(x), hm, ind, targets).backward()
        opt.step()

    step()  # warm-up
    t = time.time()
    for _ in range(steps):
        step()
    train_s = (time.time() - t) / steps
    net.eval()
    x = torch.randn(1, 3, eval_res, eval_res)
    with torch.no_grad():
        net(x)
        t = time.time()
        for _ in range(eval_images):
            net(x)
    return train_s, (time.time() - t) / eval_images
