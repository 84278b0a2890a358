"""Test-time geometry: whatever the resize, padding, flip or scales, boxes come back in image pixels.

An 'oracle' network finds the white rectangle in the canvas it is given and answers with a perfect
heatmap peak, size and offset at stride 4, so any error comes from our pre/post-processing.
"""
import types

import numpy as np
import pytest

from centerdet.config import load_config
from centerdet.inference import Predictor, make_test_canvas


class OracleNet:
    def __init__(self, mean, std, num_classes=3, label=1, stride=4):
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.num_classes, self.label, self.stride = num_classes, label, stride
        self.calls = []

    def __call__(self, batch):
        n, _, h, w = batch.shape
        self.calls.append(batch.shape)
        oh, ow = h // self.stride, w // self.stride
        hm = np.full((n, self.num_classes, oh, ow), -10.0, np.float32)
        wh = np.zeros((n, 2, oh, ow), np.float32)
        reg = np.zeros((n, 2, oh, ow), np.float32)
        for b in range(n):
            pixels = batch[b].transpose(1, 2, 0) * self.std + self.mean
            ys, xs = np.nonzero(pixels.mean(2) > 0.5)
            # the rectangle spans whole pixels [x1, x2 + 1)
            x1, x2, y1, y2 = xs.min(), xs.max() + 1.0, ys.min(), ys.max() + 1.0
            cx, cy = (x1 + x2) / 2 / self.stride, (y1 + y2) / 2 / self.stride
            # A smooth peak at the exact centre (like a trained net), dense size and offset maps:
            # mirror-consistent, so flip averaging must reproduce the same single peak.
            gy, gx = np.mgrid[0:oh, 0:ow] + 0.5
            g = np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / 2.0)
            hm[b, self.label] = 12.0 * g - 8.0
            wh[b, 0], wh[b, 1] = (x2 - x1) / self.stride, (y2 - y1) / self.stride
            reg[b, 0], reg[b, 1] = cx - (gx - 0.5), cy - (gy - 0.5)
        return hm, wh, reg


def predictor(cfg):
    net = OracleNet(cfg.mean, cfg.std, cfg.num_classes)
    pred = Predictor(None, cfg)
    pred.run_net = lambda batch: list(net(batch))
    return pred, net


def image_with_box(h, w, box):
    img = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 255
    return img


@pytest.mark.parametrize("keep_res, scales, flip, size", [
    (True, [1.0], False, (120, 200)),
    (True, [1.0], True, (120, 200)),
    (True, [0.5, 1.0, 1.5], False, (96, 160)),
    (False, [1.0], False, (120, 200)),
    (False, [0.75, 1.25], True, (110, 150)),
])
def test_boxes_return_to_image_pixels(keep_res, scales, flip, size):
    cfg = load_config(None, {"num_classes": "3", "keep_res": str(keep_res), "multi_scales": str(scales),
                             "flip_test": str(flip), "input_res_test": "[128, 128]", "K": "10"})
    pred, net = predictor(cfg)
    box = (40, 24, 104, 72)
    dets = pred(image_with_box(*size, box))
    assert dets[0, 5] == 1 and dets[0, 4] > 0.7
    # Resizing smears the edges by up to a pixel per unit of 1/scale.
    tol = 1.0 + 1.0 / min(scales)
    np.testing.assert_allclose(dets[0, :4], box, atol=tol)
    assert all(shape[0] == (2 if flip else 1) for shape in net.calls)
    assert len(net.calls) == len(scales)
    assert all(shape[2] % 32 == 0 and shape[3] % 32 == 0 for shape in net.calls)


def test_keep_res_canvas_matches_centernet_padding():
    cfg = types.SimpleNamespace(keep_res=True, test_pad=31, down_ratio=4, input_res_test=[512, 512])
    canvas, meta = make_test_canvas(np.zeros((427, 640, 3), np.uint8), 1.0, cfg)
    assert canvas.shape[:2] == (448, 672)  # (427 | 31) + 1, (640 | 31) + 1
    assert meta["out_size"] == (168, 112)
    np.testing.assert_array_equal(meta["center"], [320, 213])
    cfg.test_pad = 127
    canvas, _ = make_test_canvas(np.zeros((480, 512, 3), np.uint8), 1.0, cfg)
    assert canvas.shape[:2] == (512, 640)


# Landmarks of the oracle face, as fractions of its box (left eye, right eye, nose, mouth corners).
FACE_POINTS = np.array([[0.3, 0.35], [0.7, 0.35], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]], np.float32)


class OracleFaceNet(OracleNet):
    """The rectangle as a face: CenterFace log sizes and landmark offsets in box units."""

    def __call__(self, batch):
        hm, wh, reg = super().__call__(batch)
        n, _, oh, ow = hm.shape
        gy, gx = np.mgrid[0:oh, 0:ow]
        lm = np.zeros((n, 10, oh, ow), np.float32)
        for b in range(n):
            bw, bh = wh[b, 0], wh[b, 1]                     # output pixels, dense
            cx, cy = gx + reg[b, 0], gy + reg[b, 1]          # the exact centre, from every cell
            for j, (fx, fy) in enumerate(FACE_POINTS):
                lm[b, 2 * j] = (cx + (fx - 0.5) * bw - gx) / bw
                lm[b, 2 * j + 1] = (cy + (fy - 0.5) * bh - gy) / bh
        return hm, np.log(wh / 4.0), reg, lm


@pytest.mark.parametrize("scales, flip", [([1.0], False), ([1.0], True), ([0.75, 1.25], False)])
def test_face_boxes_and_landmarks_return_to_image_pixels(scales, flip):
    cfg = load_config(None, {"multi_scales": str(scales), "flip_test": str(flip), "input_res_test": "[128, 128]",
                             "K": "10"}, model="centerface")
    net = OracleFaceNet(cfg.mean, cfg.std, num_classes=1, label=0)
    pred = Predictor(None, cfg)
    pred.run_net = lambda batch: list(net(batch))
    box = (40, 24, 104, 72)
    dets = pred(image_with_box(110, 150, box))
    assert dets.shape[1] == 16 and dets[0, 4] > 0.7
    tol = 1.0 + 1.0 / min(scales)
    np.testing.assert_allclose(dets[0, :4], box, atol=tol)
    want = np.array(box[:2], np.float32) + FACE_POINTS * (np.array(box[2:]) - box[:2])
    np.testing.assert_allclose(dets[0, 6:].reshape(5, 2), want, atol=tol)


def test_runner_skips_unreadable_images_and_reports_progress(tmp_path):
    import cv2

    from centerdet.config import load_config
    from centerdet.data.images import read_image
    from centerdet.engine.evaluator import run_inference
    from centerdet.evaluation import EvalImage, Metric

    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), np.full((8, 12, 3), 100, np.uint8))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    paths = {"a": str(good), "b": str(bad), "c": str(tmp_path / "missing.jpg"), "d": str(good)}

    class Seen(Metric):
        seen, scored = [], None

        def images(self):
            return [EvalImage(key, path, key) for key, path in paths.items()]

        def update(self, image, dets):
            self.seen.append((image.key, dets.shape))

        def compute(self, score=True):
            self.scored = score
            return {"n": len(self.seen)} if score else None

    def detect(image):
        img = read_image(image.path)
        return img, np.zeros((len(image.key), 6), np.float32)

    metric, lines = Seen(), []
    cfg = load_config(None, {"save_result_dir": str(tmp_path / "out")})
    result = run_inference(cfg, detect=detect, metric=metric, log=lines.append)
    assert metric.seen == [("a", (1, 6)), ("d", (1, 6))] and result.metrics == {"n": 2} and metric.scored
    assert result.out_dir == str(tmp_path / "out") and result.picture is None
    assert sum(line.startswith("skip: ") and str(bad) in line for line in lines) == 1
    assert sum(line.startswith("skip: ") and "missing.jpg" in line for line in lines) == 1
    assert any(line.startswith("eval: 4/4 images") for line in lines)
    assert any("2 unreadable images skipped" in line for line in lines)
    # the CenterNet model zoo's --enable_eval false: predictions written, nothing scored
    cfg = load_config(None, {"save_result_dir": str(tmp_path / "out"), "enable_eval": "false"})
    quiet = Seen()
    assert run_inference(cfg, detect=detect, metric=quiet, log=lines.append).metrics is None and quiet.scored is False
