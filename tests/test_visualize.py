"""Drawing and plotting: pixels change where they should, files are valid PNGs."""
import cv2
import numpy as np
import pytest

from centerdet.errors import CenterDetError
from centerdet.visualize import (class_color, draw_detections, make_grid, plot_loss_curve,
                                 plot_pr_curves, save_image, smooth_ema)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def blank(h=200, w=300):
    return np.zeros((h, w, 3), np.uint8)


def changed(a, b):
    return np.any(a != b, axis=2)


def test_draw_changes_box_region_only():
    img = blank()
    out = draw_detections(img, [[100, 80, 180, 150, 0.9, 1]], ["a", "b"])
    assert out is not img and not img.any()  # input untouched
    diff = changed(img, out)
    assert diff[80, 100:181].any() and diff[150, 100:181].any()  # top and bottom edges
    assert diff[80:151, 100].any() and diff[80:151, 180].any()   # left and right edges
    # label sits just above the box; nothing is drawn far from box and label
    ys, xs = np.nonzero(diff)
    assert ys.min() >= 80 - 25 and ys.max() <= 150 + 2
    assert xs.min() >= 100 - 2 and xs.max() <= 180 + 60
    assert not diff[180:, :].any() and not diff[:, :60].any()
    # the box edge has the class colour
    assert tuple(out[150, 140]) == class_color(1)


def test_draw_respects_threshold_and_bad_rows():
    img = blank()
    dets = [[100, 80, 180, 150, 0.2, 0], [10, 10, 50, 50, np.nan, 0]]
    out = draw_detections(img, dets, ["a"], score_thresh=0.3)
    assert np.array_equal(out, img)
    out = draw_detections(img, dets, ["a"], score_thresh=0.1)
    assert changed(img, out)[80:151, 100:181].any()
    assert not changed(img, out)[:60, :60].any()  # the NaN row is skipped at any threshold
    assert np.array_equal(draw_detections(img, np.zeros((0, 6)), ["a"]), img)


def test_draw_gt_and_landmarks():
    img = blank()
    out = draw_detections(img, [], None, gt_boxes=[[20, 20, 120, 100]])
    diff = changed(img, out)
    top_edge = diff[20, 20:121]
    assert top_edge.any() and not top_edge.all()  # dashed
    assert not diff[150:, 200:].any()

    dets = [[150, 50, 250, 150, 0.9, 0], [10, 150, 40, 190, 0.1, 0]]
    marks = np.array([[170, 80, 230, 80, 200, 100, 180, 130, 220, 130],
                      [15, 160, 35, 160, 25, 170, 18, 180, 32, 180]], np.float32)
    out = draw_detections(img, dets, ["face"], landmarks=marks)
    for x, y in marks[0].reshape(5, 2).astype(int):
        assert out[y, x].any()
    assert not changed(img, out)[150:, :60].any()  # below-threshold face: no box, no dots
    with pytest.raises(CenterDetError, match="landmarks"):
        draw_detections(img, dets, ["face"], landmarks=marks[:1])


def test_label_at_top_edge_stays_inside_image():
    img = blank()
    out = draw_detections(img, [[0, 0, 60, 40, 0.8, 3]], [str(i) for i in range(5)])
    assert changed(img, out)[:40, :60].any()


def test_save_image_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    path = tmp_path / "sub" / "img.png"
    save_image(path, img)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert np.array_equal(cv2.imread(str(path)), img)
    assert [p.name for p in path.parent.iterdir()] == ["img.png"]  # no temp file left behind


def test_make_grid_shapes():
    a = np.full((10, 20, 3), 50, np.uint8)
    b = np.full((30, 15, 3), 100, np.uint8)
    c = np.full((5, 5), 200, np.uint8)  # gray is accepted
    grid = make_grid([a, b, c], cols=2)
    # cells are 30 x 20 (max height, max width); 3 images in 2 columns → 2 rows
    assert grid.shape == (60, 40, 3)
    assert (grid[:10, :20] == 50).all() and (grid[10:30, :20] == 0).all()
    assert (grid[:30, 20:35] == 100).all() and (grid[:, 35:40][:30] == 0).all()
    assert (grid[30:35, :5] == 200).all() and (grid[30:, 20:] == 0).all()
    assert make_grid([a, b, c], cols=5).shape == (30, 60, 3)  # cols capped at the image count
    assert make_grid([a, b, c], cols=2, gap=4).shape == (64, 44, 3)
    with pytest.raises(CenterDetError):
        make_grid([], cols=2)


def test_smooth_ema_debiased_and_nan_safe():
    assert smooth_ema([4.0, 4.0, 4.0], span=9) == pytest.approx([4.0, 4.0, 4.0])
    out = smooth_ema([1.0, np.nan, 3.0], span=1)  # span 1 → alpha 1 → no smoothing
    assert out[0] == 1.0 and np.isnan(out[1]) and out[2] == 3.0


def _png_size(path):
    img = cv2.imread(str(path))
    assert img is not None
    return img.shape


def test_plot_loss_curve(tmp_path):
    steps = list(range(0, 2000, 10))
    rng = np.random.default_rng(0)
    decay = np.exp(-np.array(steps) / 600.0)
    history = {"step": steps,
               "hm_loss": list(2 + 8 * decay + rng.normal(0, 0.3, len(steps)).clip(-1, 1)),
               "wh_loss": list(0.1 * (1 + 20 * decay) * rng.uniform(0.7, 1.3, len(steps))),
               "off_loss": list(0.3 * (0.5 + decay) * rng.uniform(0.8, 1.2, len(steps)))}
    history["loss"] = [h + w + o for h, w, o in zip(history["hm_loss"], history["wh_loss"],
                                                    history["off_loss"])]
    path = tmp_path / "loss.png"
    plot_loss_curve(history, path, title="CenterNet loss")
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000
    h, w, _ = _png_size(path)
    assert 300 < h < 1000 and 500 < w < 1500

    # a negative component switches to a linear axis but still plots
    plot_loss_curve({"step": [0, 1, 2], "loss": [1.0, -0.5, 0.2]}, tmp_path / "lin.png")
    assert (tmp_path / "lin.png").stat().st_size > 1000
    with pytest.raises(CenterDetError, match="wh_loss"):
        plot_loss_curve({"step": [0, 1], "wh_loss": [1.0]}, tmp_path / "bad.png")


def test_plot_pr_curves(tmp_path):
    recall = np.linspace(0, 1, 50)
    curves = {"easy": (recall, 1 - 0.2 * recall ** 3, 0.95),
              "medium": (recall, 1 - 0.5 * recall ** 2, 0.83),
              "hard": (recall, np.clip(1 - recall ** 1.5, 0, 1), 0.6)}
    path = tmp_path / "pr.png"
    plot_pr_curves(curves, path, "WIDER FACE val")
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000
    h, w, _ = _png_size(path)
    assert 400 < h < 1000 and 400 < w < 1000
    with pytest.raises(CenterDetError, match="hard"):
        plot_pr_curves({"hard": (recall, recall[:-1], 0.5)}, path, "x")
