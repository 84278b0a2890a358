"""Target encoding for the CenterNet heads (pure numpy): gaussian heatmap, size, offset, index, mask."""
import math

import numpy as np

from centerdet.geometry import draw_gaussian, gaussian_radius


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
        x1, y1, x2, y2 = (float(v) for v in boxes[k])
        bw, bh = x2 - x1, y2 - y1
        if bw <= 0 or bh <= 0:
            continue
        radius = max(0, int(gaussian_radius(math.ceil(bh), math.ceil(bw), min_overlap)))
        ct = np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0], np.float32)
        ct_int = ct.astype(np.int32)
        draw_gaussian(hm[int(labels[k])], ct_int, radius)
        wh[k] = bw, bh
        ind[k] = ct_int[1] * out_w + ct_int[0]
        reg[k] = ct - ct_int
        mask[k] = 1.0
    return {"hm": hm, "wh": wh, "reg": reg, "ind": ind, "mask": mask}
