// The sampling half of a modulated deformable convolution (DCNv2), forward and backward.
//
//   cols[n, c·K + t, ho, wo] = sigmoid(m_t) · bilinear(x[n, c], y_t, x_t)        (K = kh·kw, t = i·kw + j)
//   y_t = ho·stride_h − pad_h + i·dil_h + dy_t,   x_t = wo·stride_w − pad_w + j·dil_w + dx_t
//
// with the offsets and mask logits read from the DCNv2 layout of the offset conv's output
// om (N, 3K, Ho, Wo): dy_t = om[2t], dx_t = om[2t + 1], m_t = om[2K + t]. A sample with y ≤ −1,
// y ≥ H, x ≤ −1 or x ≥ W is 0; inside, corners outside the image count as 0 (DCNv2's rule).
// The deformable convolution is then a 1×1 convolution of cols with the weights as (O, C·K).
//
// MindSpore's DeformableOffsetsGrad took ~400 ms of a 1 s ResNet-18-DCN train step on CPU. Here one
// table of sample positions per image is shared by all channels, and each thread owns whole
// channel planes, so the backward scatter into dx needs no atomics.
//
// params: int64 [kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w]
#include <omp.h>

#include <cmath>
#include <vector>

#include "common.h"

namespace centerdet {
namespace {

struct Taps {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  int64_t K() const { return kh * kw; }
};

Taps read_taps(const void *p) {
  const auto *v = static_cast<const int64_t *>(p);
  return Taps{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
}

// Where one (tap, ho, wo) samples: top-left corner, fractions, mask, inside flag.
struct Sample {
  int32_t y0, x0;
  float ly, lx, mask;
  bool inside;
};

float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

void sample_table(const Taps &k, const float *om, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                  std::vector<Sample> &table) {
  const int64_t K = k.K(), plane = Ho * Wo;
  table.resize(K * plane);
#pragma omp parallel for schedule(static)
  for (int64_t e = 0; e < K * plane; ++e) {
    const int64_t t = e / plane, pos = e % plane, ho = pos / Wo, wo = pos % Wo;
    const int64_t i = t / k.kw, j = t % k.kw;
    const float y = static_cast<float>(ho * k.sh - k.ph + i * k.dh) + om[(2 * t) * plane + pos];
    const float x = static_cast<float>(wo * k.sw - k.pw + j * k.dw) + om[(2 * t + 1) * plane + pos];
    Sample &s = table[e];
    s.inside = y > -1.0f && y < static_cast<float>(H) && x > -1.0f && x < static_cast<float>(W);
    const float fy = std::floor(y), fx = std::floor(x);
    s.y0 = static_cast<int32_t>(fy);
    s.x0 = static_cast<int32_t>(fx);
    s.ly = y - fy;
    s.lx = x - fx;
    s.mask = sigmoid(om[(2 * K + t) * plane + pos]);
  }
}

// Which of a sample's four corners (top-left, top-right, bottom-left, bottom-right) lie in the
// image, and their offsets in it.
struct Corners {
  bool in[4];
  int64_t at[4];
};

inline Corners corners_of(const Sample &s, int64_t H, int64_t W) {
  const bool top = s.y0 >= 0, bottom = s.y0 + 1 < H, left = s.x0 >= 0, right = s.x0 + 1 < W;
  const int64_t base = static_cast<int64_t>(s.y0) * W + s.x0;
  return Corners{{top && left, top && right, bottom && left, bottom && right}, {base, base + 1, base + W, base + W + 1}};
}

// The four corner values (0 outside the image).
inline void corner_values(const float *img, const Corners &c, float v[4]) {
  for (int q = 0; q < 4; ++q) v[q] = c.in[q] ? img[c.at[q]] : 0.0f;
}

}  // namespace
}  // namespace centerdet

using namespace centerdet;

// (x (N, C, H, W), om (N, 3K, Ho, Wo), params) -> cols (N, C·K, Ho, Wo)
CENTERDET_AOT(DeformSample) {
  return guarded("DeformSample", [&](Call &) {
    const int64_t *xs = shapes[0], *os = shapes[1];
    const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], Ho = os[2], Wo = os[3];
    const Taps k = read_taps(params[2]);
    const int64_t K = k.K(), plane = Ho * Wo;
    const auto *x = static_cast<const float *>(params[0]);
    const auto *om = static_cast<const float *>(params[1]);
    auto *cols = static_cast<float *>(params[3]);
    std::vector<Sample> table;
    for (int64_t n = 0; n < N; ++n) {
      sample_table(k, om + n * 3 * K * plane, H, W, Ho, Wo, table);
#pragma omp parallel for schedule(static)
      for (int64_t c = 0; c < C; ++c) {
        const float *img = x + (n * C + c) * H * W;
        float *out = cols + (n * C + c) * K * plane;
        for (int64_t e = 0; e < K * plane; ++e) {
          const Sample &s = table[e];
          if (!s.inside) {
            out[e] = 0.0f;
            continue;
          }
          float v[4];
          corner_values(img, corners_of(s, H, W), v);
          const float top = v[0] + (v[1] - v[0]) * s.lx, bottom = v[2] + (v[3] - v[2]) * s.lx;
          out[e] = s.mask * (top + (bottom - top) * s.ly);
        }
      }
    }
  });
}

// (dcols, x, om, params) -> (dx, dom)
CENTERDET_AOT(DeformSampleBackward) {
  return guarded("DeformSampleBackward", [&](Call &) {
    const int64_t *xs = shapes[1], *os = shapes[2];
    const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], Ho = os[2], Wo = os[3];
    const Taps k = read_taps(params[3]);
    const int64_t K = k.K(), plane = Ho * Wo, E = K * plane;
    const auto *dcols = static_cast<const float *>(params[0]);
    const auto *x = static_cast<const float *>(params[1]);
    const auto *om = static_cast<const float *>(params[2]);
    auto *dx = static_cast<float *>(params[4]);
    auto *dom = static_cast<float *>(params[5]);
    std::vector<Sample> table;
    const int threads = omp_get_max_threads();
    // Per thread: d(sample value)·mask summed over its channels, split into d/dy, d/dx and the
    // value itself (for the mask); reduced over threads afterwards.
    std::vector<float> partial(static_cast<size_t>(threads) * 3 * E);
    for (int64_t n = 0; n < N; ++n) {
      sample_table(k, om + n * 3 * K * plane, H, W, Ho, Wo, table);
      std::fill(partial.begin(), partial.end(), 0.0f);
#pragma omp parallel num_threads(threads)
      {
        float *acc = partial.data() + static_cast<size_t>(omp_get_thread_num()) * 3 * E;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; ++c) {
          const float *img = x + (n * C + c) * H * W;
          const float *g = dcols + (n * C + c) * K * plane;
          float *dimg = dx + (n * C + c) * H * W;
          std::fill(dimg, dimg + H * W, 0.0f);
          for (int64_t e = 0; e < E; ++e) {
            const Sample &s = table[e];
            if (!s.inside || g[e] == 0.0f) continue;
            const Corners cn = corners_of(s, H, W);
            float v[4];
            corner_values(img, cn, v);
            const float gm = g[e] * s.mask;
            const float top = v[0] + (v[1] - v[0]) * s.lx, bottom = v[2] + (v[3] - v[2]) * s.lx;
            acc[e] += gm * (bottom - top);                                            // d/dy
            acc[E + e] += gm * ((v[1] - v[0]) * (1.0f - s.ly) + (v[3] - v[2]) * s.ly);  // d/dx
            acc[2 * E + e] += g[e] * (top + (bottom - top) * s.ly);                     // d/dmask
            const float w[4] = {(1.0f - s.ly) * (1.0f - s.lx), (1.0f - s.ly) * s.lx, s.ly * (1.0f - s.lx),
                                s.ly * s.lx};
            for (int q = 0; q < 4; ++q)
              if (cn.in[q]) dimg[cn.at[q]] += gm * w[q];
          }
        }
      }
      float *d = dom + n * 3 * K * plane;
#pragma omp parallel for schedule(static)
      for (int64_t e = 0; e < E; ++e) {
        float dy = 0.0f, dxv = 0.0f, dm = 0.0f;
        for (int tid = 0; tid < threads; ++tid) {
          const float *acc = partial.data() + static_cast<size_t>(tid) * 3 * E;
          dy += acc[e];
          dxv += acc[E + e];
          dm += acc[2 * E + e];
        }
        const int64_t t = e / plane, pos = e % plane;
        const float m = table[e].mask;
        d[(2 * t) * plane + pos] = dy;
        d[(2 * t + 1) * plane + pos] = dxv;
        d[(2 * K + t) * plane + pos] = dm * m * (1.0f - m);  // through the sigmoid
      }
    }
  });
}
