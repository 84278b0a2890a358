"""Run a checkpoint on your own pictures and videos: ``python -m centerdet.detect INPUT... [--config C]
--load_checkpoint_path CKPT [--out DIR] [--test_size original|N] [--bucket PX] [--blur | --mosaic]
[--mask_scale S] [--video_codec mp4v|mjpg|ffv1] [--max_frames N] [--batch N] [--compile_after K]
[--key value ...]``.

INPUT: image files, video files, folders (their images and videos, sorted), globs, and camera
indices (``0``). For an image, DIR gets ``<name>.png`` (the detections with score >= score_thresh
drawn, or hidden with --blur/--mosaic) and ``<name>.json`` (those detections: box [x1, y1, x2, y2]
in image pixels, score, label, class, and the task's keypoints such as CenterFace's 5 landmarks),
plus the task's own format (faces: WIDER FACE's ``<name>.txt``). For a video or a camera,
``<name>.mp4`` (same size and frame rate; .avi for mjpg, lossless .mkv for ffv1) and one JSON with
an entry per frame. ``--test_size original`` runs each picture at its own size, ``N`` scales its
longest side to N first; canvases are padded up to multiples of ``--bucket`` pixels (default 128)
so nearby sizes share one. A canvas shape runs op by op (PyNative) until its K-th network call
(``--compile_after K``, default 4), which compiles a graph for it: a folder of photos that all
differ pays no compile, a video one after three frames; ``--compile_after 1`` compiles every
shape at its first call, config ``mode: pynative`` never compiles. ``--batch N`` runs up to N
consecutive images per network call (those of one canvas shape together). ``--mask_scale`` grows
the hidden regions (1.3 covers hair and chin). Every other option is a config key (score_thresh,
flip_test, multi_scales, device_target, overwrite, ...).
"""
import dataclasses
import glob
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from centerdet import graph_cache
from centerdet.cli import BOOL_WORDS, parse_overrides
from centerdet.errors import CenterDetError, cli_main
from centerdet.media import CODECS, IMAGE_SUFFIXES, VIDEO_SUFFIXES, kind_of

OWN_FLAGS = {"out": None, "test_size": "original", "bucket": "128", "blur": "false", "mosaic": "false",
             "mask_scale": "1.0", "video_codec": "mp4v", "max_frames": "0", "batch": "1",
             "compile_after": "4"}
SWITCHES = ("blur", "mosaic")


@dataclasses.dataclass(frozen=True)
class Options:
    """detect's own flags, checked."""
    out: str
    longest: Optional[int] = None   # None: each picture at its own size
    bucket: int = 128
    hide: Optional[str] = None      # "blur" or "mosaic"
    mask_scale: float = 1.0
    video_codec: str = "mp4v"
    max_frames: int = 0             # 0: every frame
    batch: int = 1                  # images of one canvas shape per network call
    compile_after: int = 4          # network calls of a canvas shape before it is compiled


def split_argv(argv: Sequence[str]) -> Tuple[List[str], Dict[str, str], Dict[str, str], Optional[str]]:
    """(inputs, this command's flags, config overrides, config path) from a command line."""
    inputs = []
    values, config_path = parse_overrides(argv, positional=inputs, switches=SWITCHES)
    own = {key: values.pop(key, default) for key, default in OWN_FLAGS.items()}
    return inputs, own, values, config_path


def parse_options(own: Dict[str, str], default_out: str) -> Options:
    """Options from the text of detect's flags, with a one-line error naming a bad one."""
    from centerdet.inference import NET_MULTIPLE

    def whole(flag, low):
        text = own[flag]
        if not text.isdigit() or int(text) < low:
            raise CenterDetError(f"--{flag} must be a whole number >= {low}, got {text!r}")
        return int(text)

    flags = {}
    for flag in SWITCHES:
        word = own[flag].lower()
        if word not in BOOL_WORDS:
            raise CenterDetError(f"--{flag} takes no value (or true/false), got {own[flag]!r}")
        flags[flag] = word in ("true", "yes", "on")
    if flags["blur"] and flags["mosaic"]:
        raise CenterDetError("--blur and --mosaic hide faces in two different ways: choose one")
    bucket = whole("bucket", NET_MULTIPLE)
    if bucket % NET_MULTIPLE:
        raise CenterDetError(f"--bucket must be a positive multiple of {NET_MULTIPLE}, got {bucket}")
    try:
        mask_scale = float(own["mask_scale"])
    except ValueError:
        mask_scale = float("nan")
    if not 0 < mask_scale < 10:
        raise CenterDetError(f"--mask_scale must be a number in (0, 10), got {own['mask_scale']!r}")
    if own["video_codec"] not in CODECS:
        raise CenterDetError(f"--video_codec must be one of {', '.join(CODECS)}, got {own['video_codec']!r}")
    longest = None if own["test_size"] == "original" else own["test_size"]
    if longest is not None and (not longest.isdigit() or int(longest) < 32):
        raise CenterDetError(f"--test_size must be 'original' or a longest side in pixels (>= 32), "
                             f"got {own['test_size']!r}")
    return Options(out=own["out"] or default_out, longest=None if longest is None else int(longest),
                   bucket=bucket, hide="blur" if flags["blur"] else "mosaic" if flags["mosaic"] else None,
                   mask_scale=mask_scale, video_codec=own["video_codec"], max_frames=whole("max_frames", 0),
                   batch=whole("batch", 1), compile_after=whole("compile_after", 1))


def expand_inputs(inputs: Sequence[str], log=print) -> Tuple[List[str], List[str]]:
    """(images, videos and cameras in order, inputs that gave none): folders list their images and
    videos (sorted), globs their matches; a missing path or an empty folder is reported and counted."""
    media = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    files, bad = [], []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, n) for n in os.listdir(item) if n.lower().endswith(media))
            what = "no image or video in folder"
        elif any(c in item for c in "*?["):
            found = sorted(p for p in glob.glob(item) if os.path.isfile(p))
            what = "no file matches"
        else:
            found = [item] if os.path.isfile(item) or kind_of(item) == "camera" else []
            what = "not found"
        if not found:
            log(f"skip: {what}: {item}")
            bad.append(item)
        files += found
    return files, bad


def output_names(files: Sequence[str]) -> List[str]:
    """A distinct output stem per input: its name without suffix; when two share one, with the
    parent folder's name (a/x.jpg, b/x.jpg → a_x, b_x) or, in one folder, the suffix (x.avi, x.mp4 →
    x_avi, x_mp4); camera 0 → camera0."""
    stems = [f"camera{f}" if kind_of(f) == "camera" else os.path.splitext(os.path.basename(f))[0] for f in files]
    parents = [os.path.dirname(os.path.abspath(f)) for f in files]
    names = []
    for f, stem, parent in zip(files, stems, parents):
        same = [p for s, p in zip(stems, parents) if s == stem]
        if len(same) > 1 and kind_of(f) != "camera":
            suffix = os.path.splitext(f)[1].lstrip(".").lower()
            stem = f"{stem}_{suffix}" if same.count(parent) > 1 else f"{os.path.basename(parent)}_{stem}"
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


class Detector:
    """A checkpoint's detections on one picture at a time, and the picture shown or hidden."""

    def __init__(self, cfg, opts: Options, log=print):
        from centerdet import tasks
        from centerdet.engine.evaluator import load_network
        from centerdet.inference import Predictor

        self.cfg, self.opts, self.task = cfg, opts, tasks.of(cfg)
        # graph mode: the first calls of a shape run op by op, its compile_after-th compiles it
        staged = cfg.mode == "graph" and opts.compile_after > 1
        net = load_network(dataclasses.replace(cfg, mode="pynative") if staged else cfg, log)
        self.predictor = Predictor(net, cfg, multiple=opts.bucket, corner=True,
                                   compile_after=opts.compile_after if cfg.mode == "graph" else 0)
        self.class_names = self.task.class_names(cfg)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """Detections with score >= score_thresh, best first, in the picture's pixels."""
        return self.many([img])[0]

    def many(self, imgs: Sequence[np.ndarray]) -> List[np.ndarray]:
        """__call__ on several pictures; those of one canvas shape in one network call."""
        scales = [self.opts.longest / max(img.shape[:2]) if self.opts.longest else 1.0 for img in imgs]
        result = []
        for dets in self.predictor.predict_many(imgs, scales):
            dets = np.asarray(dets, np.float32)
            dets = dets[dets[:, 4] >= self.cfg.score_thresh]
            result.append(dets[np.argsort(-dets[:, 4], kind="stable")])
        return result

    def render(self, img: np.ndarray, dets: np.ndarray) -> np.ndarray:
        from centerdet.anonymize import anonymize
        from centerdet.visualize import draw_for_display

        if self.opts.hide:
            return anonymize(img, dets[:, :4], self.opts.hide, self.opts.mask_scale)
        return draw_for_display(img, dets, self.class_names, self.cfg.score_thresh, min_side=0)


def write_image(detector: Detector, path: str, name: str, img: np.ndarray, dets: np.ndarray) -> None:
    from centerdet.fileio import write_json, write_text
    from centerdet.visualize import save_image

    out = detector.opts.out
    save_image(os.path.join(out, name + ".png"), detector.render(img, dets))
    write_json(os.path.join(out, name + ".json"), {"image": path, "width": img.shape[1], "height": img.shape[0],
                                                   "detections": detection_records(dets, detector.class_names)})
    for file_name, text in detector.task.detection_files(name, dets).items():
        write_text(os.path.join(out, file_name), text)


def run_video(detector: Detector, source: str, name: str, log=print) -> int:
    """Every frame detected, drawn into ``<name>.<ext>`` at the source's size and rate; the JSON
    holds one entry per frame. A camera runs until it stops, --max_frames, or Ctrl-C."""
    from centerdet.engine.progress import log_progress
    from centerdet.fileio import write_json
    from centerdet.media import VideoReader, VideoSink

    reader = VideoReader(source)
    limit = detector.opts.max_frames or None
    total = min(filter(None, (reader.frame_count, limit)), default=None)
    out_path = os.path.join(detector.opts.out, name + CODECS[detector.opts.video_codec][1])
    sink, frames, start = None, [], time.time()
    try:
        for i, frame in enumerate(reader):
            if sink is None:
                sink = VideoSink(out_path, reader.fps, (frame.shape[1], frame.shape[0]), detector.opts.video_codec)
            dets = detector(frame)
            sink.write(detector.render(frame, dets))
            frames.append({"frame": i, "time": round(i / reader.fps, 4),
                           "detections": detection_records(dets, detector.class_names)})
            log_progress(f"detect {name}", i + 1, total, start, log, every=25, unit="frames")
            if limit and i + 1 >= limit:
                break
    except KeyboardInterrupt:  # a camera's usual end: keep what was recorded
        log(f"detect {name}: stopped after {len(frames)} frames")
    except BaseException:
        if sink is not None:
            sink.abandon()
        raise
    if sink is None:
        raise CenterDetError(f"video {source} has no frame OpenCV can decode")
    sink.close()
    if limit is None or len(frames) < limit:
        warning = reader.shortfall()
        if warning:
            log(warning)
    width, height = sink.size
    write_json(os.path.join(detector.opts.out, name + ".json"),
               {"video": source, "width": width, "height": height, "fps": reader.fps, "frames": frames})
    return len(frames)


def detect(inputs: Sequence[str], cfg, opts: Options, log=print) -> Dict[str, int]:
    """The whole command once parsed; returns the counts it ends with."""
    from centerdet.data.images import read_image
    from centerdet.engine.progress import log_progress
    from centerdet.fileio import ensure_writable_dir, refuse_overwrite

    if not inputs:
        raise CenterDetError("give the pictures to run on: image or video files, folders, globs or a camera index")
    files, missing = expand_inputs(inputs, log)
    if not files:
        raise CenterDetError(f"no image or video among the inputs ({', '.join(inputs)})")
    if os.path.isfile(opts.out):
        raise CenterDetError(f"--out {opts.out} is a file: give a folder to write the results in")
    refuse_overwrite(opts.out, "--out", cfg.overwrite)
    ensure_writable_dir(opts.out, "--out")
    detector, loaded_before = Detector(cfg, opts, log), graph_cache.stats["loaded"]
    size = "original" if opts.longest is None else f"longest side {opts.longest}"
    log(f"detect: {len(files)} inputs -> {opts.out} (test size {size}, canvases in steps of {opts.bucket} px"
        f"{', faces hidden by ' + opts.hide if opts.hide else ''})")
    counts, start = {"images": 0, "videos": 0, "frames": 0, "skipped": len(missing)}, time.time()
    pending = []  # (path, name, image) read and waiting for a full --batch

    def flush():
        batch = pending[:]
        pending.clear()
        for (path, name, img), dets in zip(batch, detector.many([b[2] for b in batch])):
            write_image(detector, path, name, img, dets)
            counts["images"] += 1

    for i, (path, name) in enumerate(zip(files, output_names(files))):
        try:
            if kind_of(path) in ("video", "camera"):
                flush()
                counts["frames"] += run_video(detector, path, name, log)
                counts["videos"] += 1
            else:
                pending.append((path, name, read_image(path)))
                if len(pending) >= opts.batch:
                    flush()
        except CenterDetError as exc:
            log(f"skip: {exc}")
            counts["skipped"] += 1
        log_progress("detect", i + 1, len(files), start, log, every=10, unit="inputs")
    try:
        flush()  # the last, partial batch
    except CenterDetError as exc:
        log(f"skip: {exc}")
    counts["graphs"] = detector.predictor.graphs
    loaded = graph_cache.stats["loaded"] - loaded_before
    loaded = f" ({loaded} from the graph cache)" if loaded else ""
    log(f"detect: {counts['images']} images and {counts['videos']} videos ({counts['frames']} frames) done, "
        f"{counts['skipped']} inputs skipped, {counts['graphs']} input shapes compiled{loaded}; results in {opts.out}")
    if counts["images"] + counts["videos"] == 0:
        raise CenterDetError(f"no input could be read ({counts['skipped']} skipped, named above)")
    return counts


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> int:
    from centerdet.config import load_config

    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    inputs, own, overrides, config_path = split_argv(argv)
    cfg = load_config(config_path, overrides)
    opts = parse_options(own, os.path.join(cfg.output_dir, cfg.run_name, "detect"))
    detect(inputs, cfg, opts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
