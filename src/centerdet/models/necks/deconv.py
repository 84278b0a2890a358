"""CenterNet's upsampling necks, the cells in one SequentialCell ``deconv_layers`` whose indices
match the checkpoints of the code each comes from:

- ``DeconvNeck``: three × [3×3 (deformable) conv → BN → ReLU → 4×4/2 up-conv → BN → ReLU], as
  CenterNet's ``resdcn`` models (conv at 0/6/12, BN 1/7/13, up-conv 3/9/15, BN 4/10/16);
- ``UpconvNeck``: three × [4×4/2 up-conv → BN → ReLU], CenterNet's plain ``msra_resnet`` upsampling,
  which the MindSpore model zoo's CenterNet-R50 uses (up-conv at 0/3/6, BN 1/4/7).
"""
import numpy as np
from mindspore import Tensor, nn

from centerdet.models.layers import BatchNorm2d, Conv2d, Conv2dTranspose
from centerdet.models.dcn import ModulatedDeformConv2d


def bilinear_kernel(size):
    """1-D → 2-D bilinear interpolation kernel of the given size (size 4 → [.25 .75 .75 .25]²)."""
    f = np.ceil(size / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    w1d = 1 - np.abs(np.arange(size) / f - c)
    return np.outer(w1d, w1d).astype(np.float32)


def bilinear_upconv(channels, kernel=4):
    """Transposed conv initialised as a per-channel bilinear ×2 upsampler.

    CenterNet writes the kernel into weight[:, 0] only (every input to output channel 0) and keeps
    random values elsewhere; we use the clean per-channel version, which is the upsampler the
    paper describes.
    """
    up = Conv2dTranspose(channels, channels, kernel, stride=2, pad_mode="pad", padding=1, has_bias=False)
    w = np.zeros(up.weight.shape, np.float32)
    k = bilinear_kernel(kernel)
    for c in range(channels):
        w[c, c] = k
    up.weight.set_data(Tensor(w))
    return up


def write_last_blocked(layers, block) -> bool:
    """Inference: the last up-conv of ``layers`` writes its output channel-blocked (CenterDetector.fuse_folded)."""
    ups = [c for c in layers if isinstance(c, Conv2dTranspose)]
    return bool(ups) and ups[-1].write_blocked(block)


class DeconvNeck(nn.Cell):
    def __init__(self, in_channels, channels=(256, 128, 64), use_dcn=True, dcn_train_sampling=False):
        super().__init__()
        cells = []
        cin = in_channels
        for c in channels:
            if use_dcn:
                conv = ModulatedDeformConv2d(cin, c, 3, padding=1, train_sampling=dcn_train_sampling)
            else:
                conv = Conv2d(cin, c, 3, pad_mode="pad", padding=1, has_bias=False)
            # ReLUs inside the BN cells; the Identity cells hold their places, so the parameters
            # keep the reference layout's names (deconv_layers.<6i + 0, 1, 3, 4>).
            cells += [conv, BatchNorm2d(c, momentum=0.9, activation="relu"), nn.Identity(),
                      bilinear_upconv(c), BatchNorm2d(c, momentum=0.9, activation="relu"), nn.Identity()]
            cin = c
        self.deconv_layers = nn.SequentialCell(cells)
        self.out_channels = cin

    def construct(self, x):
        return self.deconv_layers(x)

    def write_blocked(self, block) -> bool:
        return write_last_blocked(self.deconv_layers, block)

    def to_onnx(self, g, x):
        return g.emit(self.deconv_layers, x)


class UpconvNeck(nn.Cell):
    def __init__(self, in_channels, channels=(256, 128, 64)):
        super().__init__()
        cells, cin = [], in_channels
        for c in channels:
            # A bilinear start where the up-conv keeps the width; MindSpore's default init otherwise.
            up = bilinear_upconv(c) if cin == c else Conv2dTranspose(cin, c, 4, stride=2, pad_mode="pad", padding=1,
                                                                     has_bias=False)
            cells += [up, BatchNorm2d(c, momentum=0.9, activation="relu"), nn.Identity()]
            cin = c
        self.deconv_layers = nn.SequentialCell(cells)
        self.out_channels = cin

    def construct(self, x):
        return self.deconv_layers(x)

    def write_blocked(self, block) -> bool:
        return write_last_blocked(self.deconv_layers, block)

    def to_onnx(self, g, x):
        return g.emit(self.deconv_layers, x)
