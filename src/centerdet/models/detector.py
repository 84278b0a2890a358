"""One detector cell for every task: backbone → neck → named heads, returning a tuple of head maps."""
import numpy as np
from mindspore import Tensor, nn, ops

from centerdet import cpu_ops
from centerdet.models.layers import Conv2d


class CenterDetector(nn.Cell):
    """``heads`` is a list of (name, cell) in output order; each cell is an attribute of that name
    (so checkpoint tensors are ``<name>.<i>.weight``). Outputs are raw values, the heatmap as logits."""

    RESERVED = ("backbone", "neck", "head_names", "merged_head", "head_splits", "blocked_features")

    def __init__(self, backbone, neck, heads):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head_names = tuple(name for name, _ in heads)
        for name, cell in heads:
            if name in self.RESERVED or hasattr(self, name):
                raise ValueError(f"head name {name!r} is taken by the detector cell; rename the head")
            setattr(self, name, cell)

    merged = False  # inference: every head one 1×1 conv, run as one conv (fuse_folded)
    blocked_features = False  # inference: the neck hands the heads channel-blocked maps (fuse_folded)

    def fuse_folded(self) -> bool:
        """Inference: the features reach the heads channel-blocked, as are the maps inside the
        heads' towers (no reorder into and out of each head's kernels; only the heads' outputs
        are plain); and when every head is a single 1×1 conv (CenterFace's), one conv of all
        their output channels reads the features once instead of once per head, its output
        split back into the heads' maps. False when neither applies."""
        self.blocked_features = self._block_features()
        return self._merge_heads() or self.blocked_features

    def _block_features(self) -> bool:
        heads = [getattr(self, name) for name in self.head_names]
        cells = [c for head in heads for c in (head if isinstance(head, nn.SequentialCell) else [head])]
        if not all(isinstance(c, (nn.Identity, nn.ReLU)) or isinstance(c, Conv2d) and c.onednn for c in cells):
            return False
        write = getattr(self.neck, "write_blocked", None)
        if write is None or not write(cpu_ops.layout_block_for([self.neck.out_channels])):
            return False
        for head in heads:
            towers = [c for c in head if isinstance(c, Conv2d)][:-1] if isinstance(head, nn.SequentialCell) else []
            for conv in towers:
                conv.write_blocked(cpu_ops.layout_block_for([conv.out_channels]))
        return True

    def _merge_heads(self) -> bool:
        convs = [getattr(self, name) for name in self.head_names]
        convs = [c[0] if isinstance(c, nn.SequentialCell) and len(c) == 1 else c for c in convs]
        if not all(isinstance(c, Conv2d) and c.has_bias and tuple(c.kernel_size) == (1, 1)
                   and tuple(c.stride) == (1, 1) and c.group == 1 and not c.fused_activation for c in convs):
            return False
        merged = Conv2d(convs[0].in_channels, sum(c.out_channels for c in convs), 1, has_bias=True)
        merged.weight.set_data(Tensor(np.concatenate([c.weight.asnumpy() for c in convs])))
        merged.bias.set_data(Tensor(np.concatenate([c.bias.asnumpy() for c in convs])))
        self.merged_head = merged
        merged.update_parameters_name("merged_head.")
        self.head_splits = tuple(c.out_channels for c in convs)
        self.merged = True
        return True

    def construct(self, x):
        feat = self.neck(self.backbone(x))
        if self.merged:
            return ops.split(self.merged_head(feat), self.head_splits, axis=1)
        outs = ()
        for name in self.head_names:
            outs = outs + (getattr(self, name)(feat),)
        return outs

    def to_onnx(self, g, x):
        feat = g.emit(self.neck, g.emit(self.backbone, x))
        return tuple(g.emit(getattr(self, name), feat) for name in self.head_names)
