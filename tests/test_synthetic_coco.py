"""The synthetic shapes data set: valid COCO, reproducible, and boxes that match the drawn pixels."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from centerdet.data.synthetic import generate_coco
from centerdet.data.synthetic.shapes import CLASSES, MIN_VISIBLE, mask_box, render_coco_image
from centerdet.errors import CenterDetError

SIZE = 128
N_TRAIN, N_VAL = 6, 3
EXPECTED_CATEGORIES = [
    {"id": 1, "name": "circle", "supercategory": "shape"},
    {"id": 2, "name": "rectangle", "supercategory": "shape"},
    {"id": 3, "name": "triangle", "supercategory": "shape"},
    {"id": 4, "name": "star", "supercategory": "shape"},
    {"id": 5, "name": "cross", "supercategory": "shape"},
    {"id": 6, "name": "ring", "supercategory": "shape"},
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = generate_coco(out, N_TRAIN, N_VAL, size=SIZE, seed=3)
    return out, summary


def _load(out, split):
    with open(os.path.join(out, "annotations", f"{split}.json"), "rb") as f:
        return f.read()


@pytest.mark.parametrize("split,n", [("train", N_TRAIN), ("val", N_VAL)])
def test_json_is_valid_coco(dataset, split, n):
    out, summary = dataset
    coco = COCO(os.path.join(out, "annotations", f"{split}.json"))
    assert len(coco.getImgIds()) == n
    assert coco.dataset["categories"] == EXPECTED_CATEGORIES
    assert tuple(c["name"] for c in EXPECTED_CATEGORIES) == CLASSES
    anns = coco.dataset["annotations"]
    ids = [a["id"] for a in anns]
    assert len(set(ids)) == len(ids) and min(ids) >= 1
    assert len({im["id"] for im in coco.dataset["images"]}) == n
    per_image = {im["id"]: 0 for im in coco.dataset["images"]}
    for a in anns:
        im = coco.imgs[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert all(isinstance(v, float) for v in a["bbox"])
        assert w >= 2 and h >= 2
        assert x >= 0 and y >= 0 and x + w <= im["width"] and y + h <= im["height"]
        assert a["area"] == w * h
        assert a["iscrowd"] == 0
        assert 1 <= a["category_id"] <= 6
        per_image[a["image_id"]] += 1
    assert all(1 <= k <= 8 for k in per_image.values())
    assert summary[split]["images"] == n and summary[split]["objects"] == len(anns)
    assert sum(summary[split]["per_class"].values()) == len(anns)


def test_images_exist_and_decode(dataset):
    out, _ = dataset
    for split in ("train", "val"):
        data = json.loads(_load(out, split))
        for im in data["images"]:
            img = cv2.imread(os.path.join(out, "images", split, im["file_name"]))
            assert img is not None
            assert img.shape == (im["height"], im["width"], 3) == (SIZE, SIZE, 3)


def test_same_seed_is_identical_and_other_seed_differs(dataset, tmp_path):
    out, _ = dataset
    again = tmp_path / "again"
    generate_coco(again, N_TRAIN, N_VAL, size=SIZE, seed=3)
    for split in ("train", "val"):
        assert _load(out, split) == _load(again, split)
        for name in sorted(os.listdir(os.path.join(out, "images", split))):
            a = cv2.imread(os.path.join(out, "images", split, name))
            b = cv2.imread(os.path.join(again, "images", split, name))
            assert np.array_equal(a, b)
    other = tmp_path / "other"
    generate_coco(other, N_TRAIN, N_VAL, size=SIZE, seed=4)
    assert _load(out, "train") != _load(other, "train")


def test_train_and_val_images_differ():
    train = render_coco_image(3, "train", 0, SIZE)
    val = render_coco_image(3, "val", 0, SIZE)
    assert not np.array_equal(train.image, val.image)


def test_json_boxes_are_tight_boxes_of_the_drawn_masks(dataset):
    """Re-render each written image and check every json box against its object's own mask."""
    out, _ = dataset
    data = json.loads(_load(out, "train"))
    for index, im in enumerate(data["images"]):
        scene = render_coco_image(3, "train", index, SIZE)
        anns = [a for a in data["annotations"] if a["image_id"] == im["id"]]
        assert len(anns) == len(scene.masks)
        for ann, mask, visible, label in zip(anns, scene.masks, scene.visible, scene.labels):
            assert ann["category_id"] == label
            x, y, w, h = (int(v) for v in ann["bbox"])
            assert ann["bbox"] == [float(v) for v in mask_box(mask)]
            # Tight: the mask reaches all four box edges and nothing lies outside the box.
            inside = np.zeros_like(mask)
            inside[y:y + h, x:x + w] = True
            assert not (mask & ~inside).any()
            assert mask[y, x:x + w].any() and mask[y + h - 1, x:x + w].any()
            assert mask[y:y + h, x].any() and mask[y:y + h, x + w - 1].any()
            # Bounded occlusion, and the visible pixels were really painted over the background.
            assert visible.sum() >= MIN_VISIBLE * mask.sum()
            diff = np.abs(scene.image.astype(int) - scene.background.astype(int)).sum(axis=2)
            assert np.median(diff[visible]) > 30


def test_object_sizes_span_the_documented_range():
    sides = []
    for index in range(30):
        scene = render_coco_image(0, "train", index, 256)
        sides.extend(scene.boxes[:, 2:].max(axis=1))
    sides = np.array(sides) / 256
    assert sides.min() >= 0.07 and sides.max() <= 0.51
    assert sides.min() < 0.15 and sides.max() > 0.35


@pytest.mark.parametrize("kwargs", [
    {"n_train": -1, "n_val": 1}, {"n_train": 1, "n_val": 1, "size": 32},
    {"n_train": 1, "n_val": 1, "seed": -2}, {"n_train": 1, "n_val": 1, "num_classes": 7},
])
def test_bad_arguments_raise(tmp_path, kwargs):
    with pytest.raises(CenterDetError):
        generate_coco(tmp_path, **kwargs)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "centerdet.data.synthetic", "coco", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_writes_files(tmp_path):
    out = tmp_path / "cli"
    proc = _cli("--out", str(out), "--train", "4", "--val", "2", "--size", "96", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert "train: 4 images" in proc.stdout and "val: 2 images" in proc.stdout
    for split, n in (("train", 4), ("val", 2)):
        data = json.loads((out / "annotations" / f"{split}.json").read_text())
        assert len(data["images"]) == n
        for im in data["images"]:
            assert (out / "images" / split / im["file_name"]).is_file()


def test_cli_rejects_bad_arguments_in_one_line(tmp_path):
    proc = _cli("--out", str(tmp_path / "x"), "--size", "32")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error:")
    proc = _cli("--out", str(tmp_path / "x"), "--train", "-3")
    assert proc.returncode == 2 and proc.stderr.startswith("error:")


def test_scene_options_bound_counts_and_sizes(tmp_path):
    from centerdet.data.synthetic import SceneOptions

    opts = SceneOptions(min_box_frac=0.3, max_box_frac=0.4, max_objects=2, clutter=(0.0, 0.0))
    generate_coco(str(tmp_path), 10, 0, size=128, seed=5, opts=opts)
    data = json.loads((tmp_path / "annotations" / "train.json").read_text())
    per_image = {}
    for ann in data["annotations"]:
        per_image[ann["image_id"]] = per_image.get(ann["image_id"], 0) + 1
        longer = max(ann["bbox"][2], ann["bbox"][3])
        assert 0.3 * 128 - 2 <= longer <= 0.4 * 128 + 2
    assert max(per_image.values()) <= 2
    assert data["info"]["options"]["max_objects"] == 2


@pytest.mark.parametrize("kwargs", [{"min_box_frac": 0.6, "max_box_frac": 0.5}, {"max_objects": 0},
                                    {"clutter": (0.5, 0.2)}])
def test_bad_scene_options(tmp_path, kwargs):
    from centerdet.data.synthetic import SceneOptions

    with pytest.raises(CenterDetError):
        generate_coco(str(tmp_path), 1, 0, size=128, opts=SceneOptions(**kwargs))
