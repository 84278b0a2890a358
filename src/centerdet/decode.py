"""From head maps to boxes (pure numpy), the steps every task shares: peak extraction, top-K,
back-projection to the image, merging of scales and soft-NMS. Each task's own decode
(``centerdet.tasks``) turns the peaks into its rows.

Detections are float32 rows [x1, y1, x2, y2, score, label] with 0-based contiguous labels; a task
may add (x, y) columns after them (CenterFace: its five landmarks).
"""
import numpy as np

from centerdet.geometry import affine_transform, get_affine_transform
from centerdet.nms import soft_nms_by_class

try:
    from centerdet import _peaks
except ImportError:  # pragma: no cover - depends on the install; the numpy path does the same
    _peaks = None


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float32)))


def max_filter(heat, kernel=3):
    """Per-channel kernel×kernel maximum of (C, H, W), cells beyond the border not taken (scipy's
    maximum_filter with size (1, k, k), mode constant, cval −inf), as shifted np.maximum passes
    along x then y: ~20× faster on an 80×128×128 heatmap."""
    r = kernel // 2
    rows = np.array(heat, np.float32)
    src = rows.copy()
    for d in range(1, r + 1):
        np.maximum(rows[:, :, d:], src[:, :, :-d], out=rows[:, :, d:])
        np.maximum(rows[:, :, :-d], src[:, :, d:], out=rows[:, :, :-d])
    out = rows.copy()
    for d in range(1, r + 1):
        np.maximum(out[:, d:], rows[:, :-d], out=out[:, d:])
        np.maximum(out[:, :-d], rows[:, d:], out=out[:, :-d])
    return out


def peak_nms(heat, kernel=3):
    """Keep only local maxima of each channel in a kernel×kernel window (the 'NMS' of CenterNet)."""
    heat = np.asarray(heat, np.float32)
    return heat * (max_filter(heat, kernel) == heat)  # float32 × bool stays float32; faster than np.where


def topk(heat, k):
    """Global top-k over (C, H, W) → scores, classes, ys, xs sorted by descending score."""
    c, h, w = heat.shape
    flat = heat.reshape(-1)
    k = min(k, flat.size)
    # After peak NMS most cells are 0: partition only the positive ones when there are enough.
    candidates = np.flatnonzero(flat > 0)
    if len(candidates) >= k:
        idx = candidates[np.argpartition(-flat[candidates], k - 1)[:k]]
    else:
        idx = np.argpartition(-flat, k - 1)[:k]
    idx = idx[np.argsort(-flat[idx], kind="stable")]
    cls, pix = np.divmod(idx, h * w)
    ys, xs = np.divmod(pix, w)
    return flat[idx], cls, ys, xs


def peak_topk(heat, k, backend="auto"):
    """topk(peak_nms(heat), k) without building the masked map: the best k positive peaks, score
    descending, ties by flat index. The Cython kernel (``centerdet._peaks``) does it in one pass
    with a size-k heap; the numpy twin bounds the search first: the k-th best score among the
    peaks of the first eighth of the map is a lower bound for the k-th best peak overall, so only
    cells at or above it are checked for being peaks and sorted. Both fall back to the masked map
    when fewer than k positive peaks exist."""
    heat = np.ascontiguousarray(heat, np.float32)
    c, h, w = heat.shape
    if _peaks is not None and backend != "numpy":
        scores, idx = _peaks.peak_topk(heat, k)
    else:
        flat = heat.reshape(-1)
        hmax = max_filter(heat).reshape(-1)
        head = max(flat.size // 8, 1)
        sample = flat[:head][hmax[:head] == flat[:head]]
        bound = np.partition(sample, len(sample) - k)[len(sample) - k] if len(sample) >= k else 0.0
        idx = np.flatnonzero(flat >= bound)
        idx = idx[(hmax[idx] == flat[idx]) & (flat[idx] > 0)]
        idx = idx[np.argsort(-flat[idx], kind="stable")[:k]]  # idx ascending: ties stay by index
        scores = flat[idx]
    if len(idx) < k:
        return topk(peak_nms(heat), k)
    cls, pix = np.divmod(idx, h * w)
    ys, xs = np.divmod(pix, w)
    return scores, cls, ys, xs


def to_image_coords(dets, center, scale, out_size, test_scale=1.0):
    """Map boxes (and landmark columns 6.., if any) from output-map pixels back to the original image
    through the inverse crop affine."""
    out = dets.copy()
    trans = get_affine_transform(center, scale, 0, out_size, inv=True)
    out[:, 0:2] = affine_transform(dets[:, 0:2], trans)
    out[:, 2:4] = affine_transform(dets[:, 2:4], trans)
    out[:, :4] /= test_scale
    if dets.shape[1] > 6:
        points = affine_transform(dets[:, 6:].reshape(-1, 2), trans) / test_scale
        out[:, 6:] = points.reshape(len(dets), -1)
    return out


def merge_detections(dets_list, num_classes, use_nms=True, nms_method=2, nms_iou=0.5, nms_sigma=0.5,
                     nms_score_thresh=0.001, max_per_image=100):
    """Concatenate detections of all test scales, soft-NMS per class, keep the best ``max_per_image``.

    Like CenterNet, ties at the cut-off score are all kept.
    """
    dets = np.concatenate(dets_list, 0) if dets_list else np.zeros((0, 6), np.float32)
    if use_nms and len(dets):
        labels = dets[:, 5]
        dets = dets[(labels >= 0) & (labels < num_classes)]
        survivors, idx = soft_nms_by_class(dets[:, :5], dets[:, 5], sigma=nms_sigma, Nt=nms_iou,
                                           threshold=nms_score_thresh, method=nms_method)
        dets = np.concatenate([survivors, dets[idx, 5:]], 1)
    if len(dets) > max_per_image:
        thresh = np.partition(dets[:, 4], len(dets) - max_per_image)[len(dets) - max_per_image]
        dets = dets[dets[:, 4] >= thresh]
    return dets[np.argsort(-dets[:, 4], kind="stable")].astype(np.float32)
