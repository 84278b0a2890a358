"""Pure numpy geometry shared by training targets and decoding: affine crops, gaussian peaks.

Conventions follow CenterNet: a crop is described by a centre ``c`` (x, y) and a scale ``s`` (the
side length, in source pixels, that maps onto the output width). Points are (x, y).
"""
import math

import cv2
import numpy as np


def _rotate(point, rad):
    sn, cs = math.sin(rad), math.cos(rad)
    return np.array([point[0] * cs - point[1] * sn, point[0] * sn + point[1] * cs], np.float32)


def _third_point(a, b):
    d = a - b
    return b + np.array([-d[1], d[0]], np.float32)


def get_affine_transform(center, scale, rot, output_size, shift=(0.0, 0.0), inv=False):
    """2×3 matrix mapping the crop (center, scale, rot degrees) onto ``output_size`` (w, h).

    Only the width component of a 2-vector scale is used, so the mapping is isotropic: the same
    factor ``out_w / scale_w`` applies to both axes and aspect ratio is kept.
    """
    scale = np.array([scale, scale], np.float32) if np.isscalar(scale) else np.asarray(scale, np.float32)
    center = np.asarray(center, np.float32)
    out_w, out_h = output_size
    src_w = scale[0]
    src_dir = _rotate((0.0, src_w * -0.5), math.radians(rot))
    dst_dir = np.array([0.0, out_w * -0.5], np.float32)

    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = center + scale * np.asarray(shift, np.float32)
    src[1] = src[0] + src_dir
    dst[0] = [out_w * 0.5, out_h * 0.5]
    dst[1] = dst[0] + dst_dir
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    if inv:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def affine_transform(points, trans):
    """Apply a 2×3 matrix to points of shape (..., 2)."""
    pts = np.asarray(points, np.float64)
    return (pts @ trans[:, :2].T + trans[:, 2]).astype(np.float32)


def gaussian_radius(height, width, min_overlap=0.7):
    """Radius of the peak so that boxes with corners inside it keep IoU >= min_overlap.

    This is the CornerNet formula as CenterNet ships it, which takes (b + sqrt(.)) / 2 for every
    case instead of the intended roots; CenterNet's published accuracy comes from this version,
    so it is kept on purpose (see the reference notes, section 4 of centernet.md).
    """
    h, w, o = float(height), float(width), float(min_overlap)
    b1 = h + w
    c1 = w * h * (1 - o) / (1 + o)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - o) * w * h
    r2 = (b2 + math.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3 = 4 * o
    b3 = -2 * o * (h + w)
    c3 = (o - 1) * w * h
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def gaussian_2d(diameter, sigma):
    """Square gaussian of side ``diameter`` with peak 1 at the centre; tiny tails set to 0."""
    m = (diameter - 1.0) / 2.0
    y, x = np.ogrid[-m:m + 1, -m:m + 1]
    g = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    g[g < np.finfo(g.dtype).eps * g.max()] = 0
    return g


def draw_gaussian(heatmap, center, radius):
    """Paste a gaussian of the given integer radius at integer ``center`` (x, y), keeping the max."""
    diameter = 2 * radius + 1
    g = gaussian_2d(diameter, sigma=diameter / 6)
    x, y = int(center[0]), int(center[1])
    height, width = heatmap.shape[:2]
    left, right = min(x, radius), min(width - x, radius + 1)
    top, bottom = min(y, radius), min(height - y, radius + 1)
    if left + right <= 0 or top + bottom <= 0:
        return heatmap
    region = heatmap[y - top:y + bottom, x - left:x + right]
    patch = g[radius - top:radius + bottom, radius - left:radius + right]
    np.maximum(region, patch, out=region)
    return heatmap


def padded_size(size, pad):
    """Smallest multiple of (pad + 1) strictly greater than ``size`` (CenterNet keep_res: (s | pad) + 1)."""
    return (int(size) | int(pad)) + 1
