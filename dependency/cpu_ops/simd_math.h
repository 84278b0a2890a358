// expf/logf on eight floats at a time (AVX2 + FMA), for the element-wise kernels: glibc's vector
// versions are only declared under -ffast-math, which these kernels must not use (NaN and the
// clamps have to behave as in IEEE arithmetic). Range reduction and minimax polynomials in the
// Cephes style; both within 2 ulp of the libm result over the inputs the kernels give them
// (exp: [-87, 88]; log: normal positive floats).
#ifndef CENTERDET_CPU_OPS_SIMD_MATH_H_
#define CENTERDET_CPU_OPS_SIMD_MATH_H_

#if defined(__x86_64__)
#include <immintrin.h>

#define CENTERDET_AVX2 __attribute__((target("avx2,fma")))

namespace centerdet {

CENTERDET_AVX2 inline __m256 splat(float v) { return _mm256_set1_ps(v); }

// e^x: x = n ln2 + r with |r| ≤ ln2/2 (ln2 split in two for an exact product), e^r by a degree-7
// polynomial, 2^n put into the exponent bits.
CENTERDET_AVX2 inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, splat(-87.0f)), splat(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, splat(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, splat(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, splat(-2.12194440e-4f), r);
  __m256 y = splat(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, splat(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, splat(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, splat(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, splat(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, splat(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, splat(1.0f)));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

// 1 / (1 + e^-x), finite for every input: exp8 clamps its argument (a NaN x comes out as a number,
// so callers that must propagate NaN test x themselves).
CENTERDET_AVX2 inline __m256 sigmoid8(__m256 x) {
  return _mm256_div_ps(splat(1.0f), _mm256_add_ps(splat(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// ln x for normal x > 0: x = m 2^e with m in [√½, √2), ln m = f − f²/2 + f³ P(f) for f = m − 1.
CENTERDET_AVX2 inline __m256 log8(__m256 x) {
  const __m256i bits = _mm256_castps_si256(x);
  __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
  // mantissa in [0.5, 1)
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                                 _mm256_set1_epi32(0x3f000000)));
  const __m256 small = _mm256_cmp_ps(m, splat(0.707106781186547524f), _CMP_LT_OQ);
  e = _mm256_sub_ps(e, _mm256_and_ps(small, splat(1.0f)));
  const __m256 f = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), splat(1.0f));
  const __m256 z = _mm256_mul_ps(f, f);
  __m256 y = splat(7.0376836292e-2f);
  y = _mm256_fmadd_ps(y, f, splat(-1.1514610310e-1f));
  y = _mm256_fmadd_ps(y, f, splat(1.1676998740e-1f));
  y = _mm256_fmadd_ps(y, f, splat(-1.2420140846e-1f));
  y = _mm256_fmadd_ps(y, f, splat(1.4249322787e-1f));
  y = _mm256_fmadd_ps(y, f, splat(-1.6668057665e-1f));
  y = _mm256_fmadd_ps(y, f, splat(2.0000714765e-1f));
  y = _mm256_fmadd_ps(y, f, splat(-2.4999993993e-1f));
  y = _mm256_fmadd_ps(y, f, splat(3.3333331174e-1f));
  y = _mm256_mul_ps(_mm256_mul_ps(y, f), z);
  y = _mm256_fmadd_ps(e, splat(-2.12194440e-4f), y);
  y = _mm256_fnmadd_ps(z, splat(0.5f), y);
  return _mm256_fmadd_ps(e, splat(0.693359375f), _mm256_add_ps(f, y));
}

}  // namespace centerdet

#endif  // __x86_64__
#endif  // CENTERDET_CPU_OPS_SIMD_MATH_H_
