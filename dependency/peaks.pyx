# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Top-K local maxima of a heatmap in one pass, compiled to ``centerdet._peaks``.

Call it through ``centerdet.decode.peak_topk``, which hands in a C-contiguous float32 map and
falls back to numpy when fewer than K positive peaks exist. A cell is a peak when no cell of its
3×3 window (inside the map) is larger, the test of CenterNet's max-pool "NMS"; a NaN neighbour
disqualifies it, as NaN propagates through the numpy max filter. Order: score descending, ties by
flat index ascending, the order the numpy path produces.
"""
from libc.stdint cimport int64_t

import numpy as np


cdef inline bint _worse(float sa, int64_t ia, float sb, int64_t ib) noexcept nogil:
    return sa < sb or (sa == sb and ia > ib)


cdef inline void _swap(float *s, int64_t *ix, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    s[a], s[b] = s[b], s[a]
    ix[a], ix[b] = ix[b], ix[a]


cdef void _sift_down(float *s, int64_t *ix, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    """Restore the min-heap (worst element at the root) below slot i."""
    cdef Py_ssize_t child
    while True:
        child = 2 * i + 1
        if child >= n:
            return
        if child + 1 < n and _worse(s[child + 1], ix[child + 1], s[child], ix[child]):
            child += 1
        if not _worse(s[child], ix[child], s[i], ix[i]):
            return
        _swap(s, ix, i, child)
        i = child


cdef void _sift_up(float *s, int64_t *ix, Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t parent
    while i > 0:
        parent = (i - 1) // 2
        if not _worse(s[i], ix[i], s[parent], ix[parent]):
            return
        _swap(s, ix, i, parent)
        i = parent


cdef inline bint _is_peak(const float[:, :, ::1] heat, Py_ssize_t c, Py_ssize_t y, Py_ssize_t x,
                          Py_ssize_t h, Py_ssize_t w, float v) noexcept nogil:
    cdef Py_ssize_t yy, xx
    for yy in range(y - 1 if y > 0 else 0, y + 2 if y + 2 <= h else h):
        for xx in range(x - 1 if x > 0 else 0, x + 2 if x + 2 <= w else w):
            if not heat[c, yy, xx] <= v:
                return False
    return True


def peak_topk(const float[:, :, ::1] heat, Py_ssize_t k):
    """(scores float32, flat indices int64) of the best ``k`` positive peaks, best first; fewer
    when the map has fewer."""
    cdef Py_ssize_t C = heat.shape[0], H = heat.shape[1], W = heat.shape[2]
    score_buf = np.empty(max(k, 1), np.float32)
    index_buf = np.empty(max(k, 1), np.int64)
    cdef float[::1] s = score_buf
    cdef int64_t[::1] ix = index_buf
    cdef Py_ssize_t n = 0, c, y, x
    cdef float v, floor = 0.0  # a candidate must beat this: 0 until the heap is full, then its worst
    if k <= 0:
        return score_buf[:0], index_buf[:0]
    with nogil:
        for c in range(C):
            for y in range(H):
                for x in range(W):
                    v = heat[c, y, x]
                    if not v > floor:
                        continue
                    if not _is_peak(heat, c, y, x, H, W, v):
                        continue
                    # Cells arrive in ascending flat index, so a tie with the worst kept one loses.
                    if n < k:
                        s[n] = v
                        ix[n] = (c * H + y) * W + x
                        _sift_up(&s[0], &ix[0], n)
                        n += 1
                    else:
                        s[0] = v
                        ix[0] = (c * H + y) * W + x
                        _sift_down(&s[0], &ix[0], n, 0)
                    if n == k:
                        floor = s[0]
    order = np.lexsort((index_buf[:n], -score_buf[:n]))
    return score_buf[:n][order], index_buf[:n][order]
