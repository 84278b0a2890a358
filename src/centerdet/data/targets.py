"""Target encoding for the CenterNet heads (pure numpy): gaussian heatmap, size, offset, index, mask."""
import math

import numpy as np

from centerdet.geometry import draw_gaussian, gaussian_radius


def _splat(heat, box, min_overlap):
    """Draw a box's gaussian on ``heat``; returns (width, height, centre, integer centre) or None for a
    box without area (or with NaN / inf coordinates, e.g. from a MindRecord written by another tool)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    if not (math.isfinite(bw) and math.isfinite(bh) and bw > 0 and bh > 0):
        return None
    radius = max(0, int(gaussian_radius(math.ceil(bh), math.ceil(bw), min_overlap)))
    ct = np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0], np.float32)
    ct_int = ct.astype(np.int32)
    draw_gaussian(heat, ct_int, radius)
    return bw, bh, ct, ct_int


def encode_centernet(boxes, labels, out_size, num_classes, max_objs, min_overlap=0.7):
    """Boxes in output-map pixels (xyxy, already clipped) → training targets.

    Slot k holds annotation k (the first ``max_objs``); slots of degenerate boxes stay empty, as in
    CenterNet, so ``mask`` (not a count) says which slots are real.
    """
    out_h, out_w = out_size
    hm = np.zeros((num_classes, out_h, out_w), np.float32)
    wh = np.zeros((max_objs, 2), np.float32)
    reg = np.zeros((max_objs, 2), np.float32)
    ind = np.zeros((max_objs,), np.int32)
    mask = np.zeros((max_objs,), np.float32)
    for k in range(min(len(boxes), max_objs)):
        placed = _splat(hm[int(labels[k])], boxes[k], min_overlap)
        if placed is None:
            continue
        bw, bh, ct, ct_int = placed
        wh[k] = bw, bh
        ind[k] = ct_int[1] * out_w + ct_int[0]
        reg[k] = ct - ct_int
        mask[k] = 1.0
    return {"hm": hm, "wh": wh, "reg": reg, "ind": ind, "mask": mask}


def face_box_weight(area):
    """Weight of a face's size/offset losses by its box area in output pixels (model-zoo brackets).

    Small faces are up-weighted so they are not drowned out, but boxes of a few pixels are mostly
    label noise, so those are nearly ignored.
    """
    if area <= 4:
        return 0.1
    if area <= 10:
        return 15.0
    if area <= 20:
        return 10.0
    if area <= 40:
        return 5.0
    return 1.0


def encode_centerface(boxes, landmarks, visible, out_size, max_objs, min_overlap=0.7):
    """Faces in output-map pixels → CenterFace targets in slot format (centerface.md §2).

    The size target is log(size / 4) (model-zoo convention, decode: 4·exp); landmarks are offsets
    from the integer centre in units of the box size. Slot k holds face k, degenerate faces leave
    their slot empty, and faces past ``max_objs`` are dropped (the caller subsamples crowds).
    """
    out_h, out_w = out_size
    hm = np.zeros((1, out_h, out_w), np.float32)
    wh = np.zeros((max_objs, 2), np.float32)
    reg = np.zeros((max_objs, 2), np.float32)
    ind = np.zeros((max_objs,), np.int32)
    mask = np.zeros((max_objs,), np.float32)
    wh_weight = np.zeros((max_objs,), np.float32)
    lm = np.zeros((max_objs, 10), np.float32)
    lm_mask = np.zeros((max_objs, 10), np.float32)
    for k in range(min(len(boxes), max_objs)):
        placed = _splat(hm[0], boxes[k], min_overlap)
        if placed is None:
            continue
        bw, bh, ct, ct_int = placed
        wh[k] = math.log(bw / 4.0), math.log(bh / 4.0)
        reg[k] = ct - ct_int
        ind[k] = ct_int[1] * out_w + ct_int[0]
        mask[k] = 1.0
        wh_weight[k] = face_box_weight(bw * bh)
        rel = (np.asarray(landmarks[k], np.float64) - ct_int) / (bw, bh)
        # A box only a few float32 ulps wide would give offsets that overflow float32: not a target.
        with np.errstate(over="ignore", invalid="ignore"):
            vis = np.repeat(np.asarray(visible[k], bool) & np.isfinite(rel.astype(np.float32)).all(axis=1), 2)
        lm[k] = np.where(vis, rel.reshape(10), 0.0)
        lm_mask[k] = vis
    return {"hm": hm, "wh": wh, "reg": reg, "ind": ind, "mask": mask,
            "wh_weight": wh_weight, "lm": lm, "lm_mask": lm_mask}
