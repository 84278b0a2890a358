"""Run a checkpoint on your own pictures: ``python -m centerdet.detect INPUT... [--config C]
--load_checkpoint_path CKPT [--out DIR] [--test_size original|N] [--bucket PX] [--key value ...]``.

INPUT: image files, folders (their images, sorted) and globs. For each image, DIR gets
``<name>.png`` (the detections drawn, score >= score_thresh) and ``<name>.json`` (every detection:
box [x1, y1, x2, y2] in image pixels, score, label, class, and the task's keypoints such as
CenterFace's 5 landmarks). ``--test_size original`` runs each image at its own size (padded),
``N`` scales its longest side to N first. Canvases are padded up to multiples of ``--bucket``
pixels (default 128) so that a folder of different sizes compiles a few graphs, not one per image.
Every other option is a config key (score_thresh, flip_test, multi_scales, device_target, ...).
"""
import glob
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from centerdet.errors import CenterDetError, cli_main

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
OWN_FLAGS = {"out": None, "test_size": "original", "bucket": "128"}


def split_argv(argv: Sequence[str]) -> Tuple[List[str], Dict[str, str], Dict[str, str], Optional[str]]:
    """(inputs, this command's flags, config overrides, config path) from a command line."""
    from centerdet.cli import parse_overrides

    inputs = []
    values, config_path = parse_overrides(argv, positional=inputs)
    own = {key: values.pop(key, default) for key, default in OWN_FLAGS.items()}
    return inputs, own, values, config_path


def expand_inputs(inputs: Sequence[str], log=print) -> Tuple[List[str], List[str]]:
    """(image files in order, inputs that gave none): folders list their images (sorted), globs
    their matches; a missing path or an empty folder is reported and counted, not fatal."""
    files, bad = [], []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, n) for n in os.listdir(item) if n.lower().endswith(IMAGE_SUFFIXES))
            what = f"no image ({', '.join(IMAGE_SUFFIXES)}) in folder"
        elif any(c in item for c in "*?["):
            found = sorted(p for p in glob.glob(item) if os.path.isfile(p))
            what = "no file matches"
        else:
            found = [item] if os.path.isfile(item) else []
            what = "not found"
        if not found:
            log(f"skip: {what}: {item}")
            bad.append(item)
        files += found
    return files, bad


def parse_test_size(text: str) -> Optional[int]:
    """'original' → None; 'N' → N (the longest side after scaling)."""
    if text == "original":
        return None
    if not text.isdigit() or int(text) < 32:
        raise CenterDetError(f"--test_size must be 'original' or a longest side in pixels (>= 32), got {text!r}")
    return int(text)


def output_names(files: Sequence[str]) -> List[str]:
    """A distinct output stem per file: its name without suffix, with the parent folder's name when
    two files share a name (a/x.jpg and b/x.jpg → a_x, b_x)."""
    stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
    names = []
    for f, stem in zip(files, stems):
        if stems.count(stem) > 1:
            stem = f"{os.path.basename(os.path.dirname(os.path.abspath(f)))}_{stem}"
        while stem in names:
            stem += "_"
        names.append(stem)
    return names


def detection_records(dets: np.ndarray, class_names: Optional[Sequence[str]]) -> List[dict]:
    """Rows [x1, y1, x2, y2, score, label, (x, y)...] → JSON-ready dicts, best score first."""
    records = []
    for row in sorted(np.asarray(dets, np.float64), key=lambda r: -r[4]):
        label = int(row[5])
        record = {"box": [round(float(v), 2) for v in row[:4]], "score": round(float(row[4]), 5), "label": label}
        if class_names and 0 <= label < len(class_names):
            record["class"] = class_names[label]
        if len(row) > 6:
            record["keypoints"] = [[round(float(x), 2), round(float(y), 2)] for x, y in row[6:].reshape(-1, 2)]
        records.append(record)
    return records


def run_images(predictor, files: Sequence[str], out_dir: str, cfg, class_names, longest: Optional[int],
               log=print) -> Tuple[int, List[str]]:
    """Detect, draw and write each file; returns (images done, unreadable files)."""
    from centerdet.data.images import read_image
    from centerdet.engine.progress import log_progress
    from centerdet.fileio import write_json
    from centerdet.visualize import draw_for_display, save_image

    bad, done, start = [], 0, time.time()
    for i, (path, name) in enumerate(zip(files, output_names(files))):
        try:
            img = read_image(path)
        except CenterDetError as exc:
            log(f"skip: {exc}")
            bad.append(path)
            continue
        h, w = img.shape[:2]
        dets = predictor(img, base_scale=longest / max(h, w) if longest else 1.0)
        save_image(os.path.join(out_dir, name + ".png"), draw_for_display(img, dets, class_names, cfg.score_thresh,
                                                                          min_side=0))
        write_json(os.path.join(out_dir, name + ".json"), {"image": path, "width": w, "height": h,
                                                           "detections": detection_records(dets, class_names)})
        done += 1
        log_progress("detect", i + 1, len(files), start, log, every=10)
    return done, bad


def detect(inputs: Sequence[str], cfg, out_dir: str, test_size: str = "original", bucket: int = 128,
           log=print) -> Dict[str, int]:
    """The whole command once parsed; returns the counts it ends with."""
    from centerdet import tasks
    from centerdet.engine.evaluator import load_detector
    from centerdet.fileio import ensure_writable_dir, refuse_overwrite
    from centerdet.inference import NET_MULTIPLE, Predictor

    if bucket < NET_MULTIPLE or bucket % NET_MULTIPLE:
        raise CenterDetError(f"--bucket must be a positive multiple of {NET_MULTIPLE}, got {bucket}")
    longest = parse_test_size(test_size)
    if not inputs:
        raise CenterDetError("give the images to run on: files, folders or globs")
    files, missing = expand_inputs(inputs, log)
    if not files:
        raise CenterDetError(f"no image among the inputs ({', '.join(inputs)})")
    refuse_overwrite(out_dir, "--out", cfg.overwrite)
    ensure_writable_dir(out_dir, "--out")
    predictor = Predictor(load_detector(cfg, log), cfg, multiple=bucket)
    log(f"detect: {len(files)} images -> {out_dir} (test size {test_size}, canvases in steps of {bucket} px)")
    done, unreadable = run_images(predictor, files, out_dir, cfg, tasks.of(cfg).class_names(cfg), longest, log)
    counts = {"images": done, "skipped": len(unreadable) + len(missing), "graphs": predictor.graphs}
    log(f"detect: {done} images done, {counts['skipped']} inputs skipped, {predictor.graphs} input shapes "
        f"compiled; results in {out_dir}")
    if done == 0:
        raise CenterDetError(f"no input could be read ({counts['skipped']} skipped, named above)")
    return counts


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> int:
    import dataclasses

    from centerdet.config import load_config

    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    inputs, own, overrides, config_path = split_argv(argv)
    cfg = load_config(config_path, overrides)
    cfg = dataclasses.replace(cfg, keep_res=True)  # each picture at its own shape
    if not own["bucket"].isdigit():
        raise CenterDetError(f"--bucket must be a whole number of pixels, got {own['bucket']!r}")
    out = own["out"] or os.path.join(cfg.output_dir, cfg.run_name, "detect")
    detect(inputs, cfg, out, own["test_size"], int(own["bucket"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
