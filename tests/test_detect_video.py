"""detect on videos (frame count, size and rate kept, a JSON entry per frame), faces hidden inside
their boxes and nowhere else (PNG and a lossless codec), and the bad inputs a user brings."""
import json
import os

import cv2
import numpy as np
import pytest

from centerdet.anonymize import anonymize, box_region
from centerdet.detect import main
from centerdet.errors import CenterDetError
from centerdet.media import VideoReader, kind_of, video_info

FACES = "centerface_mbv2_1xb16-20e_synthetic"
FPS, SIZE, FRAMES = 12.5, (160, 96), 12  # SIZE is (width, height), as OpenCV's video I/O takes it


def write_clip(path, codec="MJPG", frames=FRAMES, seed=0):
    """A short clip of smooth random shapes, written with OpenCV; returns its frames."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), FPS, SIZE)
    assert writer.isOpened()
    clip = []
    for i in range(frames):
        frame = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
        cv2.circle(frame, (20 + 8 * i, 48), 18, tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        frame = cv2.add(frame, rng.integers(0, 40, frame.shape, dtype=np.uint8))
        writer.write(frame)
        clip.append(frame)
    writer.release()
    return clip


def changed_outside(before, after, boxes, shape, mask_scale=1.0):
    """How many pixels differ outside every box's region."""
    outside = np.ones(shape[:2], bool)
    for box in boxes:
        x1, y1, x2, y2 = box_region(box, shape, mask_scale)
        outside[y1:y2, x1:x2] = False
    return int((np.abs(before.astype(int) - after.astype(int)).max(axis=2) * outside).astype(bool).sum())


def test_kind_of_names_cameras_videos_and_images(tmp_path):
    (tmp_path / "7").write_bytes(b"x")
    assert [kind_of(p) for p in ("0", str(tmp_path / "7"), "a.MP4", "b.jpeg", "c.txt")] == [
        "camera", "other", "video", "image", "other"]


def test_box_region_is_the_grown_box_clipped_to_the_image():
    assert box_region([10.2, 20.7, 30.0, 40.5], (100, 200)) == (10, 20, 30, 41)
    assert box_region([10, 20, 30, 40], (100, 200), mask_scale=2.0) == (0, 10, 40, 50)
    assert box_region([-5, 90, 10, 130], (100, 200)) == (0, 90, 10, 100)


@pytest.mark.parametrize("mode", ["blur", "mosaic"])
def test_anonymize_changes_only_pixels_inside_boxes(mode):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    boxes = np.array([[10.5, 12.2, 40.8, 50.1], [70, 60, 130, 100], [30, 30, 50, 45]])  # one past the edge
    out = anonymize(img, boxes, mode, mask_scale=1.2)
    assert changed_outside(img, out, boxes, img.shape, 1.2) == 0
    x1, y1, x2, y2 = box_region(boxes[0], img.shape, 1.2)
    inside, hidden = img[y1:y2, x1:x2].astype(float), out[y1:y2, x1:x2].astype(float)
    # the detail inside is gone: far smaller differences between neighbouring pixels
    assert np.abs(np.diff(hidden, axis=1)).mean() < 0.4 * np.abs(np.diff(inside, axis=1)).mean()
    assert np.array_equal(anonymize(img, np.zeros((0, 6)), mode), img)
    with pytest.raises(CenterDetError, match="anonymize mode must be one of blur, mosaic"):
        anonymize(img, boxes, "paint")


def test_video_in_video_out_same_frames_size_and_rate(face_checkpoint, tmp_path, capsys):
    clip = tmp_path / "clip.avi"
    write_clip(clip)
    out = tmp_path / "out"
    assert main([str(clip), "--config", FACES, "--load_checkpoint_path", face_checkpoint, "--out", str(out),
                 "--score_thresh", "0.05"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(os.listdir(out)) == ["clip.json", "clip.mp4"]
    assert video_info(str(out / "clip.mp4")) == (FRAMES, FPS, SIZE)
    record = json.loads((out / "clip.json").read_text())
    assert (record["width"], record["height"], record["fps"]) == (*SIZE, FPS)
    assert [f["frame"] for f in record["frames"]] == list(range(FRAMES))
    assert record["frames"][3]["time"] == pytest.approx(3 / FPS, abs=1e-4)
    assert all(d["score"] >= 0.05 and len(d["keypoints"]) == 5 for f in record["frames"] for d in f["detections"])
    assert any(f["detections"] for f in record["frames"])
    assert f"detect clip: {FRAMES}/{FRAMES} frames" in "\n".join(lines)
    assert lines[-1].startswith(f"detect: 0 images and 1 videos ({FRAMES} frames) done, 0 inputs skipped")
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # no temporary file left behind


def test_blur_on_a_lossless_video_and_a_png_touches_only_the_boxes(face_checkpoint, tmp_path):
    clip = tmp_path / "clip.avi"
    frames = write_clip(clip, codec="FFV1", frames=4)  # lossless in, lossless out: pixels comparable
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), frames[1])
    out = tmp_path / "out"
    assert main([str(clip), str(photo), "--blur", "--video_codec", "ffv1", "--mask_scale", "1.1", "--config",
                 FACES, "--load_checkpoint_path", face_checkpoint, "--out", str(out), "--score_thresh", "0.1"]) == 0
    shown = list(VideoReader(str(out / "clip.mkv")))
    record = json.loads((out / "clip.json").read_text())
    assert len(shown) == len(frames) == len(record["frames"])
    changed = 0
    for before, after, entry in zip(frames, shown, record["frames"]):
        boxes = [d["box"] for d in entry["detections"]]
        assert changed_outside(before, after, boxes, before.shape, 1.1) == 0
        changed += int((before != after).any())
    assert changed >= 2  # there were boxes, and their pixels were blurred
    boxes = [d["box"] for d in json.loads((out / "photo.json").read_text())["detections"]]
    hidden = cv2.imread(str(out / "photo.png"))
    assert boxes and changed_outside(frames[1], hidden, boxes, hidden.shape, 1.1) == 0
    assert not np.array_equal(hidden, frames[1])


def test_bad_inputs_are_one_line_each_and_the_run_goes_on(face_checkpoint, tmp_path, capsys):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.full((64, 64, 3), 128, np.uint8))
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 half a jpeg")
    (tmp_path / "empty").mkdir()
    write_clip(tmp_path / "full.avi")
    data = (tmp_path / "full.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])  # readable up to the cut
    write_clip(tmp_path / "full.mp4", codec="mp4v")
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # its index is gone: unreadable
    inputs = [str(tmp_path / n) for n in ("missing.png", "corrupt.jpg", "empty", "cut.avi", "cut.mp4", "good.png")]
    out = tmp_path / "out"
    base = ["--config", FACES, "--load_checkpoint_path", face_checkpoint]
    assert main(inputs + base + ["--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for expected in (f"skip: not found: {tmp_path / 'missing.png'}",
                     f"skip: cannot decode image (corrupt, truncated or not an image): {tmp_path / 'corrupt.jpg'}",
                     f"skip: no image or video in folder: {tmp_path / 'empty'}",
                     f"skip: cannot open video {tmp_path / 'cut.mp4'} (missing, truncated, or not a video OpenCV "
                     f"can decode)"):
        assert expected in lines
    [warning] = [line for line in lines if line.startswith("warning: ")]
    assert warning.startswith(f"warning: {tmp_path / 'cut.avi'}: read ") and "truncated" in warning
    assert lines[-1].startswith("detect: 1 images and 1 videos") and "4 inputs skipped" in lines[-1]
    assert sorted(os.listdir(out)) == ["cut_avi.json", "cut_avi.mp4", "good.json", "good.png", "good.txt"]
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    # an output path that cannot be written: a file where the folder should be; and no overwriting
    blocker = tmp_path / "taken"
    blocker.write_text("mine")
    for target, message in ((blocker, f"--out {blocker} is a file: give a folder"),
                            (blocker / "sub", f"--out is not writable: {blocker / 'sub'}"),
                            (out, f"--out {out} already holds an earlier run's results")):
        with pytest.raises(SystemExit) as stop:
            main([str(good)] + base + ["--out", str(target)])
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]
    assert blocker.read_text() == "mine" and {n: (out / n).read_bytes() for n in os.listdir(out)} == before
