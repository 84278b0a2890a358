"""The one inference runner: read each image of a metric's list, predict, feed the metric, draw.
eval.py, test.py, the demo and postprocess.py (detections from a deployed model's files) all run
through ``run_inference``; the task's metric decides what is written and scored."""
import dataclasses
import os
import re
import time
from typing import Callable, Dict, Optional

from centerdet import tasks
from centerdet.data.images import read_image
from centerdet.engine.progress import log_progress
from centerdet.errors import CenterDetError
from centerdet.fileio import ensure_writable_dir, refuse_overwrite


@dataclasses.dataclass
class EvalResult:
    """What an evaluation leaves: the metrics (None when only predictions were written), the folder
    of the results, the folder of the metrics and pictures (the same one unless the metric keeps
    its results folder clean: WIDER FACE's prediction tree), and the pictures' grid (or None)."""
    metrics: Optional[Dict[str, float]]
    out_dir: str
    report_dir: str
    picture: Optional[str] = None


def checkpoint_id(path: str) -> str:
    """'centerface-140_1234.ckpt' → '140' (the epoch, as the model zoo names its output folders)."""
    m = re.search(r"-(\d+)_\d+\.ckpt$", os.path.basename(path))
    return m.group(1) if m else os.path.splitext(os.path.basename(path))[0]


def result_dir(cfg) -> str:
    """save_result_dir, or with result_per_checkpoint its subfolder named for the checkpoint's epoch."""
    if not cfg.result_per_checkpoint:
        return cfg.save_result_dir
    run_id = checkpoint_id(cfg.load_checkpoint_path) if cfg.load_checkpoint_path else "latest"
    return os.path.join(cfg.save_result_dir, run_id)


def load_detector(cfg, log=print, log_kernels: bool = True):
    """Build the network of ``cfg`` and load ``load_checkpoint_path`` (required) for inference."""
    from centerdet.config import differences
    from centerdet.engine.checkpoint import load_weights, read_checkpoint, stored_config
    from centerdet.models import build_model
    from centerdet.runtime import init_device

    if not cfg.load_checkpoint_path:
        raise CenterDetError("config key 'load_checkpoint_path' is empty: give the checkpoint to evaluate")
    init_device(cfg.device_target, cfg.device_id, cfg.mode, cfg.cpu_kernels, cfg.compile_cache)
    params = read_checkpoint(cfg.load_checkpoint_path, log=log)
    stored = stored_config(cfg.load_checkpoint_path, params)
    changed = differences(stored, cfg) if stored else []
    if changed:
        log(f"warning: {cfg.load_checkpoint_path} was trained with {'; '.join(changed)}; "
            f"to run it as trained: --config {cfg.load_checkpoint_path}")
    net = build_model(cfg)
    matched, skipped, missing = load_weights(net, cfg.load_checkpoint_path, log=log, require_all=True, params=params)
    if missing:
        other = tasks.task_of_tensors(cfg, [*matched, *skipped])
        hint = (f"it holds a {other.name} network: add --config {other.recipe or other.name}" if other else
                "check backbone/use_dcn/num_classes")
        raise CenterDetError(f"{cfg.load_checkpoint_path} does not hold {len(missing)} tensors of this "
                             f"{cfg.model} {cfg.backbone} network (first: {missing[0]}); {hint}")
    net.set_train(False)
    if cfg.device_target == "CPU" and log_kernels:
        from centerdet import cpu_ops

        log(f"kernels: {cpu_ops.status(net, training=False)}")
    if cfg.fold_bn:
        from centerdet.models.fuse import fold_batchnorm

        fold_batchnorm(net)
    return net


def load_network(cfg, log=print):
    """What Predictor runs for ``cfg.backend``: the MindSpore detector of the checkpoint, or the ONNX
    file of export.py in onnxruntime."""
    if cfg.backend == "onnxruntime":
        from centerdet.deploy.onnx_runtime import OnnxRuntimeNet

        net = OnnxRuntimeNet(cfg, log)
        log(f"backend: onnxruntime on {cfg.load_checkpoint_path}")
        return net
    return load_detector(cfg, log)


def run_inference(cfg, net=None, score: Optional[bool] = None, detect: Optional[Callable] = None,
                  metric=None, log=print) -> EvalResult:
    """Predict every image of the task's metric, feed the metric, draw the first visual_max_images
    (visual_image), then write and (``score``, default: run_mode val) score the results.

    ``detect(image) -> (BGR image or None, detections)`` replaces the network (postprocess.py reads
    a deployed model's outputs); without it ``net`` (or the checkpoint) predicts. ``metric``
    replaces the task's. Unreadable images are logged and skipped: their objects count as missed.
    """
    from centerdet.visualize import draw_for_display, make_grid, save_image

    score = cfg.run_mode == "val" and cfg.enable_eval if score is None else score
    stage = "eval" if score else "test"  # predictions only: test.py's job
    out_dir = result_dir(cfg)
    metric = metric or tasks.of(cfg).metric(cfg, out_dir, log)
    images = metric.images()  # the annotations are read (and found fine) before anything is written
    report_dir = metric.report_dir or out_dir
    for folder in dict.fromkeys((out_dir, report_dir)):
        refuse_overwrite(folder, "save_result_dir", cfg.overwrite)
    ensure_writable_dir(out_dir, "save_result_dir")
    if detect is None:
        from centerdet.inference import Predictor

        predictor = Predictor(net if net is not None else load_network(cfg, log), cfg)

        def detect(image):
            img = read_image(image.path)
            return img, predictor(img)

        log(f"{stage}: {len(images)} images ({cfg.run_mode}), input {cfg.input_res_test} (keep_res={cfg.keep_res}), "
            f"scales {cfg.multi_scales}, flip={cfg.flip_test} -> {out_dir}")
    skipped, pictures, start = [], [], time.time()
    for i, image in enumerate(images):
        try:
            img, dets = detect(image)
        except CenterDetError as exc:
            skipped.append(image.path)
            log(f"skip: {exc}")
        else:
            metric.update(image, dets)
            if cfg.visual_image and img is not None and len(pictures) < cfg.visual_max_images:
                pic = draw_for_display(img, dets, metric.class_names, cfg.score_thresh, gt_boxes=image.gt_boxes)
                save_image(os.path.join(report_dir, "visual", f"{image.name}.png"), pic)
                pictures.append(pic)
        log_progress(stage, i + 1, len(images), start, log)
    if skipped:
        log(f"{stage}: {len(skipped)} unreadable images skipped (they count as missed detections)")
    picture = None
    if pictures:
        picture = os.path.join(report_dir, "detections.png")
        save_image(picture, make_grid(pictures, cols=min(4, len(pictures))))
    metrics = metric.compute(score)
    return EvalResult(metrics, out_dir, report_dir, picture)


def test_epochs(cfg, model_dir: str, steps_per_epoch: int, start: int, end: int, rank: int = 0, log=print) -> None:
    """Predictions of the epochs loop · device_num + rank + 1, loop = start..end, of the run whose
    checkpoints (<prefix>-<epoch>_<epoch · steps_per_epoch>.ckpt) are in ``model_dir``: the model
    zoo's test.py over a range, one rank's share. Missing checkpoints are skipped, as there."""
    from centerdet.engine.build import checkpoint_prefix

    for loop in range(start, end + 1):
        epoch = loop * cfg.device_num + rank + 1
        path = os.path.join(model_dir, f"{checkpoint_prefix(cfg)}-{epoch}_{epoch * steps_per_epoch}.ckpt")
        if not os.path.isfile(path):
            log(f"test: no checkpoint {path}; skipped")
            continue
        run_inference(dataclasses.replace(cfg, load_checkpoint_path=path), score=False, log=log)
