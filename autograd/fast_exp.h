// fast_exp.h: e^x for float32 in a form the compiler can vectorize (internal to autograd/).
//
// std::exp is a library call per element, so a loop over it cannot use SIMD. This version uses only
// arithmetic, so `for (i) y[i] = fast_exp(x[i])` becomes 8 lanes at a time with AVX2. It is used where
// float32 throughput matters and the last ulp does not: sigmoid, exp, softmax and log_softmax (through
// max_sum_exp in kernels.h) and fast_erf (fast_erf.h). The plain std::exp stays the reference
// (tests/test_fast_paths.cpp compares the two; -Dreference_kernels=true uses it).
//
//   e^x = 2^n * e^r,   n = round(x / ln 2),   r = x - n ln 2  (so |r| <= ln2 / 2 = 0.347)
//   e^r ~ 1 + r + r^2/2! + ... + r^6/6!         (Taylor; the next term is below 1.3e-7 relative)
//   2^n is built directly from its IEEE-754 bits: exponent field n + 127, mantissa 0.
// ln 2 is split into a part with few mantissa bits (exact when multiplied by n) and a small rest,
// so that r keeps its precision (Cody and Waite's reduction).
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

namespace ng::kernel {

inline float fast_exp(float x_in) {
  // Outside [-87.3, 88.3] e^x is near or beyond the float range; clamping keeps 2^n a normal float,
  // n in [-126, 127] (the results there are ~1e-38 and ~2e38). Where the exact e^x rounds to 0 or to
  // inf, the result is 0 or inf (selects at the end), so that, e.g., 1 / (1 + e^1000) is exactly 0.
  // Written as selects (not std::clamp) so the loop stays branch-free, and so that a NaN (for which every
  // comparison is false) becomes -87.3 here: the float-to-int conversion below must never see a NaN.
  float x = x_in > -87.3f ? x_in : -87.3f;
  x = x < 88.3f ? x : 88.3f;
  // round(x * log2(e)): adding and subtracting 1.5 * 2^23 leaves no bits below the binary point, so the
  // float addition itself rounds to the nearest integer (std::round would be a call per element).
  constexpr float kRound = 12582912.0f;
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  // x - n * (ln2_hi + ln2_lo)
  float p = 1.0f / 720.0f;                                       // Horner form of the Taylor polynomial
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const auto two_to_n = std::bit_cast<float>(static_cast<int32_t>((static_cast<int32_t>(n) + 127) << 23));
  const float e_x = p * two_to_n;
  // e^x rounds to inf in float beyond ln(FLT_MAX) = 88.7228, and to 0 below ln(2^-150) = -103.97.
  // NaN in, NaN out (x_in != x_in only for a NaN).
  return x_in != x_in ? x_in
                      : (x_in > 88.7228f ? std::numeric_limits<float>::infinity() : (x_in < -103.97f ? 0.0f : e_x));
}

}  // namespace ng::kernel
