"""WIDER FACE val evaluation (Easy / Medium / Hard AP) with the official MATLAB semantics.

Published WIDER FACE numbers come from the MATLAB ``eval_tools``; the popular Python ports differ
from it in ways that move the result (no sorting by score, images without a prediction file
silently dropped, IoU 0.4 in the MindSpore CenterFace copy). This module follows MATLAB:

* scores are min-max normalised once over all boxes of all images, then each image's boxes are
  sorted by score, descending (stable, like MATLAB's ``sort``);
* each prediction is matched only to its best-IoU face (+1 pixel IoU, first face on ties); a hit
  on a face outside the setting's keep list removes the prediction from the proposals, a second
  hit on an already found face is a false positive;
* faces of images without predictions count as misses; images without faces are skipped;
* 1000 score thresholds, VOC all-point AP.

The per-threshold counts are computed globally instead of per image: because each image's boxes
are sorted, "proposals among the boxes above the threshold" is the number of proposals, over all
images, whose score is above the threshold, so one sort and ``searchsorted`` replace MATLAB's
loop over images × thresholds. ``iou_thresh=0.4`` reproduces the MindSpore CenterFace README.

Command line::

    python -m centerdet.evaluation.widerface --pred DIR --gt GT_DIR [--iou 0.5] [--out OUT_DIR]

``DIR`` holds ``<event>/<image>.txt`` files; ``GT_DIR`` the four ``.mat`` files of
``eval_tools/ground_truth``. ``metrics.json`` and ``pr_curves.png`` go to ``OUT_DIR``, by default
``DIR`` itself, so that each checkpoint's predictions keep their own results.
"""
import argparse
import os
import sys

import numpy as np

from centerdet.data.widerface import GT_FILES, SETTINGS, load_ground_truth
from centerdet.errors import CenterDetError, cli_main
from centerdet.evaluation import EvalImage, Metric
from centerdet.fileio import refuse_overwrite, write_json, write_text
from centerdet.nms import bbox_overlaps

# ---------------------------------------------------------------- prediction files


def to_xywh(dets):
    """(N, 5) [x1, y1, x2, y2, score] → [x, y, w, h, score] with CenterFace's inclusive w = x2 - x1 + 1."""
    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    out = dets.copy()
    out[:, 2:4] = dets[:, 2:4] - dets[:, 0:2] + 1
    return out


def prediction_text(image_name: str, dets) -> str:
    """One image's predictions in the official layout: its name, the count, then x y w h score rows."""
    name = image_name[:-4] if image_name.endswith(".jpg") else image_name
    rows = to_xywh(dets)
    lines = [f"{name}.jpg", str(len(rows))]
    lines += ["%.1f %.1f %.1f %.1f %.3f" % tuple(r) for r in rows]
    return "\n".join(lines) + "\n"


def write_predictions(pred_dir, event, image_name, dets):
    """Write ``<pred_dir>/<event>/<image_name>.txt`` in the official layout; returns the path."""
    name = image_name[:-4] if image_name.endswith(".jpg") else image_name
    path = os.path.join(pred_dir, event, name + ".txt")
    write_text(path, prediction_text(image_name, dets))
    return path


def _parse_prediction(path):
    """(N, 5) [x, y, w, h, score]; like MATLAB, line 1 is ignored and the score is the last column."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CenterDetError(f"cannot read prediction file {path}: {exc}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 2:
        raise CenterDetError(f"prediction file {path}: expected the image name on line 1 and the "
                             f"box count on line 2")
    try:
        n = int(lines[1])
        if n < 0:
            raise ValueError
    except ValueError:
        raise CenterDetError(f"prediction file {path} line 2: expected the box count, "
                             f"got {lines[1]!r}") from None
    if len(lines) - 2 != n:
        raise CenterDetError(f"prediction file {path}: line 2 says {n} boxes but "
                             f"{len(lines) - 2} box lines follow")
    body = lines[2:]
    try:  # fast path: every line has exactly 5 numbers
        rows = np.array(" ".join(body).split(), dtype=np.float64).reshape(n, 5)
    except ValueError:
        rows = np.zeros((n, 5))
        for i, line in enumerate(body):
            try:
                values = [float(v) for v in line.split()]
                if len(values) < 5:
                    raise ValueError
            except ValueError:
                raise CenterDetError(f"prediction file {path} line {i + 3}: expected "
                                     f"'x y w h score', got {line!r}") from None
            rows[i, :4], rows[i, 4] = values[:4], values[-1]
    bad = ~np.isfinite(rows).all(axis=1)
    if bad.any():
        line = int(np.flatnonzero(bad)[0])
        raise CenterDetError(f"prediction file {path} line {line + 3}: NaN or inf in {body[line]!r}")
    return rows


def read_predictions(pred_dir, gt, log=print):
    """{(event, image_name): (N, 5) [x, y, w, h, score]} for the GT images that have a file.

    Files are looked up from the ground truth (other files are never read). Missing files are
    allowed, as in MATLAB, and ``evaluate`` counts their faces as misses; ``log`` (None = silent)
    gets a warning with how many there were. Finding no file at all means a wrong directory.
    """
    if not os.path.isdir(pred_dir):
        raise CenterDetError(f"prediction directory not found: {pred_dir}")
    preds = {}
    for event, names, _ in gt.events:
        for name in names:
            path = os.path.join(pred_dir, event, name + ".txt")
            if os.path.isfile(path):
                preds[(event, name)] = _parse_prediction(path)
    if not preds and gt.num_images:
        event, names, _ = gt.events[0]
        example = os.path.join(pred_dir, event, names[0] + ".txt") if names else pred_dir
        raise CenterDetError(f"no prediction files found under {pred_dir} "
                             f"(expected <event>/<image>.txt, e.g. {example})")
    missing = gt.num_images - len(preds)
    if missing and log:
        log(f"warning: {missing} of {gt.num_images} images have no prediction file under "
            f"{pred_dir}; their faces count as misses")
    return preds


# ---------------------------------------------------------------- evaluation


def _corners(xywh):
    # MATLAB's x2 = x + w, no -1: together with the +1 IoU this is how the protocol scores boxes.
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:4]], axis=1)


def _checked(dets, key):
    dets = np.asarray(dets, dtype=np.float64)
    if dets.size == 0:
        return np.zeros((0, 5))
    if dets.ndim != 2 or dets.shape[1] != 5:
        raise CenterDetError(f"predictions for {key[0]}/{key[1]} must be an (N, 5) array "
                             f"[x, y, w, h, score], got shape {dets.shape}")
    if not np.isfinite(dets).all():
        raise CenterDetError(f"predictions for {key[0]}/{key[1]} contain NaN or inf")
    return dets


def _count_at_least(scores, thresholds):
    """How many of ``scores`` are >= each threshold."""
    s = np.sort(scores)
    return len(s) - np.searchsorted(s, thresholds, side="left")


def voc_ap(recall, precision):
    """VOC all-point AP (VOCap.m); NaN precision (no proposals) is skipped like MATLAB's max."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.fmax.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def evaluate(preds, gt, iou_thresh=0.5, thresh_num=1000):
    """Easy / Medium / Hard AP of ``preds`` ({(event, image): (N, 5) [x, y, w, h, score]}).

    Returns {"easy", "medium", "hard": AP, "curves": {setting: {"precision", "recall"}} (arrays
    over the ``thresh_num`` thresholds 1 - t/T, precision NaN where no box is above the
    threshold), "num_faces": {setting: int}, "images_without_predictions": int, "iou_thresh"}.
    A setting without faces has AP NaN, as in MATLAB. Keys not in the GT are ignored.
    """
    keys = [(event, name) for event, names, _ in gt.events for name in names]
    gt_boxes = [b for _, _, boxes in gt.events for b in boxes]
    if preds and not any(k in preds for k in keys):
        raise CenterDetError(f"none of the {len(preds)} prediction keys is a ground-truth image, "
                             f"e.g. {next(iter(preds))!r}; expected (event, image name without .jpg)")
    dets = [_checked(preds[k], k) if k in preds else None for k in keys]

    # Scores are normalised over the whole set before thresholding. With a single distinct score
    # MATLAB divides by zero (every score NaN, AP 0); every box is kept at all thresholds instead.
    scores = [d[:, 4] for d in dets if d is not None and len(d)]
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    lo = all_scores.min() if all_scores.size else 0.0
    span = all_scores.max() - lo if all_scores.size else 0.0

    # Matching to the best face does not depend on the setting, so it is done once; a setting
    # only decides which matched faces count and which are ignore regions.
    offsets = np.cumsum([0] + [len(b) for b in gt_boxes])
    score_parts, face_parts = [], []
    for i, (d, g) in enumerate(zip(dets, gt_boxes)):
        if d is None or not len(d) or not len(g):
            continue
        d = d[np.argsort(-d[:, 4], kind="stable")]
        iou = bbox_overlaps(_corners(d), _corners(g))
        best = iou.argmax(axis=1)
        hit = iou[np.arange(len(d)), best] >= iou_thresh
        score_parts.append((d[:, 4] - lo) / span if span > 0 else np.ones(len(d)))
        face_parts.append(np.where(hit, best + offsets[i], -1))
    score = np.concatenate(score_parts) if score_parts else np.zeros(0)
    face = np.concatenate(face_parts) if face_parts else np.zeros(0, np.int64)

    # Boxes are in score order within each image and images are disjoint, so the first box to
    # hit a face is its first occurrence in the concatenation; later hits are duplicates (FP).
    hits = np.flatnonzero(face >= 0)
    _, first = np.unique(face[hits], return_index=True)
    first_hit = np.zeros(len(face), bool)
    first_hit[hits[first]] = True

    thresholds = 1 - np.arange(1, thresh_num + 1) / thresh_num
    result = {"curves": {}, "num_faces": {}}
    for setting in SETTINGS:
        keep = [k for event in gt.keep[setting] for k in event]
        counted = np.zeros(offsets[-1], bool)
        counted[np.concatenate([k + o for k, o in zip(keep, offsets)] + [np.zeros(0, np.int64)])] = True
        on_counted = np.zeros(len(face), bool)
        on_counted[hits] = counted[face[hits]]
        proposal = (face < 0) | on_counted  # a hit on an ignored face is neither TP nor FP
        num_faces = sum(len(k) for k in keep)
        n_prop = _count_at_least(score[proposal], thresholds)
        n_tp = _count_at_least(score[first_hit & on_counted], thresholds)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(n_prop > 0, n_tp / np.maximum(n_prop, 1), np.nan)
            recall = n_tp / num_faces if num_faces else np.full(thresh_num, np.nan)
        result[setting] = voc_ap(recall, precision)
        result["curves"][setting] = {"precision": precision, "recall": recall}
        result["num_faces"][setting] = num_faces
    result["images_without_predictions"] = sum(d is None for d in dets)
    result["iou_thresh"] = float(iou_thresh)
    return result


# ---------------------------------------------------------------- the metric object


def ground_truth_dir(cfg):
    """The folder of the official .mat files; a path to one of the files is accepted too (the
    seed's scripts pass GROUND_TRUTH_MAT). Empty string when there is none."""
    from centerdet.data.coco import resolve

    path = resolve(cfg.data_dir, cfg.ground_truth_dir) if cfg.ground_truth_dir else ""
    if path.endswith(".mat"):
        path = os.path.dirname(path)
    return path if path and os.path.isfile(os.path.join(path, GT_FILES["all"])) else ""


class WiderFaceMetric(Metric):
    """Easy / Medium / Hard AP of the WIDER FACE val images as the runner feeds it: the official
    prediction files ``out_dir/<event>/<image>.txt`` (and ``<image>_landmarks.txt`` with
    write_landmarks), then metrics.json and pr_curves.png beside that tree (``report_dir``)."""

    class_names = ("face",)

    def __init__(self, cfg, out_dir, log=print):
        self.cfg, self.out_dir, self.log = cfg, out_dir, log
        self.gt_dir = ground_truth_dir(cfg)
        self.gt = load_ground_truth(self.gt_dir) if self.gt_dir else None
        self._images = self._list_images()
        if cfg.eval_max_images > 0:
            self._images = self._images[:cfg.eval_max_images]

    def _list_images(self):
        """The ground truth's list when there is one (what the official evaluation expects), else
        every image of the val annotation file; gt boxes from the annotation file, for pictures."""
        from centerdet.data.coco import DetectionDataset, resolve

        cfg = self.cfg
        img_dir, ann_file = resolve(cfg.data_dir, cfg.val_img_dir), resolve(cfg.data_dir, cfg.val_ann_file)
        boxes = {im.file_name: im.boxes for im in DetectionDataset(ann_file, img_dir).images} \
            if os.path.isfile(ann_file) else {}
        if self.gt is not None:
            items = [(event, name, f"{event}/{name}.jpg") for event, names, _ in self.gt.events for name in names]
        elif boxes:
            items = [(rel.split("/")[0], os.path.splitext(os.path.basename(rel))[0], rel) for rel in boxes]
        else:
            raise CenterDetError(f"no val image list: neither {os.path.join(cfg.ground_truth_dir, GT_FILES['all'])} "
                                 f"nor {ann_file} exists (set data_dir, ground_truth_dir or val_ann_file)")
        return [EvalImage([event, name], os.path.join(img_dir, rel), f"{event}_{name}", boxes.get(rel))
                for event, name, rel in items]

    @property
    def report_dir(self):
        return beside(self.out_dir) if self.out_dir else None

    def images(self):
        return list(self._images)

    def update(self, image, dets):
        event, name = image.key
        write_predictions(self.out_dir, event, name, dets[:, :5])
        if self.cfg.write_landmarks:
            lines = "\n".join(" ".join(f"{v:.1f}" for v in row[6:16]) + f" {row[4]:.3f}" for row in dets)
            write_text(os.path.join(self.out_dir, event, name + "_landmarks.txt"), lines + "\n")

    def compute(self, score=True):
        if not score:
            return None
        if self.gt is None:
            self.log(f"eval: no ground truth .mat files at {self.cfg.ground_truth_dir!r}; predictions only")
            return None
        gt = self.gt
        if self.cfg.eval_max_images > 0:
            gt = gt.subset({tuple(im.key) for im in self._images})
        results = evaluate_protocols(read_predictions(self.out_dir, gt, self.log), gt, self.cfg.eval_iou)
        report(results, self.out_dir, self.report_dir, self.log, overwrite=self.cfg.overwrite)
        return {s: float(np.nan_to_num(results[0][s])) for s in SETTINGS}


# ---------------------------------------------------------------- command line


# Published CenterFace numbers (the model zoo's 92.2 / 91.5 / 78.2) come from its eval.py at IoU 0.4;
# every evaluation reports that protocol beside the official one, labelled.
PROTOCOLS = {0.5: "the official WIDER FACE protocol", 0.4: "the model zoo's eval.py, behind its published APs"}


def protocol_ious(iou=0.5):
    """``iou`` first, then each of the two protocols' thresholds that differs from it."""
    return [float(iou)] + [t for t in PROTOCOLS if t != float(iou)]


def beside(pred_dir):
    """Where an evaluation of ``pred_dir`` writes metrics.json and pr_curves.png by default: next
    to the prediction tree, never in it (the official evaluation takes every entry there as an
    event)."""
    return os.path.normpath(pred_dir) + "_eval"


def evaluate_protocols(preds, gt, iou=0.5):
    """evaluate() at each of protocol_ious(iou), the first being the one the metrics report."""
    return [evaluate(preds, gt, iou_thresh=t) for t in protocol_ious(iou)]


def format_results(result, pred_dir):
    """The block the MindSpore CenterFace eval.py prints (APs unrounded, as in its README)."""
    return "\n".join([f"==================== Results = ==================== {pred_dir}",
                      f"Easy   Val AP: {result['easy']}",
                      f"Medium Val AP: {result['medium']}",
                      f"Hard   Val AP: {result['hard']}",
                      "================================================="])


def _json_float(value):
    return float(value) if np.isfinite(value) else None


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m centerdet.evaluation.widerface",
                                     description="WIDER FACE val evaluation (Easy/Medium/Hard AP).")
    parser.add_argument("--pred", required=True, help="directory of <event>/<image>.txt predictions")
    parser.add_argument("--gt", required=True, help="directory of the official ground-truth .mat files")
    parser.add_argument("--iou", type=float, default=0.5,
                        help="IoU threshold of the reported metrics: 0.5 official (default), 0.4 as the model "
                             "zoo's eval.py; the other protocol is printed too")
    parser.add_argument("--overwrite", action="store_true", help="replace the metrics of an earlier evaluation")
    parser.add_argument("--out", default=None,
                        help="where metrics.json and pr_curves.png go (default: beside --pred, as <pred>_eval)")
    return parser


def report(results, pred_dir, out_dir, log=print, overwrite=False):
    """Print the seed's result block of each result (evaluate_protocols), labelled with its IoU;
    write metrics.json (the first result's APs, the others under "iou_<t>") and the first's
    pr_curves.png into ``out_dir``."""
    from centerdet.visualize import plot_pr_curves

    for r in results:
        name = PROTOCOLS.get(r["iou_thresh"], "a custom threshold")
        log(f"WIDER FACE val AP at IoU {r['iou_thresh']:g} ({name}):")
        log(format_results(r, pred_dir))
    result = results[0]
    metrics = {**{s: _json_float(result[s]) for s in SETTINGS}, "iou_thresh": result["iou_thresh"]}
    for r in results[1:]:
        metrics[f"iou_{r['iou_thresh']:g}"] = {s: _json_float(r[s]) for s in SETTINGS}
    metrics_path = os.path.join(out_dir, "metrics.json")
    refuse_overwrite(metrics_path, "metrics file", overwrite, " (--out)")
    write_json(metrics_path, metrics, indent=2)
    curves = {s.capitalize(): (result["curves"][s]["recall"], result["curves"][s]["precision"],
                               np.nan_to_num(result[s])) for s in SETTINGS}
    png_path = os.path.join(out_dir, "pr_curves.png")
    plot_pr_curves(curves, png_path, title=f"WIDER FACE val (IoU {result['iou_thresh']:g})")
    log(f"metrics -> {metrics_path}")
    log(f"PR curves -> {png_path}")
    return metrics_path, png_path


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    if not 0 < args.iou <= 1:
        raise CenterDetError(f"--iou must be in (0, 1], got {args.iou}")
    gt = load_ground_truth(args.gt)
    results = evaluate_protocols(read_predictions(args.pred, gt), gt, args.iou)
    report(results, args.pred, args.out or beside(args.pred), overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
