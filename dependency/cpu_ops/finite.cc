// The end of a loss-scaled backward pass in one pass over the gradients: divide each by the loss
// scale and tell whether all are finite. MindSpore's way (a Div per gradient, then amp.all_finite's
// IsFinite + ReduceAll per gradient) is ~270 small kernels, ~70 ms of a ResNet-18 train step on CPU.
#include <cstring>
#include <stdexcept>
#include <string>

#include "common.h"

using namespace centerdet;

namespace {

void check_float32(const char *dtype) {
  if (std::strcmp(dtype, "float32") != 0) throw std::runtime_error(std::string("expects float32, got ") + dtype);
}

// out = g / scale (a division, as MindSpore's Div: the same bits for any scale); returns whether
// every element of g is finite. x − x is 0 for finite x and NaN for ±inf and NaN, so one
// vectorisable sum tells.
bool unscale(const float *g, float *out, int64_t n, float scale) {
  float acc = 0.0f;
#pragma omp parallel for simd reduction(+ : acc) schedule(static) if (n > 65536)
  for (int64_t j = 0; j < n; ++j) {
    acc += g[j] - g[j];
    out[j] = g[j] / scale;
  }
  return acc == 0.0f;
}

}  // namespace

// (scale, g_1, ..., g_n) -> (g_1 / scale, ..., g_n / scale, all finite: bool[1])
CENTERDET_AOT(UnscaleAllFinite) {
  return guarded("UnscaleAllFinite", [&](Call &) {
    const int n = (nparam - 2) / 2;
    check_float32(dtypes[0]);
    const float scale = *static_cast<const float *>(params[0]);
    bool finite = true;
    for (int i = 0; i < n; ++i) {
      check_float32(dtypes[1 + i]);
      finite &= unscale(static_cast<const float *>(params[1 + i]), static_cast<float *>(params[1 + n + i]),
                        elements(shapes[1 + i], ndims[1 + i]), scale);
    }
    *static_cast<bool *>(params[1 + 2 * n]) = finite;
  });
}
