"""Soft-NMS / NMS / IoU: hand-computed cases, Cython == numpy twin, and a plain-Python reference."""
import math

import numpy as np
import pytest

import centerdet.nms as nms_mod
from centerdet.errors import CenterDetError
from centerdet.nms import (HAVE_CYTHON, bbox_overlaps, bbox_overlaps_numpy, nms, nms_numpy,
                           soft_nms, soft_nms_numpy)

needs_cython = pytest.mark.skipif(not HAVE_CYTHON, reason="centerdet._nms not built")
BACKENDS = ["numpy", pytest.param("cython", marks=needs_cython)]

# [0,0,9,9] and [5,0,14,9]: areas 10*10 = 100 each; iw = 9-5+1 = 5, ih = 9-0+1 = 10,
# inter = 50, IoU = 50 / (100 + 100 - 50) = 1/3.
PAIR = np.array([[0, 0, 9, 9, 0.9], [5, 0, 14, 9, 0.8]], np.float32)
FAR = [200, 200, 220, 220, 0.4]


# ------------------------------------------------------------------- plain-Python references

def _f32(x):
    """Round to float32, as the kernels store scores in a float32 array after each decay."""
    return float(np.float32(x))


def _ref_iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1.0
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1.0
    if iw <= 0 or ih <= 0:
        return 0.0
    area_a = (a[2] - a[0] + 1.0) * (a[3] - a[1] + 1.0)
    area_b = (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0)
    return iw * ih / (area_a + area_b - iw * ih)


def ref_soft_nms(dets, sigma=0.5, Nt=0.3, threshold=0.001, method=0):
    """Soft-NMS written as straight loops over Python lists, straight from the description."""
    rows = [[float(v) for v in r] for r in np.asarray(dets, np.float32)]
    idx = list(range(len(rows)))
    n = len(rows)
    i = 0
    while i < n:
        best = i
        for j in range(i + 1, n):
            if rows[j][4] > rows[best][4]:
                best = j
        rows[i], rows[best] = rows[best], rows[i]
        idx[i], idx[best] = idx[best], idx[i]
        j = i + 1
        while j < n:
            ov = _ref_iou(rows[i], rows[j])
            if ov > 0:
                if method == 1:
                    weight = 1 - ov if ov > Nt else 1.0
                elif method == 2:
                    weight = math.exp(-(ov * ov) / sigma)
                else:
                    weight = 0.0 if ov > Nt else 1.0
                rows[j][4] = _f32(weight * rows[j][4])
                if rows[j][4] < threshold:
                    rows[j] = rows[n - 1]
                    idx[j] = idx[n - 1]
                    n -= 1
                    continue
            j += 1
        i += 1
    return np.array(rows[:n], np.float32).reshape(-1, 5), np.array(idx[:n], np.int64)


def ref_nms(dets, thresh):
    """Brute force: visit boxes best-first (ties by input order), keep unless a kept box overlaps."""
    rows = [[float(v) for v in r] for r in np.asarray(dets, np.float32)]
    order = sorted(range(len(rows)), key=lambda k: (-rows[k][4], k))
    keep = []
    for k in order:
        if all(_ref_iou(rows[m], rows[k]) < thresh for m in keep):
            keep.append(k)
    return np.array(keep, np.int64)


def clustered(n, seed, quantize=False):
    """Boxes jittered around a few centres, so most pairs overlap; optional tied scores/duplicates."""
    rng = np.random.default_rng(seed)
    k = max(1, n // 8)
    centres = rng.uniform(0, 300, size=(k, 2))
    c = centres[rng.integers(0, k, size=n)] + rng.normal(0, 6, size=(n, 2))
    wh = rng.uniform(8, 60, size=(n, 2))
    scores = rng.uniform(0, 1, size=n)
    if quantize:
        scores = np.round(scores, 1)
        c, wh = np.round(c), np.round(wh)
    dets = np.concatenate([c - wh / 2, c + wh / 2, scores[:, None]], axis=1).astype(np.float32)
    if quantize and n > 4:
        dets[n // 2:n // 2 + 3] = dets[:3]  # exact duplicates, equal scores
    return dets


def assert_same(a, b):
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0][:, :4], b[0][:, :4])
    np.testing.assert_allclose(a[0][:, 4], b[0][:, 4], rtol=0, atol=1e-6)
    assert a[0].dtype == np.float32 and a[1].dtype == np.int64


# ------------------------------------------------------------------------------ hand cases

@pytest.mark.parametrize("backend", BACKENDS)
def test_identical_boxes_hard(backend):
    dets = np.array([[0, 0, 9, 9, 0.7], [0, 0, 9, 9, 0.9]], np.float32)
    kept, idx = soft_nms(dets, method=0, backend=backend)
    assert idx.tolist() == [1]
    np.testing.assert_array_equal(kept, dets[1:])


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_and_gaussian_rescoring(backend):
    dets = np.vstack([PAIR, FAR]).astype(np.float32)
    # linear, IoU 1/3 > Nt 0.3: 0.8 * (1 - 1/3) = 0.5333...
    kept, idx = soft_nms(dets, Nt=0.3, method=1, backend=backend)
    assert idx.tolist() == [0, 1, 2]
    np.testing.assert_allclose(kept[:, 4], [0.9, 0.8 * 2 / 3, 0.4], atol=1e-6)
    # linear, IoU 1/3 <= Nt 0.5: untouched
    kept, _ = soft_nms(dets, Nt=0.5, method=1, backend=backend)
    np.testing.assert_allclose(kept[:, 4], [0.9, 0.8, 0.4], atol=1e-7)
    # gaussian: 0.8 * exp(-(1/3)^2 / 0.5) = 0.8 * exp(-2/9) = 0.64059...; far box untouched
    kept, _ = soft_nms(dets, sigma=0.5, method=2, backend=backend)
    np.testing.assert_allclose(kept[:, 4], [0.9, 0.8 * math.exp(-2 / 9), 0.4], atol=1e-6)
    np.testing.assert_allclose(kept[1, 4], 0.640590, atol=1e-6)
    np.testing.assert_array_equal(kept[:, :4], dets[:, :4])


@pytest.mark.parametrize("backend", BACKENDS)
def test_threshold_drops_rescored_boxes_only(backend):
    low_far = [500, 500, 510, 510, 0.0005]  # below threshold but never overlaps: CenterNet keeps it
    dets = np.vstack([PAIR, low_far]).astype(np.float32)
    kept, idx = soft_nms(dets, Nt=0.3, method=1, threshold=0.6, backend=backend)
    assert idx.tolist() == [0, 2]  # 0.5333 < 0.6 removed
    kept, idx = soft_nms(dets, Nt=0.3, method=1, threshold=0.5, backend=backend)
    assert idx.tolist() == [0, 1, 2]


@pytest.mark.parametrize("backend", BACKENDS)
def test_removed_slot_is_refilled_from_tail(backend):
    # Pivot A removes B (slot 1 <- E, the last row) and D; C and E tie at 0.5, so the slot
    # shuffle decides their order: E now sits before C and wins the tie -> [A, E, C].
    a = [0, 0, 9, 9]
    dets = np.array([a + [0.9], a + [0.8], [100, 0, 109, 9, 0.5], a + [0.6],
                     [0, 100, 9, 109, 0.5]], np.float32)
    kept, idx = soft_nms(dets, method=0, backend=backend)
    assert idx.tolist() == [0, 4, 2]
    assert ref_soft_nms(dets, method=0)[1].tolist() == [0, 4, 2]


@pytest.mark.parametrize("backend", BACKENDS)
def test_input_not_modified_and_empty(backend):
    dets = clustered(50, 0)
    before = dets.copy()
    soft_nms(dets, method=2, backend=backend)
    np.testing.assert_array_equal(dets, before)
    for empty in (np.zeros((0, 5), np.float64), []):
        kept, idx = soft_nms(empty, backend=backend)
        assert kept.shape == (0, 5) and kept.dtype == np.float32
        assert idx.shape == (0,) and idx.dtype == np.int64
        assert nms(empty, 0.5, backend=backend).shape == (0,)


# -------------------------------------------------------------------- backends vs references

PARAMS = [(0.5, 0.3, 0.001), (0.5, 0.5, 0.05), (0.2, 0.7, 0.3), (1.0, 0.1, 0.0)]


@needs_cython
@pytest.mark.parametrize("n", [0, 1, 2, 10, 100, 500])
@pytest.mark.parametrize("method", [0, 1, 2])
def test_cython_equals_numpy(n, method):
    for seed, (sigma, Nt, thr) in enumerate(PARAMS):
        for quantize in (False, True):
            dets = clustered(n, seed + 10 * n, quantize)
            assert_same(soft_nms(dets, sigma, Nt, thr, method, backend="cython"),
                        soft_nms_numpy(dets, sigma, Nt, thr, method))


@pytest.mark.parametrize("n", [0, 1, 2, 10, 60, 150])
@pytest.mark.parametrize("method", [0, 1, 2])
def test_backends_equal_plain_python(n, method):
    for seed, (sigma, Nt, thr) in enumerate(PARAMS):
        dets = clustered(n, 1000 + seed + n, quantize=seed % 2 == 1)
        want = ref_soft_nms(dets, sigma, Nt, thr, method)
        assert_same(soft_nms(dets, sigma, Nt, thr, method, backend="numpy"), want)
        if HAVE_CYTHON:
            assert_same(soft_nms(dets, sigma, Nt, thr, method, backend="cython"), want)


def test_hard_nms_hand_case():
    dets = np.vstack([PAIR, FAR, [0, 0, 9, 9, 0.95]]).astype(np.float32)
    for fn in (nms_numpy, lambda d, t: nms(d, t, backend="auto")):
        assert fn(dets, 0.5).tolist() == [3, 1, 2]  # 3 kills its duplicate 0; IoU(3,1)=1/3 < 0.5
        assert fn(dets, 1 / 3).tolist() == [3, 2]  # IoU >= thresh suppresses
        assert fn(dets, 0.34).tolist() == [3, 1, 2]


@pytest.mark.parametrize("n", [0, 1, 2, 10, 100, 300])
def test_hard_nms_backends_equal_bruteforce(n):
    for seed, thresh in enumerate([0.3, 0.5, 0.7]):
        dets = clustered(n, 7 * n + seed, quantize=seed == 1)
        want = ref_nms(dets, thresh)
        got = nms_numpy(dets, thresh)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
        if HAVE_CYTHON:
            np.testing.assert_array_equal(nms(dets, thresh, backend="cython"), want)


# ------------------------------------------------------------------------------ overlaps

@pytest.mark.parametrize("backend", BACKENDS)
def test_bbox_overlaps_hand(backend):
    boxes = [[0, 0, 9, 9], [5, 0, 14, 9], [10, 0, 19, 9]]
    query = [[0, 0, 9, 9], [0, 0, 4, 9]]
    got = bbox_overlaps(boxes, query, backend=backend)
    # [0,0,4,9] is 5x10 = 50, inside [0,0,9,9]: 50/100. It touches [5,0,14,9] at no pixel
    # (iw = 4-5+1 = 0). [10,0,19,9] vs [0,0,9,9]: iw = 0 too.
    want = [[1.0, 0.5], [1 / 3, 0.0], [0.0, 0.0]]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert got.dtype == np.float64 and got.shape == (3, 2)
    assert bbox_overlaps(np.zeros((0, 4)), query, backend=backend).shape == (0, 2)


@needs_cython
def test_bbox_overlaps_cython_equals_numpy():
    for seed, (n, k) in enumerate([(1, 1), (50, 7), (300, 40), (0, 3), (5, 0)]):
        b = clustered(n, seed)[:, :4]
        q = clustered(k, seed + 100)[:, :4]
        np.testing.assert_array_equal(bbox_overlaps(b, q, backend="cython"), bbox_overlaps_numpy(b, q))


# ------------------------------------------------------------------------------ validation

@pytest.mark.parametrize("bad", [np.zeros((3, 4)), np.zeros(5), np.zeros((2, 5, 1)),
                                 np.array([["a"] * 5]), np.array([[0, 0, 1, 1, np.nan]]),
                                 np.array([[0, np.inf, 1, 1, 0.5]])])
def test_bad_dets_raise(bad):
    for backend in ("numpy", "auto"):
        with pytest.raises(CenterDetError):
            soft_nms(bad, backend=backend)
        with pytest.raises(CenterDetError):
            nms(bad, 0.5, backend=backend)


def test_nan_message_names_problem():
    with pytest.raises(CenterDetError, match="NaN"):
        soft_nms(np.array([[0, 0, 1, 1, 0.5], [0, 0, 1, 1, np.nan]]))


def test_bad_arguments_raise():
    with pytest.raises(CenterDetError, match="method"):
        soft_nms(PAIR, method=3)
    with pytest.raises(CenterDetError, match="sigma"):
        soft_nms(PAIR, sigma=0.0, method=2)
    with pytest.raises(CenterDetError, match="backend"):
        soft_nms(PAIR, backend="cuda")
    with pytest.raises(CenterDetError):
        bbox_overlaps([[0, 0, 1, 1, 1]], [[0, 0, 1, 1]])


def test_missing_extension(monkeypatch):
    monkeypatch.setattr(nms_mod, "HAVE_CYTHON", False)
    monkeypatch.setattr(nms_mod, "_nms", None)
    with pytest.raises(CenterDetError, match=r"pip install -e \."):
        soft_nms(PAIR, backend="cython")
    assert soft_nms(PAIR, method=1, backend="auto")[1].tolist() == [0, 1]  # falls back to numpy
    assert nms(PAIR, 0.5).tolist() == [0, 1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_nms_by_class_equals_a_loop_over_labels(backend):
    from centerdet.nms import soft_nms_by_class

    rng = np.random.default_rng(21)
    for trial in range(40):
        n = int(rng.integers(0, 60))
        dets = clustered(n, trial) if n else np.zeros((0, 5), np.float32)
        labels = rng.integers(0, 6, n).astype(np.float32)
        method = trial % 3
        got, got_idx = soft_nms_by_class(dets, labels, 0.5, 0.4, 0.05, method, backend=backend)
        want, want_idx = [np.zeros((0, 5), np.float32)], [np.zeros(0, np.int64)]
        for c in np.unique(labels):
            where = np.flatnonzero(labels == c)
            rows, idx = soft_nms(dets[where], 0.5, 0.4, 0.05, method, backend=backend)
            want.append(rows)
            want_idx.append(where[idx])
        assert np.array_equal(got, np.concatenate(want)) and np.array_equal(got_idx, np.concatenate(want_idx))
    with pytest.raises(CenterDetError, match="labels"):
        soft_nms_by_class(np.ones((3, 5), np.float32), [0, 1], backend=backend)
