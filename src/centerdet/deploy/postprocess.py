"""postprocess.py's work: runner outputs + meta.json → the decode and NMS eval.py uses → COCO metrics
(acc.log) or WIDER FACE prediction files and Easy/Medium/Hard AP (ap.log)."""
import os

import numpy as np

from centerdet.decode import sigmoid
from centerdet.deploy.files import load_meta, output_path, read_array
from centerdet.deploy.preprocess import fixed_shape_config
from centerdet.errors import CenterDetError
from centerdet.fileio import ensure_writable_dir, write_text


def detections(cfg, meta, result_dir):
    """Yield (meta entry, detections in image pixels) per image, exactly as eval.py decodes them."""
    from centerdet.inference import decode_heads, merge_scales

    for entry in meta["images"]:
        maps = [read_array(output_path(result_dir, entry["name"], k), shape)
                for k, shape in enumerate(meta["head_shapes"])]
        maps[0] = sigmoid(maps[0])
        info = {"center": np.asarray(entry["center"], np.float32), "scale": np.float32(entry["scale"]),
                "out_size": tuple(entry["out_size"]), "test_scale": 1.0}
        yield entry, merge_scales([decode_heads(maps, info, cfg)], cfg)


def postprocess(cfg, meta_dir, result_dir, out_dir, log=print):
    """Returns the metrics dict (COCO keys, or easy/medium/hard)."""
    meta = load_meta(meta_dir)
    if meta["model"] != cfg.model:
        raise CenterDetError(f"{meta_dir}/meta.json was written for {meta['model']}, the config is {cfg.model}")
    cfg = fixed_shape_config(cfg)
    out_dir = ensure_writable_dir(out_dir, "save_result_dir")
    if cfg.model == "centerface":
        return _widerface(cfg, meta, result_dir, out_dir, log)
    return _coco(cfg, meta, result_dir, out_dir, log)


def _coco(cfg, meta, result_dir, out_dir, log):
    from centerdet.data.coco import CocoDataset, split_paths
    from centerdet.evaluation.coco import detections_to_results, evaluate, write_metrics, write_results

    ann, img_dir = split_paths(cfg, cfg.run_mode)
    cat_ids = CocoDataset(ann, img_dir).cat_ids
    results = []
    for entry, dets in detections(cfg, meta, result_dir):
        results += detections_to_results(entry["image_id"], dets, cat_ids)
    write_results(os.path.join(out_dir, "results.json"), results)
    lines = []
    metrics = evaluate(ann, results, image_ids=[e["image_id"] for e in meta["images"]],
                       log=lambda line: (lines.append(line), log(line)))
    write_metrics(os.path.join(out_dir, "metrics.json"), metrics)
    write_text(os.path.join(out_dir, "acc.log"), "\n".join(lines) + "\n")
    log(f"postprocess: {len(results)} detections; metrics in {os.path.join(out_dir, 'acc.log')}")
    return metrics


def _widerface(cfg, meta, result_dir, out_dir, log):
    from centerdet.engine.face_evaluator import ground_truth_dir
    from centerdet.evaluation.widerface import evaluate, load_ground_truth, read_predictions, report, write_predictions

    pred_dir = os.path.join(out_dir, "predictions")
    for entry, dets in detections(cfg, meta, result_dir):
        write_predictions(pred_dir, entry["event"], entry["file"], dets[:, :5])
    gt_dir = ground_truth_dir(cfg)
    if not gt_dir:
        raise CenterDetError(f"no wider_face_val.mat under {cfg.ground_truth_dir!r} (data_dir {cfg.data_dir!r}): "
                             f"predictions are in {pred_dir}, but AP needs the ground truth")
    gt = load_ground_truth(gt_dir)
    lines = []
    result = evaluate(read_predictions(pred_dir, gt, log), gt, iou_thresh=cfg.eval_iou)
    report(result, pred_dir, out_dir, lambda line: (lines.append(line), log(line)))
    write_text(os.path.join(out_dir, "ap.log"), "\n".join(lines) + "\n")
    return {s: float(np.nan_to_num(result[s])) for s in ("easy", "medium", "hard")}
