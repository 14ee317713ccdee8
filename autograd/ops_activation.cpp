// ops_activation.cpp: the elementwise functions behind GELU and LeakyReLU (erf, leaky_relu), each with
// its backward. (relu, sigmoid and tanh are in ops_elementwise.cpp.)
#include <cmath>
#include <type_traits>

#include "fast_erf.h"
#include "graph.h"
#include "kernels.h"
#include "ops.h"

namespace ng {

using Grads = std::vector<Tensor>;

// out = erf(x) = 2/sqrt(pi) * integral_0^x e^(-t^2) dt      d erf(x)/dx = 2/sqrt(pi) * e^(-x^2)
// The backward is g * 2/sqrt(pi) * exp(-x^2) in ops, so it can be differentiated again.
// float32 uses the vectorizable fast_erf (GELU calls erf on every MLP activation; absolute error
// < 2e-7), float64 and -Dreference_kernels=true use std::erf.
Tensor erf(const Tensor& x) {
  Tensor out = empty(x.shape(), x.dtype());
  dispatch_float("erf", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    kernel::unary<T>(x, out, [](T v) {
      if constexpr (std::is_same_v<T, float> && !kernel::kReferenceKernels)
        return kernel::fast_erf(v);
      else
        return std::erf(v);
    });
  });
  if (any_requires_grad({&x}))
    record(out, "erf", {&x}, [x = SavedTensor(x)](const Tensor& g, const Node& n) {
      const double two_over_sqrt_pi = 1.1283791670955126;  // 2 / sqrt(pi)
      const Tensor xv = x.unpack(n);
      return Grads{g * (exp(-(xv * xv)) * two_over_sqrt_pi)};
    });
  return out;
}

// out = x if x > 0 else negative_slope * x
//   d/dx = 1 if x > 0 else negative_slope     (negative_slope at x = 0, as PyTorch)
// The slope mask is a constant computed from the saved x (no gradient flows into it), so the backward
// g * mask is linear in g and can be differentiated again.
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  if (!std::isfinite(negative_slope))
    throw Error("leaky_relu: negative_slope = " + std::to_string(negative_slope) + "; expected a finite number");
  Tensor out = empty(x.shape(), x.dtype());
  dispatch_float("leaky_relu", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T slope = static_cast<T>(negative_slope);
    kernel::unary<T>(x, out, [slope](T v) { return v > 0 ? v : v * slope; });
  });
  if (any_requires_grad({&x}))
    record(out, "leaky_relu", {&x}, [x = SavedTensor(x), negative_slope](const Tensor& g, const Node& n) {
      const Tensor xv = x.unpack(n);
      Tensor slope = empty(xv.shape(), xv.dtype());
      dispatch_float("leaky_relu", xv.dtype(), [&](auto zero) {
        using T = decltype(zero);
        const T s = static_cast<T>(negative_slope);
        kernel::unary<T>(xv, slope, [s](T v) { return v > 0 ? T(1) : s; });
      });
      return Grads{g * slope};
    });
  return out;
}

}  // namespace ng
