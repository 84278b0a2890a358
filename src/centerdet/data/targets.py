"""The target encoding every task starts from (pure numpy): gaussian centre heatmaps, the flat
index and mask of each object's centre cell, its size and its sub-cell offset. Tasks derive their
other regression targets from the same per-object slots (``centerdet.tasks``)."""
import math
from typing import Dict, Sequence, Tuple

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


def encode_centers(boxes: np.ndarray, labels: Sequence[int], out_size: Tuple[int, int], num_classes: int,
                   max_objs: int, min_overlap: float = 0.7) -> Dict[str, np.ndarray]:
    """Boxes in output-map pixels (xyxy, already clipped) → the shared targets.

    Returns hm (C, H, W), ind (M,) flat centre cells, mask (M,), size (M, 2) box width and height (float64),
    reg (M, 2) centre − its cell, center (M, 2) the integer centre cell. Slot k holds box k (the
    first ``max_objs``); slots of degenerate boxes stay empty, as in CenterNet, so ``mask`` (not a
    count) says which slots are real.
    """
    out_h, out_w = out_size
    t = {"hm": np.zeros((num_classes, out_h, out_w), np.float32),
         "ind": np.zeros((max_objs,), np.int32), "mask": np.zeros((max_objs,), np.float32),
         "size": np.zeros((max_objs, 2), np.float64), "reg": np.zeros((max_objs, 2), np.float32),
         "center": np.zeros((max_objs, 2), np.int32)}
    for k in range(min(len(boxes), max_objs)):
        placed = _splat(t["hm"][int(labels[k])], boxes[k], min_overlap)
        if placed is None:
            continue
        bw, bh, ct, ct_int = placed
        t["size"][k] = bw, bh
        t["reg"][k] = ct - ct_int
        t["center"][k] = ct_int
        t["ind"][k] = ct_int[1] * out_w + ct_int[0]
        t["mask"][k] = 1.0
    return t
