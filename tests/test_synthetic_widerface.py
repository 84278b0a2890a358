"""The synthetic WIDER FACE set: reproducible files in the expected layout, landmarks on the drawn
features, tight boxes, nested evaluation settings, and annotations every reader agrees on."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from centerdet.data.synthetic import FaceSceneOptions, generate_widerface
from centerdet.data.synthetic.faces import (EVENTS, MAX_HIDDEN, face_image, image_name, keep_indices,
                                            render_widerface_image)
from centerdet.errors import CenterDetError
from refs import read_face_annotations, read_ground_truth_mats

SIZE, SEED = 192, 3
OPTS = FaceSceneOptions(min_face=8, max_face=90, max_faces=6)
N_TRAIN, N_VAL = 3, 7


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("faces")
    return out, generate_widerface(out, N_TRAIN, N_VAL, seed=SEED, size=SIZE, opts=OPTS)


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def _scenes(split, n):
    return [render_widerface_image(SEED, split, i, SIZE, OPTS) for i in range(n)]


def test_layout_and_summary(dataset):
    out, summary = dataset
    files = _files(out)
    for name in ("annotations/train.json", "annotations/val.json", "annotations/train/label.txt",
                 "annotations/val/label.txt", "ground_truth/wider_face_val.mat", "ground_truth/wider_easy_val.mat",
                 "ground_truth/wider_medium_val.mat", "ground_truth/wider_hard_val.mat"):
        assert name in files
    val_images = [f for f in files if f.startswith("images/val/images/")]
    assert len(val_images) == N_VAL and len([f for f in files if f.startswith("images/train/")]) == N_TRAIN
    assert "images/val/images/0--Parade/0_Parade_0.jpg" in val_images
    assert {f.split("/")[3] for f in val_images} == set(EVENTS)
    assert summary["val"]["images"] == N_VAL and "ground_truth" in summary["val"]
    assert "ground_truth" not in summary["train"]
    scenes = _scenes("val", N_VAL)
    assert summary["val"]["faces"] == sum(len(s.boxes) for s in scenes)
    assert summary["val"]["hard"] + summary["val"]["ignored"] == summary["val"]["faces"]


def test_same_seed_gives_identical_bytes(dataset, tmp_path):
    out, _ = dataset
    generate_widerface(tmp_path, N_TRAIN, N_VAL, seed=SEED, size=SIZE, opts=OPTS)
    assert _files(tmp_path) == _files(out)
    for name in _files(out):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    other = render_widerface_image(SEED + 1, "val", 0, SIZE, OPTS)
    assert not np.array_equal(other.image[:50], _scenes("val", 1)[0].image[:50])


def test_annotations_match_the_rendered_scenes(dataset):
    out, _ = dataset
    from_json = read_face_annotations(out / "annotations" / "val.json")
    from_txt = read_face_annotations(out / "annotations" / "val" / "label.txt")
    data = json.loads((out / "annotations" / "val.json").read_text())
    for i, (scene, a, b) in enumerate(zip(_scenes("val", N_VAL), from_json, from_txt, strict=True)):
        event, name = image_name(i, N_VAL)
        expected = face_image(scene, f"{event}/{name}.jpg")
        img = cv2.imread(str(out / "images" / "val" / "images" / a.file_name))
        assert img.shape == scene.image.shape and (a.height, a.width) == img.shape[:2]
        for got in (a, b):
            assert got.file_name == expected.file_name
            for field in ("boxes", "keypoints", "visible"):
                np.testing.assert_array_equal(getattr(got, field), getattr(expected, field))
        anns = [x for x in data["annotations"] if x["image_id"] == i + 1]
        assert [x["blur"] for x in anns] == scene.blur.tolist()
        assert [x["occlusion"] for x in anns] == scene.occlusion.tolist()


def test_boxes_are_tight_around_the_head_ellipse():
    for scene in _scenes("train", 6):
        h, w = scene.image.shape[:2]
        assert w == SIZE and 0.6 * SIZE - 1 <= h <= SIZE
        for box, mask in zip(scene.boxes, scene.masks):
            x1, y1, x2, y2 = box.astype(int)
            assert np.array_equal(box, [x1, y1, x2, y2])
            inside = np.zeros_like(mask)
            inside[y1:y2, x1:x2] = True
            assert not (mask & ~inside).any()
            assert mask[y1, x1:x2].any() and mask[y2 - 1, x1:x2].any()
            assert mask[y1:y2, x1].any() and mask[y1:y2, x2 - 1].any()


def test_landmarks_lie_on_the_drawn_features():
    checked = 0
    for scene in _scenes("train", 25):
        for k, box in enumerate(scene.boxes):
            lm = scene.landmarks[k]
            # Every landmark lies on the head, i.e. within the box (1 px slack for the raster).
            assert (lm >= box[:2] - 1).all() and (lm <= box[2:] + 1).all()
            if box[3] - box[1] < 30 or scene.blur[k]:
                continue
            for j in np.flatnonzero(scene.lm_visible[k]):
                col, row = np.floor(lm[j]).astype(int)
                # Iris, nose-tip shadow and lips are all much darker than the face's own skin colour.
                assert scene.image[row, col].mean() < 0.8 * scene.skin[k].mean(), (k, j)
                checked += 1
    assert checked > 50


def test_hidden_landmarks_are_covered_and_faces_stay_mostly_visible():
    opts = FaceSceneOptions(min_face=20, max_face=90, max_faces=8, occlusion_prob=0.0)
    hidden = 0
    for i in range(12):
        scene = render_widerface_image(SEED, "train", i, SIZE, opts)
        for k, (mask, vis) in enumerate(zip(scene.masks, scene.visible)):
            # Without occluders only later faces cover a face, and never more than MAX_HIDDEN of it.
            assert vis.sum() >= (1 - MAX_HIDDEN) * mask.sum()
            cols, rows = np.floor(scene.landmarks[k]).astype(int).T
            on_head = mask[rows, cols]
            assert np.array_equal(scene.lm_visible[k][on_head], vis[rows, cols][on_head])
            hidden += int(np.count_nonzero(~scene.lm_visible[k]))
    assert hidden > 0
    opts = FaceSceneOptions(min_face=20, max_face=90, occlusion_prob=1.0)
    occluded = [render_widerface_image(SEED, "train", i, SIZE, opts) for i in range(4)]
    assert all((s.occlusion > 0).any() and (~s.lm_visible).any() for s in occluded)


def test_keep_lists_are_nested_and_follow_the_rule(dataset):
    out, _ = dataset
    gt = read_ground_truth_mats(out / "ground_truth")
    scenes = {image_name(i, N_VAL)[1]: s for i, s in enumerate(_scenes("val", N_VAL))}
    assert [event for event, _ in gt] == list(EVENTS)
    seen = 0
    for _, images in gt:
        for name, xywh, easy, medium, hard in images:
            scene = scenes[name]
            np.testing.assert_array_equal(xywh[:, :2] + xywh[:, 2:], scene.boxes[:, 2:])
            assert set(easy) <= set(medium) <= set(hard)
            height = scene.boxes[:, 3] - scene.boxes[:, 1]
            for k in range(len(height)):
                assert (k in hard) == (height[k] >= 10)
                assert (k in medium) == (height[k] >= 25 and scene.occlusion[k] < 2)
                assert (k in easy) == (height[k] >= 50 and scene.occlusion[k] < 2 and scene.blur[k] < 2)
            seen += 1
    assert seen == N_VAL
    keep = keep_indices(np.array([[0, 0, 5, 9], [0, 0, 9, 60], [0, 0, 9, 60]]), [0, 2, 0], [0, 0, 2])
    assert [keep[s].tolist() for s in ("easy", "medium", "hard")] == [[], [1], [1, 2]]


def test_sizes_and_counts_follow_the_options():
    opts = FaceSceneOptions(min_face=12, max_face=40, max_faces=3, distractors=0)
    heights = []
    for i in range(10):
        scene = render_widerface_image(1, "train", i, 128, opts)
        assert 1 <= len(scene.boxes) <= 3
        heights.extend(scene.boxes[:, 3] - scene.boxes[:, 1])
    # Box height = head height up to the tilt (at most 25 degrees) and the raster.
    assert min(heights) >= 12 * 0.9 - 1 and max(heights) <= 40 + 1


@pytest.mark.parametrize("kwargs", [{"min_face": 50, "max_face": 20}, {"max_faces": 0}, {"blur_prob": 1.5},
                                    {"distractors": -1}, {"clutter": (0.8, 0.1)}])
def test_bad_options_raise(tmp_path, kwargs):
    with pytest.raises(CenterDetError):
        generate_widerface(tmp_path, 1, 0, size=128, opts=FaceSceneOptions(**{"max_face": 40, **kwargs}))


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(CenterDetError, match="does not fit"):
        generate_widerface(tmp_path, 1, 1, size=128, opts=FaceSceneOptions(max_face=100))
    with pytest.raises(CenterDetError):
        generate_widerface(tmp_path, -1, 1, size=128, opts=OPTS)
    with pytest.raises(CenterDetError):
        generate_widerface(tmp_path, 1, 1, size=32, opts=OPTS)


def test_cli(tmp_path):
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "centerdet.data.synthetic", "widerface", "--out", str(out), "--train", "2",
           "--val", "3", "--seed", "1", "--size", "128", "--min-face", "10", "--max-faces", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "train: 2 images" in proc.stdout and "val: 3 images" in proc.stdout and "easy" in proc.stdout
    assert str(out / "ground_truth") in proc.stdout
    assert len(read_face_annotations(out / "annotations" / "train.json")) == 2
    assert len(read_ground_truth_mats(out / "ground_truth")) == 3
    proc = subprocess.run(cmd[:-2] + ["--max-face", "500"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and proc.stderr.count("\n") == 1
