// The epilogue of an inference transposed convolution in one pass: y = act(x + b) [+ r].
//
// A transposed convolution runs on oneDNN's backward-data kernel (conv.cc), which takes neither a
// bias nor post-ops, so a BatchNorm folded into it (models/fuse.py) left MindSpore a bias add and
// a ReLU, and CenterFace's neck an add of the lateral branch on top: three passes over each
// upsampled map, which this kernel makes one.
//
// x, r and y share one shape, plain (N, C, H, W) or channel-blocked (N, C/B, H, W, B); b holds C
// values. The last input is an int64 vector [act]: 0 none, 1 ReLU, 2 ReLU6.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "common.h"

using namespace centerdet;

namespace {

void bounds(int64_t act, float *lo, float *hi) {
  if (act < 0 || act > 2) throw std::invalid_argument("activation code " + std::to_string(act) + " (expected 0-2)");
  *lo = act == 0 ? -INFINITY : 0.0f;
  *hi = act == 2 ? 6.0f : INFINITY;
}

// One run of n pixels, B channels each (B = 1: one channel's plane, its bias a scalar).
template <bool kAdd>
inline void run_pixels(const float *x, const float *bias, const float *r, int64_t n, int64_t B, float lo, float hi,
                       float *y) {
  if (B == 1) {
    const float b0 = bias[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i] + b0, v_lo = v < lo ? lo : v, a = v_lo > hi ? hi : v_lo;
      y[i] = kAdd ? a + r[i] : a;
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
#pragma omp simd
    for (int64_t j = 0; j < B; ++j) {
      const float v = x[i * B + j] + bias[j], v_lo = v < lo ? lo : v, a = v_lo > hi ? hi : v_lo;
      y[i * B + j] = kAdd ? a + r[i * B + j] : a;
    }
  }
}

// rows: N·C (plain, B = 1) or N·C/B (blocked) runs of HW pixels, each run's channels starting
// at (row % C/B)·B.
template <bool kAdd>
void bias_act_add(const int64_t *shape, int ndim, const float *x, const float *b, const float *r, float lo,
                  float hi, float *y) {
  const int64_t B = ndim == 5 ? shape[4] : 1, channel_rows = shape[1], rows = shape[0] * shape[1];
  const int64_t hw = shape[2] * shape[3];
  // Chunks of a run, so that a map of few channel blocks (the neck's 4 at width 64) still
  // spreads over every thread.
  constexpr int64_t kChunk = 4096;
  const int64_t chunks = (hw + kChunk - 1) / kChunk;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t begin = chunk * kChunk, offset = (row * hw + begin) * B;
      run_pixels<kAdd>(x + offset, b + (row % channel_rows) * B, kAdd ? r + offset : nullptr,
                       std::min(hw, begin + kChunk) - begin, B, lo, hi, y + offset);
    }
  }
}

int run(const char *name, int64_t **shapes, int *ndims, void **params, int r_index, int p_index, int y_index) {
  return guarded(name, [&](Call &) {
    if (ndims[0] != 4 && ndims[0] != 5) throw std::invalid_argument("expects a 4-D or 5-D tensor");
    const int64_t channels = ndims[0] == 5 ? shapes[0][1] * shapes[0][4] : shapes[0][1];
    if (shapes[1][0] != channels) throw std::invalid_argument("bias length differs from the channels");
    float lo, hi;
    bounds(static_cast<const int64_t *>(params[p_index])[0], &lo, &hi);
    const auto *x = static_cast<const float *>(params[0]), *b = static_cast<const float *>(params[1]);
    auto *y = static_cast<float *>(params[y_index]);
    if (r_index < 0) {
      bias_act_add<false>(shapes[0], ndims[0], x, b, nullptr, lo, hi, y);
    } else {
      bias_act_add<true>(shapes[0], ndims[0], x, b, static_cast<const float *>(params[r_index]), lo, hi, y);
    }
  });
}

}  // namespace

// (x, b, params) -> act(x + b)
CENTERDET_AOT(BiasAct) { return run("BiasAct", shapes, ndims, params, -1, 2, 3); }

// (x, b, r, params) -> act(x + b) + r
CENTERDET_AOT(BiasActAdd) { return run("BiasActAdd", shapes, ndims, params, 2, 3, 4); }
