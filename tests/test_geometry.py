"""Geometry and augmentation helpers checked against hand-computed numbers (centernet.md §2-4, §7).

Every expected value here is derived by hand in the comments or by a few lines of numpy written in
this file; nothing is taken from the implementation under test.
"""
import math

import numpy as np
import pytest
from refs import gaussian_map

import centerdet  # noqa: F401  (sets the oneDNN env var before anything imports mindspore)
from centerdet.data.transforms import (color_aug, flip_boxes, normalize, random_center_scale, random_crop,
                                       transform_boxes)
from centerdet.geometry import (affine_transform, draw_gaussian, gaussian_2d, gaussian_radius,
                                get_affine_transform, padded_size)


def _as3x3(t):
    return np.vstack([np.asarray(t, np.float64), [0.0, 0.0, 1.0]])


# ------------------------------------------------------------------------------ gaussian_radius

@pytest.mark.parametrize("hw, expected", [((10, 10), 2), ((20, 40), 7), ((5, 3), 1),
                                          ((64, 64), 17), ((100, 30), 12), ((1, 1), 0)])
def test_gaussian_radius_reference_vectors(hw, expected):
    assert int(gaussian_radius(*hw)) == expected


def test_gaussian_radius_hand_solved_10x10():
    # h = w = 10, o = 0.7; every case takes r = (b + sqrt(b^2 - 4ac)) / 2 (CenterNet's version):
    #  case 1: a=1,   b=20,  c=100*0.3/1.7 = 30/1.7   -> r1 = (20 + sqrt(400 - 120/1.7)) / 2 ≈ 19.075
    #  case 2: a=4,   b=40,  c=0.3*100 = 30   -> r2 = (40 + sqrt(1600 - 480)) / 2 ≈ 36.733
    #  case 3: a=2.8, b=-28, c=-0.3*100 = -30 -> r3 = (-28 + sqrt(784 + 336)) / 2 ≈ 2.733
    # min = r3 = sqrt(280) - 14.
    r1 = (20 + math.sqrt(400 - 120 / 1.7)) / 2
    r2 = (40 + math.sqrt(1120)) / 2
    r3 = math.sqrt(280) - 14
    assert r3 < r1 and r3 < r2
    assert gaussian_radius(10, 10) == pytest.approx(r3, rel=1e-12)
    assert gaussian_radius(10, 10, 0.7) == pytest.approx(2.7332005306815, rel=1e-12)


def test_gaussian_radius_symmetric_in_h_w():
    assert gaussian_radius(20, 40) == pytest.approx(gaussian_radius(40, 20), rel=1e-12)


# ------------------------------------------------------------------------ get_affine_transform

def test_affine_rot0_is_similarity_hand_matrix():
    # c = (100, 50), s = 200, out (64, 32): k = 64/200 = 0.32,
    # x' = 0.32 (x - 100) + 32 = 0.32 x,  y' = 0.32 (y - 50) + 16 = 0.32 y.
    t = get_affine_transform((100, 50), 200, 0, (64, 32))
    assert t.shape == (2, 3)
    np.testing.assert_allclose(t, [[0.32, 0, 0], [0, 0.32, 0]], atol=1e-6)
    # c = (120, 70), same s / out: x' = 0.32 x - 38.4 + 32 = 0.32 x - 6.4; y' = 0.32 y - 22.4 + 16 = 0.32 y - 6.4
    t = get_affine_transform((120, 70), 200, 0, (64, 32))
    np.testing.assert_allclose(t, [[0.32, 0, -6.4], [0, 0.32, -6.4]], atol=1e-5)
    # the centre lands in the middle of the output
    np.testing.assert_allclose(affine_transform(np.array([[120.0, 70.0]]), t), [[32, 16]], atol=1e-5)


def test_affine_generic_similarity_formula():
    c, s, ow, oh = (311.5, 127.25), 417.0, 128, 96
    k = ow / s
    t = get_affine_transform(c, s, 0, (ow, oh))
    expected = np.array([[k, 0, ow / 2 - k * c[0]], [0, k, oh / 2 - k * c[1]]])
    np.testing.assert_allclose(t, expected, rtol=1e-5, atol=1e-4)


def test_affine_inverse_composes_to_identity():
    c, s, out = (211.0, 97.0), 300.0, (128, 128)
    for rot in (0, 30, -90):
        fwd = get_affine_transform(c, s, rot, out)
        inv = get_affine_transform(c, s, rot, out, inv=True)
        np.testing.assert_allclose(_as3x3(fwd) @ _as3x3(inv), np.eye(3), atol=1e-5)
        np.testing.assert_allclose(_as3x3(inv) @ _as3x3(fwd), np.eye(3), atol=1e-5)
    # rot 0 inverse by hand: x = (x' - ow/2)/k + cx with k = 128/300
    inv = get_affine_transform(c, s, 0, out, inv=True)
    np.testing.assert_allclose(inv, [[300 / 128, 0, 211 - 64 * 300 / 128], [0, 300 / 128, 97 - 64 * 300 / 128]],
                               rtol=1e-5, atol=1e-4)


def test_affine_vector_scale_uses_width_only():
    c, out = (100.0, 80.0), (64, 64)
    ref = get_affine_transform(c, 200.0, 0, out)
    np.testing.assert_allclose(get_affine_transform(c, [200.0, 50.0], 0, out), ref, atol=1e-6)
    np.testing.assert_allclose(get_affine_transform(c, np.array([200.0, 999.0]), 0, out), ref, atol=1e-6)
    # isotropic: both diagonal entries are ow / sw
    np.testing.assert_allclose(np.diag(ref[:, :2]), [64 / 200, 64 / 200], atol=1e-7)


def test_affine_shift_moves_centre_by_s_times_shift():
    c, s, out = (100.0, 50.0), 200.0, (64, 32)
    shift = (0.1, -0.2)
    t = get_affine_transform(c, s, 0, out, shift=shift)
    # the new centre c + s*shift = (120, 10) maps to the output centre (32, 16)
    np.testing.assert_allclose(affine_transform(np.array([[120.0, 10.0]]), t), [[32, 16]], atol=1e-5)
    # and the linear part is unchanged (k = 0.32): x' = 0.32 (x - 120) + 32, y' = 0.32 (y - 10) + 16
    np.testing.assert_allclose(t, [[0.32, 0, -6.4], [0, 0.32, 12.8]], atol=1e-5)


def test_affine_rotation_90_by_hand():
    # rot = 90: src_dir = Rot90 (0, -s/2) = (s/2, 0) maps to dst_dir (0, -ow/2); the third points
    # (b + perp(a-b)) give (0, -s/2) -> (-ow/2, 0). So with k = ow/s the linear part sends
    # (1, 0) -> k (0, -1) and (0, 1) -> k (1, 0):  x' = k (y - cy) + ow/2,  y' = -k (x - cx) + oh/2.
    # c = (50, 40), s = 100, out (200, 100) -> k = 2: x' = 2y + 20, y' = -2x + 150.
    t = get_affine_transform((50, 40), 100, 90, (200, 100))
    np.testing.assert_allclose(t, [[0, 2, 20], [-2, 0, 150]], atol=1e-4)
    pts = np.array([[50.0, 40.0],   # centre -> output centre
                    [60.0, 40.0],   # 10 px right of the centre -> 20 px above the output centre
                    [50.0, 50.0],   # 10 px below -> 20 px right
                    [40.0, 30.0]])  # up-left: x' = 2*30 + 20 = 80, y' = -2*40 + 150 = 70
    np.testing.assert_allclose(affine_transform(pts, t),
                               [[100, 50], [100, 30], [120, 50], [80, 70]], atol=1e-4)


def test_affine_transform_on_n_by_2_arrays():
    t = np.array([[2.0, 0.5, 3.0], [-1.0, 4.0, 0.25]], np.float32)
    pts = np.array([[0.0, 0.0], [1.0, 2.0], [-3.5, 7.0]], np.float32)
    # by hand: (0,0) -> (3, 0.25); (1,2) -> (2+1+3, -1+8+0.25) = (6, 7.25);
    # (-3.5, 7) -> (-7+3.5+3, 3.5+28+0.25) = (-0.5, 31.75)
    out = affine_transform(pts, t)
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out, [[3, 0.25], [6, 7.25], [-0.5, 31.75]], atol=1e-6)
    np.testing.assert_allclose(affine_transform(np.array([1.0, 2.0]), t), [6, 7.25], atol=1e-6)


# -------------------------------------------------------------------- gaussian_2d / draw_gaussian

def test_gaussian_2d_peak_symmetry_and_values():
    d = 7  # radius 3, sigma = 7/6
    sigma = d / 6
    g = gaussian_2d(d, sigma)
    assert g.shape == (7, 7)
    assert g[3, 3] == 1.0
    assert g.max() == 1.0
    np.testing.assert_array_equal(g, g.T)
    np.testing.assert_array_equal(g, g[::-1, :])
    np.testing.assert_array_equal(g, g[:, ::-1])
    # offset (dy, dx) = (1, 2): exp(-(1 + 4) / (2 * 49/36)) = exp(-90/49)
    assert g[3 + 1, 3 + 2] == pytest.approx(math.exp(-90 / 49), rel=1e-12)
    # corner (3, 3): exp(-18 / (98/36)) = exp(-324/49)
    assert g[0, 0] == pytest.approx(math.exp(-324 / 49), rel=1e-12)


def test_draw_gaussian_interior_matches_reference():
    hm = np.zeros((20, 30), np.float32)
    draw_gaussian(hm, (12, 9), 4)
    np.testing.assert_allclose(hm, gaussian_map(20, 30, 12, 9, 4), rtol=1e-6, atol=1e-7)
    assert hm[9, 12] == 1.0
    assert np.count_nonzero(hm) == 9 * 9


def test_draw_gaussian_max_combination():
    hm = np.zeros((10, 10), np.float32)
    hm[5, 5] = 0.9   # larger than the gaussian tail at distance 2 → kept
    hm[4, 4] = 0.01  # smaller than the gaussian value there → replaced
    draw_gaussian(hm, (3, 5), 2)  # centre x=3, y=5; sigma = 5/6
    assert hm[5, 5] == pytest.approx(0.9)
    assert hm[5, 3] == 1.0
    assert hm[4, 4] == pytest.approx(math.exp(-2 / (2 * 25 / 36)), rel=1e-6)  # offset (1, 1)
    # a second, overlapping gaussian keeps the element-wise max of the two
    a = gaussian_map(10, 10, 3, 5, 2)
    b = gaussian_map(10, 10, 6, 6, 3)
    hm2 = np.zeros((10, 10), np.float32)
    draw_gaussian(hm2, (3, 5), 2)
    draw_gaussian(hm2, (6, 6), 3)
    np.testing.assert_allclose(hm2, np.maximum(a, b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("center", [(0, 0), (9, 7), (0, 7), (9, 0), (1, 6)])
def test_draw_gaussian_clipped_at_borders(center):
    h, w, r = 8, 10, 3
    hm = np.zeros((h, w), np.float32)
    draw_gaussian(hm, center, r)
    np.testing.assert_allclose(hm, gaussian_map(h, w, center[0], center[1], r), rtol=1e-6, atol=1e-7)
    assert hm[center[1], center[0]] == 1.0


def test_draw_gaussian_corner_counts():
    hm = np.zeros((8, 10), np.float32)
    draw_gaussian(hm, (0, 0), 3)   # only the bottom-right quarter (4 x 4) fits
    assert np.count_nonzero(hm) == 16
    hm = np.zeros((8, 10), np.float32)
    draw_gaussian(hm, (9, 7), 3)   # last pixel: only the top-left quarter fits
    assert np.count_nonzero(hm) == 16
    assert hm[7, 9] == 1.0 and hm[4, 6] > 0 and hm[3, 5] == 0


def test_draw_gaussian_radius_zero_sets_one_pixel():
    hm = np.zeros((5, 6), np.float32)
    draw_gaussian(hm, (4, 2), 0)
    expected = np.zeros((5, 6), np.float32)
    expected[2, 4] = 1.0
    np.testing.assert_array_equal(hm, expected)


# ------------------------------------------------------------------------------ padded_size

@pytest.mark.parametrize("size, pad, expected", [(480, 31, 512), (512, 31, 544), (427, 31, 448),
                                                 (480, 127, 512), (512, 127, 640)])
def test_padded_size(size, pad, expected):
    assert padded_size(size, pad) == expected


# ------------------------------------------------------------------------------ transforms

def test_flip_boxes_by_hand():
    boxes = np.array([[10, 20, 30, 40]], np.float32)
    # x1' = W - x2 - 1 = 100 - 30 - 1 = 69, x2' = W - x1 - 1 = 89
    np.testing.assert_array_equal(flip_boxes(boxes, 100), [[69, 20, 89, 40]])
    assert boxes[0, 0] == 10  # input untouched


def test_flip_twice_is_identity():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 120, size=(6, 2, 2))  # two (x, y) corners per box
    boxes = np.concatenate([xy.min(1), xy.max(1)], 1).astype(np.float32)  # x1 y1 x2 y2
    once = flip_boxes(boxes, 128)
    assert np.all(once[:, 2] >= once[:, 0])
    np.testing.assert_allclose(flip_boxes(once, 128), boxes, atol=1e-5)


def test_transform_boxes_maps_and_clips():
    # c = (100, 50), s = 200, out (64, 32): x' = 0.32 x, y' = 0.32 y (see the hand matrix above)
    t = get_affine_transform((100, 50), 200, 0, (64, 32))
    boxes = np.array([[25, 50, 100, 75],      # -> (8, 16, 32, 24): inside
                      [-50, -10, 150, 40],    # -> (-16, -3.2, 48, 12.8): x1, y1 clipped to 0
                      [150, 60, 400, 300]],   # -> (48, 19.2, 128, 96): x2 -> 63, y2 -> 31
                     np.float32)
    out = transform_boxes(boxes, t, 64, 32)
    assert out.dtype == np.float32 and out.shape == (3, 4)
    np.testing.assert_allclose(out, [[8, 16, 32, 24], [0, 0, 48, 12.8], [48, 19.2, 63, 31]], atol=1e-4)
    assert transform_boxes(np.zeros((0, 4), np.float32), t, 64, 32).shape == (0, 4)


EIG_VAL = np.array([0.2141788, 0.01817699, 0.00341571], np.float32)
EIG_VEC = np.array([[-0.58752847, -0.69563484, 0.41340352],
                    [-0.5832747, 0.00994535, -0.81221408],
                    [-0.56089297, 0.71832671, 0.41158938]], np.float32)


def test_color_aug_shape_dtype_determinism():
    img = np.random.default_rng(0).uniform(0, 1, size=(16, 12, 3)).astype(np.float32)
    a = color_aug(np.random.default_rng(7), img.copy(), EIG_VAL, EIG_VEC)
    b = color_aug(np.random.default_rng(7), img.copy(), EIG_VAL, EIG_VEC)
    c = color_aug(np.random.default_rng(8), img.copy(), EIG_VAL, EIG_VEC)
    assert a.shape == img.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a, img)


def test_color_aug_constant_gray_image_stays_gray():
    # For a constant image with equal channels (value v), gray == gray_mean == v (BGR→GRAY weights
    # sum to 1). Brightness maps x → a x; contrast and saturation map x → v + a (x − v); so the image
    # stays constant and gray. Extremes: brightness 0.6 first, then both others with a = 1.4:
    # v − 0.4 v · 1.4² = 0.216 v; symmetric maximum 1.784 v. With eig_val = 0 there is no PCA shift.
    v = 0.5
    img = np.full((6, 5, 3), v, np.float32)
    vals = []
    for seed in range(20):
        out = color_aug(np.random.default_rng(seed), img.copy(), np.zeros(3, np.float32), EIG_VEC)
        assert np.ptp(out) < 1e-6
        assert 0.216 * v - 1e-6 <= out[0, 0, 0] <= 1.784 * v + 1e-6
        vals.append(float(out[0, 0, 0]))
    assert np.std(vals) > 0.01


def test_color_aug_pca_shift_along_eigenvectors():
    # black image: every jitter keeps 0, so the output is the PCA shift V (lambda * alpha), the same for
    # every pixel; with lambda = (1, 0, 0) it is a multiple of the first column of V.
    img = np.zeros((4, 4, 3), np.float32)
    out = color_aug(np.random.default_rng(11), img, np.array([1.0, 0.0, 0.0], np.float32), EIG_VEC)
    shift = out[0, 0]
    np.testing.assert_allclose(out, np.broadcast_to(shift, out.shape), atol=1e-7)
    col = EIG_VEC[:, 0]
    factor = shift @ col / (col @ col)
    assert abs(factor) > 0
    np.testing.assert_allclose(shift, factor * col, atol=1e-6)


def test_normalize_constant_image():
    mean = [0.40789654, 0.44719302, 0.47026115]
    std = [0.28863828, 0.27408164, 0.27809835]
    img = np.full((5, 7, 3), 0.5, np.float32)
    out = normalize(img, mean, std)
    assert out.shape == (3, 5, 7) and out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    for ch in range(3):
        np.testing.assert_allclose(out[ch], (0.5 - mean[ch]) / std[ch], rtol=1e-6)
    # channel order preserved: a pixel with distinct channels lands in the matching planes
    img2 = np.zeros((2, 2, 3), np.float32)
    img2[1, 0] = [0.1, 0.2, 0.3]
    out2 = normalize(img2, [0, 0, 0], [1, 1, 1])
    np.testing.assert_allclose(out2[:, 1, 0], [0.1, 0.2, 0.3], rtol=1e-6)


# ------------------------------------------------------------------------ random_center_scale

def _ref_border(size, border=128):
    # largest 128 / 2^k with size > 2 * (128 / 2^k)  (stops at 0 for tiny images)
    b = border
    while b > 0 and size <= 2 * b:
        b //= 2
    return b


def test_ref_border_values():
    assert [_ref_border(s) for s in (512, 257, 256, 200, 100, 40)] == [128, 128, 64, 64, 32, 16]


@pytest.mark.parametrize("hw", [(480, 640), (200, 100), (300, 300), (60, 90)])
def test_random_crop_centernet_recipe(hw):
    h, w = hw
    rng = np.random.default_rng(123)
    allowed = np.round(np.arange(6, 14) / 10.0, 6)
    seen = set()
    bw, bh = _ref_border(w), _ref_border(h)
    for _ in range(200):
        c, s = random_crop(rng, h, w, np.arange(0.6, 1.4, 0.1), [128])
        u = round(s / max(h, w), 6)
        assert u in allowed
        seen.add(u)
        assert bw <= c[0] < w - bw
        assert bh <= c[1] < h - bh
        assert c[0] == int(c[0]) and c[1] == int(c[1])
    assert len(seen) == 8  # every factor 0.6 .. 1.3 shows up in 200 draws


@pytest.mark.parametrize("scale, shift", [(0.4, 0.1), (0.2, 0.05)])
def test_random_center_scale(scale, shift):
    h, w = 300, 400
    s0 = float(max(h, w))
    rng = np.random.default_rng(5)
    cs, ss = [], []
    for _ in range(300):
        c, s = random_center_scale(rng, h, w, scale=scale, shift=shift)
        assert abs(c[0] - w / 2) <= 2 * shift * s0 + 1e-3
        assert abs(c[1] - h / 2) <= 2 * shift * s0 + 1e-3
        assert 1 - scale - 1e-6 <= s / s0 <= 1 + scale + 1e-6
        cs.append(c)
        ss.append(s)
    cs = np.array(cs)
    assert cs[:, 0].std() > 0 and cs[:, 1].std() > 0 and np.std(ss) > 0
    # the clip bounds are reached (N(0,1) beyond ±2 sigma happens ~5% of the time)
    assert np.isclose(np.abs(cs[:, 0] - w / 2).max(), 2 * shift * s0, rtol=1e-5)


def test_transform_boxes_encloses_rotated_corners():
    # 90 degrees about (50, 50) with scale 100 -> output 100: (x, y) -> (100 - y, x) up to sign
    trans = get_affine_transform(np.array([50.0, 50.0]), 100.0, 90, (100, 100))
    box = np.array([[10, 20, 30, 60]], np.float32)
    out = transform_boxes(box, trans, 100, 100)
    corners = affine_transform(np.array([[10, 20], [30, 20], [10, 60], [30, 60]], np.float32), trans)
    np.testing.assert_allclose(out[0], [corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(),
                                        corners[:, 1].max()], atol=1e-4)
    # a 20x40 box becomes 40x20 under a quarter turn
    np.testing.assert_allclose(out[0, 2:] - out[0, :2], [40, 20], atol=1e-4)


def test_train_sample_with_rotation_keeps_boxes_valid():
    from centerdet.data.transforms import train_sample
    rng = np.random.default_rng(3)
    img = np.zeros((96, 128, 3), np.uint8)
    img[30:60, 40:90] = 255
    aug = {"rand_crop": False, "scale": 0.0, "shift": 0.0, "flip_prop": 0.0, "rotate": 30.0, "aug_rot": 1.0,
           "color_aug": False, "eig_val": [0, 0, 0], "eig_vec": np.eye(3).tolist()}
    inp, target, keep = train_sample(rng, img, {"boxes": np.array([[40, 30, 90, 60]], np.float32)}, aug, (128, 128), 4)
    boxes = target["boxes"]
    assert keep.all() and (boxes[:, 2:] > boxes[:, :2]).all()
    # the rotated white block lies inside the (enclosing) box, mapped back to input pixels
    ys, xs = np.nonzero(inp.mean(2) > 0.5)
    x1, y1, x2, y2 = boxes[0] * 4
    assert xs.min() >= x1 - 2 and xs.max() <= x2 + 2 and ys.min() >= y1 - 2 and ys.max() <= y2 + 2
