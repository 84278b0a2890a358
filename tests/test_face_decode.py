"""CenterFace decoding: one peak by hand, and encode → perfect maps → decode → WIDER AP 1.0 with the
landmarks back where they were annotated."""
import math
import types

import numpy as np
import pytest

from refs import face_train_sample
from centerdet.data.synthetic import FaceSceneOptions, generate_widerface
from centerdet.tasks.centerface import encode_centerface
from centerdet.data.transforms import transform_boxes
from centerdet.data.coco import DetectionDataset
from centerdet.decode import merge_detections, to_image_coords
from centerdet.tasks.centerface import decode_centerface
from centerdet.evaluation.widerface import evaluate, load_ground_truth, read_predictions, write_predictions
from centerdet.geometry import affine_transform, get_affine_transform
from centerdet.inference import make_test_canvas


def test_decode_centerface_one_peak_by_hand():
    h, w = 8, 10
    heat = np.zeros((1, h, w), np.float32)
    heat[0, 5, 3] = 0.8
    wh = np.zeros((2, h, w), np.float32)
    wh[:, 5, 3] = [math.log(2.0), math.log(1.5)]          # sizes 4·e^wh = 8 × 6
    reg = np.zeros((2, h, w), np.float32)
    reg[:, 5, 3] = [0.25, 0.5]
    lm = np.zeros((10, h, w), np.float32)
    lm[:, 5, 3] = [-0.25, -0.5, 0.25, -0.5, 0.0, 0.0, -0.125, 0.5, 0.125, 0.5]
    det = decode_centerface(heat, wh, reg, lm, k=1)[0]
    # centre (3.25, 5.5); landmarks are offsets from the peak cell (3, 5) in box units (8, 6)
    want = [3.25 - 4, 5.5 - 3, 3.25 + 4, 5.5 + 3, 0.8, 0,
            1, 2, 5, 2, 3, 5, 2, 8, 4, 8]
    np.testing.assert_allclose(det, want, rtol=1e-6, atol=1e-6)


def _dense(values, ind, mask, h, w):
    out = np.zeros((values.shape[1], h * w), np.float32)
    sel = mask > 0
    out[:, ind[sel]] = values[sel].T
    return out.reshape(-1, h, w)


def test_encode_decode_round_trip_gives_perfect_widerface_ap(tmp_path):
    generate_widerface(str(tmp_path), 0, 12, seed=5, size=160,
                       opts=FaceSceneOptions(min_face=12, max_face=60, max_faces=5))
    data = DetectionDataset(str(tmp_path / "annotations" / "val.json"), str(tmp_path / "images" / "val" / "images"),
                            num_keypoints=5)
    cfg = types.SimpleNamespace(keep_res=False, down_ratio=4, input_res_test=[160, 160], test_pad=31)
    pred_dir = tmp_path / "pred"
    lm_errors = []
    for image in data.images:
        _, meta = make_test_canvas(np.zeros((image.height, image.width, 3), np.uint8), 1.0, cfg)
        ow, oh = meta["out_size"]
        trans = get_affine_transform(meta["center"], meta["scale"], 0, (ow, oh))
        boxes = transform_boxes(image.boxes, trans, ow, oh)
        points = affine_transform(image.keypoints.reshape(-1, 2), trans).reshape(-1, 5, 2)
        t = encode_centerface(boxes, points, image.visible, (oh, ow), max_objs=32)
        maps = [t["hm"]] + [_dense(t[k], t["ind"], t["mask"], oh, ow) for k in ("wh", "reg", "lm")]
        dets = to_image_coords(decode_centerface(*maps, k=100), meta["center"], meta["scale"], (ow, oh))
        dets = merge_detections([dets], 1, use_nms=True, nms_method=2)
        event, name = image.file_name.split("/")
        write_predictions(str(pred_dir), event, name, dets[:, :5])
        # the detection of each face: the one whose box matches best
        for box, pts, vis in zip(image.boxes, image.keypoints, image.visible):
            best = dets[np.argmin(np.abs(dets[:, :4] - box).sum(1))]
            np.testing.assert_allclose(best[:4], box, atol=1e-3)
            lm_errors.append(np.abs(best[6:16].reshape(5, 2) - pts)[vis])
    gt = load_ground_truth(str(tmp_path / "ground_truth"))
    result = evaluate(read_predictions(str(pred_dir), gt), gt)
    assert result["easy"] == pytest.approx(1.0) and result["hard"] == pytest.approx(1.0)
    assert np.concatenate(lm_errors).max() < 1e-3


def test_training_sample_targets_decode_back_to_the_augmented_faces():
    """Augmented sample → targets → decode: the boxes and visible landmarks of the sample come back."""
    rng = np.random.default_rng(4)
    img = rng.integers(0, 255, (120, 160, 3), np.uint8)
    boxes = np.array([[20, 30, 60, 80], [90, 20, 130, 70]], np.float32)
    lms = np.stack([np.stack([b[0] + (b[2] - b[0]) * np.array([.3, .7, .5, .35, .65]),
                              b[1] + (b[3] - b[1]) * np.array([.4, .4, .6, .8, .8])], 1) for b in boxes])
    aug = {"anchor_sampling": False, "rand_crop": False, "scale": 0.0, "shift": 0.0, "flip_prop": 1.0,
           "color_aug": False, "eig_val": None, "eig_vec": None, "crop_scales": [1.0]}
    _, out_boxes, out_lms, vis, keep = face_train_sample(rng, img, boxes, lms, np.ones((2, 5), bool), aug,
                                                         (128, 128), 4)
    t = encode_centerface(out_boxes[keep], out_lms[keep], vis[keep], (32, 32), max_objs=8)
    maps = [t["hm"]] + [_dense(t[k], t["ind"], t["mask"], 32, 32) for k in ("wh", "reg", "lm")]
    dets = decode_centerface(*maps, k=2)
    order = np.argsort(dets[:, 0])
    np.testing.assert_allclose(dets[order, :4], out_boxes[np.argsort(out_boxes[:, 0])], atol=1e-4)
    # flipped: the face that was on the right is now on the left, its left eye at the smaller x
    assert (dets[:, 6] < dets[:, 8]).all()
    np.testing.assert_allclose(dets[order, 6:16].reshape(2, 5, 2), out_lms[np.argsort(out_boxes[:, 0])], atol=1e-4)
