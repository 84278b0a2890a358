"""Decoding: peak extraction and top-K by hand, and the encode → decode round trip through COCO AP."""
import types

import numpy as np
import pytest

from centerdet.data.coco import DetectionDataset
from centerdet.data.synthetic import generate_coco
from centerdet.tasks.centernet import encode_centernet
from centerdet.data.transforms import transform_boxes
from centerdet.decode import merge_detections, peak_nms, to_image_coords, topk
from centerdet.tasks.centernet import decode_centernet
from centerdet.evaluation.coco import detections_to_results, evaluate
from centerdet.geometry import get_affine_transform
from centerdet.inference import make_test_canvas


def test_peak_nms_keeps_local_maxima_only():
    heat = np.zeros((1, 5, 5), np.float32)
    heat[0, 1, 1] = 0.9
    heat[0, 1, 2] = 0.5   # beside a higher peak: suppressed
    heat[0, 3, 4] = 0.4   # isolated: kept
    out = peak_nms(heat)
    assert out[0, 1, 1] == pytest.approx(0.9) and out[0, 3, 4] == pytest.approx(0.4)
    assert out[0, 1, 2] == 0 and np.count_nonzero(out) == 2


def test_topk_over_classes_and_pixels():
    heat = np.zeros((3, 4, 5), np.float32)
    heat[2, 3, 1] = 0.8
    heat[0, 0, 4] = 0.6
    heat[1, 2, 2] = 0.7
    scores, cls, ys, xs = topk(heat, 3)
    np.testing.assert_allclose(scores, [0.8, 0.7, 0.6])
    assert cls.tolist() == [2, 1, 0] and ys.tolist() == [3, 2, 0] and xs.tolist() == [1, 2, 4]


def test_decode_one_peak_by_hand():
    heat = np.zeros((2, 8, 8), np.float32)
    heat[1, 5, 3] = 0.9
    wh = np.zeros((2, 8, 8), np.float32)
    wh[:, 5, 3] = [4.0, 2.0]
    reg = np.zeros((2, 8, 8), np.float32)
    reg[:, 5, 3] = [0.25, 0.5]
    det = decode_centernet(heat, wh, reg, k=1)[0]
    # centre (3.25, 5.5), half sizes (2, 1)
    np.testing.assert_allclose(det, [1.25, 4.5, 5.25, 6.5, 0.9, 1.0], rtol=1e-6)


def test_to_image_coords_inverts_the_crop():
    center, scale, out = np.array([100.0, 60.0], np.float32), 200.0, (50, 40)
    boxes = np.array([[10, 20, 90, 80], [150, 5, 190, 55]], np.float32)
    fwd = get_affine_transform(center, scale, 0, out)
    out_boxes = np.concatenate([boxes[:, :2] @ fwd[:, :2].T + fwd[:, 2], boxes[:, 2:] @ fwd[:, :2].T + fwd[:, 2]], 1)
    dets = np.concatenate([out_boxes, np.ones((2, 2), np.float32)], 1)
    back = to_image_coords(dets, center, scale, out, test_scale=1.0)
    np.testing.assert_allclose(back[:, :4], boxes, atol=1e-3)


def test_merge_keeps_top_per_image_and_sorts():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (300, 2)).astype(np.float32)
    dets = np.concatenate([xy, xy + 20, rng.uniform(0, 1, (300, 1)), rng.integers(0, 3, (300, 1))], 1)
    out = merge_detections([dets.astype(np.float32)], 3, use_nms=False, max_per_image=100)
    assert len(out) == 100 and np.all(np.diff(out[:, 4]) <= 0)
    assert out[-1, 4] == pytest.approx(np.sort(dets[:, 4])[-100])


def _dense(values, ind, mask, h, w):
    """Scatter per-object (M, 2) values to a (2, h, w) map, as the network would predict them."""
    out = np.zeros((2, h * w), np.float32)
    sel = mask > 0
    out[:, ind[sel]] = values[sel].T
    return out.reshape(2, h, w)


def test_encode_decode_round_trip_gives_perfect_coco_ap(tmp_path):
    """Ground truth encoded into targets and decoded from a perfect heatmap reaches AP = 1.0."""
    generate_coco(str(tmp_path), n_train=0, n_val=12, size=160, seed=3)
    data = DetectionDataset(str(tmp_path / "annotations" / "val.json"), str(tmp_path / "images" / "val"))
    cfg = types.SimpleNamespace(keep_res=True, test_pad=31, down_ratio=4, input_res_test=[160, 160])
    results = []
    for image in data.images:
        img = np.zeros((image.height, image.width, 3), np.uint8)
        _, meta = make_test_canvas(img, 1.0, cfg)
        ow, oh = meta["out_size"]
        trans = get_affine_transform(meta["center"], meta["scale"], 0, (ow, oh))
        boxes = transform_boxes(image.boxes, trans, ow, oh)
        t = encode_centernet(boxes, image.labels, (oh, ow), data.num_classes, max_objs=32)
        wh = _dense(t["wh"], t["ind"], t["mask"], oh, ow)
        reg = _dense(t["reg"], t["ind"], t["mask"], oh, ow)
        dets = decode_centernet(t["hm"], wh, reg, k=100)
        dets = to_image_coords(dets, meta["center"], meta["scale"], (ow, oh))
        dets = merge_detections([dets], data.num_classes, use_nms=True)
        results += detections_to_results(image.id, dets, data.cat_ids)
    metrics = evaluate(str(tmp_path / "annotations" / "val.json"), results, log=None)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AP50"] == pytest.approx(1.0)
    assert metrics["AR100"] == pytest.approx(1.0)


def test_max_filter_equals_scipy_and_topk_equals_a_full_sort():
    from scipy.ndimage import maximum_filter

    from centerdet.decode import max_filter, peak_nms, topk

    rng = np.random.default_rng(5)
    for shape, kernel in (((3, 17, 23), 3), ((2, 9, 8), 5), ((1, 1, 4), 3)):
        heat = rng.random(shape).astype(np.float32)
        heat[0, 0, :2] = 0.5  # a plateau: equal neighbours are both peaks
        want = maximum_filter(heat, size=(1, kernel, kernel), mode="constant", cval=-np.inf)
        assert np.array_equal(max_filter(heat, kernel), want)
        peaks = peak_nms(heat, kernel)
        for k in (1, 5, 40):  # fewer or more positive peaks than k
            scores, cls, ys, xs = topk(peaks, k)
            order = np.argsort(-peaks.reshape(-1), kind="stable")[:min(k, peaks.size)]
            assert np.array_equal(scores, peaks.reshape(-1)[order])
            assert np.array_equal(peaks[cls, ys, xs], scores)


def test_peak_topk_equals_topk_of_peak_nms():
    from centerdet.decode import peak_nms, peak_topk, topk

    rng = np.random.default_rng(6)
    # k 3 and 100: the bound from the first eighth is used; 50 on the small map: too few peaks
    # there, no bound; 2000: more than all peaks, the zero cells fill in.
    for shape, k in (((4, 20, 30), 3), ((4, 20, 30), 50), ((4, 20, 30), 2000), ((80, 48, 48), 100)):
        heat = rng.random(shape).astype(np.float32)
        fast, slow = peak_topk(heat, k), topk(peak_nms(heat), k)
        assert np.array_equal(fast[0], slow[0])
        if k <= 100:
            assert all(np.array_equal(a, b) for a, b in zip(fast[1:], slow[1:]))


def _peaks_by_definition(heat, k):
    """Every cell checked against its 3×3 window, then a stable sort: (scores, flat indices)."""
    c, h, w = heat.shape
    found = []
    for ci in range(c):
        for y in range(h):
            for x in range(w):
                v = heat[ci, y, x]
                window = heat[ci, max(y - 1, 0):y + 2, max(x - 1, 0):x + 2]
                if v > 0 and np.all(window <= v):  # a NaN anywhere in the window fails <=
                    found.append((-float(v), (ci * h + y) * w + x))
    found.sort()
    return np.array([-s for s, _ in found[:k]], np.float32), np.array([i for _, i in found[:k]], np.int64)


@pytest.mark.parametrize("backend", ["auto", "numpy"])
def test_peak_topk_kernel_and_twin_match_the_definition_with_ties_and_nan(backend):
    from centerdet import decode

    if backend == "auto" and decode._peaks is None:
        pytest.skip("centerdet._peaks was not compiled")
    rng = np.random.default_rng(11)
    checked = 0
    for trial in range(200):
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 16)), int(rng.integers(1, 16)))
        heat = np.round(rng.random(shape), 1).astype(np.float32)  # coarse values: plateaus, ties at the cut
        if trial % 3 == 0:
            heat[rng.random(shape) < 0.05] = np.nan
        if trial % 4 == 0:
            heat[rng.random(shape) < 0.5] = 0
        k = int(rng.integers(1, 12))
        want_scores, want_idx = _peaks_by_definition(heat, k)
        scores, cls, ys, xs = decode.peak_topk(heat, k, backend=backend)
        if len(want_idx) < k:  # too few positive peaks: both take the masked-map path
            continue
        checked += 1
        assert np.array_equal(scores, want_scores), trial
        assert np.array_equal((cls * shape[1] + ys) * shape[2] + xs, want_idx), trial
    assert checked > 100
