"""Bad input at every entry point: each gives one line naming the file or config key (exit code 2 from
the command line, no traceback), or is skipped and counted where that is the documented behaviour,
and nothing written before is damaged.

Most cases call the readers in-process (fast); a few subprocess runs per entry point prove the
command-line contract: train.py, eval.py (CenterNet COCO val and CenterFace), test.py,
``python -m centerdet mindrecord`` and ``python -m centerdet.evaluation.widerface``. The last
part fuzzes the annotation readers and the target encoders with hypothesis.
"""
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT

from centerdet.cli import parse_overrides
from centerdet.config import find_config, load_config
from centerdet.data.coco import BoxStats, DetectionDataset
from centerdet.data.images import read_image
from centerdet.data.mindrecord import convert, find_mindrecord, row_columns, unpack_annotation
from centerdet.data.widerface import read_label_txt, write_ground_truth_mats, write_label_txt
from centerdet.errors import CenterDetError
from centerdet.evaluation import coco as coco_eval
from centerdet.evaluation import widerface as wf
from centerdet.tasks.centerface import encode_centerface
from centerdet.tasks.centernet import encode_centernet
from refs import FaceDataset, read_keypoint_json

CENTERNET_CFG = "centernet_r18-ida_1xb16-16e_synthetic"
CENTERFACE_CFG = "centerface_mbv2_1xb16-20e_synthetic"
# No example database: a failing example is printed in the report, not replayed from .hypothesis/.
FUZZ = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- helpers and data


@pytest.fixture(scope="module")
def coco_data(tmp_path_factory):
    """4 train / 2 val shape images of 64 px (annotations/{train,val}.json, images/{train,val})."""
    from centerdet.data.synthetic import generate_coco

    root = tmp_path_factory.mktemp("bad_coco")
    generate_coco(str(root), n_train=4, n_val=2, size=64, seed=3)
    return root


@pytest.fixture(scope="module")
def face_data(tmp_path_factory):
    """4 train / 3 val face images of 96 px: json, label.txt and the four ground-truth .mat files."""
    from centerdet.data.synthetic.faces import FaceSceneOptions, generate_widerface

    root = tmp_path_factory.mktemp("bad_faces")
    generate_widerface(str(root), 4, 3, seed=0, size=96, opts=FaceSceneOptions(min_face=10, max_face=40, max_faces=4))
    return root


def copy_of(src, tmp_path, name="data"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def run_cli(entry, args, cwd):
    """``python <repo>/<entry> args`` for a script, ``python -m <entry> args`` for a module."""
    head = [os.path.join(ROOT, entry)] if entry.endswith(".py") else ["-m", entry]
    return subprocess.run([sys.executable, *head, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def one_line_error(proc, *names):
    """Exit code 2, no traceback, and a last stderr line 'error: ...' that names each of ``names``."""
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), proc.stderr[-2000:]
    assert sum(line.startswith("error: ") for line in lines) == 1
    for name in names:
        assert str(name) in lines[-1], (name, lines[-1])
    return lines[-1]


def raises_one_line(fn, *names):
    """``fn()`` raises CenterDetError whose message is one line naming each of ``names``."""
    with pytest.raises(CenterDetError) as err:
        fn()
    msg = str(err.value)
    assert "\n" not in msg, msg
    for name in names:
        assert str(name) in msg, (name, msg)
    return msg


def snapshot(root):
    """Every file (bytes) and folder under ``root``: equal snapshots mean nothing was touched."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(d, name), root) + "/"] = None
        for name in files:
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


def cell(items):
    arr = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        arr[i, 0] = item
    return arr


def valid_box(box, width=None, height=None):
    box = np.asarray(box)
    ok = box.dtype == np.float32 and np.isfinite(box).all() and box[2] > box[0] and box[3] > box[1]
    if width is not None:
        ok = ok and box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height
    return bool(ok)


# ---------------------------------------------------------------- COCO annotation reader (in-process)


def coco_base():
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
                       {"id": 2, "file_name": "b.jpg", "width": 50, "height": 50}],
            "categories": [{"id": 3, "name": "x"}, {"id": 7, "name": "y"}],
            "annotations": [{"id": 10, "image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 30]},
                            {"id": 11, "image_id": 2, "category_id": 7, "bbox": [5, 5, 10, 10]}]}


# Cases not in test_coco_reader.py: wrong json types where lists, objects and numbers belong.
@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.update(images=None), "top-level 'images' must be a list"),
    (lambda d: d.update(annotations={"10": {}}), "top-level 'annotations' must be a list"),
    (lambda d: d.update(categories="person"), "top-level 'categories' must be a list"),
    (lambda d: d["categories"].append(5), "every category must be a json object"),
    (lambda d: d["categories"][0].update(id="three"), "category id 'three' has 'id' 'three'"),
    (lambda d: d["categories"].append({"id": 3, "name": "z"}), "category id 3 is listed twice"),
    (lambda d: d["images"][0].update(width="wide"), "image id 1 has 'width' 'wide'"),
    (lambda d: d["images"][1].update(height=float("nan")), "image id 2 has 'height' nan"),
    (lambda d: d["images"][1].update(id=1), "image id 1 is listed twice"),
    (lambda d: d["images"].append([1, "c.jpg"]), "every image must be a json object"),
    (lambda d: d["annotations"].append("box"), "every annotation must be a json object"),
    (lambda d: d["annotations"][1].pop("category_id"), "annotation id 11 has no 'category_id'"),
    (lambda d: d["annotations"][0].update(category_id=[3]), "annotation id 10 has category_id [3], which is not in"),
    (lambda d: d["annotations"][0].update(category_id=4), "annotation id 10 has category_id 4, which is not in"),
    (lambda d: d["annotations"][1].update(image_id=None), "annotation id 11 has 'image_id' None"),
    (lambda d: d["annotations"][1].update(bbox=[1, "2", "three", 4]), "annotation id 11 bbox [1, '2', 'three', 4]"),
    (lambda d: d["annotations"][1].update(bbox=[10 ** 400, 1, 2, 3]), "annotation id 11 bbox"),
    (lambda d: d["annotations"][1].update(bbox=None), r"annotation id 11 bbox must be [x, y, w, h]"),
])
def test_coco_reader_rejects_wrong_types_in_one_line(tmp_path, mutate, words):
    data = coco_base()
    mutate(data)
    path = write_json(tmp_path / "ann.json", data)
    raises_one_line(lambda: DetectionDataset(path, str(tmp_path)), path, words)


def test_coco_reader_rejects_zero_byte_and_non_object_json(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    raises_one_line(lambda: DetectionDataset(str(empty), str(tmp_path)), empty, "empty (0 bytes)")
    listed = write_json(tmp_path / "list.json", [coco_base()])
    raises_one_line(lambda: DetectionDataset(listed, str(tmp_path)), listed, "expected a COCO json object")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xd8\xff\xe0JFIF")  # an image saved under the annotation's name
    raises_one_line(lambda: DetectionDataset(str(binary), str(tmp_path)), binary, "not valid json")


def test_coco_degenerate_boxes_are_dropped_and_counted(tmp_path):
    data = coco_base()
    data["annotations"] = [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, -5, 20]},             # negative width
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 0]},              # zero height
        {"id": 3, "image_id": 1, "category_id": 3, "bbox": [float("inf"), 10, 5, 5]},     # inf
        {"id": 4, "image_id": 1, "category_id": 3, "bbox": [10, 10, float("nan"), 5]},    # NaN
        {"id": 5, "image_id": 1, "category_id": 3, "bbox": [50.000001, 10, 1e-7, 5]},     # no width in float32
        {"id": 6, "image_id": 1, "category_id": 7, "bbox": [-10, -10, 5, 5]},             # outside the image
        {"id": 7, "image_id": 1, "category_id": 7, "bbox": [1e300, 1, 1e300, 5]},         # far outside, huge
        {"id": 8, "image_id": 1, "category_id": 7, "bbox": [90, 70, 30, 30]},             # clipped, kept
        {"id": 9, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4]},                  # kept as is
    ]
    ds = DetectionDataset(write_json(tmp_path / "ann.json", data), str(tmp_path))
    assert (ds.stats.dropped, ds.stats.clipped) == (7, 1)
    image = ds.images[0]
    np.testing.assert_array_equal(image.boxes, [[90, 70, 100, 80], [1, 2, 4, 6]])
    assert image.labels.tolist() == [1, 0]
    # Image 2 has no box left: kept for evaluation, left out (and counted) for training.
    assert len(ds) == 2 and ds.num_without_boxes == 1
    train = DetectionDataset(str(tmp_path / "ann.json"), str(tmp_path), require_annotations=True)
    assert [im.id for im in train.images] == [1]


def test_coco_json_without_annotations_loads_every_image_empty(tmp_path):
    data = coco_base()
    del data["annotations"]  # test-dev style: images only
    ds = DetectionDataset(write_json(tmp_path / "ann.json", data), str(tmp_path))
    assert len(ds) == 2 and all(len(im.boxes) == 0 for im in ds.images) and ds.num_without_boxes == 2
    raises_one_line(lambda: convert(str(tmp_path / "ann.json"), str(tmp_path), str(tmp_path / "mr"), "t.mind"),
                    "ann.json", "no image has a usable annotation")
    assert not (tmp_path / "mr").exists() or os.listdir(tmp_path / "mr") == []


# ---------------------------------------------------------------- face annotation readers (in-process)


def face_json(images, annotations=None):
    data = {"images": images, "categories": [{"id": 1, "name": "face"}]}
    if annotations is not None:
        data["annotations"] = annotations
    return data


FACE_IMAGE = {"id": 1, "file_name": "0--Parade/a.jpg", "width": 100, "height": 80}


@pytest.mark.parametrize("data, words", [
    ({"annotations": []}, "missing top-level key 'images'"),
    (face_json(None), "top-level 'images' must be a list"),
    (face_json([FACE_IMAGE], {"1": {}}), "top-level 'annotations' must be a list"),
    (face_json([dict(FACE_IMAGE, width="wide")]), "image id 1 has 'width' 'wide'"),
    (face_json([dict(FACE_IMAGE, id=[1])]), "image id [1] has 'id' [1]; expected an integer"),
    (face_json([FACE_IMAGE], [{"id": 4, "image_id": [1], "bbox": [1, 2, 3, 4]}]),
     "annotation id 4 refers to image_id [1]"),
    (face_json([FACE_IMAGE], [{"id": 5, "image_id": 1, "bbox": [1, 2, 3, 10 ** 400]}]),
     "annotation id 5 bbox [1, 2, 3, 1000"),
    (face_json([FACE_IMAGE], [{"id": 6, "image_id": 1, "bbox": [1, 2, 3, 4], "keypoints": "none"}]),
     "annotation id 6 has str keypoint values"),
])
def test_face_json_errors_name_file_and_entry(tmp_path, data, words):
    path = write_json(tmp_path / "train.json", data)
    raises_one_line(lambda: FaceDataset(path, str(tmp_path)), path, words)


def test_face_json_zero_byte(tmp_path):
    path = tmp_path / "val.json"
    path.write_bytes(b"")
    raises_one_line(lambda: read_keypoint_json(path), path, "empty (0 bytes)")


def test_face_json_bad_boxes_dropped_landmarks_outside_hidden(tmp_path):
    kps = [10, 10, 2, -5, 12, 2, 15, 90, 2, 12, 14, 2, float("nan"), 14, 2]  # 2nd left of, 3rd below the image
    anns = [{"id": 1, "image_id": 1, "bbox": [5, 5, 20, 20], "keypoints": kps},
            {"id": 2, "image_id": 1, "bbox": [5, 5, -3, 10]},
            {"id": 3, "image_id": 1, "bbox": [5, 5, 10, 0]},
            {"id": 4, "image_id": 1, "bbox": [float("nan"), 5, 10, 10]},
            {"id": 5, "image_id": 1, "bbox": [200, 5, 10, 10]}]
    images = [FACE_IMAGE, dict(FACE_IMAGE, id=2, file_name="0--Parade/empty.jpg")]
    path = write_json(tmp_path / "train.json", face_json(images, anns))
    ds = FaceDataset(path, str(tmp_path))
    assert ds.stats.dropped == 4 and ds.num_without_boxes == 1 and len(ds) == 2
    (im,) = FaceDataset(path, str(tmp_path), require_faces=True).images
    np.testing.assert_array_equal(im.boxes, [[5, 5, 25, 25]])
    assert im.visible.tolist() == [[True, False, False, True, False]]
    assert np.isfinite(im.keypoints).all()


def test_label_txt_zero_byte_and_not_text(tmp_path):
    empty = tmp_path / "label.txt"
    empty.write_bytes(b"")
    raises_one_line(lambda: read_label_txt(empty), empty, "empty (0 bytes)")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"# a.jpg\n\xff\xfe\x00\x01 1 2 3\n")
    raises_one_line(lambda: FaceDataset(str(binary), str(tmp_path)), binary, "not UTF-8 text")


def test_label_txt_huge_and_degenerate_faces_are_dropped(tmp_path):
    path = tmp_path / "label.txt"
    path.write_text("# 0--Parade/a.jpg\n"
                    "1e39 1 5 5\n"              # finite as text, inf as a float32 box
                    "100000000 1 1 5\n"         # the width vanishes in float32 next to x
                    "1 1 -2 5\n"                # negative width
                    "1 1 5 nan\n"               # NaN height
                    "# 0--Parade/b.jpg ² ³\n"   # superscripts are digits to str.isdigit, not to int()
                    "1 2 3 4 1e39 1 0 5 5 0 -1 -1 -1 6 6 0 7 7 0 1.0\n")
    stats = BoxStats()
    images = read_label_txt(path, stats)
    assert stats.dropped == 4 and [im.file_name for im in images] == ["0--Parade/a.jpg", "0--Parade/b.jpg ² ³"]
    assert images[0].boxes.shape == (0, 4)
    np.testing.assert_array_equal(images[1].boxes, [[1, 2, 4, 6]])
    assert images[1].visible.tolist() == [[False, True, False, True, True]]  # 1e39 overflows float32
    assert np.isfinite(images[1].keypoints).all()


# ---------------------------------------------------------------- MindRecord conversion (in-process)


def read_face_record(path):
    from mindspore.mindrecord import FileReader

    reader = FileReader(path)
    try:
        return [(int(row["image_id"]), np.asarray(row["annotation"])) for row in reader.get_next()]
    finally:
        reader.close()


def test_face_conversion_skips_unreadable_images_and_hides_outside_landmarks(face_data, tmp_path):
    root = copy_of(face_data, tmp_path)
    img_dir = root / "images" / "train" / "images"
    label = root / "annotations" / "train" / "label.txt"
    images = read_label_txt(label)
    first = images[0]
    n = len(first.boxes)
    # Two extra faces on the first image: one whose left eye is outside the image, one of zero width.
    points = np.array([[(-40, -40), (12, 10), (10, 14), (8, 18), (12, 18)], np.zeros((5, 2))], np.float32)
    first.boxes = np.concatenate([first.boxes, np.float32([[5, 5, 20, 25], [50, 50, 50, 70]])])
    first.keypoints = np.concatenate([first.keypoints, points])
    first.visible = np.concatenate([first.visible, [[True] * 5, [False] * 5]])
    write_label_txt(label, images)
    (img_dir / images[1].file_name).write_bytes(b"")                        # zero-byte JPEG
    (img_dir / images[2].file_name).write_bytes(b"not a jpeg at all\n")     # text named .jpg
    lines = []
    written, skipped = convert(str(label), str(img_dir), str(tmp_path / "mr"), "f.mind", log=lines.append,
                               num_keypoints=5)
    assert (written, skipped) == (2, 2)
    skips = [line for line in lines if line.startswith("skip:")]
    assert len(skips) == 2 and images[1].file_name in skips[0] and images[2].file_name in skips[1]
    assert "skipped 2 unreadable images" in lines[-1] and "1 degenerate boxes dropped" in lines[-1]
    rows = dict(read_face_record(str(tmp_path / "mr" / "f.mind")))
    assert sorted(rows) == [1, 4]  # the two unreadable images are not in the record (ids: 1-based lines)
    faces = unpack_annotation(rows[1], 5)
    boxes, landmarks, visible = faces["boxes"], faces["keypoints"], faces["visible"]
    assert len(boxes) == n + 1 and np.isfinite(boxes).all() and np.isfinite(landmarks).all()
    np.testing.assert_array_equal(boxes[n], [5, 5, 20, 25])
    assert visible[n].tolist() == [False, True, True, True, True]  # outside the image: not a training target


def test_failed_conversion_leaves_the_previous_one_intact(coco_data, tmp_path):
    root = copy_of(coco_data, tmp_path)
    ann, img_dir, out = str(root / "annotations" / "train.json"), root / "images" / "train", tmp_path / "mr"
    assert convert(ann, str(img_dir), str(out), "t.mind", log=lambda line: None) == (4, 0)
    before = snapshot(out)
    for name in os.listdir(img_dir):  # every image truncated: nothing readable is left
        with open(img_dir / name, "r+b") as f:
            f.truncate(100)
    raises_one_line(lambda: convert(ann, str(img_dir), str(out), "t.mind", log=lambda line: None),
                    "no readable image among the 4 annotated images", img_dir)
    assert snapshot(out) == before
    assert find_mindrecord(str(out), "t.mind") == [str(out / "t.mind")]
    as_file = tmp_path / "a_file"
    as_file.write_text("x")
    raises_one_line(lambda: convert(ann, str(img_dir), str(as_file), "t.mind"), "mindrecord_dir is not writable",
                    as_file)
    assert as_file.read_text() == "x"


def test_read_image_errors_name_the_file(coco_data, tmp_path):
    src = next(iter(sorted((coco_data / "images" / "val").iterdir())))
    data = src.read_bytes()
    for name, content in (("truncated.jpg", data[:len(data) // 2]), ("zero.jpg", b""), ("text.jpg", b"hello")):
        (tmp_path / name).write_bytes(content)
        raises_one_line(lambda: read_image(str(tmp_path / name)), "cannot decode image", name)
    raises_one_line(lambda: read_image(str(tmp_path / "missing.jpg")), "image not found", "missing.jpg")
    raises_one_line(lambda: read_image(str(tmp_path)), "image not found", tmp_path)  # a folder


# ---------------------------------------------------------------- config loader (in-process)


@pytest.mark.parametrize("text, words", [
    ("model: [centerface]\n", "config key 'model'"),
    ("learning_rate: .nan\n", "config key 'learning_rate' must be a finite number"),
    ("score_thresh: .inf\n", "config key 'score_thresh' must be a finite number"),
    ("input_res_train: 512\n", "config key 'input_res_train' must be a list"),
    ("flip_test: maybe\n", "config key 'flip_test' must be of type bool"),
    ("multi_scales: [1.0, x]\n", "config key 'multi_scales[1]' must be of type float"),
    ("eig_vec: [1, 2, 3]\n", "config key 'eig_vec[0]' must be a list"),
    ("data_dir: [a, b]\n", "config key 'data_dir' must be of type str"),
    ("max_objs: 1.5\n", "config key 'max_objs' must be of type int"),
    ("lm_weight: 0.1\n", "unknown config key 'lm_weight'"),  # a CenterFace key in a CenterNet config
    ("model: centerface\nlandmark_wieght: 0.1\n", "unknown config key 'landmark_wieght'"),
    ("model: centerface\nbackbone: resnet18\n", "config key 'backbone' must be one of ['mobilenet_v2'], got 'resnet18'"),
])
def test_bad_yaml_values_name_the_key(tmp_path, text, words):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    raises_one_line(lambda: load_config(str(path)), words)


def test_bad_config_files_and_arguments(tmp_path):
    binary = tmp_path / "weights.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    raises_one_line(lambda: load_config(str(binary)), "not UTF-8 text", binary)
    raises_one_line(lambda: load_config(str(tmp_path)), "config file not found", tmp_path)  # a folder
    raises_one_line(lambda: load_config(None, {"score_thresh": "inf"}), "'score_thresh' must be a finite number")
    raises_one_line(lambda: load_config(None, {"model": "[centerface]"}), "config key 'model'")
    raises_one_line(lambda: parse_overrides(["data_dir", "x"]), "unexpected argument 'data_dir'")
    raises_one_line(lambda: parse_overrides(["--batch_size", "8", "--data_dir"]), "option --data_dir needs a value")


# ---------------------------------------------------------------- WIDER FACE evaluation (in-process)


def gt_dir_with(tmp_path, **replace):
    """A valid one-image ground truth, then each ``replace[file stem]`` (dict: savemat, bytes: raw)."""
    root = tmp_path / "gt"
    write_ground_truth_mats(root, [("0--Parade", [("img_0", np.array([[10.0, 10, 20, 20]]), [0], [0], [0])])])
    for stem, content in replace.items():
        path = root / f"{stem}.mat"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            scipy.io.savemat(path, content)
    return str(root)


NAMES = {"event_list": cell(["0--Parade"]), "file_list": cell([cell(["img_0"])])}


@pytest.mark.parametrize("replace, words", [
    ({"wider_face_val": {**NAMES, "face_bbx_list": cell([cell([np.zeros((1, 3))])])}}, "shape (1, 3), expected (m, 4)"),
    ({"wider_face_val": {**NAMES, "face_bbx_list": cell([cell([np.full((1, 4), np.nan)])])}}, "NaN or inf"),
    ({"wider_face_val": {**NAMES, "face_bbx_list": cell([cell(["abc"])])}}, "unexpected structure"),
    ({"wider_face_val": {"event_list": cell([np.array([[5.0]])]), "file_list": NAMES["file_list"],
                         "face_bbx_list": cell([cell([np.zeros((1, 4))])])}}, "expected a string"),
    ({"wider_face_val": {"event_list": NAMES["event_list"], "file_list": cell(["img_0"]),
                         "face_bbx_list": cell([cell([np.zeros((1, 4))])])}}, "expected a cell array"),
    ({"wider_face_val": {"event_list": cell(["0--Parade", "1--Handshaking"]), "file_list": NAMES["file_list"],
                         "face_bbx_list": cell([cell([np.zeros((1, 4))])])}}, "2 events but 1 file lists"),
    ({"wider_face_val": {"event_list": NAMES["event_list"]}}, "has no variable 'file_list'"),
    ({"wider_face_val": b""}, "cannot read ground-truth file"),
    ({"wider_easy_val": {**NAMES, "gt_list": cell([cell([np.array([[1.5]])])])}}, "not integer indices"),
    ({"wider_medium_val": {"gt_list": np.array([[1.0]])}}, "expected a cell array"),
    ({"wider_hard_val": {"event_list": NAMES["event_list"]}}, "has no variable 'gt_list'"),
    ({"wider_hard_val": b"MATLAB 5.0 MAT-file, truncated"}, "cannot read ground-truth file"),
])
def test_wrong_mat_structure_names_the_file(tmp_path, replace, words):
    root = gt_dir_with(tmp_path, **replace)
    (stem,) = replace
    raises_one_line(lambda: wf.load_ground_truth(root), f"{stem}.mat", words)


@pytest.mark.parametrize("content, words", [
    (b"", "expected the image name on line 1 and the box count on line 2"),
    (b"\n\n\n", "expected the image name on line 1 and the box count on line 2"),
    (b"img_0.jpg\n", "expected the image name on line 1 and the box count on line 2"),
    (b"\xff\xfe\x00img_0\n1\n", "cannot read prediction file"),
    (b"img_0.jpg\n-1\n", "line 2: expected the box count, got '-1'"),
    (b"img_0.jpg\n1\n1 2 3 4 inf\n", "line 3: NaN or inf"),
    (b"img_0.jpg\n2\n1 2 3 4 0.5\n", "line 2 says 2 boxes but 1 box lines follow"),
])
def test_empty_or_malformed_prediction_txt_names_the_file(tmp_path, content, words):
    gt = wf.load_ground_truth(gt_dir_with(tmp_path))
    path = tmp_path / "pred" / "0--Parade" / "img_0.txt"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    raises_one_line(lambda: wf.read_predictions(str(tmp_path / "pred"), gt, log=None), path, words)


def test_prediction_file_without_boxes_counts_faces_as_missed(tmp_path):
    gt = wf.load_ground_truth(gt_dir_with(tmp_path))
    path = tmp_path / "pred" / "0--Parade" / "img_0.txt"
    path.parent.mkdir(parents=True)
    path.write_text("img_0.jpg\n0\n")
    result = wf.evaluate(wf.read_predictions(str(tmp_path / "pred"), gt, log=None), gt)
    assert [result[s] for s in ("easy", "medium", "hard")] == [0.0, 0.0, 0.0]
    raises_one_line(lambda: wf.read_predictions(str(tmp_path / "nowhere"), gt), "prediction directory not found")


# ---------------------------------------------------------------- COCO evaluation inputs (in-process)


GT = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}], "categories": [{"id": 1, "name": "a"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 3, 3]}]}
RESULT = {"image_id": 1, "category_id": 1, "bbox": [1, 1, 3, 3], "score": 0.9}


@pytest.mark.parametrize("gt, results, words", [
    (dict(GT, annotations={"1": {}}), [RESULT], "invalid top-level list 'annotations'"),
    (dict(GT, annotations=[7]), [RESULT], "every annotation must be a json object"),
    (dict(GT, images=[1]), [RESULT], "every entry of 'images' must be a json object"),
    (dict(GT, annotations=[dict(GT["annotations"][0], bbox="1 1 3 3")]), [RESULT], "annotation id 1 needs"),
    (GT, [dict(RESULT, bbox=[float("nan"), 1, 3, 3])], "result #0 bbox must be [x, y, w, h] of finite numbers"),
    (GT, [dict(RESULT, bbox=["1", 1, 3, 3])], "result #0 bbox"),
    (GT, [dict(RESULT, score="high")], "result #0 score must be a finite number"),
    (GT, [dict(RESULT, image_id=[1])], "result #0 image_id and category_id must be integer ids"),
    (GT, [dict(RESULT, category_id=2)], "result #0 has category_id 2"),
])
def test_coco_evaluation_rejects_malformed_gt_and_results(tmp_path, gt, results, words):
    gt_path = write_json(tmp_path / "gt.json", gt)
    dt_path = write_json(tmp_path / "dt.json", results)
    raises_one_line(lambda: coco_eval.evaluate(gt_path, dt_path, log=None), words)


def test_coco_evaluation_zero_byte_results(tmp_path):
    gt_path = write_json(tmp_path / "gt.json", GT)
    (tmp_path / "dt.json").write_bytes(b"")
    raises_one_line(lambda: coco_eval.evaluate(gt_path, str(tmp_path / "dt.json"), log=None),
                    "results file is empty (0 bytes)", "dt.json")


# ---------------------------------------------------------------- command line: one-line contract


def test_convert_cli_skips_and_counts(coco_data, tmp_path):
    """Unreadable image, degenerate box and image without annotations: skipped, counted, exit 0;
    then a zero-byte json or an empty image folder: one line, and the finished conversion survives."""
    root = copy_of(coco_data, tmp_path)
    ann_path = root / "annotations" / "train.json"
    data = json.loads(ann_path.read_text())
    first, second = data["images"][0], data["images"][1]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != second["id"]]
    data["annotations"].append({"id": 999, "image_id": first["id"], "category_id": 1, "bbox": [3, 3, -4, 5]})
    ann_path.write_text(json.dumps(data))
    jpg = root / "images" / "train" / data["images"][2]["file_name"]
    jpg.write_bytes(jpg.read_bytes()[:300])  # truncated
    args = ["--config", CENTERNET_CFG, "--coco_data_dir", root, "--mindrecord_dir", tmp_path / "mr"]
    proc = run_cli("centerdet", ["mindrecord", *args], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith("mindrecord: wrote 2 images")
    assert "skipped 1 unreadable images and 1 images without annotations" in summary
    assert "1 degenerate boxes dropped" in summary
    assert any(line.startswith("skip: ") and jpg.name in line for line in proc.stdout.splitlines())

    before = snapshot(tmp_path / "mr")
    args += ["--overwrite", "true"]  # converting again is asked for; failing, it must still lose nothing
    ann_path.write_bytes(b"")
    one_line_error(run_cli("centerdet", ["mindrecord", *args], tmp_path), "annotation file is empty (0 bytes)", ann_path)
    assert snapshot(tmp_path / "mr") == before
    ann_path.write_text(json.dumps(data))
    shutil.rmtree(root / "images" / "train")
    (root / "images" / "train").mkdir()  # empty folder
    one_line_error(run_cli("centerdet", ["mindrecord", *args], tmp_path), "no readable image among the 3 annotated images",
                   root / "images" / "train")
    assert snapshot(tmp_path / "mr") == before


def test_convert_cli_help_lists_its_flags(tmp_path):
    proc = run_cli("centerdet", ["mindrecord", "--help"], tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "--coco_data_dir" in proc.stdout and "--mindrecord_dir" in proc.stdout and "--split" in proc.stdout


def test_convert_cli_with_face_config_writes_face_rows(face_data, tmp_path):
    for ann in ("annotations/train.json", "annotations/train/label.txt"):
        out = tmp_path / os.path.basename(ann)
        proc = run_cli("centerdet", ["mindrecord", "--config", CENTERFACE_CFG, "--coco_data_dir", face_data,
                                                  "--mindrecord_dir", out, "--train_ann_file", ann], tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        faces = {im.id: len(im.boxes) for im in FaceDataset(str(face_data / ann), "", True).images}
        for image_id, flat in read_face_record(find_mindrecord(str(out), "synthetic_faces.train.mind")[0]):
            assert flat.size == faces[image_id] * row_columns(5)


def test_train_cli_bad_face_annotation_touches_nothing(face_data, tmp_path):
    root = copy_of(face_data, tmp_path)
    ann_path = root / "annotations" / "train.json"
    data = json.loads(ann_path.read_text())
    bad = data["annotations"][1]
    bad["keypoints"] = bad["keypoints"][:12]
    ann_path.write_text(json.dumps(data))
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "history.json").write_text('{"step": [1, 2]}')
    (ckpt / "centerface-1_2.ckpt").write_bytes(b"\x00weights")
    before = snapshot(ckpt)
    args = ["--config", CENTERFACE_CFG, "--data_dir", root, "--mindrecord_dir", tmp_path / "mr",
            "--save_checkpoint_path", ckpt, "--batch_size", "2", "--overwrite", "true"]
    # --overwrite replaces the earlier run only once the data is known to be good
    one_line_error(run_cli("train.py", args, tmp_path), ann_path, f"annotation id {bad['id']} has 12 keypoint values")
    assert snapshot(ckpt) == before
    assert not (tmp_path / "mr").exists() or snapshot(tmp_path / "mr") == {}

    cfg = tmp_path / "typo.yaml"
    cfg.write_text(open(find_config(CENTERFACE_CFG)).read() + "landmark_wieght: 0.1\n")
    one_line_error(run_cli("train.py", ["--config", cfg], tmp_path), "unknown config key 'landmark_wieght'", cfg)


def test_eval_cli_centernet_bad_val_json_keeps_old_results(coco_data, tmp_path):
    root = copy_of(coco_data, tmp_path)
    val = root / "annotations" / "val.json"
    data = json.loads(val.read_text())
    del data["images"]
    val.write_text(json.dumps(data))
    results = tmp_path / "results"
    results.mkdir()
    (results / "metrics.json").write_text('{"AP": 0.5}')
    (results / "results.json").write_text("[]")
    before = snapshot(results)
    args = ["--config", CENTERNET_CFG, "--data_dir", root, "--save_result_dir", results,
            "--load_checkpoint_path", tmp_path / "model.ckpt"]
    one_line_error(run_cli("eval.py", args, tmp_path), val, "missing top-level key 'images'")
    assert snapshot(results) == before
    one_line_error(run_cli("eval.py", args + ["--nms_iou", "[0.5]"], tmp_path), "config key 'nms_iou'")


def test_eval_cli_centerface_wrong_mat_structure(face_data, tmp_path):
    root = copy_of(face_data, tmp_path)
    mat = root / "ground_truth" / "wider_face_val.mat"
    scipy.io.savemat(mat, {"event_list": cell(["0--Parade"]), "file_list": cell(["0_Parade_0"]),
                           "face_bbx_list": np.zeros((1, 4))})
    results = tmp_path / "results"
    (results / "7").mkdir(parents=True)
    (results / "7" / "metrics.json").write_text('{"easy": 0.9}')
    before = snapshot(results)
    args = ["--config", CENTERFACE_CFG, "--data_dir", root, "--save_result_dir", results,
            "--load_checkpoint_path", tmp_path / "centerface-7_70.ckpt"]
    one_line_error(run_cli("eval.py", args, tmp_path), mat, "unexpected structure")
    assert snapshot(results) == before


def test_test_cli_zero_byte_val_json_and_wrong_yaml_type(face_data, tmp_path):
    root = copy_of(face_data, tmp_path)
    val = root / "annotations" / "val.json"
    val.write_bytes(b"")
    # test.py's --data_dir is the image folder, as the model zoo's; the json is named by its own key
    args = ["--config", CENTERFACE_CFG, "--data_dir", root / "images" / "val" / "images", "--val_ann_file", val,
            "--save_dir", tmp_path / "results", "--load_checkpoint_path", tmp_path / "model.ckpt"]
    one_line_error(run_cli("test.py", args, tmp_path), val, "empty (0 bytes)")
    assert not (tmp_path / "results").exists()
    cfg = tmp_path / "scalar.yaml"
    cfg.write_text("model: centerface\ninput_res_test: 256\n")
    one_line_error(run_cli("test.py", ["--config", cfg], tmp_path), "config key 'input_res_test' must be a list")


def test_widerface_cli_empty_prediction_keeps_old_metrics(face_data, tmp_path):
    gt_dir = face_data / "ground_truth"
    gt = wf.load_ground_truth(str(gt_dir))
    pred = tmp_path / "pred"
    for event, names, boxes in gt.events:
        for name, faces in zip(names, boxes):
            dets = np.concatenate([faces[:, :2], faces[:, :2] + faces[:, 2:] - 1, np.ones((len(faces), 1))], 1)
            wf.write_predictions(str(pred), event, name, dets)
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text('{"easy": 0.25, "medium": 0.5, "hard": 0.75}')
    (out / "pr_curves.png").write_bytes(b"\x89PNG old")
    before = snapshot(out)
    event, names, _ = gt.events[-1]
    empty = pred / event / f"{names[-1]}.txt"
    empty.write_bytes(b"")
    args = ["--pred", pred, "--gt", gt_dir, "--out", out]
    one_line_error(run_cli("centerdet.evaluation.widerface", args, tmp_path), empty,
                   "expected the image name on line 1")
    assert snapshot(out) == before
    (tmp_path / "empty_dir").mkdir()
    one_line_error(run_cli("centerdet.evaluation.widerface", ["--pred", tmp_path / "empty_dir", "--gt", gt_dir],
                           tmp_path), "no prediction files found under", tmp_path / "empty_dir")


# ---------------------------------------------------------------- property-based fuzzing


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


NUMBER = st.one_of(st.integers(-10 ** 6, 10 ** 6), st.floats(allow_nan=True, allow_infinity=True),
                   st.floats(-300, 300), st.integers(10 ** 300, 10 ** 320))
JUNK = st.one_of(st.none(), st.booleans(), st.text(max_size=4), st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))
BBOX = st.one_of(st.lists(NUMBER, min_size=4, max_size=4), st.lists(NUMBER, min_size=4, max_size=4),
                 st.lists(st.one_of(NUMBER, JUNK), min_size=4, max_size=4), st.lists(NUMBER, max_size=6), JUNK)


@st.composite
def coco_documents(draw):
    size = st.one_of(st.integers(-2, 120), st.integers(-2, 120), JUNK, st.floats(allow_nan=True))
    images = [{"id": i, "file_name": f"{i}.jpg", "width": draw(size), "height": draw(size)} for i in (1, 2)]
    anns = []
    for k in range(draw(st.integers(0, 6))):
        ann = {"id": k + 1, "image_id": draw(st.one_of(st.sampled_from([1, 2, 2, 1.0, "1", 9]), JUNK)),
               "category_id": draw(st.one_of(st.sampled_from([3, 7, 7, 3, 4, "3"]), JUNK)),
               "bbox": draw(BBOX), "iscrowd": draw(st.sampled_from([0, 1, None]))}
        for key in draw(st.sets(st.sampled_from(sorted(ann)), max_size=1)):
            del ann[key]
        anns.append(draw(st.one_of(st.just(ann), st.just(ann), st.just(ann), JUNK)))
    return {"images": images, "categories": [{"id": 3, "name": "x"}, {"id": 7, "name": "y"}], "annotations": anns}


def read_or_one_line_error(reader, path, img_dir):
    """The dataset ``reader`` makes of ``path``, or None after checking that its error is one line
    naming the file."""
    try:
        return reader(path, img_dir)
    except CenterDetError as exc:
        assert path in str(exc) and "\n" not in str(exc)
        return None


@FUZZ
@given(doc=coco_documents())
def test_fuzz_coco_reader_keeps_only_valid_boxes_or_raises(fuzz_dir, doc):
    path = str(fuzz_dir / "coco.json")
    with open(path, "w") as f:
        json.dump(doc, f)  # NaN/Infinity as json's common extension, which Python reads back
    ds = read_or_one_line_error(DetectionDataset, path, str(fuzz_dir))
    if ds is None:
        return
    kept = 0
    for im in ds.images:
        assert im.boxes.dtype == np.float32 and im.boxes.shape == (len(im.labels), 4)
        for box in im.boxes:
            assert valid_box(box, im.width, im.height), (box, im.width, im.height)
        assert ((im.labels >= 0) & (im.labels < ds.num_classes)).all()
        kept += len(im.boxes)
    assert kept + ds.stats.dropped == len(doc["annotations"])  # every annotation kept or counted


TOKEN = st.one_of(st.integers(-50, 150).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.sampled_from(["1e39", "-1", "0", "-1.0", "1_0", "0x1"]), st.text(max_size=3))
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@st.composite
def label_lines(draw):
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["header", "face", "face", "face", "junk"]))
        if kind == "header":
            size = draw(st.one_of(st.just(""), st.sampled_from([" 64 48", " 0 0", " ² 3", " 100 x"])))
            lines.append(f"# ev/{draw(st.integers(0, 6))}.jpg{size}")
        elif kind == "face":
            n = draw(st.sampled_from([4, 4, 20, 20, 5, 19]))
            lines.append(" ".join(draw(st.lists(TOKEN, min_size=n, max_size=n))))
        else:
            lines.append(draw(TEXT))
    return "\n".join(lines) + "\n"


@FUZZ
@given(text=label_lines())
def test_fuzz_label_txt_reader_keeps_only_valid_faces_or_raises(fuzz_dir, text):
    path = str(fuzz_dir / "label.txt")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    ds = read_or_one_line_error(FaceDataset, path, str(fuzz_dir))
    if ds is None:
        return
    kept = 0
    for im in ds.images:
        known = im.width > 0 and im.height > 0
        for box, points, visible in zip(im.boxes, im.keypoints, im.visible):
            assert valid_box(box, *((im.width, im.height) if known else (None, None))), (box, im)
            assert np.isfinite(points).all()
            if known:  # cleaned to the image: visible points lie inside it (hidden ones keep their values)
                assert ((points[visible] >= 0) & (points[visible] < [im.width, im.height])).all()
            else:  # as read: missing and non-finite points are (0, 0)
                assert not points[~visible].any()
        kept += len(im.boxes)
    # Face lines as the reader splits them (universal newlines): each one kept or counted as dropped.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    faces = sum(1 for line in lines if line.strip() and not line.startswith("#"))
    assert kept + ds.stats.dropped == faces


@st.composite
def map_boxes(draw):
    """Boxes in an output map (as the pipeline clips them to [0, size - 1]), some degenerate or NaN."""
    out_h, out_w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    tiny = st.sampled_from([0.0, 1e-45, 1e-38, 1e-30])  # a box this narrow still has a positive size
    coord = lambda hi: st.one_of(st.floats(0, hi, width=32), st.integers(0, hi).map(float), tiny)  # noqa: E731
    boxes = []
    for _ in range(draw(st.integers(0, 10))):
        box = [draw(coord(out_w - 1)), draw(coord(out_h - 1)), draw(coord(out_w - 1)), draw(coord(out_h - 1))]
        if draw(st.integers(0, 9)) == 0:
            box[draw(st.integers(0, 3))] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        boxes.append(box)
    return (out_h, out_w), np.array(boxes, np.float32).reshape(-1, 4)


def _valid(boxes):
    with np.errstate(invalid="ignore"):
        return np.isfinite(boxes).all(1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


def _check_common(t, boxes, out_size, max_objs):
    out_h, out_w = out_size
    hm = t["hm"]
    assert np.isfinite(hm).all() and hm.min() >= 0 and hm.max() <= 1
    for key in ("wh", "reg", "mask"):
        assert np.isfinite(t[key]).all(), key
    assert ((t["ind"] >= 0) & (t["ind"] < out_h * out_w)).all()
    valid = _valid(boxes[:max_objs])
    assert t["mask"].sum() == valid.sum() <= max_objs
    np.testing.assert_array_equal(t["mask"][:len(valid)] > 0, valid)
    assert ((t["reg"] >= 0) & (t["reg"] < 1)).all()
    return valid


@FUZZ
@given(case=map_boxes(), num_classes=st.integers(1, 3), max_objs=st.integers(1, 8), seed=st.integers(0, 2 ** 16))
def test_fuzz_centernet_targets(case, num_classes, max_objs, seed):
    out_size, boxes = case
    labels = np.random.default_rng(seed).integers(0, num_classes, len(boxes))
    t = encode_centernet(boxes, labels, out_size, num_classes, max_objs)
    valid = _check_common(t, boxes, out_size, max_objs)
    for k in np.flatnonzero(valid):  # each real object's integer centre is a peak of its class
        assert t["hm"][labels[k]].reshape(-1)[t["ind"][k]] == 1.0
        np.testing.assert_allclose(t["wh"][k], boxes[k, 2:] - boxes[k, :2], rtol=1e-6)


@FUZZ
@given(case=map_boxes(), max_objs=st.integers(1, 8), seed=st.integers(0, 2 ** 16))
def test_fuzz_centerface_targets(case, max_objs, seed):
    out_size, boxes = case
    rng = np.random.default_rng(seed)
    out_h, out_w = out_size
    landmarks = rng.uniform(0, 1, (len(boxes), 5, 2)) * [out_w - 1, out_h - 1]
    visible = rng.random((len(boxes), 5)) < 0.7
    t = encode_centerface(boxes, landmarks, visible, out_size, max_objs)
    valid = _check_common(t, boxes, out_size, max_objs)
    for key in ("wh_weight", "lm", "lm_mask"):
        assert np.isfinite(t[key]).all(), key
    assert not t["lm_mask"][t["mask"] == 0].any() and not t["lm"][t["lm_mask"] == 0].any()
    for k in np.flatnonzero(valid):
        assert t["hm"][0].reshape(-1)[t["ind"][k]] == 1.0
