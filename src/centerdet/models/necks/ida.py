"""Skip-connected upsampling neck (CenterFace's ``MobileNetUp`` + ``IDAUp`` topology).

Starting from the deepest level, each step doubles the resolution with a 2×2/2 transposed conv and
adds a 1×1 projection of the next shallower backbone level (both BN-ReLU'd before the sum); a
3×3 conv-BN-ReLU finishes at the shallowest level's stride. Unlike CenterNet's plain deconv neck,
the stride-4 features see the local detail of the shallow levels directly, which is what small
objects and landmark positions need.

With ``use_dcn`` the finishing 3×3 conv is a modulated deformable one, as the node convs of
CenterNet's DLA-34-DCN are: the stride-4 features gather from where the content is.

On centerdet's CPU kernels the neck keeps its maps channel-blocked (cpu_ops.layout_block_for its
width) up to the finishing conv, which writes plain NCHW for the heads (blocked at inference, see
write_blocked); it reads backbone levels in either layout.
"""
from mindspore import nn
from mindspore.common.initializer import HeNormal

from centerdet import cpu_ops
from centerdet.models.dcn import ModulatedDeformConv2d
from centerdet.models.layers import BatchNorm2d, Conv2d, Conv2dTranspose, to_plain


def _conv_bn_relu(cin, cout, k, eps=1e-3, momentum=0.9, deformable=False, dcn_train_sampling=False, block=0):
    if deformable:
        conv = ModulatedDeformConv2d(cin, cout, k, padding=k // 2, train_sampling=dcn_train_sampling)
    else:
        conv = Conv2d(cin, cout, k, pad_mode="pad", padding=k // 2, has_bias=False,
                      weight_init=HeNormal(mode="fan_out", nonlinearity="relu"), out_block=block)
    return nn.SequentialCell([conv, BatchNorm2d(cout, eps=eps, momentum=momentum, activation="relu")])


class IdaUpNeck(nn.Cell):
    """``in_channels``: channels of the backbone levels, shallow to deep (each stride twice the last)."""

    def __init__(self, in_channels, width=64, use_dcn=False, dcn_train_sampling=False):
        super().__init__()
        in_channels = tuple(in_channels)
        if len(in_channels) < 2:
            raise ValueError(f"IdaUpNeck needs at least two backbone levels, got {in_channels}")
        self.layout_block = block = cpu_ops.layout_block_for([width])
        self.top = _conv_bn_relu(in_channels[-1], width, 1, block=block)
        ups, lats = [], []
        for c in reversed(in_channels[:-1]):
            ups.append(nn.SequentialCell([
                Conv2dTranspose(width, width, 2, stride=2, has_bias=False, block=block),
                BatchNorm2d(width, eps=1e-3, momentum=0.9, activation="relu")]))
            lats.append(_conv_bn_relu(c, width, 1, block=block))
        self.ups = nn.CellList(ups)
        self.lats = nn.CellList(lats)
        self.fuse = _conv_bn_relu(width, width, 3, eps=1e-5, momentum=0.99, deformable=use_dcn,
                                  dcn_train_sampling=dcn_train_sampling)
        self.num_levels = len(in_channels)
        self.out_channels = width
        self.plain_merge = bool(block) and use_dcn  # the deformable conv reads NCHW only

    fused = False  # inference: each sum in the pass that adds the up-conv's bias (models/fuse.py)

    def fuse_folded(self) -> bool:
        """Inference, once the BatchNorms are folded: relu(up-conv + bias) + lateral in one pass
        after each up-conv's kernel (Conv2dTranspose.forward_then_add); False where it cannot."""
        self.fused = all(isinstance(up[1], nn.Identity) and up[0].fused_activation == "relu" for up in self.ups)
        return self.fused

    def write_blocked(self, block) -> bool:
        """Inference: the finishing conv writes its output channel-blocked (CenterDetector.fuse_folded);
        False for the deformable one (plain NCHW only) or without ``block``."""
        return isinstance(self.fuse[0], Conv2d) and self.fuse[0].write_blocked(block)

    def merge(self, feats):
        """The upsampled sum at the shallowest level's stride, before the finishing conv, in the
        layout that conv reads."""
        t = self.top(feats[-1])
        for i in range(self.num_levels - 1):
            lateral = self.lats[i](feats[self.num_levels - 2 - i])
            if self.fused:
                t = self.ups[i][0].forward_then_add(t, lateral)
            else:
                t = self.ups[i](t) + lateral
        return to_plain(t) if self.plain_merge else t

    def construct(self, feats):
        return self.fuse(self.merge(feats))

    def to_onnx(self, g, feats):
        t = g.emit(self.top, feats[-1])
        for i in range(self.num_levels - 1):
            t = g.op("Add", [g.emit(self.ups[i], t), g.emit(self.lats[i], feats[self.num_levels - 2 - i])])
        return g.emit(self.fuse, t)
