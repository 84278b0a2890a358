"""encode_centerface / face_box_weight against hand-computed targets (centerface.md §2)."""
import math

import numpy as np
import pytest
from refs import gaussian_map

import centerdet  # noqa: F401  (sets the oneDNN env var before anything imports mindspore)
from centerdet.tasks.centerface import encode_centerface, face_box_weight
from centerdet.geometry import gaussian_radius


def _face(box, points, vis):
    return (np.array([box], np.float32), np.array([points], np.float32).reshape(1, 5, 2),
            np.array([vis], bool))


def test_one_face_hand_computed():
    # box (10.5, 4.5)-(26.5, 12.5) on a 32 x 40 map: bw 16, bh 8, centre (18.5, 8.5) -> int (18, 8),
    # reg (0.5, 0.5), ind 8 * 40 + 18 = 338, wh = (log 4, log 2), area 128 -> weight 1.
    boxes, lms, vis = _face([10.5, 4.5, 26.5, 12.5],
                            [(14, 6), (22, 6), (18, 9), (15, 11), (21, 11)],
                            [True, True, True, True, False])
    t = encode_centerface(boxes, lms, vis, (32, 40), max_objs=4)
    assert t["hm"].shape == (1, 32, 40) and t["hm"].dtype == np.float32
    for key, shape in (("wh", (4, 2)), ("reg", (4, 2)), ("ind", (4,)), ("mask", (4,)),
                       ("wh_weight", (4,)), ("lm", (4, 10)), ("lm_mask", (4, 10))):
        assert t[key].shape == shape, key
    assert t["ind"].dtype == np.int32
    assert all(t[k].dtype == np.float32 for k in ("wh", "reg", "mask", "wh_weight", "lm", "lm_mask"))

    hm = t["hm"][0]
    assert hm[8, 18] == 1.0 and np.count_nonzero(hm == 1.0) == 1
    r = int(gaussian_radius(8, 16))
    np.testing.assert_allclose(hm, gaussian_map(32, 40, 18, 8, r), rtol=1e-6, atol=1e-7)

    np.testing.assert_allclose(t["wh"][0], [math.log(4), math.log(2)], rtol=1e-6)
    np.testing.assert_allclose(t["reg"][0], [0.5, 0.5])
    assert t["ind"][0] == 338 and t["mask"][0] == 1 and t["wh_weight"][0] == 1
    # (p - ct_int) / (bw, bh): (14-18)/16, (6-8)/8, (22-18)/16, ..., (15-18)/16, (11-8)/8; last point hidden.
    np.testing.assert_allclose(t["lm"][0], [-0.25, -0.25, 0.25, -0.25, 0, 0.125, -0.1875, 0.375, 0, 0])
    np.testing.assert_array_equal(t["lm_mask"][0], [1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    for key in ("wh", "reg", "ind", "mask", "wh_weight", "lm", "lm_mask"):
        assert not t[key][1:].any(), key


@pytest.mark.parametrize("area, weight", [(1e4, 1), (40.5, 1), (40, 5), (20.5, 5), (20, 10), (10.5, 10),
                                          (10, 15), (4.5, 15), (4, 0.1), (1, 0.1)])
def test_face_box_weight_brackets(area, weight):
    assert face_box_weight(area) == pytest.approx(weight)


def test_weight_uses_output_pixel_area_of_each_slot():
    # areas 2*2 = 4, 2*5 = 10, 4*5 = 20, 5*8 = 40, 6*7 = 42
    sizes = [(2, 2), (2, 5), (4, 5), (5, 8), (6, 7)]
    boxes = np.array([[10, 10, 10 + w, 10 + h] for w, h in sizes], np.float32)
    t = encode_centerface(boxes, np.zeros((5, 5, 2), np.float32), np.zeros((5, 5), bool), (32, 32), 6)
    np.testing.assert_allclose(t["wh_weight"], [0.1, 15, 10, 5, 1, 0], rtol=1e-6)
    np.testing.assert_allclose(t["wh"][:5], np.log(np.array(sizes, np.float64) / 4), rtol=1e-6)
    assert not t["lm_mask"].any() and not t["lm"].any()


def test_degenerate_face_leaves_slot_empty_and_max_objs_truncates():
    boxes = np.array([[2, 2, 10, 12], [20, 5, 20, 15], [30, 20, 40, 28], [1, 1, 5, 5]], np.float32)
    lms = np.full((4, 5, 2), 6.0, np.float32)
    vis = np.ones((4, 5), bool)
    t = encode_centerface(boxes, lms, vis, (48, 48), max_objs=3)
    np.testing.assert_array_equal(t["mask"], [1, 0, 1])
    for key in ("wh", "reg", "ind", "wh_weight", "lm", "lm_mask"):
        assert not t[key][1].any(), key
    assert t["lm_mask"][[0, 2]].all()
    # the fourth face is past max_objs: its centre (3, 3) has no peak
    assert t["hm"][0, 3, 3] < 1.0
    assert np.count_nonzero(t["hm"] == 1.0) == 2


def test_no_faces():
    t = encode_centerface(np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32),
                          np.zeros((0, 5), bool), (16, 16), 8)
    assert not any(v.any() for v in t.values())
