"""Independent numpy references shared by several test modules."""
import numpy as np


def gaussian_map(h, w, cx, cy, r):
    """One CenterNet ('umich') gaussian of integer radius r pasted at (cx, cy) on an h×w map."""
    sigma = (2 * r + 1) / 6.0
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
    return np.where(inside, np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2)), 0.0)
