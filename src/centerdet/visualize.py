"""Pictures for humans: detections on images, loss curves, PR curves, contact sheets.

Everything returns new arrays or writes files atomically (centerdet.fileio), so a half-written
PNG never replaces a good one. matplotlib is imported lazily and drawn with its Agg canvas
directly: plotting must work on headless training machines, must not switch the backend of a
user's notebook, and must not slow down importing this module.
"""
import io
import os

import cv2
import numpy as np

from centerdet.errors import CenterDetError
from centerdet.fileio import write_bytes

# BGR, chosen to be distinguishable from each other and from the GT colour below (no pure green).
PALETTE = [
    (56, 56, 255), (255, 157, 151), (31, 112, 255), (29, 178, 255), (49, 210, 207),
    (187, 212, 0), (255, 149, 0), (147, 69, 52), (255, 115, 100), (236, 24, 0),
    (255, 56, 132), (133, 0, 82), (255, 56, 203), (200, 149, 255), (199, 55, 255),
    (10, 249, 72), (134, 219, 61), (168, 153, 44), (82, 0, 133), (0, 194, 255),
]
GT_COLOR = (0, 255, 0)
# CenterFace landmark order: left eye, right eye, nose, left mouth corner, right mouth corner.
LANDMARK_COLORS = [(255, 0, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255), (255, 255, 0)]
FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_color(label):
    """A fixed colour per class index, so the same class looks the same in every picture."""
    return PALETTE[int(label) % len(PALETTE)]


def _as_bgr(img):
    img = np.asarray(img)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim != 3 or img.shape[2] != 3:
        raise CenterDetError(f"expected an HxWx3 BGR image (or HxW gray), got shape {img.shape}")
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def _line_width(img):
    """Thicker lines on big images so boxes stay visible when the picture is shown scaled down."""
    return max(1, int(round(min(img.shape[:2]) / 400)))


# ---------------------------------------------------------------- detections


def draw_detections(img_bgr, dets, class_names, score_thresh=0.3, gt_boxes=None, landmarks=None):
    """A copy of ``img_bgr`` with detections (score ≥ ``score_thresh``) and optional GT drawn.

    ``dets`` rows are ``[x1, y1, x2, y2, score, label]``; ``class_names`` may be None (labels are
    then shown as numbers). ``gt_boxes`` (M, ≥4) xyxy are drawn thin and dashed so they can be
    told apart from predictions. ``landmarks`` (N, 10) are the 5 (x, y) points of each det row.
    Lower scores are drawn first so the most confident box and label end up on top.
    """
    img = _as_bgr(img_bgr).copy()
    width = _line_width(img)
    if gt_boxes is not None:
        for box in _rows(gt_boxes, 4, "gt_boxes"):
            if np.isfinite(box[:4]).all():
                _dashed_rectangle(img, box[:4], GT_COLOR)
    dets = _rows(dets, 6, "dets")
    points = None if landmarks is None else _rows(landmarks, 10, "landmarks")
    if points is not None and len(points) != len(dets):
        raise CenterDetError(f"landmarks has {len(points)} rows but dets has {len(dets)}")
    for i in np.argsort(dets[:, 4], kind="stable"):
        det = dets[i, :6]
        if not np.isfinite(det).all() or det[4] < score_thresh:
            continue
        color = class_color(det[5])
        x1, y1, x2, y2 = (int(round(v)) for v in det[:4])
        cv2.rectangle(img, (x1, y1), (x2, y2), color, width)
        _draw_label(img, f"{_class_name(class_names, det[5])} {det[4]:.2f}", x1, y1, color)
        if points is not None:
            _draw_landmarks(img, points[i], width)
    return img


def draw_for_display(img_bgr, dets, class_names, score_thresh=0.3, gt_boxes=None, min_side=320):
    """draw_detections on a copy enlarged to at least ``min_side`` px, so that labels stay readable
    next to the objects of small images; columns 6.. of ``dets`` are landmark (x, y) pairs."""
    k = max(1.0, min_side / max(img_bgr.shape[:2]))
    shown = cv2.resize(img_bgr, None, fx=k, fy=k, interpolation=cv2.INTER_LINEAR) if k > 1 else img_bgr
    scaled = np.array(dets, np.float32).copy()
    scaled[:, :4] *= k
    scaled[:, 6:] *= k
    gt = None if gt_boxes is None else np.asarray(gt_boxes, np.float32) * k
    landmarks = scaled[:, 6:16] if scaled.shape[1] >= 16 else None
    return draw_detections(shown, scaled[:, :6], class_names, score_thresh, gt_boxes=gt, landmarks=landmarks)


def _rows(array, min_cols, what):
    """A float (N, C ≥ min_cols) array; a single row or an empty list are accepted too."""
    array = np.asarray(array, np.float64)
    if array.size == 0:
        return np.zeros((0, min_cols))
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] < min_cols:
        raise CenterDetError(f"{what} must be an (N, {min_cols}) array, got shape {array.shape}")
    return array


def _class_name(class_names, label):
    label = int(label)
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    return str(label)


def _text_color(bg):
    """Black on light backgrounds, white on dark ones (perceived luminance of a BGR colour)."""
    b, g, r = bg
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def _draw_label(img, text, x, y, color, scale=0.45, thickness=1):
    """Text on a filled box just above the corner; inside the box when there is no room above."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    h, w = img.shape[:2]
    x = min(max(x, 0), max(w - tw - 2, 0))
    top = y - th - base - 2
    if top < 0:
        top = max(y, 0)
    bottom = min(top + th + base + 2, h - 1)
    cv2.rectangle(img, (x, top), (x + tw + 2, bottom), color, cv2.FILLED)
    cv2.putText(img, text, (x + 1, bottom - base - 1), FONT, scale, _text_color(color), thickness,
                cv2.LINE_AA)


def _dashed_rectangle(img, box, color, dash=6):
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    for a, b in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        _dashed_line(img, a, b, color, dash)


def _dashed_line(img, a, b, color, dash):
    length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
    for start in range(0, length + 1, 2 * dash):
        end = min(start + dash, length)
        p = [int(round(a[k] + (b[k] - a[k]) * start / max(length, 1))) for k in (0, 1)]
        q = [int(round(a[k] + (b[k] - a[k]) * end / max(length, 1))) for k in (0, 1)]
        cv2.line(img, tuple(p), tuple(q), color, 1)


def _draw_landmarks(img, points, width):
    for k in range(5):
        x, y = points[2 * k], points[2 * k + 1]
        if np.isfinite([x, y]).all():
            cv2.circle(img, (int(round(x)), int(round(y))), width + 1, LANDMARK_COLORS[k], cv2.FILLED)


def save_image(path, img_bgr):
    """Atomic image write; the format follows the extension (PNG when there is none)."""
    ext = os.path.splitext(os.fspath(path))[1].lower() or ".png"
    try:
        ok, buf = cv2.imencode(ext, _as_bgr(img_bgr))
    except cv2.error:
        ok = False
    if not ok:
        raise CenterDetError(f"cannot encode an image as '{ext}' for {path}")
    write_bytes(path, buf.tobytes())


# ---------------------------------------------------------------- contact sheet


def make_grid(images, cols, gap=0, fill=0):
    """Tile images row by row into one BGR picture; every cell has the size of the biggest image.

    Smaller images sit in the top-left of their cell on ``fill``; ``gap`` pixels separate cells.
    """
    images = [_as_bgr(im) for im in images]
    if not images:
        raise CenterDetError("make_grid needs at least one image")
    if int(cols) < 1:
        raise CenterDetError(f"make_grid cols must be >= 1, got {cols}")
    cols = min(int(cols), len(images))
    rows = -(-len(images) // cols)
    cell_h = max(im.shape[0] for im in images)
    cell_w = max(im.shape[1] for im in images)
    grid = np.full((rows * cell_h + (rows - 1) * gap, cols * cell_w + (cols - 1) * gap, 3), fill, np.uint8)
    for i, im in enumerate(images):
        top, left = (i // cols) * (cell_h + gap), (i % cols) * (cell_w + gap)
        grid[top:top + im.shape[0], left:left + im.shape[1]] = im
    return grid


# ---------------------------------------------------------------- plots


def _new_figure(figsize):
    """A Figure on its own Agg canvas: no pyplot global state, no GUI backend, nothing to close."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save_figure(fig, path, dpi=100):
    """Render to memory first so that only a complete PNG reaches the disk."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    write_bytes(path, buf.getvalue())


def smooth_ema(values, span):
    """Debiased exponential moving average (like TensorBoard), skipping NaN/inf points.

    Debiasing keeps the first points at the data instead of pulling them towards zero.
    """
    values = np.asarray(values, np.float64)
    alpha = 2.0 / (max(int(span), 1) + 1.0)
    out = np.full_like(values, np.nan)
    avg, weight = 0.0, 0.0
    for i, v in enumerate(values):
        if np.isfinite(v):
            avg = (1 - alpha) * avg + alpha * v
            weight = (1 - alpha) * weight + alpha
            out[i] = avg / weight
    return out


def _loss_series(history):
    steps = history.get("step")
    names = [k for k in history if k != "step"]
    if not names:
        raise CenterDetError("loss history has no loss components to plot")
    n = len(history[names[0]])
    steps = np.arange(n) if steps is None else np.asarray(steps, np.float64)
    series = {}
    for name in names:
        values = np.asarray(history[name], np.float64)
        if len(values) != len(steps):
            raise CenterDetError(f"loss history '{name}' has {len(values)} values but "
                                 f"'step' has {len(steps)}")
        series[name] = values
    if len(steps) == 0:
        raise CenterDetError("loss history is empty; nothing to plot")
    return steps, series


def plot_loss_curve(history, path, title="Training loss"):
    """Each loss component as a faint raw line plus a smoothed line; log y when all positive.

    The smoothing span is ~5% of the run: enough to read the trend of a noisy long run without
    flattening a short one. A log axis shows late-training progress that a linear one hides.
    """
    steps, series = _loss_series(history)
    span = max(1, len(steps) // 20)
    fig, ax = _new_figure((8, 4.5))
    for i, (name, values) in enumerate(series.items()):
        color = f"C{i % 10}"
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(steps, smooth_ema(values, span), color=color, linewidth=2.2 if name == "loss" else 1.5,
                label=name)
    finite = np.concatenate([v[np.isfinite(v)] for v in series.values()])
    if finite.size and (finite > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right")
    _save_figure(fig, path)


def plot_pr_curves(curves, path, title="Precision-recall"):
    """One precision-recall line per setting, AP in the legend, best AP listed first."""
    if not curves:
        raise CenterDetError("plot_pr_curves needs at least one curve")
    fig, ax = _new_figure((6, 6))
    ordered = sorted(curves.items(), key=lambda item: -float(item[1][2]))
    for i, (name, (recall, precision, ap)) in enumerate(ordered):
        recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
        if recall.shape != precision.shape:
            raise CenterDetError(f"PR curve '{name}': recall has {recall.size} points, "
                                 f"precision has {precision.size}")
        ax.plot(recall, precision, color=f"C{i % 10}", linewidth=1.8, label=f"{name} (AP={float(ap):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    _save_figure(fig, path)
