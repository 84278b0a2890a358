"""python -m centerdet.detect on images, folders, globs and videos: files written, shapes bucketed,
faces hidden inside their boxes only, bad inputs named and counted, nothing overwritten."""
import json
import os
import re

import cv2
import numpy as np
import pytest

from centerdet.detect import (detect, detection_records, expand_inputs, main, output_names, parse_options,
                              split_argv)
from centerdet.errors import CenterDetError

FACES = "centerface_mbv2_1xb16-20e_synthetic"


def test_split_argv_separates_inputs_own_flags_and_config_keys():
    inputs, own, rest, config = split_argv(["a.jpg", "--out", "o", "dir", "--score_thresh=0.5", "--test_size", "640",
                                            "b*", "--config", "c.yaml"])
    assert inputs == ["a.jpg", "dir", "b*"] and config == "c.yaml"
    assert (own["out"], own["test_size"], own["bucket"], own["blur"]) == ("o", "640", "128", "false")
    assert rest == {"score_thresh": "0.5"}
    # --blur and --mosaic stand alone (a following input is not their value) or take true/false
    inputs, own, _, _ = split_argv(["--blur", "a.jpg", "--mosaic", "false", "b.mp4"])
    assert inputs == ["a.jpg", "b.mp4"] and (own["blur"], own["mosaic"]) == ("true", "false")
    with pytest.raises(CenterDetError, match="option --config needs a value"):
        split_argv(["x.jpg", "--config"])


def test_output_names_stay_distinct():
    assert output_names(["a/x.jpg", "b/x.png", "c/y.jpg", "0"]) == ["a_x", "b_x", "y", "camera0"]
    assert output_names(["c/y.avi", "c/y.mp4", "d/y.mp4"]) == ["y_avi", "y_mp4", "d_y"]


@pytest.mark.parametrize("flag, value, message", [
    ("bucket", "100", "--bucket must be a positive multiple of 32, got 100"),
    ("bucket", "x", "--bucket must be a whole number >= 32, got 'x'"),
    ("test_size", "big", "--test_size must be 'original' or a longest side in pixels"),
    ("mask_scale", "-1", "--mask_scale must be a number in (0, 10), got '-1'"),
    ("video_codec", "h264", "--video_codec must be one of mp4v, mjpg, ffv1, got 'h264'"),
    ("max_frames", "-3", "--max_frames must be a whole number >= 0"),
    ("compile_after", "0", "--compile_after must be a whole number >= 1, got '0'"),
    ("blur", "maybe", "--blur takes no value (or true/false), got 'maybe'"),
])
def test_bad_options_are_one_line_errors(flag, value, message):
    own = split_argv([])[1]
    with pytest.raises(CenterDetError, match=re.escape(message)):
        parse_options({**own, flag: value}, "o")
    with pytest.raises(CenterDetError, match="choose one"):
        parse_options({**own, "blur": "true", "mosaic": "true"}, "o")
    opts = parse_options({**own, "mosaic": "true", "test_size": "640"}, "o")
    assert (opts.hide, opts.longest, opts.out, opts.bucket) == ("mosaic", 640, "o", 128)


def test_detection_records_sort_by_score_and_carry_keypoints():
    dets = np.array([[1, 2, 3, 4, 0.2, 0, 5, 6, 7, 8], [10, 20, 30, 40, 0.9, 0, 1, 1, 2, 2]], np.float32)
    records = detection_records(dets, ["face"])
    assert [r["score"] for r in records] == [0.9, 0.2]
    assert records[0] == {"box": [10.0, 20.0, 30.0, 40.0], "score": 0.9, "label": 0, "class": "face",
                          "keypoints": [[1.0, 1.0], [2.0, 2.0]]}
    assert "keypoints" not in detection_records(dets[:, :6], None)[0] and "class" not in detection_records(dets, None)[0]


def test_expand_inputs_names_what_gave_nothing(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "empty").mkdir()
    for name in ("b.jpg", "a.PNG", "notes.txt"):
        (tmp_path / "d" / name).write_bytes(b"x")
    lines = []
    files, bad = expand_inputs([str(tmp_path / "d"), str(tmp_path / "empty"), str(tmp_path / "nope.jpg"),
                                str(tmp_path / "d" / "*.jpg"), str(tmp_path / "z*")], lines.append)
    assert files == [str(tmp_path / "d" / n) for n in ("a.PNG", "b.jpg", "b.jpg")]
    assert bad == [str(tmp_path / "empty"), str(tmp_path / "nope.jpg"), str(tmp_path / "z*")]
    assert lines[1] == f"skip: not found: {tmp_path / 'nope.jpg'}" and lines[0].startswith("skip: no image")


def test_detect_writes_pictures_and_json_and_compiles_one_graph_per_bucket(face_checkpoint, tmp_path, capsys):
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    sizes = {"p1": (100, 120), "p2": (110, 90), "p3": (120, 126)}
    for name, (h, w) in sizes.items():
        cv2.imwrite(str(photos / f"{name}.png"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "out"
    args = [str(photos), str(tmp_path / "missing.jpg"), "--config", FACES, "--load_checkpoint_path", face_checkpoint,
            "--out", str(out), "--score_thresh", "0.0"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(os.listdir(out)) == sorted(f"{n}.{ext}" for n in sizes for ext in ("json", "png", "txt"))
    for name, (h, w) in sizes.items():
        record = json.loads((out / f"{name}.json").read_text())
        assert (record["width"], record["height"]) == (w, h) and record["image"] == str(photos / f"{name}.png")
        assert record["detections"] and all(len(d["keypoints"]) == 5 and d["class"] == "face"
                                            for d in record["detections"])
        assert cv2.imread(str(out / f"{name}.png")).shape[:2] == (h, w)
        # the WIDER FACE layout: name, count, then x y w h score with w = x2 - x1 + 1, best first
        wider = (out / f"{name}.txt").read_text().splitlines()
        best = record["detections"][0]
        assert wider[:2] == [f"{name}.jpg", str(len(record["detections"]))]
        x, y, bw, bh, score = map(float, wider[2].split())
        x1, y1, x2, y2 = best["box"]
        assert np.allclose([x, y, bw, bh, score], [x1, y1, x2 - x1 + 1, y2 - y1 + 1, best["score"]], atol=0.06)
    # all three canvases fit one 128-px bucket, and three calls of a shape run op by op (the
    # fourth would compile it)
    assert lines[-1] == (f"detect: 3 images and 0 videos (0 frames) done, 2 inputs skipped, 0 input shapes compiled; "
                         f"results in {out}")
    assert f"skip: cannot decode image (corrupt, truncated or not an image): {photos / 'broken.jpg'}" in lines
    assert f"skip: not found: {tmp_path / 'missing.jpg'}" in lines
    from centerdet.config import load_config
    cfg = load_config(FACES, {"load_checkpoint_path": face_checkpoint, "score_thresh": "0.0"})
    own = split_argv([])[1]
    with pytest.raises(CenterDetError, match=f"--out {out} already holds an earlier run's results"):
        detect([str(photos)], cfg, parse_options(own, str(out)), log=lambda line: None)
    # canvases 128x128, 128x96, 128x128 at 32-px steps: two graphs compiled at first sight; by
    # default a shape runs op by op on its first call, so only the one seen twice is compiled
    counts = {after: detect([str(photos)], cfg, parse_options({**own, "bucket": "32", "compile_after": after},
                                                              str(tmp_path / f"b32_{after}")), log=lambda line: None)
              for after in ("1", "2")}
    assert counts["1"] == {"images": 3, "videos": 0, "frames": 0, "skipped": 1, "graphs": 2}
    assert counts["2"] == {**counts["1"], "graphs": 1}
    for name in sizes:  # op by op and compiled give the same detections
        compiled, staged = (json.loads((tmp_path / f"b32_{a}" / f"{name}.json").read_text())["detections"]
                            for a in ("1", "2"))
        assert len(compiled) == len(staged) > 0
        for c, s in zip(compiled, staged):
            assert np.allclose(c["box"] + [c["score"]], s["box"] + [s["score"]], atol=1e-3)
    with pytest.raises(CenterDetError, match=r"no image or video among the inputs"):
        detect([str(tmp_path / "missing.jpg")], cfg, parse_options(own, str(tmp_path / "out2")), log=lambda line: None)


def test_batch_gives_the_detections_of_one_image_at_a_time(face_checkpoint, tmp_path):
    rng = np.random.default_rng(5)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, (h, w) in {"a": (100, 120), "b": (120, 126), "c": (70, 60), "d": (110, 90)}.items():
        cv2.imwrite(str(photos / f"{name}.png"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    from centerdet.config import load_config
    cfg = load_config(FACES, {"load_checkpoint_path": face_checkpoint, "score_thresh": "0.01", "flip_test": "true"})
    own = split_argv([])[1]
    one = detect([str(photos)], cfg, parse_options({**own, "bucket": "32"}, str(tmp_path / "one")), log=lambda _: None)
    three = detect([str(photos)], cfg, parse_options({**own, "bucket": "32", "batch": "3"}, str(tmp_path / "three")),
                   log=lambda _: None)
    assert one["images"] == three["images"] == 4
    for name in "abcd":
        a = json.loads((tmp_path / "one" / f"{name}.json").read_text())["detections"]
        b = json.loads((tmp_path / "three" / f"{name}.json").read_text())["detections"]
        assert len(a) == len(b) > 0
        assert np.allclose([d["box"] + [d["score"]] for d in a], [d["box"] + [d["score"]] for d in b], atol=0.02)
