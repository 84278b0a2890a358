"""postprocess.py's work: runner outputs + meta.json → eval.py's decode, NMS and metric (the one
inference runner, fed from files instead of the network) → the task's results, its metrics and the
model zoo's log file of them (CenterNet acc.log, CenterFace ap.log)."""
import dataclasses
import json
import os

import numpy as np

from centerdet import tasks
from centerdet.decode import sigmoid
from centerdet.deploy.files import load_meta, output_path, read_array
from centerdet.deploy.preprocess import fixed_shape_config
from centerdet.errors import CenterDetError
from centerdet.fileio import ensure_writable_dir, write_text


def postprocess(cfg, meta_dir, result_dir, out_dir, log=print):
    """Returns the metrics dict (the task metric's keys). The results are written into ``out_dir``,
    the metrics and the score log where the task's metric reports (``out_dir``, or beside it)."""
    from centerdet.engine.evaluator import run_inference
    from centerdet.inference import decode_heads, merge_scales

    meta = load_meta(meta_dir)
    if meta["model"] != cfg.model:
        raise CenterDetError(f"{meta_dir}/meta.json was written for {meta['model']}, the config is {cfg.model}")
    task = tasks.of(cfg)
    cfg = dataclasses.replace(fixed_shape_config(cfg), save_result_dir=ensure_writable_dir(out_dir, "save_result_dir"),
                              result_per_checkpoint=False, visual_image=False)
    heatmaps = {s.name for s in task.heads(cfg) if s.heatmap}
    entries = {json.dumps(e["key"]): e for e in meta["images"]}

    def detect(image):
        """eval.py's decode and merge on the runner's outputs (no image: nothing is drawn)."""
        entry = entries.get(json.dumps(image.key))
        if entry is None:
            raise CenterDetError(f"{image.path} has no input in {meta_dir}/meta.json (unreadable at preprocess)")
        maps = {}
        for k, (name, shape) in enumerate(zip(meta["heads"], meta["head_shapes"])):
            out = read_array(output_path(result_dir, entry["name"], k), shape)
            maps[name] = sigmoid(out) if name in heatmaps else out
        info = {"center": np.asarray(entry["center"], np.float32), "scale": np.float32(entry["scale"]),
                "out_size": tuple(entry["out_size"]), "test_scale": 1.0}
        return None, merge_scales([decode_heads(maps, info, cfg)], cfg)

    lines = []

    def both(line):
        lines.append(line)
        log(line)

    result = run_inference(cfg, detect=detect, log=both)
    path = os.path.join(result.report_dir, task.score_log)
    write_text(path, "\n".join(lines) + "\n")
    log(f"postprocess: {len(meta['images'])} inputs; results in {out_dir}, metrics and log in {result.report_dir}")
    return result.metrics
