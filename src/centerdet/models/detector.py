"""One detector cell for every task: backbone → neck → named heads, returning a tuple of head maps."""
from mindspore import nn


class CenterDetector(nn.Cell):
    """``heads`` is a list of (name, cell) in output order; each cell is an attribute of that name
    (so checkpoint tensors are ``<name>.<i>.weight``). Outputs are raw values, the heatmap as logits."""

    def __init__(self, backbone, neck, heads):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head_names = tuple(name for name, _ in heads)
        for name, cell in heads:
            if name in ("backbone", "neck", "head_names") or hasattr(self, name):
                raise ValueError(f"head name {name!r} is taken by the detector cell; rename the head")
            setattr(self, name, cell)

    def construct(self, x):
        feat = self.neck(self.backbone(x))
        outs = ()
        for name in self.head_names:
            outs = outs + (getattr(self, name)(feat),)
        return outs

    def to_onnx(self, g, x):
        feat = g.emit(self.neck, g.emit(self.backbone, x))
        return tuple(g.emit(getattr(self, name), feat) for name in self.head_names)
