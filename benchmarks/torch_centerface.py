"""Plain-PyTorch peer of CenterFace for speed comparisons (benchmarks only; never imported at runtime).

The same layers as `centerdet.models` builds for `model: centerface`: MobileNetV2 width 1.0 tapped
at strides 4/8/16/32, a 1x1 projection of the stride-32 map, three 2x2 stride-2 up-convolutions each
summed with a 1x1 projection of the matching tap, a 3x3 fusion conv and four 1x1 heads. The training
step uses stand-in losses of the same cost class (dense BCE on the heatmap, gathered L1 on the
regression slots), Adam, and 2 threads like MindSpore here.
"""
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from torch_nets import CenterFace  # noqa: E402  (the tests' plain-torch references: one home)


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
    net = CenterFace()
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
