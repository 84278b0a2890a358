"""CenterFace augmentation (centerface.md §3): DAS, crop, flip, and the full sample on known affines."""
import math

import numpy as np
import pytest

from refs import face_train_sample

import centerdet  # noqa: F401  (sets the oneDNN env var before anything imports mindspore)
from centerdet.config import COCO_EIG_VAL, COCO_EIG_VEC
from centerdet.data.transforms import DAS_ANCHORS, data_anchor_sampling, flip_boxes, flip_points, random_crop
from centerdet.tasks.centerface import LANDMARK_FLIP


def flip_faces(boxes, landmarks, visible, width):
    return (flip_boxes(boxes, width), *flip_points(landmarks, visible, width, LANDMARK_FLIP))


def random_face_crop(rng, height, width, crop_scales):
    return random_crop(rng, height, width, crop_scales, (0.1, 0.2, 0.25))


NO_AUG = {"anchor_sampling": False, "rand_crop": False, "crop_scales": [0.6], "scale": 0.0, "shift": 0.0,
          "flip_prop": 0.0, "color_aug": False, "eig_val": COCO_EIG_VAL, "eig_vec": COCO_EIG_VEC,
          "min_landmark_area": 8.0}


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_landmark_flip_swaps_pairs():
    assert LANDMARK_FLIP == (1, 0, 2, 4, 3)


def test_flip_twice_is_identity_and_swaps_left_right():
    boxes = np.array([[5.0, 10.0, 40.0, 50.0], [60.5, 2.0, 70.25, 12.0]], np.float32)
    lms = np.array([[(10, 20), (30, 21), (20, 30), (12, 40), (28, 41)],
                    [(62, 4), (68, 4), (65, 7), (63, 10), (67, 10)]], np.float32)
    vis = np.array([[True, False, True, True, False], [True] * 5])
    fb, fl, fv = flip_faces(boxes, lms, vis, 100)
    np.testing.assert_allclose(fb[0], [59, 10, 94, 50])
    # the left eye (slot 0) still has the smaller x after flip + reorder: 99 - 30 = 69 < 99 - 10 = 89
    np.testing.assert_allclose(fl[0, 0], [69, 21])
    np.testing.assert_allclose(fl[0, 1], [89, 20])
    np.testing.assert_allclose(fl[0, 3], [71, 41])
    assert fl[0, 0, 0] < fl[0, 1, 0] and fl[1, 0, 0] < fl[1, 1, 0] and fl[0, 3, 0] < fl[0, 4, 0]
    np.testing.assert_array_equal(fv[0], [False, True, True, False, True])
    bb, ll, vv = flip_faces(fb, fl, fv, 100)
    np.testing.assert_allclose(bb, boxes)
    np.testing.assert_allclose(ll, lms)
    np.testing.assert_array_equal(vv, vis)
    assert not np.shares_memory(fl, lms)


def test_das_face_lands_near_an_allowed_anchor():
    anchors = np.array(DAS_ANCHORS, np.float64)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        h, w = int(rng.integers(40, 200)), int(rng.integers(40, 200))
        x1, y1 = rng.uniform(0, w / 2), rng.uniform(0, h / 2)
        box = np.array([[x1, y1, x1 + rng.uniform(2, w / 2), y1 + rng.uniform(2, h / 2)]], np.float32)
        lms = np.tile(box[:, None, :2], (1, 5, 1)) + 1
        img, b2, l2, ratio = data_anchor_sampling(rng, _image(h, w), box, lms)
        side = math.sqrt((box[0, 2] - box[0, 0] + 1) * (box[0, 3] - box[0, 1] + 1))
        k = int(np.argmin(np.abs(anchors - side)))
        allowed = anchors[:min(k + 1, 11)]
        assert np.any((side * ratio >= allowed / 2 - 1e-6) & (side * ratio <= allowed * 2 + 1e-6)), seed
        np.testing.assert_allclose(b2, box * ratio, rtol=1e-6)
        np.testing.assert_allclose(l2, lms * ratio, rtol=1e-6)
        assert img.shape == (max(1, int(h * ratio)), max(1, int(w * ratio)), 3)
        assert img.dtype == np.uint8


def test_das_pixel_cap_and_no_faces():
    box = np.array([[40, 40, 49, 49]], np.float32)  # side 10 -> anchor 16, ratio >= 0.8
    for seed in range(10):
        img, b2, _, ratio = data_anchor_sampling(np.random.default_rng(seed), _image(100, 100), box,
                                                 np.zeros((1, 5, 2), np.float32), max_pixels=50 * 50)
        assert 100 * 100 * ratio ** 2 <= 50 * 50 * (1 + 1e-9)
        assert img.shape[0] * img.shape[1] <= 50 * 50
        np.testing.assert_allclose(b2, box * ratio, rtol=1e-6)
    src = _image(30, 20)
    img, b2, l2, ratio = data_anchor_sampling(np.random.default_rng(0), src, np.zeros((0, 4), np.float32),
                                              np.zeros((0, 5, 2), np.float32))
    assert img is src and ratio == 1.0 and b2.shape == (0, 4) and l2.shape == (0, 5, 2)


def test_random_face_crop_ranges():
    scales = [0.6, 0.75, 0.9]
    for seed in range(50):
        rng = np.random.default_rng(seed)
        h, w = int(rng.integers(4, 300)), int(rng.integers(4, 300))
        if seed % 2:
            h = w  # square: s <= 0.9 * side, so the border (<= 0.25 s) is never halved
        c, s = random_face_crop(rng, h, w, scales)
        assert c.dtype == np.float32 and c.shape == (2,)
        assert any(abs(s - max(h, w) * k) < 1e-9 for k in scales)
        assert 0 <= c[0] < w and 0 <= c[1] < h
        if h == w:
            b = math.floor(0.1 * s)  # smallest border choice
            assert b <= c.min() and c.max() < w - b, seed


def test_identity_sample_is_a_pure_resize():
    # square 128 image, input 64, down 4 -> output 16: coordinates scale by 16 / 128 = 1 / 8
    boxes = np.array([[16, 24, 64, 80], [100, 4, 124, 28]], np.float32)
    lms = np.array([[(24, 40), (56, 40), (40, 56), (28, 72), (52, 72)],
                    [(104, 8), (120, 8), (112, 16), (106, 24), (118, 24)]], np.float32)
    vis = np.array([[True, True, True, False, True], [True] * 5])
    inp, ob, ol, ov, keep = face_train_sample(np.random.default_rng(0), _image(128, 128), boxes, lms, vis,
                                              NO_AUG, (64, 64), 4)
    assert inp.shape == (64, 64, 3) and inp.dtype == np.float32 and 0 <= inp.min() and inp.max() <= 1
    # the second box's x2 = 124 / 8 = 15.5 is clipped to the last output column, 15
    np.testing.assert_allclose(ob, [[2, 3, 8, 10], [12.5, 0.5, 15, 3.5]], atol=1e-4)
    np.testing.assert_allclose(ol, lms / 8, atol=1e-4)
    np.testing.assert_array_equal(ov, vis)
    assert keep.dtype == bool and keep.all() and ov.dtype == bool


def test_landmarks_outside_the_crop_become_invisible():
    # input (h 32, w 64) on a 128 square: scale 64/128, the crop keeps y in [32, 96).
    # Output (8, 16): x_out = x / 8, y_out = (y - 64) / 8 + 4 = y / 8 - 4.
    boxes = np.array([[16, 40, 64, 88]], np.float32)
    lms = np.array([[(30, 20), (50, 50), (40, 100), (-8, 60), (127.9, 95.9)]], np.float32)
    vis = np.ones((1, 5), bool)
    _, ob, ol, ov, keep = face_train_sample(np.random.default_rng(0), _image(128, 128), boxes, lms, vis,
                                            NO_AUG, (32, 64), 4)
    np.testing.assert_allclose(ob, [[2, 1, 8, 7]], atol=1e-4)
    np.testing.assert_allclose(ol[0], [(3.75, -1.5), (6.25, 2.25), (5, 8.5), (-1, 3.5), (15.9875, 7.9875)],
                               atol=1e-4)
    np.testing.assert_array_equal(ov[0], [False, True, False, False, True])
    assert keep.all()


@pytest.mark.parametrize("size, visible", [((2, 3), False), ((2, 4), False), ((3, 3), True)])
def test_tiny_faces_lose_landmarks_but_keep_box(size, visible):
    w, h = size  # area 6 and 8 (<= 8: hidden), 9 (shown)
    boxes = np.array([[40, 40, 40 + w, 40 + h]], np.float32)
    lms = np.full((1, 5, 2), 41.0, np.float32)
    _, ob, _, ov, keep = face_train_sample(np.random.default_rng(0), _image(128, 128), boxes, lms,
                                           np.ones((1, 5), bool), NO_AUG, (64, 64), 4)
    assert keep.all() and (ob[:, 2:] > ob[:, :2]).all()
    assert ov.all() if visible else not ov.any()


def test_landmark_area_is_measured_after_anchor_sampling():
    # a 2x3 face (area 6) is resized by DAS to >= 16 / (2 * sqrt(12)) = 2.3x -> area > 8: landmarks stay
    boxes = np.array([[30, 30, 32, 33]], np.float32)
    lms = np.full((1, 5, 2), 31.0, np.float32)
    aug = dict(NO_AUG, anchor_sampling=True)
    for seed in range(5):
        _, _, _, ov, keep = face_train_sample(np.random.default_rng(seed), _image(64, 64), boxes, lms,
                                              np.ones((1, 5), bool), aug, (64, 64), 4)
        assert keep.all() and ov.all()


def test_random_samples_stay_inside_the_output_map():
    aug = dict(NO_AUG, anchor_sampling=True, rand_crop=True, crop_scales=list(np.arange(0.6, 1.0, 0.05)),
               flip_prop=0.5, color_aug=True)
    out_h, out_w = 16, 24
    kept = shown = 0
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        h, w = int(rng.integers(24, 120)), int(rng.integers(24, 120))
        n = int(rng.integers(0, 6))
        xy = rng.uniform(-5, [w, h], (n, 2))
        wh = rng.uniform(1, [w / 2, h / 2], (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        lms = (xy[:, None] + rng.uniform(-0.2, 1.2, (n, 5, 2)) * wh[:, None]).astype(np.float32)
        vis = rng.random((n, 5)) < 0.8
        inp, ob, ol, ov, keep = face_train_sample(rng, _image(h, w, seed), boxes, lms, vis, aug,
                                                  (out_h * 4, out_w * 4), 4)
        assert inp.shape == (out_h * 4, out_w * 4, 3) and inp.dtype == np.float32
        assert ob.shape == (n, 4) and ol.shape == (n, 5, 2) and ov.shape == (n, 5) and keep.shape == (n,)
        assert ov.sum() <= vis.sum()
        p = ol[ov]
        assert ((p[:, 0] >= 0) & (p[:, 0] < out_w) & (p[:, 1] >= 0) & (p[:, 1] < out_h)).all(), seed
        b = ob[keep]
        assert ((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])).all(), seed
        assert (b[:, [0, 1]] >= 0).all() and (b[:, 2] <= out_w - 1).all() and (b[:, 3] <= out_h - 1).all(), seed
        kept += int(keep.sum())
        shown += int(ov.sum())
    assert kept > 100 and shown > 100  # the loop really exercises faces and landmarks


def test_training_sample_counts_dropped_faces(capsys):
    import cv2

    from centerdet.config import load_config
    from centerdet.data.pipeline import TrainSample

    cfg = load_config(None, {"input_res_train": "[64, 64]", "rand_crop": "false", "flip_prop": "0.0",
                             "color_aug": "false", "anchor_sampling": "false"}, model="centerface")
    sample = TrainSample(cfg, per_process_seed=False)
    sample.report_every = 2
    # one real face and one degenerate (zero width) face, which can never get a target; rows are
    # [x1, y1, x2, y2, label, crowd] + (x, y, visible) per landmark (hidden here)
    rows = np.zeros((2, 21), np.float32)
    rows[0, :4] = 20, 20, 44, 44
    rows[1, :4] = 30, 30, 30, 40
    rows[:, 6:].reshape(2, 5, 3)[..., :2] = 32
    image = np.frombuffer(cv2.imencode(".jpg", _image(64, 64))[1].tobytes(), np.uint8)
    out = sample(image, rows.reshape(-1))
    assert out[5].sum() == 1  # only the real face has a target slot
    assert capsys.readouterr().out == ""  # reports come every report_every samples
    for _ in range(3):
        sample(image, rows.reshape(-1))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "2 of 4 boxes dropped in 2 samples (zero size or outside the crop)",
        "4 of 8 boxes dropped in 4 samples (zero size or outside the crop)"]
