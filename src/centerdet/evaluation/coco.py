"""COCO bbox evaluation with pycocotools, made safe for the cases that break it.

pycocotools is the reference implementation every published COCO number comes from, so the
metrics themselves are left to it. This module only does the surrounding work:

* converts our detections (contiguous 0-based labels, corner boxes) to COCO result dicts
  (category ids, ``[x, y, w, h]``, 2-decimal rounding as the original CenterNet writes them);
* checks inputs first, so that mistakes become one-line ``CenterDetError`` messages instead of a
  bare ``AssertionError`` or ``KeyError`` from deep inside pycocotools;
* handles an empty result list (``loadRes`` would crash on ``anns[0]``) by reporting zeros;
* silences pycocotools' progress chatter and logs the 12-line summary once.

Command line: ``python -m centerdet.evaluation.coco --gt GT.json --dt RESULTS.json [--out m.json]``.
"""
import argparse
import contextlib
import io
import math
import os
import sys
from collections import OrderedDict

import numpy as np

from centerdet.errors import CenterDetError, cli_main
from centerdet.evaluation import EvalImage, Metric
from centerdet.fileio import read_json, write_json

# Same order as pycocotools' COCOeval.stats, so stats[i] ↔ METRIC_KEYS[i].
METRIC_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl",
               "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]

_AREAS = {"s": "small", "m": "medium", "l": "large"}
_RESULT_KEYS = ("image_id", "category_id", "bbox", "score")


def _round2(value):
    """CenterNet's ``float("{:.2f}".format(x))``: keeps result files small and comparable."""
    return float("{:.2f}".format(value))


# ---------------------------------------------------------------- detections → results


def detections_to_results(image_id, dets, cat_ids):
    """COCO result dicts for one image.

    Rows are ``[x1, y1, x2, y2, score, label]`` with ``label`` an index into ``cat_ids``.
    Boxes that are empty after rounding or contain NaN/inf are dropped: they can never match a
    ground truth and NaN would make the results file invalid json for other tools.
    """
    dets = np.asarray(dets, dtype=np.float64)
    if dets.size == 0:
        return []
    if dets.ndim != 2 or dets.shape[1] < 6:
        raise CenterDetError(f"detections must be an (N, 6) array [x1, y1, x2, y2, score, label], "
                             f"got shape {dets.shape}")
    results = []
    for row in dets:
        result = _detection_to_result(int(image_id), row, cat_ids)
        if result is not None:
            results.append(result)
    return results


def _detection_to_result(image_id, row, cat_ids):
    if not np.isfinite(row[:6]).all():
        return None
    x1, y1, x2, y2, score, label = (float(v) for v in row[:6])
    label = int(label)
    if not 0 <= label < len(cat_ids):
        raise CenterDetError(f"detection label {label} is out of range for {len(cat_ids)} categories")
    bbox = [_round2(x1), _round2(y1), _round2(x2 - x1), _round2(y2 - y1)]
    if bbox[2] <= 0 or bbox[3] <= 0:
        return None
    return {"image_id": image_id, "category_id": int(cat_ids[label]), "bbox": bbox,
            "score": _round2(score)}


# ---------------------------------------------------------------- input checks


def _load_gt(gt):
    """A pycocotools COCO for ``gt`` (path or COCO), with the fields COCOeval needs present.

    COCOeval reads ``area`` and ``iscrowd`` of every GT box without defaults; custom COCO-style
    files often lack them. They are filled on copies (area = w·h, iscrowd = 0), never in the
    caller's object.
    """
    from pycocotools.coco import COCO

    if isinstance(gt, COCO):
        dataset, source = gt.dataset, "ground truth"
    else:
        dataset, source = read_json(gt, "ground-truth file"), str(gt)
    _check_gt(dataset, source)
    anns = dataset.get("annotations", [])
    filled = sum(1 for a in anns if "area" not in a or "iscrowd" not in a)
    if isinstance(gt, COCO) and not filled:
        return gt, 0
    dataset = dict(dataset, annotations=[_with_defaults(a) for a in anns])
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco, filled


def _with_defaults(ann):
    ann = dict(ann)
    if "area" not in ann:
        ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
    ann.setdefault("iscrowd", 0)
    return ann


def _check_gt(dataset, source):
    """Reject GT that pycocotools would mis-evaluate silently or crash on obscurely."""
    if not isinstance(dataset, dict):
        raise CenterDetError(f"{source}: expected a COCO json object, got {type(dataset).__name__}")
    for key in ("images", "categories"):
        if not isinstance(dataset.get(key), list):
            raise CenterDetError(f"{source}: missing or invalid top-level list '{key}'")
    if not isinstance(dataset.get("annotations", []), list):
        raise CenterDetError(f"{source}: invalid top-level list 'annotations'")
    for key in ("images", "categories"):
        for entry in dataset[key]:
            if not isinstance(entry, dict) or not _is_id(entry.get("id")):
                raise CenterDetError(f"{source}: every entry of '{key}' must be a json object with an "
                                     f"integer 'id', got {str(entry)[:60]!r}")
    seen = set()
    for ann in dataset.get("annotations", []):
        if not isinstance(ann, dict):
            raise CenterDetError(f"{source}: every annotation must be a json object, got {str(ann)[:60]!r}")
        for key in ("id", "image_id", "category_id", "bbox"):
            if key not in ann:
                raise CenterDetError(f"{source}: an annotation has no '{key}' field "
                                     f"(annotation id {ann.get('id', '?')})")
        # NaN boxes pass: the reader drops and counts them, pycocotools scores them as never matched.
        if (not all(_is_id(ann[k]) for k in ("id", "image_id", "category_id"))
                or not _is_box(ann["bbox"], finite=False)):
            raise CenterDetError(f"{source}: annotation id {ann['id']!r} needs integer id, image_id and "
                                 f"category_id and a bbox of 4 numbers, got bbox {str(ann['bbox'])[:60]}")
        # COCOeval marks "unmatched" with id 0 and indexes annotations by id.
        if ann["id"] == 0 or ann["id"] in seen:
            reason = "0 (reserved by COCOeval)" if ann["id"] == 0 else "a duplicate"
            raise CenterDetError(f"{source}: annotation id {ann['id']} is {reason}; "
                                 f"ids must be unique and non-zero")
        seen.add(ann["id"])


def _is_id(value):
    """An id pycocotools can index and compare: an int (or integral float), or a string."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _is_number(value, finite=True):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and (not finite or math.isfinite(value)))


def _is_box(value, finite=True):
    return isinstance(value, (list, tuple)) and len(value) == 4 and all(_is_number(v, finite) for v in value)


def _load_results(results):
    if isinstance(results, (str, bytes)) or hasattr(results, "__fspath__"):
        path = results
        results = read_json(path, "results file")
        if not isinstance(results, list):
            raise CenterDetError(f"results file {path} must hold a json list of detections, "
                                 f"got {type(results).__name__}")
    return list(results)


def _check_results(results, gt):
    """Every result must be well-formed and name an image and a category that the GT has.

    An unknown category id usually means a label-mapping bug (0-based vs 1-based, or contiguous
    index written instead of the COCO id); pycocotools would silently score it as 0.
    """
    image_ids = set(gt.getImgIds())
    cat_ids = set(gt.getCatIds())
    for i, r in enumerate(results):
        if not isinstance(r, dict) or any(k not in r for k in _RESULT_KEYS):
            raise CenterDetError(f"result #{i} must be a dict with keys {', '.join(_RESULT_KEYS)}")
        if not _is_id(r["image_id"]) or not _is_id(r["category_id"]):
            raise CenterDetError(f"result #{i} image_id and category_id must be integer ids, got "
                                 f"{r['image_id']!r} and {r['category_id']!r}")
        if not _is_number(r["score"]):
            raise CenterDetError(f"result #{i} score must be a finite number, got {r['score']!r}")
        if r["image_id"] not in image_ids:
            raise CenterDetError(f"result #{i} has image_id {r['image_id']!r}, "
                                 f"which is not in the ground truth")
        if r["category_id"] not in cat_ids:
            raise CenterDetError(f"result #{i} has category_id {r['category_id']!r}, which is not "
                                 f"in the ground truth categories {sorted(cat_ids)}")
        if not _is_box(r["bbox"]):
            raise CenterDetError(f"result #{i} bbox must be [x, y, w, h] of finite numbers, got {r['bbox']!r}")


def _check_image_ids(image_ids, gt):
    unknown = sorted(set(image_ids) - set(gt.getImgIds()))
    if unknown:
        raise CenterDetError(f"image_ids not in the ground truth: {unknown[:10]}"
                             + (" ..." if len(unknown) > 10 else ""))


# ---------------------------------------------------------------- evaluation


def evaluate(gt, results, image_ids=None, log=print):
    """Run the standard COCO bbox evaluation; returns ``OrderedDict`` METRIC_KEYS → float.

    ``gt`` is a GT json path or a pycocotools ``COCO``; ``results`` a list of result dicts or a
    path to a results json. ``image_ids`` restricts the evaluation to a subset (detections on
    other images are then ignored). A metric with no GT in its area range is -1.0, as in
    pycocotools. ``log`` receives human-readable lines (pass ``None`` for silence).
    """
    log = log or (lambda line: None)
    coco_gt, filled = _load_gt(gt)
    results = _load_results(results)
    _check_results(results, coco_gt)
    if image_ids is not None:
        image_ids = [int(i) for i in image_ids]
        _check_image_ids(image_ids, coco_gt)
    if filled:
        log(f"note: {filled} ground-truth annotations lack 'area' or 'iscrowd'; "
            f"using area = w*h, iscrowd = 0")
    n_images = len(image_ids) if image_ids is not None else len(coco_gt.getImgIds())
    if not results:
        log(f"warning: no detections for {n_images} images; all COCO metrics are 0")
        metrics = OrderedDict((k, 0.0) for k in METRIC_KEYS)
    else:
        log(f"COCO bbox evaluation: {len(results)} detections on {n_images} images")
        metrics = _run_cocoeval(coco_gt, results, image_ids)
    for line in format_metrics(metrics).splitlines():
        log(line)
    return metrics


def _run_cocoeval(coco_gt, results, image_ids):
    """pycocotools' own pipeline with its stdout captured (it prints progress and timings)."""
    from pycocotools.cocoeval import COCOeval

    # loadRes adds id/area/iscrowd/segmentation to each dict; keep the caller's list untouched.
    results = [dict(r, bbox=[float(v) for v in r["bbox"]]) for r in results]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        coco_eval = COCOeval(coco_gt, coco_dt, "bbox")
        if image_ids is not None:
            coco_eval.params.imgIds = image_ids
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return OrderedDict((k, float(v)) for k, v in zip(METRIC_KEYS, coco_eval.stats))


def _summary_row(key):
    """(is_precision, IoU label, area label, maxDets) of a metric, as COCOeval._summarizeDets prints
    it with the default parameters: AP50 / AP75 fix the IoU, AR1 / AR10 / AR100 the detections, a
    trailing s / m / l the area."""
    is_ap, rest = key.startswith("AP"), key[2:]
    iou = {"50": "0.50", "75": "0.75"}.get(rest, "0.50:0.95") if is_ap else "0.50:0.95"
    max_dets = int(rest) if rest.isdigit() and not is_ap else 100
    return is_ap, iou, _AREAS.get(rest, "all"), max_dets


def format_metrics(metrics):
    """The 12 summary lines exactly as ``COCOeval.summarize()`` prints them."""
    template = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}"
    lines = []
    for key in METRIC_KEYS:
        is_ap, iou, area, max_dets = _summary_row(key)
        title, kind = ("Average Precision", "(AP)") if is_ap else ("Average Recall", "(AR)")
        lines.append(template.format(title, kind, iou, area, max_dets, float(metrics[key])))
    return "\n".join(lines)


# ---------------------------------------------------------------- output files


def write_metrics(path, metrics):
    """Metrics json in METRIC_KEYS order; NaN is written as null so the file stays valid json."""
    clean = OrderedDict()
    for key in METRIC_KEYS:
        value = float(metrics[key])
        clean[key] = value if math.isfinite(value) else None
    write_json(path, clean, indent=2)


def write_results(path, results):
    """The COCO results list in the format ``loadRes`` and the evaluation server accept."""
    write_json(path, list(results))


# ---------------------------------------------------------------- the metric object


class CocoMetric(Metric):
    """COCO box AP of a config's split (``run_mode`` val, or test: results only) as the runner
    feeds it; writes results.json and metrics.json into ``out_dir``."""

    def __init__(self, cfg, out_dir, log=print):
        from centerdet.data.coco import DetectionDataset, split_paths

        self.ann_file, img_dir = split_paths(cfg, cfg.run_mode)
        self.dataset = DetectionDataset(self.ann_file, img_dir)
        if self.dataset.num_classes != cfg.num_classes:
            raise CenterDetError(f"{self.ann_file} has {self.dataset.num_classes} categories but config key "
                                 f"'num_classes' is {cfg.num_classes}")
        self.class_names = self.dataset.class_names
        self.out_dir, self.log, self.results = out_dir, log, []
        self._images = self.dataset.images[:cfg.eval_max_images] if cfg.eval_max_images > 0 else self.dataset.images

    def images(self):
        return [EvalImage(im.id, self.dataset.image_path(im), str(im.id), im.boxes) for im in self._images]

    def update(self, image, dets):
        self.results += detections_to_results(image.key, dets, self.dataset.cat_ids)

    def compute(self, score=True):
        path = os.path.join(self.out_dir, "results.json")
        write_results(path, self.results)
        self.log(f"eval: wrote {len(self.results)} detections to {path}")
        if not score:
            return None
        metrics = evaluate(self.ann_file, self.results, image_ids=[im.id for im in self._images], log=self.log)
        write_metrics(os.path.join(self.out_dir, "metrics.json"), metrics)
        return metrics


# ---------------------------------------------------------------- command line


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m centerdet.evaluation.coco",
                                     description="COCO bbox evaluation of a results json.")
    parser.add_argument("--gt", required=True, help="ground-truth COCO json (instances_*.json)")
    parser.add_argument("--dt", required=True, help="detections: json list of COCO result dicts")
    parser.add_argument("--out", default=None, help="optional: write the 12 metrics to this json")
    return parser


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    metrics = evaluate(args.gt, args.dt, log=print)
    if args.out:
        write_metrics(args.out, metrics)
        print(f"metrics -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
