# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Soft-NMS, hard NMS and IoU kernels (+1 pixel convention), compiled to ``centerdet._nms``.

Call these through ``centerdet.nms``, which validates input and hands in private
contiguous copies: the kernels trust their arguments and work in place.
IoU arithmetic is done in double from float32 coordinates, in a fixed operation
order that ``centerdet.nms`` mirrors in numpy so both backends agree bit for bit
on every keep/remove decision.
"""
from libc.math cimport exp
from libc.stdint cimport int64_t

import numpy as np


cdef inline double _overlap(double ax1, double ay1, double ax2, double ay2, double a_area,
                            double bx1, double by1, double bx2, double by2) noexcept nogil:
    """IoU of a and b; 0 when they do not overlap (iw <= 0 or ih <= 0)."""
    cdef double iw = (bx2 if bx2 < ax2 else ax2) - (bx1 if bx1 > ax1 else ax1) + 1.0
    if iw <= 0.0:
        return 0.0
    cdef double ih = (by2 if by2 < ay2 else ay2) - (by1 if by1 > ay1 else ay1) + 1.0
    if ih <= 0.0:
        return 0.0
    cdef double b_area = (bx2 - bx1 + 1.0) * (by2 - by1 + 1.0)
    cdef double inter = iw * ih
    return inter / (a_area + b_area - inter)


cdef inline void _swap_rows(float[:, ::1] boxes, int64_t[::1] idx,
                            Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef float t
    cdef int64_t ti
    cdef Py_ssize_t k
    for k in range(5):
        t = boxes[a, k]
        boxes[a, k] = boxes[b, k]
        boxes[b, k] = t
    ti = idx[a]
    idx[a] = idx[b]
    idx[b] = ti


def soft_nms_inplace(float[:, ::1] boxes, int64_t[::1] idx, double sigma, double Nt,
                     double threshold, int method):
    """Run soft-NMS on ``boxes`` (N,5) in place, permuting ``idx`` alongside.

    Returns the survivor count M: survivors are ``boxes[:M]`` / ``idx[:M]``; the
    tail rows are stale. method 0 hard, 1 linear, 2 gaussian (exp(-ov^2/sigma)).
    """
    cdef Py_ssize_t n = boxes.shape[0]
    cdef Py_ssize_t i, j, k, best
    cdef float best_score
    cdef double x1, y1, x2, y2, area, ov, weight
    with nogil:
        i = 0
        while i < n:
            best = i
            best_score = boxes[i, 4]
            for j in range(i + 1, n):
                if boxes[j, 4] > best_score:
                    best_score = boxes[j, 4]
                    best = j
            if best != i:
                _swap_rows(boxes, idx, i, best)
            x1 = boxes[i, 0]
            y1 = boxes[i, 1]
            x2 = boxes[i, 2]
            y2 = boxes[i, 3]
            area = (x2 - x1 + 1.0) * (y2 - y1 + 1.0)
            j = i + 1
            while j < n:
                ov = _overlap(x1, y1, x2, y2, area,
                              boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3])
                if ov > 0.0:
                    if method == 1:
                        weight = 1.0 - ov if ov > Nt else 1.0
                    elif method == 2:
                        weight = exp(-(ov * ov) / sigma)
                    else:
                        weight = 0.0 if ov > Nt else 1.0
                    boxes[j, 4] = <float>(weight * <double>boxes[j, 4])
                    if <double>boxes[j, 4] < threshold:
                        # Fill the hole with the last live row and look at it next.
                        n -= 1
                        for k in range(5):
                            boxes[j, k] = boxes[n, k]
                        idx[j] = idx[n]
                        continue
                j += 1
            i += 1
    return n


def nms_sorted(float[:, ::1] boxes, int64_t[::1] order, double thresh):
    """Greedy hard NMS over rows visited in ``order`` (already score-descending).

    Returns the kept input indices; a row is suppressed by a kept row with IoU >= thresh.
    """
    cdef Py_ssize_t n = order.shape[0]
    cdef Py_ssize_t a, b, i, j, m = 0
    cdef double x1, y1, x2, y2, area
    cdef unsigned char[::1] dead = np.zeros(n, dtype=np.uint8)
    keep_arr = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] keep = keep_arr
    with nogil:
        for a in range(n):
            if dead[a]:
                continue
            i = order[a]
            keep[m] = i
            m += 1
            x1 = boxes[i, 0]
            y1 = boxes[i, 1]
            x2 = boxes[i, 2]
            y2 = boxes[i, 3]
            area = (x2 - x1 + 1.0) * (y2 - y1 + 1.0)
            for b in range(a + 1, n):
                if dead[b]:
                    continue
                j = order[b]
                if _overlap(x1, y1, x2, y2, area,
                            boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3]) >= thresh:
                    dead[b] = 1
    return keep_arr[:m]


def bbox_overlaps(double[:, ::1] boxes, double[:, ::1] query):
    """IoU matrix (N,K) between ``boxes`` (N,4) and ``query`` (K,4), float64."""
    cdef Py_ssize_t n = boxes.shape[0], kq = query.shape[0]
    cdef Py_ssize_t a, b
    cdef double qx1, qy1, qx2, qy2, q_area
    out_arr = np.zeros((n, kq), dtype=np.float64)
    cdef double[:, ::1] out = out_arr
    with nogil:
        for b in range(kq):
            qx1 = query[b, 0]
            qy1 = query[b, 1]
            qx2 = query[b, 2]
            qy2 = query[b, 3]
            q_area = (qx2 - qx1 + 1.0) * (qy2 - qy1 + 1.0)
            for a in range(n):
                out[a, b] = _overlap(qx1, qy1, qx2, qy2, q_area,
                                     boxes[a, 0], boxes[a, 1], boxes[a, 2], boxes[a, 3])
    return out_arr
