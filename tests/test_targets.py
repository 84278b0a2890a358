"""encode_centernet against hand-computed targets and an independent numpy decode (centernet.md §4, §6)."""
import math

import numpy as np
import pytest
from refs import gaussian_map

import centerdet  # noqa: F401  (sets the oneDNN env var before anything imports mindspore)
from centerdet.tasks.centernet import encode_centernet


def _radius(h, w, o=0.7):
    """CenterNet's gaussian_radius, re-derived here: every case takes (b + sqrt(b^2 - 4ac)) / 2."""
    roots = []
    for a, b, c in ((1.0, h + w, w * h * (1 - o) / (1 + o)),
                    (4.0, 2 * (h + w), (1 - o) * w * h),
                    (4 * o, -2 * o * (h + w), (o - 1) * w * h)):
        roots.append((b + math.sqrt(b * b - 4 * a * c)) / 2)
    return min(roots)


def test_one_box_hand_computed():
    # box (10.3, 4.2) - (25.9, 13.6) on a 32 x 40 map (h x w), class 2:
    # bw = 15.6, bh = 9.4; centre (18.1, 8.9) -> trunc (18, 8); reg = (0.1, 0.9);
    # ind = 8 * 40 + 18 = 338; radius from (ceil 9.4, ceil 15.6) = (10, 16).
    boxes = np.array([[10.3, 4.2, 25.9, 13.6]], np.float32)
    t = encode_centernet(boxes, np.array([2]), (32, 40), num_classes=4, max_objs=5)
    hm, wh, reg, ind, mask = t["hm"], t["wh"], t["reg"], t["ind"], t["mask"]
    assert hm.shape == (4, 32, 40) and hm.dtype == np.float32
    assert wh.shape == (5, 2) and reg.shape == (5, 2) and ind.shape == (5,) and mask.shape == (5,)
    assert np.issubdtype(ind.dtype, np.integer)

    assert hm[2, 8, 18] == 1.0
    assert np.unravel_index(np.argmax(hm), hm.shape) == (2, 8, 18)
    assert np.count_nonzero(hm == 1.0) == 1
    assert not hm[[0, 1, 3]].any()
    r = int(_radius(10, 16))
    assert r == 3  # hand: r3 = (-36.4 + sqrt(36.4^2 + 4*2.8*48)) / 2 = 3.38 (r1, r2 larger)
    np.testing.assert_allclose(hm[2], gaussian_map(32, 40, 18, 8, r), rtol=1e-6, atol=1e-7)

    np.testing.assert_allclose(wh[0], [15.6, 9.4], atol=1e-5)
    np.testing.assert_allclose(reg[0], [0.1, 0.9], atol=1e-5)
    assert ind[0] == 338
    assert mask[0] == 1
    assert not wh[1:].any() and not reg[1:].any() and not ind[1:].any() and not mask[1:].any()


def test_radius_gives_2r_plus_1_pixels_on_centre_row():
    for (x1, y1, x2, y2) in [(20, 20, 44, 40), (30, 10, 33, 50), (5.5, 30.25, 60.75, 35.5)]:
        bh, bw = y2 - y1, x2 - x1
        r = max(0, int(_radius(math.ceil(bh), math.ceil(bw))))
        cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
        assert r <= cx < 64 - r and r <= cy < 64 - r  # not clipped
        hm = encode_centernet(np.array([[x1, y1, x2, y2]], np.float32), [0], (64, 64), 1, 4)["hm"][0]
        assert np.count_nonzero(hm[cy]) == 2 * r + 1
        assert np.count_nonzero(hm[:, cx]) == 2 * r + 1
        assert np.count_nonzero(hm) == (2 * r + 1) ** 2


def test_overlapping_same_class_boxes_take_elementwise_max():
    a = np.array([[10, 10, 30, 26]], np.float32)
    b = np.array([[16, 14, 40, 30]], np.float32)
    ha = encode_centernet(a, [1], (40, 48), 3, 4)["hm"]
    hb = encode_centernet(b, [1], (40, 48), 3, 4)["hm"]
    hab = encode_centernet(np.concatenate([a, b]), [1, 1], (40, 48), 3, 4)["hm"]
    assert (np.minimum(ha, hb)[1] > 0).any()  # they do overlap
    np.testing.assert_array_equal(hab, np.maximum(ha, hb))
    hba = encode_centernet(np.concatenate([b, a]), [1, 1], (40, 48), 3, 4)["hm"]
    np.testing.assert_array_equal(hba, hab)


def test_degenerate_box_leaves_hole_and_slot_index_is_annotation_index():
    boxes = np.array([[2, 2, 10, 12],
                      [20, 5, 20, 15],    # zero width -> skipped
                      [5, 30, 5.5, 30],   # zero height -> skipped
                      [30, 20, 40, 28]], np.float32)
    t = encode_centernet(boxes, [0, 1, 1, 2], (48, 48), 3, 6)
    np.testing.assert_array_equal(t["mask"], [1, 0, 0, 1, 0, 0])
    assert not t["wh"][1:3].any() and not t["reg"][1:3].any() and not t["ind"][1:3].any()
    np.testing.assert_allclose(t["wh"][3], [10, 8])
    assert t["ind"][3] == 24 * 48 + 35
    assert t["ind"][0] == 7 * 48 + 6
    assert not t["hm"][1].any()  # both class-1 boxes were degenerate


def test_more_boxes_than_max_objs_keeps_the_first():
    boxes = np.array([[4 + 10 * i, 4, 10 + 10 * i, 10] for i in range(5)], np.float32)
    t = encode_centernet(boxes, [0, 1, 2, 3, 4], (16, 64), 5, 3)
    np.testing.assert_array_equal(t["mask"], [1, 1, 1])
    assert t["hm"][:3].max(axis=(1, 2)).tolist() == [1.0, 1.0, 1.0]
    assert not t["hm"][3:].any()
    np.testing.assert_array_equal(t["ind"], [7 * 64 + 7, 7 * 64 + 17, 7 * 64 + 27])


def test_empty_boxes():
    t = encode_centernet(np.zeros((0, 4), np.float32), np.zeros((0,), np.int64), (8, 8), 2, 4)
    assert not t["hm"].any() and not t["mask"].any()


def _ref_decode(hm, wh_map, reg_map):
    """Peaks = pixels that equal their 3x3 neighbourhood max and are > 0.99; box from centre+reg, wh."""
    c, h, w = hm.shape
    padded = np.pad(hm, ((0, 0), (1, 1), (1, 1)), constant_values=-1)
    nmax = np.max([padded[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)
    peaks = np.argwhere((hm == nmax) & (hm > 0.99))
    dets = []
    for cls, y, x in peaks:
        xs, ys = x + reg_map[0, y, x], y + reg_map[1, y, x]
        bw, bh = wh_map[0, y, x], wh_map[1, y, x]
        dets.append((int(cls), xs - bw / 2, ys - bh / 2, xs + bw / 2, ys + bh / 2))
    return sorted(dets)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reference_decode_recovers_boxes(seed):
    rng = np.random.default_rng(seed)
    h, w, ncls = 48, 64, 3
    boxes, labels = [], []
    # one box per 16x16 cell of a 3x4 grid, so centres are far apart (> 2 px) and peaks unique
    for gy in range(3):
        for gx in range(4):
            if rng.random() < 0.3:
                continue
            bw, bh = rng.uniform(1.5, 14, size=2)
            cx, cy = 16 * gx + rng.uniform(2, 14), 16 * gy + rng.uniform(2, 14)
            x1, y1 = max(cx - bw / 2, 0.0), max(cy - bh / 2, 0.0)
            boxes.append([x1, y1, min(cx + bw / 2, w - 1.0), min(cy + bh / 2, h - 1.0)])
            labels.append(int(rng.integers(ncls)))
    boxes = np.array(boxes, np.float32)
    t = encode_centernet(boxes, labels, (h, w), ncls, 32)
    assert t["mask"].sum() == len(boxes)
    # a perfect network predicts wh / reg at each centre pixel
    wh_map = np.zeros((2, h, w), np.float32)
    reg_map = np.zeros((2, h, w), np.float32)
    for k in np.flatnonzero(t["mask"]):
        y, x = divmod(int(t["ind"][k]), w)
        wh_map[:, y, x] = t["wh"][k]
        reg_map[:, y, x] = t["reg"][k]
    dets = _ref_decode(t["hm"], wh_map, reg_map)
    expected = sorted((labels[i], *boxes[i].tolist()) for i in range(len(boxes)))
    assert len(dets) == len(expected)
    for d, e in zip(dets, expected):
        assert d[0] == e[0]
        np.testing.assert_allclose(d[1:], e[1:], atol=1e-5)
