"""Training losses, as graph-mode cells: the focal heatmap loss, the regression losses at object
centres, and their weighted sum over a task's heads."""
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


class DetectionLoss(nn.Cell):
    """Σ weight · loss over the heads of a task (HeadSpec): each head's loss cell takes its output
    and the target columns its spec names. Returns (total, the weighted terms' unweighted parts)
    in head order, for logging."""

    def __init__(self, specs, columns, cfg):
        super().__init__()
        columns = tuple(columns)
        self.terms = nn.CellList([spec.loss() for spec in specs])
        self.inputs = tuple(tuple(columns.index(c) for c in spec.loss_inputs) for spec in specs)
        self.weights = tuple(float(getattr(cfg, spec.weight_key)) for spec in specs)

    def construct(self, outputs, *targets):
        total = 0.0
        parts = ()
        for i, term in enumerate(self.terms):
            value = term(outputs[i], *[targets[j] for j in self.inputs[i]])
            parts = parts + (value,)
            total = total + self.weights[i] * value
        return total, ops.stack(parts)


def build_loss(cfg):
    """The training loss of a config's task: the weighted terms of its heads."""
    from centerdet import tasks

    return tasks.of(cfg).build_loss(cfg)
