"""Training losses, as graph-mode cells: CenterNet focal heatmap loss and masked L1 regression."""
import mindspore as ms
from mindspore import nn, ops

from centerdet import cpu_ops


class FocalLoss(nn.Cell):
    """Penalty-reduced pixel-wise focal loss on a gaussian-splatted target (CornerNet/CenterNet).

    pos: −(1−p)^α log p at pixels where Y == 1; neg: −(1−Y)^β p^α log(1−p) elsewhere; summed over
    the batch and divided by the number of peaks (or by 1 when the batch has none). On centerdet's
    CPU kernels the sums and the gradient are each one pass (dependency/cpu_ops/focal.cc).
    """

    def __init__(self, alpha=2.0, beta=4.0, eps=1e-4):
        super().__init__()
        self.alpha, self.beta, self.eps = alpha, beta, eps
        self.fused = cpu_ops.enabled()
        if self.fused:
            self.sums, self.params = cpu_ops.focal_loss_op(alpha, beta, eps)

    def construct(self, logits, target):
        if self.fused:
            s = self.sums(logits, target, self.params)
            return -s[0] / ops.maximum(s[1], 1.0)
        p = ops.clamp(ops.sigmoid(logits), self.eps, 1.0 - self.eps)
        pos = ops.cast(target >= 1.0, ms.float32)
        neg = 1.0 - pos
        pos_loss = ops.log(p) * ops.pow(1.0 - p, self.alpha) * pos
        neg_loss = ops.log(1.0 - p) * ops.pow(p, self.alpha) * ops.pow(1.0 - target, self.beta) * neg
        num_pos = pos.sum()
        return -(pos_loss.sum() + neg_loss.sum()) / ops.maximum(num_pos, 1.0)


def gather_feat(feat, ind):
    """(B, C, H, W) map, (B, M) flat pixel indices → (B, M, C) values at those pixels."""
    b, c = feat.shape[0], feat.shape[1]
    flat = feat.reshape(b, c, -1).transpose(0, 2, 1)
    idx = ops.broadcast_to(ind.reshape(b, -1, 1), (b, ind.shape[1], c))
    return ops.gather_elements(flat, 1, idx)


class RegL1Loss(nn.Cell):
    """L1 between the map gathered at object centres and the per-object target, averaged over the
    masked coordinates (each object counts once per channel, as in CenterNet)."""

    def construct(self, pred_map, ind, mask, target):
        pred = gather_feat(pred_map, ind)
        m = ops.broadcast_to(ops.expand_dims(ops.cast(mask, ms.float32), 2), pred.shape)
        loss = ops.abs(pred * m - target * m).sum()
        return loss / (m.sum() + 1e-4)


class CenterNetLoss(nn.Cell):
    """Weighted sum hm·L_hm + wh·L_wh + off·L_off; also returns the three parts for logging."""

    def __init__(self, hm_weight=1.0, wh_weight=0.1, off_weight=1.0, use_reg=True):
        super().__init__()
        self.focal = FocalLoss()
        self.l1 = RegL1Loss()
        self.hm_weight, self.wh_weight, self.off_weight = hm_weight, wh_weight, off_weight
        self.use_reg = use_reg

    def construct(self, outputs, hm, wh, reg, ind, mask):
        hm_loss = self.focal(outputs[0], hm)
        wh_loss = self.l1(outputs[1], ind, mask, wh)
        off_loss = hm_loss * 0.0
        if self.use_reg:
            off_loss = self.l1(outputs[2], ind, mask, reg)
        total = self.hm_weight * hm_loss + self.wh_weight * wh_loss + self.off_weight * off_loss
        return total, ops.stack((hm_loss, wh_loss, off_loss))


class WeightedSmoothL1Loss(nn.Cell):
    """Smooth-L1 (β = 1) at object centres, each object weighted (CenterFace's size-dependent
    weights), summed over both channels and divided by the number of objects, as the model zoo does."""

    def construct(self, pred_map, ind, mask, weight, target):
        pred = gather_feat(pred_map, ind)
        w = ops.expand_dims(ops.cast(mask, ms.float32) * weight, 2)
        diff = ops.abs(pred - target)
        elem = ops.select(diff < 1.0, 0.5 * diff * diff, diff - 0.5)
        return (elem * w).sum() / (ops.cast(mask, ms.float32).sum() + 1e-4)


class MaskedL1Loss(nn.Cell):
    """L1 over the coordinates an element-wise mask selects, divided by how many there are
    (landmark points that are missing in the annotation or fell outside the crop count as 0)."""

    def construct(self, pred_map, ind, mask, target, elem_mask):
        pred = gather_feat(pred_map, ind)
        m = elem_mask * ops.expand_dims(ops.cast(mask, ms.float32), 2)
        return ops.abs(pred * m - target * m).sum() / (m.sum() + 1e-4)


class CenterFaceLoss(nn.Cell):
    """hm·L_hm + wh·L_wh + off·L_off + lm·L_lm (model zoo weights 1 / 0.1 / 1 / 0.1)."""

    def __init__(self, hm_weight=1.0, wh_weight=0.1, off_weight=1.0, lm_weight=0.1):
        super().__init__()
        self.focal = FocalLoss()
        self.box = WeightedSmoothL1Loss()
        self.lm = MaskedL1Loss()
        self.weights = (hm_weight, wh_weight, off_weight, lm_weight)

    def construct(self, outputs, hm, wh, reg, ind, mask, wh_weight, lm, lm_mask):
        hm_loss = self.focal(outputs[0], hm)
        wh_loss = self.box(outputs[1], ind, mask, wh_weight, wh)
        off_loss = self.box(outputs[2], ind, mask, wh_weight, reg)
        lm_loss = self.lm(outputs[3], ind, mask, lm, lm_mask)
        w = self.weights
        total = w[0] * hm_loss + w[1] * wh_loss + w[2] * off_loss + w[3] * lm_loss
        return total, ops.stack((hm_loss, wh_loss, off_loss, lm_loss))


LOSS_PARTS = {"centernet": ("hm", "wh", "off"), "centerface": ("hm", "wh", "off", "lm")}


def build_loss(cfg):
    if cfg.model == "centerface":
        return CenterFaceLoss(cfg.hm_weight, cfg.wh_weight, cfg.off_weight, cfg.lm_weight)
    return CenterNetLoss(cfg.hm_weight, cfg.wh_weight, cfg.off_weight, use_reg=cfg.reg_offset)
