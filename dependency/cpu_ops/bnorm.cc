// BatchNorm over NCHW in training mode (batch statistics), forward and backward, two passes each.
// MindSpore's CPU BatchNorm + BatchNormGrad (plain-layout oneDNN under the AVX2 cap) took ~48 ms of
// a ResNet-18 train step; inference folds BatchNorm into the convolutions (models/fuse.py).
//
// Forward: per channel c, mean μ and biased variance σ² over (N, H, W); y = (x − μ)·γ/√(σ² + ε) + β.
// Backward with x̂ = (x − μ)/√(σ² + ε) and M = N·H·W:
//   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ/√(σ² + ε) · (dy − dβ/M − x̂·dγ/M).
// An activation may follow in the same pass (act 1: ReLU, 2: ReLU6): the network then stores one
// tensor per BN-ReLU pair for the backward instead of two, and the backward masks dy by the
// activation's output (which the next layer keeps anyway) while it sums.
// params: float32 [eps, momentum, act]. Each thread owns whole channels: no shared accumulators.
#include <algorithm>
#include <cmath>

#include "common.h"

namespace centerdet {
namespace {

struct Layout {
  int64_t N, C, HW;
  int64_t M() const { return N * HW; }
};

enum Act { kNone = 0, kRelu = 1, kRelu6 = 2 };

Act act_of(const void *params) { return static_cast<Act>(static_cast<int>(static_cast<const float *>(params)[2])); }

// The activation's output range (lo, hi): none (−∞, ∞), ReLU (0, ∞), ReLU6 (0, 6).
void bounds(Act act, float *lo, float *hi) {
  *lo = act == kNone ? -INFINITY : 0.0f;
  *hi = act == kRelu6 ? 6.0f : INFINITY;
}

// The activation's gradient given its output y: dy where lo < y < hi, else 0. A select on two
// compares, which vectorises (a branch on act inside did not: 3× slower).
inline float masked(float dy, float y, float lo, float hi) { return (y > lo) & (y < hi) ? dy : 0.0f; }

Layout layout(const int64_t *shape, int ndim) {
  int64_t hw = 1;
  for (int i = 2; i < ndim; ++i) hw *= shape[i];
  return Layout{shape[0], shape[1], hw};
}

}  // namespace
}  // namespace centerdet

using namespace centerdet;

// (x, gamma, beta, moving_mean, moving_variance, params) -> y. The moving averages are updated in
// place, as MindSpore's own BatchNorm does with them: avg ← (1 − m)·avg + m·batch statistic, with
// the unbiased variance (params: float32 [eps, m]).
CENTERDET_AOT(BatchNormTrain) {
  return guarded("BatchNormTrain", [&](Call &) {
    const Layout L = layout(shapes[0], ndims[0]);
    const auto *x = static_cast<const float *>(params[0]);
    const auto *gamma = static_cast<const float *>(params[1]);
    const auto *beta = static_cast<const float *>(params[2]);
    auto *moving_mean = static_cast<float *>(params[3]);
    auto *moving_var = static_cast<float *>(params[4]);
    const float eps = static_cast<const float *>(params[5])[0];
    const float momentum = static_cast<const float *>(params[5])[1];
    float lo, hi;
    bounds(act_of(params[5]), &lo, &hi);
    auto *y = static_cast<float *>(params[6]);
    const double unbiased = L.M() > 1 ? static_cast<double>(L.M()) / (L.M() - 1) : 1.0;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < L.C; ++c) {
      // Moments about a pivot (the channel's first value) keep E[x²] − E[x]² from cancelling when
      // the mean is large against the spread; float inside a plane (vectorises), double across.
      const float pivot = x[c * L.HW];
      double sum = 0.0, sq = 0.0;
      for (int64_t n = 0; n < L.N; ++n) {
        const float *v = x + (n * L.C + c) * L.HW;
        float s = 0.0f, q = 0.0f;
#pragma omp simd reduction(+ : s, q)
        for (int64_t i = 0; i < L.HW; ++i) {
          const float d = v[i] - pivot;
          s += d;
          q += d * d;
        }
        sum += s;
        sq += q;
      }
      const double shifted_mean = sum / L.M();
      const double mean = pivot + shifted_mean;
      const double var = std::fmax(sq / L.M() - shifted_mean * shifted_mean, 0.0);
      moving_mean[c] = (1.0f - momentum) * moving_mean[c] + momentum * static_cast<float>(mean);
      moving_var[c] = (1.0f - momentum) * moving_var[c] + momentum * static_cast<float>(var * unbiased);
      const float scale = gamma[c] / std::sqrt(static_cast<float>(var) + eps);
      const float shift = beta[c] - static_cast<float>(mean) * scale;
      for (int64_t n = 0; n < L.N; ++n) {
        const float *v = x + (n * L.C + c) * L.HW;
        float *o = y + (n * L.C + c) * L.HW;
#pragma omp simd
        for (int64_t i = 0; i < L.HW; ++i) {
          // selects, not std::min/max (whose NaN rules kept this loop scalar); a NaN stays NaN
          const float r = v[i] * scale + shift, r_lo = r < lo ? lo : r;
          o[i] = r_lo > hi ? hi : r_lo;
        }
      }
    }
  });
}

// (dy, x, gamma, y, params) -> (dx, dgamma, dbeta). The statistics are recomputed in the same pass
// that sums dy and dy·x, so the backward holds on to nothing of the forward but x and, with an
// activation, y (without one the caller passes x again as y: no saved mean/variance or y ties the
// forward's output, which the graph frees as soon as its consumers ran).
CENTERDET_AOT(BatchNormTrainGrad) {
  return guarded("BatchNormTrainGrad", [&](Call &) {
    const Layout L = layout(shapes[1], ndims[1]);
    const auto *dy = static_cast<const float *>(params[0]);
    const auto *x = static_cast<const float *>(params[1]);
    const auto *gamma = static_cast<const float *>(params[2]);
    const auto *y = static_cast<const float *>(params[3]);
    const float eps = static_cast<const float *>(params[4])[0];
    float lo, hi;  // without an activation y is x, and every finite x passes
    bounds(act_of(params[4]), &lo, &hi);
    auto *dx = static_cast<float *>(params[5]);
    auto *dgamma = static_cast<float *>(params[6]);
    auto *dbeta = static_cast<float *>(params[7]);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < L.C; ++c) {
      const float pivot = x[c * L.HW];  // as in the forward pass
      double sum_x = 0.0, sum_xx = 0.0, sum_dy = 0.0, sum_dy_x = 0.0;
      for (int64_t n = 0; n < L.N; ++n) {
        const int64_t off = (n * L.C + c) * L.HW;
        float s = 0.0f, q = 0.0f, g = 0.0f, gx = 0.0f;
#pragma omp simd reduction(+ : s, q, g, gx)
        for (int64_t i = 0; i < L.HW; ++i) {
          const float d = x[off + i] - pivot, e = masked(dy[off + i], y[off + i], lo, hi);
          s += d;
          q += d * d;
          g += e;
          gx += e * d;
        }
        sum_x += s;
        sum_xx += q;
        sum_dy += g;
        sum_dy_x += gx;
      }
      const double shifted_mean = sum_x / L.M();
      const float mu = static_cast<float>(pivot + shifted_mean);
      const double var = std::fmax(sum_xx / L.M() - shifted_mean * shifted_mean, 0.0);
      const float invstd = 1.0f / std::sqrt(static_cast<float>(var) + eps);
      const float db = static_cast<float>(sum_dy);
      const float dg = static_cast<float>(sum_dy_x - shifted_mean * sum_dy) * invstd;  // Σ dy·x̂
      dbeta[c] = db;
      dgamma[c] = dg;
      const float k = gamma[c] * invstd, inv_m = 1.0f / static_cast<float>(L.M());
      const float mean_dy = db * inv_m, xhat_coef = dg * inv_m * invstd;
      for (int64_t n = 0; n < L.N; ++n) {
        const int64_t off = (n * L.C + c) * L.HW;
#pragma omp simd
        for (int64_t i = 0; i < L.HW; ++i) {
          const float e = masked(dy[off + i], y[off + i], lo, hi);
          dx[off + i] = k * (e - mean_dy - (x[off + i] - mu) * xhat_coef);
        }
      }
    }
  });
}
