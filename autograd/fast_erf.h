// fast_erf.h: erf(x) for float32 in a form the compiler can vectorize (internal to autograd/).
//
// std::erf is a library call per element, so a loop over it cannot use SIMD; GELU calls it on every
// activation of a transformer's MLP. This version uses only arithmetic and fast_exp, with both branches
// computed and one selected, so `for (i) y[i] = fast_erf(x[i])` runs 8 lanes at a time with AVX2.
// Its absolute error is below 2e-7 (std::erf in float: ~6e-8); tests/test_fast_paths.cpp checks it
// against std::erf, which stays the reference (-Dreference_kernels=true uses it).
//
//   |x| < 1:  erf(x) = x * P(x^2)                       P: degree 6, error 1.2e-9 on [0, 1]
//   |x| >= 1: erf(x) = sign(x) (1 - e^(-x^2) Q(1/|x|))   Q(s) ~ erfc(1/s) e^(1/s^2), degree 8, error 2.3e-8
//                                                         on s in [1/4, 1]
// The second form is erfc(|x|) = e^(-x^2) * (a slowly varying factor); the factor, not erf itself, is
// fitted, and its error is scaled down by e^(-x^2) <= 0.37. Beyond |x| = 4 erf(x) rounds to +-1 in float,
// so |x| is clamped to 4 there (which also sends +-inf to +-1). Both polynomials are Chebyshev fits
// (mpmath.chebyfit), nearly minimax; a NaN passes through both forms and comes out NaN.
#pragma once

#include "fast_exp.h"

namespace ng::kernel {

inline float fast_erf(float x) {
  const float a = x < 0 ? -x : x;  // written as selects (not std::abs, std::clamp) so the loop stays branch-free
  const float x_squared = a * a;
  float p = 7.875875063e-5f;  // P(u), Horner form, u = x^2
  p = p * x_squared - 8.016864287e-4f;
  p = p * x_squared + 5.189087423e-3f;
  p = p * x_squared - 2.685421201e-2f;
  p = p * x_squared + 1.128359472e-1f;
  p = p * x_squared - 3.761262667e-1f;
  p = p * x_squared + 1.128379166f;  // ~ 2/sqrt(pi), the slope at 0
  const float erf_near_zero = x * p;

  const float a_tail = a > 4.0f ? 4.0f : (a < 1.0f ? 1.0f : a);  // the tail form's range, [1, 4]
  const float s = 1.0f / a_tail;
  float q = -5.934022494e-3f;  // Q(s), Horner form
  q = q * s + 1.094513345e-2f;
  q = q * s + 6.135414961e-2f;
  q = q * s - 2.865356076e-1f;
  q = q * s + 5.290705746e-1f;
  q = q * s - 4.859395076e-1f;
  q = q * s + 4.583790914e-2f;
  q = q * s + 5.584799205e-1f;
  q = q * s + 3.050177486e-4f;
  const float erf_abs_tail = 1.0f - fast_exp(-a_tail * a_tail) * q;
  const float erf_tail = x < 0 ? -erf_abs_tail : erf_abs_tail;
  return a < 1.0f ? erf_near_zero : erf_tail;
}

}  // namespace ng::kernel
