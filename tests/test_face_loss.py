"""The CenterFace task's loss against the model zoo's dense-map formulation (centerface.md §4), in numpy.

Our targets are per-object slots (like CenterNet's); the reference writes them into dense H×W maps
with an ``ind`` map acting as the mask. The reference below rebuilds those dense maps from the slots
and applies §4 literally, so the two agree only if the slot losses are the same function.
"""
import numpy as np
import pytest

import centerdet  # noqa: F401
from mindspore import Tensor

from centerdet import tasks
from centerdet.config import load_config


def CenterFaceLoss(hm=1.0, wh=0.1, off=1.0, lm=0.1):  # noqa: N802  (the loss cell of the CenterFace task)
    keys = {"hm_weight": hm, "wh_weight": wh, "off_weight": off, "lm_weight": lm}
    return tasks.get("centerface").build_loss(load_config(None, {k: str(v) for k, v in keys.items()}, "centerface"))

from test_losses import ref_focal


def dense(values, ind, mask, h, w):
    """(M, C) slot values → (C, H, W) map holding each real slot's value at its centre."""
    out = np.zeros((values.shape[1], h, w), np.float64)
    for k in range(len(ind)):
        if mask[k]:
            y, x = divmod(int(ind[k]), w)
            out[:, y, x] = values[k]
    return out


def ref_centerface(outs, hm, wh, reg, ind, mask, wh_weight, lm, lm_mask, weights=(1, 0.1, 1, 0.1)):
    b, _, h, w = outs[0].shape
    box_sums, lm_sum, n_faces, n_points = [0.0, 0.0], 0.0, 0.0, 0.0
    for bi in range(b):
        ind_map = dense(np.ones((len(ind[bi]), 1)), ind[bi], mask[bi], h, w)        # (1, H, W)
        weight_map = dense(wh_weight[bi][:, None], ind[bi], mask[bi], h, w)
        n_faces += ind_map.sum()
        for j, (pred, gt) in enumerate(((outs[1][bi], wh[bi]), (outs[2][bi], reg[bi]))):
            d = np.abs(pred * ind_map - dense(gt, ind[bi], mask[bi], h, w) * ind_map)
            box_sums[j] += (np.where(d < 1, 0.5 * d * d, d - 0.5) * weight_map).sum()
        kps_mask = dense(lm_mask[bi], ind[bi], mask[bi], h, w)
        lm_sum += np.abs(outs[3][bi] * ind_map * kps_mask - dense(lm[bi], ind[bi], mask[bi], h, w) * kps_mask).sum()
        n_points += kps_mask.sum()
    parts = [ref_focal(outs[0], hm), box_sums[0] / (n_faces + 1e-4), box_sums[1] / (n_faces + 1e-4),
             lm_sum / (n_points + 1e-4)]
    return sum(wt * p for wt, p in zip(weights, parts)), parts


def _batch(rng, b=2, h=8, w=10, m=5, n_obj=(3, 2)):
    outs = [rng.normal(0, 2, (b, 1, h, w)), rng.normal(0, 1.5, (b, 2, h, w)), rng.normal(0, 0.7, (b, 2, h, w)),
            rng.normal(0, 0.5, (b, 10, h, w))]
    hm = (rng.uniform(0, 0.9, (b, 1, h, w)) ** 3)
    ind = np.zeros((b, m), np.int32)
    mask = np.zeros((b, m), np.float32)
    for bi in range(b):
        pix = rng.choice(h * w, n_obj[bi], replace=False)   # distinct centres, as dense maps require
        ind[bi, :n_obj[bi]] = pix
        mask[bi, :n_obj[bi]] = 1
        for p in pix:
            hm[bi, 0, p // w, p % w] = 1.0
    wh = rng.normal(1, 1, (b, m, 2))
    reg = rng.uniform(0, 1, (b, m, 2))
    wh_weight = rng.choice([0.1, 1, 5, 10, 15], (b, m))
    lm = rng.normal(0, 0.4, (b, m, 10))
    lm_mask = np.repeat(rng.uniform(size=(b, m, 5)) < 0.7, 2, axis=2).astype(np.float64)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return [f32(o) for o in outs], f32(hm), f32(wh), f32(reg), ind, mask, f32(wh_weight), f32(lm), f32(lm_mask)


@pytest.mark.parametrize("seed, n_obj", [(0, (3, 2)), (1, (5, 1)), (2, (0, 0))])
def test_centerface_loss_matches_dense_reference(mode, seed, n_obj):
    outs, *targets = _batch(np.random.default_rng(seed), n_obj=n_obj)
    want_total, want_parts = ref_centerface(outs, *targets)
    total, parts = CenterFaceLoss()(tuple(Tensor(o) for o in outs), *(Tensor(t) for t in targets))
    assert float(total.asnumpy()) == pytest.approx(want_total, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(parts.asnumpy(), want_parts, rtol=1e-5, atol=1e-6)


def test_centerface_loss_weights_and_small_diff_branch():
    outs, *targets = _batch(np.random.default_rng(5))
    # regression outputs equal to the targets ± 0.3 exercise the quadratic half of smooth-L1 only
    outs[1] = outs[1] * 0
    targets[1][:] = 0.3
    weights = (2.0, 0.5, 3.0, 0.25)
    want_total, want_parts = ref_centerface(outs, *targets, weights=weights)
    total, parts = CenterFaceLoss(*weights)(tuple(Tensor(o) for o in outs), *(Tensor(t) for t in targets))
    n = float(targets[4].sum())
    assert want_parts[1] == pytest.approx(0.5 * 0.09 * 2 * float((targets[5] * targets[4]).sum()) / (n + 1e-4))
    assert float(total.asnumpy()) == pytest.approx(want_total, rel=1e-5)
