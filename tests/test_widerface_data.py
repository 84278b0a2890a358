"""Face annotation formats: exact round trips, real-file conventions, one-line errors, official .mat files."""
import json
import os

import numpy as np
import pytest
import scipy.io

from centerdet.data.coco import BoxStats
from refs import (FaceDataset, FaceImage, read_face_annotations, read_ground_truth_mats, read_keypoint_json,
                  write_keypoint_json)

from centerdet.data.coco import clean_record as clean_faces
from centerdet.data.widerface import read_label_txt, write_ground_truth_mats, write_label_txt
from centerdet.errors import CenterDetError

# Same layout as the RetinaFace files: flag 0.0 = labelled landmark, -1 x 15 = no landmarks.
LABEL_TXT = """# 0--Parade/0_Parade_marchingband_1_5.jpg
120 80 64 77 139.25 108.5 0.0 166.75 107.125 0.0 153.5 124.0 0.0 142.0 138.3 0.0 163.9 137.7 0.0 0.87
30 40 9 11 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 0.2
# 1--Handshaking/1_Handshaking_Handshaking_1_94.jpg
# 2--Demonstration/2_Demonstration_Protesters_2_7.jpg
10.5 20.25 30 0 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 0.5
5 6 7 8
"""


def _faces(rng, n, width=200, height=150):
    """Random FaceImage with non-integer coordinates and some missing landmarks."""
    boxes = np.sort(rng.uniform(0, width, size=(n, 2, 2)), axis=1).reshape(n, 4)  # x1 <= x2, y1 <= y2
    boxes[:, 2:] += 1.0
    visible = rng.random((n, 5)) < 0.7
    points = np.where(visible[..., None], rng.uniform(0, width, size=(n, 5, 2)), 0.0)
    return FaceImage("ev/x.jpg", width, height, boxes.astype(np.float32), points.astype(np.float32), visible)


def _images(seed=0):
    rng = np.random.default_rng(seed)
    images = []
    for i, n in enumerate((3, 0, 5, 1)):
        im = _faces(rng, n)
        im.file_name = f"{i}--Event/{i}_Event_{i}.jpg"
        images.append(im)
    return images


def _assert_same(a, b, sizes=True):
    assert a.file_name == b.file_name
    if sizes:
        assert (a.width, a.height) == (b.width, b.height)
    for field in ("boxes", "keypoints", "visible"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), field


def test_label_txt_reads_the_retinaface_layout(tmp_path):
    path = tmp_path / "label.txt"
    path.write_text(LABEL_TXT)
    stats = BoxStats()
    images = read_label_txt(path, stats)
    assert [im.file_name for im in images] == ["0--Parade/0_Parade_marchingband_1_5.jpg",
                                               "1--Handshaking/1_Handshaking_Handshaking_1_94.jpg",
                                               "2--Demonstration/2_Demonstration_Protesters_2_7.jpg"]
    first = images[0]
    assert first.width == 0 and first.height == 0
    assert first.boxes.dtype == np.float32
    np.testing.assert_array_equal(first.boxes, [[120, 80, 184, 157], [30, 40, 39, 51]])
    assert first.visible.tolist() == [[True] * 5, [False] * 5]
    np.testing.assert_array_equal(first.keypoints[0, 2], np.float32([153.5, 124.0]))
    assert not first.keypoints[1].any()
    assert images[1].boxes.shape == (0, 4) and images[1].keypoints.shape == (0, 5, 2)
    # The zero-height face is dropped and counted; the 4-number face has no landmarks.
    assert stats.dropped == 1
    np.testing.assert_array_equal(images[2].boxes, [[5, 6, 12, 14]])
    assert not images[2].visible.any()


@pytest.mark.parametrize("landmarks", [True, False])
def test_label_txt_round_trip_is_exact(tmp_path, landmarks):
    images = _images()
    path = tmp_path / "label.txt"
    write_label_txt(path, images, landmarks=landmarks)
    back = read_label_txt(path)
    for a, b in zip(images, back):
        if not landmarks:
            a = FaceImage(a.file_name, a.width, a.height, a.boxes, np.zeros_like(a.keypoints),
                          np.zeros_like(a.visible))
        _assert_same(a, b, sizes=False)
    text = path.read_text().splitlines()
    assert text[0] == "# 0--Event/0_Event_0.jpg"
    assert {len(line.split()) for line in text if not line.startswith("#")} == {20 if landmarks else 4}
    if landmarks:
        assert "-1.0 -1.0 -1.0" in path.read_text()


def test_keypoint_json_round_trip_is_exact(tmp_path):
    images = _images(1)
    path = tmp_path / "train.json"
    write_keypoint_json(path, images, info={"note": "x"}, face_attrs=[{"blur": np.arange(len(im.boxes))}
                                                                      for im in images])
    back = read_keypoint_json(path)
    for a, b in zip(images, back):
        _assert_same(a, b)
    data = json.loads(path.read_text())
    assert data["categories"] == [{"id": 1, "name": "face", "supercategory": "face"}]
    ann = data["annotations"][0]
    assert len(ann["keypoints"]) == 15 and ann["category_id"] == 1 and ann["iscrowd"] == 0
    assert ann["num_keypoints"] == int(images[0].visible[0].sum())
    assert [a["blur"] for a in data["annotations"][:3]] == [0, 1, 2]
    # Missing points are 0, 0, 0 (CenterFace masks v = 0), visible ones v = 2.
    for a in data["annotations"]:
        triples = [tuple(a["keypoints"][3 * k:3 * k + 3]) for k in range(5)]
        assert all(t == (0, 0, 0) for t in triples if t[2] == 0) and all(t[2] == 2 for t in triples if t[2])
    assert read_face_annotations(path)[0].file_name == images[0].file_name


def test_json_and_txt_agree(tmp_path):
    images = _images(2)
    write_keypoint_json(tmp_path / "a.json", images)
    write_label_txt(tmp_path / "a.txt", images)
    for a, b in zip(read_face_annotations(tmp_path / "a.json"), read_face_annotations(tmp_path / "a.txt")):
        _assert_same(a, b, sizes=False)


def _write(tmp_path, text, name="label.txt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text,line,words", [
    ("1 2 3 4\n", 1, "before any"),
    ("# a.jpg\n1 2 3 4 5\n", 2, "5 numbers"),
    ("# a.jpg\n1 2 3 x\n", 2, "non-numeric"),
    ("# a.jpg\n1 2 3 4\n# b.jpg\n\n# a.jpg\n", 5, "listed twice"),
    ("# a.jpg\n#\n", 2, "without an image name"),
])
def test_label_txt_errors_name_file_and_line(tmp_path, text, line, words):
    path = _write(tmp_path, text)
    with pytest.raises(CenterDetError) as err:
        read_label_txt(path)
    msg = str(err.value)
    assert f"{path}:{line}:" in msg and words in msg and "\n" not in msg


def _json(tmp_path, images, annotations):
    return _write(tmp_path, json.dumps({"images": images, "annotations": annotations}), "ann.json")


IMAGE = {"id": 1, "file_name": "e/a.jpg", "width": 100, "height": 80}


def test_json_errors_name_annotation(tmp_path):
    bad_kps = {"id": 7, "image_id": 1, "bbox": [1, 2, 3, 4], "keypoints": [1, 2, 2] * 4}
    with pytest.raises(CenterDetError, match="annotation id 7 has 12 keypoint values"):
        read_keypoint_json(_json(tmp_path, [IMAGE], [bad_kps]))
    with pytest.raises(CenterDetError, match="listed twice"):
        read_keypoint_json(_json(tmp_path, [IMAGE, dict(IMAGE, id=2)], []))
    with pytest.raises(CenterDetError, match="annotation id 3 refers to image_id 9"):
        read_keypoint_json(_json(tmp_path, [IMAGE], [{"id": 3, "image_id": 9, "bbox": [1, 2, 3, 4]}]))
    with pytest.raises(CenterDetError, match="annotation id 4 has no 'bbox'"):
        read_keypoint_json(_json(tmp_path, [IMAGE], [{"id": 4, "image_id": 1}]))
    with pytest.raises(CenterDetError, match="not found"):
        read_face_annotations(tmp_path / "missing.json")
    with pytest.raises(CenterDetError, match="not found"):
        read_face_annotations(tmp_path / "missing.txt")
    with pytest.raises(CenterDetError, match="unknown face annotation format"):
        read_face_annotations(_write(tmp_path, "", "a.xml"))


def test_json_drops_empty_and_crowd_faces(tmp_path):
    anns = [{"id": 1, "image_id": 1, "bbox": [1, 2, 0, 4], "keypoints": [0] * 15},
            {"id": 2, "image_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 1},
            {"id": 3, "image_id": 1, "bbox": [1, 2, 3, 4], "keypoints": [2, 3, 1] + [0] * 12}]
    stats = BoxStats()
    (im,) = read_keypoint_json(_json(tmp_path, [IMAGE], anns), stats)
    assert (stats.dropped, stats.crowd) == (1, 1)
    np.testing.assert_array_equal(im.boxes, [[1, 2, 4, 6]])
    assert im.visible.tolist() == [[True, False, False, False, False]]


def test_clean_faces_clips_drops_and_hides_outside_landmarks():
    points = np.zeros((4, 5, 2), np.float32)
    points[0] = [[10, 10], [-3, 12], [15, 90], [12, 14], [16, 14]]
    im = FaceImage("a.jpg", 0, 0, np.array([[5, 5, 30, 30], [-10, 20, 20, 90], [60, 5, 80, 20], [10, 10, 10, 30]],
                                           np.float32), points, np.ones((4, 5), bool))
    stats = BoxStats()
    out = clean_faces(im, 50, 40, stats)
    assert (stats.clipped, stats.dropped) == (1, 2)
    assert (out.width, out.height) == (50, 40)
    np.testing.assert_array_equal(out.boxes, [[5, 5, 30, 30], [0, 20, 20, 40]])
    assert out.visible[0].tolist() == [True, False, False, True, True]
    np.testing.assert_array_equal(out.keypoints[0], points[0])  # values kept, only hidden
    assert out.keypoints.shape == (2, 5, 2) and im.boxes.shape == (4, 4)  # the input is untouched


def test_face_dataset(tmp_path):
    images = _images(3)
    write_keypoint_json(tmp_path / "train.json", images)
    ds = FaceDataset(str(tmp_path / "train.json"), "/data/img")
    assert len(ds) == 4 and ds.image_path(ds.images[0]) == os.path.join("/data/img", "0--Event/0_Event_0.jpg")
    assert len(FaceDataset(str(tmp_path / "train.json"), "/data/img", require_faces=True)) == 3
    write_label_txt(tmp_path / "label.txt", images)
    assert len(FaceDataset(str(tmp_path / "label.txt"), "x")) == 4
    # Sizes known from the json: boxes are clipped to them at load time and counted.
    anns = [{"id": 1, "image_id": 1, "bbox": [90, 70, 30, 30]}, {"id": 2, "image_id": 1, "bbox": [120, 5, 5, 5]}]
    ds = FaceDataset(_json(tmp_path, [IMAGE], anns), "x")
    np.testing.assert_array_equal(ds.images[0].boxes, [[90, 70, 100, 80]])
    assert (ds.stats.clipped, ds.stats.dropped) == (1, 1)


def _events():
    rng = np.random.default_rng(0)
    boxes = lambda m: np.round(rng.uniform(1, 90, size=(m, 4)), 1)  # noqa: E731
    return [
        ("0--Parade", [("0_Parade_marchingband_1_5", boxes(3), np.array([0]), np.array([0, 2]), np.arange(3)),
                       ("0_Parade_Parade_0_12", boxes(1), np.array([], int), np.array([], int), np.array([0]))]),
        ("1--Handshaking", [("1_Handshaking_1_7", boxes(0), np.array([], int), np.array([], int),
                             np.array([], int))]),
        ("2--Demonstration", [("2_Demonstration_3", boxes(2), np.array([1]), np.array([1]), np.array([0, 1])),
                              ("2_Demonstration_4", boxes(4), np.array([], int), np.array([3]),
                               np.array([0, 1, 3]))]),
    ]


def test_ground_truth_mats_have_the_official_structure(tmp_path):
    events = _events()
    paths = write_ground_truth_mats(tmp_path, events)
    assert sorted(os.path.basename(p) for p in paths.values()) == [
        "wider_easy_val.mat", "wider_face_val.mat", "wider_hard_val.mat", "wider_medium_val.mat"]
    face = scipy.io.loadmat(tmp_path / "wider_face_val.mat")
    assert face["event_list"].shape == face["file_list"].shape == face["face_bbx_list"].shape == (3, 1)
    for i, (event, images) in enumerate(events):
        assert face["event_list"][i][0][0] == event and isinstance(face["event_list"][i][0][0], str)
        assert face["file_list"][i][0].shape == (len(images), 1)
        for j, (name, xywh, *_) in enumerate(images):
            assert face["file_list"][i][0][j][0][0] == name
            bbx = face["face_bbx_list"][i][0][j][0]
            assert bbx.dtype == np.float64 and bbx.shape == (len(xywh), 4)
            np.testing.assert_array_equal(bbx, xywh)
    for k, setting in enumerate(("easy", "medium", "hard")):
        mat = scipy.io.loadmat(tmp_path / f"wider_{setting}_val.mat")
        assert mat["gt_list"].shape == (3, 1)
        for i, (event, images) in enumerate(events):
            assert mat["event_list"][i][0][0] == event
            for j, image in enumerate(images):
                assert mat["file_list"][i][0][j][0][0] == image[0]
                keep = mat["gt_list"][i][0][j][0]
                assert keep.dtype.kind == "i" and keep.shape == (len(image[2 + k]), 1)  # (0, 1) when empty
                np.testing.assert_array_equal(keep[:, 0], image[2 + k] + 1)  # 1-based


def test_ground_truth_mats_round_trip_and_are_reproducible(tmp_path):
    events = _events()
    write_ground_truth_mats(tmp_path / "a", events)
    write_ground_truth_mats(tmp_path / "b", events)
    for name in os.listdir(tmp_path / "a"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    back = read_ground_truth_mats(tmp_path / "a")
    assert [e for e, _ in back] == [e for e, _ in events]
    for (_, images), (_, images_back) in zip(events, back):
        for image, image_back in zip(images, images_back, strict=True):
            assert image[0] == image_back[0]
            for x, y in zip(image[1:], image_back[1:]):
                np.testing.assert_array_equal(np.asarray(x).reshape(y.shape), y)


def test_ground_truth_mats_reject_bad_input(tmp_path):
    with pytest.raises(CenterDetError, match="without folder or '.jpg'"):
        write_ground_truth_mats(tmp_path, [("0--Parade", [("a.jpg", np.zeros((1, 4)), [0], [0], [0])])])
    with pytest.raises(CenterDetError, match="below the face count 1"):
        write_ground_truth_mats(tmp_path, [("0--Parade", [("a", np.zeros((1, 4)), [1], [0], [0])])])
    with pytest.raises(CenterDetError, match="unique name"):
        write_ground_truth_mats(tmp_path, [("e", []), ("e", [])])
    with pytest.raises(CenterDetError, match="not found"):
        read_ground_truth_mats(tmp_path / "nowhere")
