// BatchNorm in training mode (batch statistics) over NCHW or channel-blocked (N, C/B, H, W, B)
// tensors, forward and backward, two passes each.
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
#include <stdexcept>
#include <type_traits>

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

// One channel's forward epilogue, from its moments about a pivot over M values: updates the moving
// averages (unbiased variance) and gives the affine y = x·scale + shift.
inline void channel_affine(int64_t c, float pivot, double sum, double sq, int64_t M, const float *gamma,
                           const float *beta, float *moving_mean, float *moving_var, float eps, float momentum,
                           float *scale, float *shift) {
  const double unbiased = M > 1 ? static_cast<double>(M) / (M - 1) : 1.0;
  const double shifted_mean = sum / M, mean = pivot + shifted_mean;
  const double var = std::fmax(sq / M - shifted_mean * shifted_mean, 0.0);
  moving_mean[c] = (1.0f - momentum) * moving_mean[c] + momentum * static_cast<float>(mean);
  moving_var[c] = (1.0f - momentum) * moving_var[c] + momentum * static_cast<float>(var * unbiased);
  *scale = gamma[c] / std::sqrt(static_cast<float>(var) + eps);
  *shift = beta[c] - static_cast<float>(mean) * *scale;
}

// One channel's backward coefficients, dx = k·(e − mean_dy − (x − mu)·xhat_coef), from the sums of
// x − pivot, its square, the masked dy (e) and e·(x − pivot); writes dgamma = Σ e·x̂ and dbeta = Σ e.
struct GradCoef {
  float mu, k, mean_dy, xhat_coef;
};

inline GradCoef channel_grad(int64_t c, float pivot, double sum_x, double sum_xx, double sum_dy, double sum_dy_x,
                             int64_t M, const float *gamma, float eps, float *dgamma, float *dbeta) {
  const double shifted_mean = sum_x / M;
  const double var = std::fmax(sum_xx / M - shifted_mean * shifted_mean, 0.0);
  const float invstd = 1.0f / std::sqrt(static_cast<float>(var) + eps);
  const float db = static_cast<float>(sum_dy);
  const float dg = static_cast<float>(sum_dy_x - shifted_mean * sum_dy) * invstd;
  dbeta[c] = db;
  dgamma[c] = dg;
  const float inv_m = 1.0f / static_cast<float>(M);
  return GradCoef{static_cast<float>(pivot + shifted_mean), gamma[c] * invstd, db * inv_m, dg * inv_m * invstd};
}

// The same two passes over a channel-blocked tensor (N, C/B, H, W, B), ResNet's layout on these
// kernels (conv.cc): a thread owns a block of B channels, which are one vector's lanes.
template <int B>
void forward_blocked(const int64_t *shape, const float *x, const float *gamma, const float *beta,
                     float *moving_mean, float *moving_var, float eps, float momentum, float lo, float hi,
                     float *y) {
  const int64_t N = shape[0], CB = shape[1], HW = shape[2] * shape[3];
#pragma omp parallel for schedule(static)
  for (int64_t cb = 0; cb < CB; ++cb) {
    float pivot[B], scale[B], shift[B];
    double sum[B] = {}, sq[B] = {};
    for (int j = 0; j < B; ++j) pivot[j] = x[cb * HW * B + j];
    for (int64_t n = 0; n < N; ++n) {
      const float *v = x + (n * CB + cb) * HW * B;
      float s[B] = {}, q[B] = {};
      for (int64_t i = 0; i < HW; ++i) {
#pragma omp simd
        for (int j = 0; j < B; ++j) {
          const float d = v[i * B + j] - pivot[j];
          s[j] += d;
          q[j] += d * d;
        }
      }
      for (int j = 0; j < B; ++j) sum[j] += s[j], sq[j] += q[j];
    }
    for (int j = 0; j < B; ++j)
      channel_affine(cb * B + j, pivot[j], sum[j], sq[j], N * HW, gamma, beta, moving_mean, moving_var, eps, momentum,
                     &scale[j], &shift[j]);
    for (int64_t n = 0; n < N; ++n) {
      const float *v = x + (n * CB + cb) * HW * B;
      float *o = y + (n * CB + cb) * HW * B;
      for (int64_t i = 0; i < HW; ++i) {
#pragma omp simd
        for (int j = 0; j < B; ++j) {
          const float r = v[i * B + j] * scale[j] + shift[j], r_lo = r < lo ? lo : r;
          o[i * B + j] = r_lo > hi ? hi : r_lo;
        }
      }
    }
  }
}

template <int B>
void backward_blocked(const int64_t *shape, const float *dy, const float *x, const float *gamma, const float *y,
                      float eps, float lo, float hi, float *dx, float *dgamma, float *dbeta) {
  const int64_t N = shape[0], CB = shape[1], HW = shape[2] * shape[3];
#pragma omp parallel for schedule(static)
  for (int64_t cb = 0; cb < CB; ++cb) {
    float pivot[B], mu[B], k[B], mean_dy[B], xhat_coef[B];
    double sum_x[B] = {}, sum_xx[B] = {}, sum_dy[B] = {}, sum_dy_x[B] = {};
    for (int j = 0; j < B; ++j) pivot[j] = x[cb * HW * B + j];
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * CB + cb) * HW * B;
      float s[B] = {}, q[B] = {}, g[B] = {}, gx[B] = {};
      for (int64_t i = 0; i < HW; ++i) {
#pragma omp simd
        for (int j = 0; j < B; ++j) {
          const int64_t at = off + i * B + j;
          const float d = x[at] - pivot[j], e = masked(dy[at], y[at], lo, hi);
          s[j] += d;
          q[j] += d * d;
          g[j] += e;
          gx[j] += e * d;
        }
      }
      for (int j = 0; j < B; ++j) sum_x[j] += s[j], sum_xx[j] += q[j], sum_dy[j] += g[j], sum_dy_x[j] += gx[j];
    }
    for (int j = 0; j < B; ++j) {
      const GradCoef g = channel_grad(cb * B + j, pivot[j], sum_x[j], sum_xx[j], sum_dy[j], sum_dy_x[j], N * HW,
                                      gamma, eps, dgamma, dbeta);
      mu[j] = g.mu, k[j] = g.k, mean_dy[j] = g.mean_dy, xhat_coef[j] = g.xhat_coef;
    }
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * CB + cb) * HW * B;
      for (int64_t i = 0; i < HW; ++i) {
#pragma omp simd
        for (int j = 0; j < B; ++j) {
          const int64_t at = off + i * B + j;
          const float e = masked(dy[at], y[at], lo, hi);
          dx[at] = k[j] * (e - mean_dy[j] - (x[at] - mu[j]) * xhat_coef[j]);
        }
      }
    }
  }
}

// Runs fn<8> or fn<16> for a 5-D tensor's block; false for a 4-D (plain) one.
template <typename Fn>
bool dispatch_blocked(int ndim, const int64_t *shape, Fn &&fn) {
  if (ndim != 5) return false;
  if (shape[4] == 8) {
    fn(std::integral_constant<int, 8>());
  } else if (shape[4] == 16) {
    fn(std::integral_constant<int, 16>());
  } else {
    throw std::invalid_argument("channel block must be 8 or 16");
  }
  return true;
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
    if (dispatch_blocked(ndims[0], shapes[0], [&](auto b) {
          forward_blocked<decltype(b)::value>(shapes[0], x, gamma, beta, moving_mean, moving_var, eps, momentum,
                                              lo, hi, y);
        }))
      return;
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
      float scale, shift;
      channel_affine(c, pivot, sum, sq, L.M(), gamma, beta, moving_mean, moving_var, eps, momentum, &scale, &shift);
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
    if (dispatch_blocked(ndims[1], shapes[1], [&](auto b) {
          backward_blocked<decltype(b)::value>(shapes[1], dy, x, gamma, y, eps, lo, hi, dx, dgamma, dbeta);
        }))
      return;
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
      const auto [mu, k, mean_dy, xhat_coef] =
          channel_grad(c, pivot, sum_x, sum_xx, sum_dy, sum_dy_x, L.M(), gamma, eps, dgamma, dbeta);
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
