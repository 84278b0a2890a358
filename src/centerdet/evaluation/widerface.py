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
from dataclasses import dataclass

import numpy as np

from centerdet.data.widerface import load_mat
from centerdet.errors import CenterDetError, cli_main
from centerdet.fileio import write_json, write_text
from centerdet.nms import bbox_overlaps

SETTINGS = ("easy", "medium", "hard")
GT_FILES = {"all": "wider_face_val.mat", "easy": "wider_easy_val.mat",
            "medium": "wider_medium_val.mat", "hard": "wider_hard_val.mat"}
_GT_HINT = ("expected wider_face_val.mat, wider_easy_val.mat, wider_medium_val.mat and "
            "wider_hard_val.mat from the official eval_tools/ground_truth")


@dataclass
class GroundTruth:
    """The val ground truth in file order.

    events: list of (event_name, [image_name, ...], [(m, 4) float64 [x, y, w, h], ...]).
    keep: setting -> per event, per image, (k,) int64 0-based indices of the faces that count.
    """
    events: list
    keep: dict

    @property
    def num_images(self):
        return sum(len(names) for _, names, _ in self.events)

    def num_faces(self, setting=None):
        if setting is None:
            return sum(len(b) for _, _, boxes in self.events for b in boxes)
        return sum(len(k) for event in self.keep[setting] for k in event)


# ---------------------------------------------------------------- ground truth


def _cells(value):
    """A MATLAB cell array as a flat list (loadmat gives (n, 1) object arrays)."""
    value = np.asarray(value)
    if value.dtype != object:
        raise TypeError(f"expected a cell array, got a {value.dtype} array")
    return list(value.ravel())


def _string(value):
    """A MATLAB char array as str (loadmat gives array(['name']))."""
    value = np.asarray(value).ravel()
    if value.size != 1 or value.dtype.kind != "U":
        raise TypeError(f"expected a string, got {value!r}")
    return str(value[0])


def _names(mat):
    events = [_string(e) for e in _cells(mat["event_list"])]
    files = [[_string(f) for f in _cells(fl)] for fl in _cells(mat["file_list"])]
    if len(files) != len(events):
        raise ValueError(f"{len(events)} events but {len(files)} file lists")
    return events, files


def _boxes(value):
    boxes = np.asarray(value, dtype=np.float64)
    if boxes.size == 0:  # MATLAB stores an image without faces as a 0x0 matrix
        return np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"a face_bbx_list entry has shape {boxes.shape}, expected (m, 4)")
    if not np.isfinite(boxes).all():
        raise ValueError("a face_bbx_list entry holds NaN or inf")
    return boxes


def _keep(value, num_boxes):
    """1-based MATLAB indices → 0-based; out-of-range ones would crash MATLAB, so reject them."""
    idx = np.asarray(value).ravel()
    if idx.size == 0:
        return np.zeros(0, np.int64)
    if idx.dtype.kind not in "fiu" or not np.all(idx == np.round(idx)):
        raise ValueError(f"a gt_list entry is not integer indices: {idx[:5]!r}")
    idx = idx.astype(np.int64)
    bad = idx[(idx < 1) | (idx > num_boxes)]
    if bad.size:
        raise ValueError(f"a gt_list entry has index {int(bad[0])} outside 1..{num_boxes}")
    return idx - 1


def load_ground_truth(gt_dir):
    """Read the four official .mat files of ``gt_dir`` into a ``GroundTruth``."""
    path = os.path.join(gt_dir, GT_FILES["all"])
    mat = load_mat(path, ("event_list", "file_list", "face_bbx_list"), _GT_HINT)
    try:
        events, files = _names(mat)
        boxes = [[_boxes(b) for b in _cells(bl)] for bl in _cells(mat["face_bbx_list"])]
        if [len(b) for b in boxes] != [len(f) for f in files]:
            raise ValueError("face_bbx_list and file_list have different numbers of images")
    except (TypeError, ValueError, IndexError) as exc:
        raise CenterDetError(f"ground truth file {path} has an unexpected structure: {exc}") from None

    keep = {}
    for setting in SETTINGS:
        path = os.path.join(gt_dir, GT_FILES[setting])
        mat = load_mat(path, ("gt_list",), _GT_HINT)
        try:
            # The setting files repeat the lists; a different order would pair keep lists with
            # the wrong images without any error.
            if "event_list" in mat and "file_list" in mat and _names(mat) != (events, files):
                raise ValueError(f"its event_list/file_list differ from {GT_FILES['all']}")
            cells = [_cells(g) for g in _cells(mat["gt_list"])]
            if [len(c) for c in cells] != [len(f) for f in files]:
                raise ValueError(f"gt_list does not have one entry per image of {GT_FILES['all']}")
            keep[setting] = [[_keep(k, len(b)) for k, b in zip(c, bs)] for c, bs in zip(cells, boxes)]
        except (TypeError, ValueError, IndexError) as exc:
            raise CenterDetError(f"ground truth file {path} has an unexpected structure: {exc}") from None
    return GroundTruth([(e, f, b) for e, f, b in zip(events, files, boxes)], keep)


# ---------------------------------------------------------------- prediction files


def to_xywh(dets):
    """(N, 5) [x1, y1, x2, y2, score] → [x, y, w, h, score] with CenterFace's inclusive w = x2 - x1 + 1."""
    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    out = dets.copy()
    out[:, 2:4] = dets[:, 2:4] - dets[:, 0:2] + 1
    return out


def write_predictions(pred_dir, event, image_name, dets):
    """Write ``<pred_dir>/<event>/<image_name>.txt`` in the official layout; returns the path."""
    name = image_name[:-4] if image_name.endswith(".jpg") else image_name
    rows = to_xywh(dets)
    lines = [f"{name}.jpg", str(len(rows))]
    lines += ["%.1f %.1f %.1f %.1f %.3f" % tuple(r) for r in rows]
    path = os.path.join(pred_dir, event, name + ".txt")
    write_text(path, "\n".join(lines) + "\n")
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


# ---------------------------------------------------------------- command line


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
                        help="IoU threshold: 0.5 official, 0.4 as in the MindSpore CenterFace README")
    parser.add_argument("--out", default=None,
                        help="where metrics.json and pr_curves.png go (default: the --pred directory)")
    return parser


def report(result, pred_dir, out_dir, log=print):
    """Print the seed's result block; write metrics.json and pr_curves.png into ``out_dir``."""
    from centerdet.visualize import plot_pr_curves

    log(format_results(result, pred_dir))
    metrics_path = os.path.join(out_dir, "metrics.json")
    write_json(metrics_path, {**{s: _json_float(result[s]) for s in SETTINGS},
                              "iou_thresh": result["iou_thresh"]}, indent=2)
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
    result = evaluate(read_predictions(args.pred, gt), gt, iou_thresh=args.iou)
    report(result, args.pred, args.out or args.pred)
    return 0


if __name__ == "__main__":
    sys.exit(main())
