"""One detector cell for every model: backbone → neck → named heads, returning a tuple of head maps."""
from mindspore import nn

HEAD_ORDER = ("hm", "wh", "reg", "lm")


class CenterDetector(nn.Cell):
    """``heads`` maps names from HEAD_ORDER to cells; outputs come back in HEAD_ORDER (raw values,
    the heatmap as logits). Absent heads are None attributes, resolved when the graph compiles."""

    def __init__(self, backbone, neck, heads):
        super().__init__()
        unknown = set(heads) - set(HEAD_ORDER)
        if unknown:
            raise ValueError(f"unknown heads {sorted(unknown)}; known: {HEAD_ORDER}")
        self.backbone = backbone
        self.neck = neck
        self.head_names = tuple(n for n in HEAD_ORDER if n in heads)
        self.hm = heads.get("hm")
        self.wh = heads.get("wh")
        self.reg = heads.get("reg")
        self.lm = heads.get("lm")

    def construct(self, x):
        feat = self.neck(self.backbone(x))
        outs = (self.hm(feat),)
        if self.wh is not None:
            outs = outs + (self.wh(feat),)
        if self.reg is not None:
            outs = outs + (self.reg(feat),)
        if self.lm is not None:
            outs = outs + (self.lm(feat),)
        return outs
