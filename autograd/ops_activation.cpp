// ops_activation.cpp: the elementwise functions behind GELU, LeakyReLU and dropout (erf, gelu, leaky_relu,
// dropout_mask), each with its backward. (relu, sigmoid and tanh are in ops_elementwise.cpp.)
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <type_traits>

#include "fast_erf.h"
#include "graph.h"
#include "kernels.h"
#include "ops.h"

namespace ng {

using Grads = std::vector<Tensor>;

namespace {

constexpr double kInvSqrt2 = 1.0 / std::numbers::sqrt2;                         // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = std::numbers::inv_sqrtpi / std::numbers::sqrt2;  // 1 / sqrt(2 pi)

// Phi(x) = 0.5 (1 + erf(x / sqrt 2)), the standard normal CDF, and phi(x) = e^(-x^2/2) / sqrt(2 pi), its
// density. float32 uses the vectorizable fast_erf and fast_exp (the loops over a transformer's MLP
// activations then run 8 lanes at a time with AVX2); float64 and -Dreference_kernels=true use std::erf and
// std::exp.
template <class T> T normal_cdf(T x) { return T(0.5) * (T(1) + kernel::erf_of(x * static_cast<T>(kInvSqrt2))); }
template <class T> T normal_pdf(T x) { return kernel::exp_of(T(-0.5) * x * x) * static_cast<T>(kInvSqrt2Pi); }

}  // namespace

// out = erf(x) = 2/sqrt(pi) * integral_0^x e^(-t^2) dt      d erf(x)/dx = 2/sqrt(pi) * e^(-x^2)
// The backward is g * 2/sqrt(pi) * exp(-x^2) in ops, so it can be differentiated again.
// float32 uses the vectorizable fast_erf (GELU calls erf on every MLP activation; absolute error
// < 2e-7), float64 and -Dreference_kernels=true use std::erf.
Tensor erf(const Tensor& x) {
  Tensor out = empty(x.shape(), x.dtype());
  dispatch_float("erf", x.dtype(), [&]<class T>() { kernel::unary<T>(x, out, [](T v) { return kernel::erf_of(v); }); });
  if (any_requires_grad({&x}))
    record(out, "erf", {&x}, [x = SavedTensor(x)](const Tensor& g, const Node& n) {
      const double two_over_sqrt_pi = 2 * std::numbers::inv_sqrtpi;
      const Tensor xv = x.unpack(n);
      return Grads{g * (exp(-(xv * xv)) * two_over_sqrt_pi)};
    });
  return out;
}

// out = gelu(x) = x Phi(x)      d gelu(x)/dx = Phi(x) + x phi(x)    (gelu_backward below)
// One pass over x instead of the five ops of x * 0.5 * (1 + erf(x / sqrt 2)), and one node instead of five.
// When a graph is recorded the forward also keeps Phi(x), which it computes anyway: the backward then needs
// only phi(x), one exponential, where gelu_backward(g, x) would compute erf again (the dearer half). Under
// create_graph the backward is gelu_backward, an op with its own derivative.
Tensor gelu(const Tensor& x) {
  const bool needs_graph = any_requires_grad({&x});
  Tensor out = empty(x.shape(), x.dtype()), cdf = needs_graph ? empty(x.shape(), x.dtype()) : Tensor();
  dispatch_float("gelu", x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* py = out.mutable_data<T>();
    T* p_cdf = needs_graph ? cdf.mutable_data<T>() : nullptr;
    const int64_t n = x.numel();
    if (p_cdf)
      kernel::parallel_for(n, kernel::share_elements(n), [=](int64_t i) {
        const T cdf_x = normal_cdf(px[i]);  // Phi(x)
        p_cdf[i] = cdf_x;
        py[i] = px[i] * cdf_x;
      });
    else
      kernel::unary<T>(x, out, [](T v) { return v * normal_cdf(v); });
  });
  if (needs_graph)
    record(out, "gelu", {&x}, [x = SavedTensor(x), cdf](const Tensor& g, const Node& n) {
      const Tensor xv = x.unpack(n);
      if (is_grad_enabled()) return Grads{gelu_backward(g, xv)};
      // g * (Phi(x) + x phi(x)), Phi(x) from the forward (cdf, which only this node holds)
      Tensor dx = empty(xv.shape(), xv.dtype());
      dispatch_float("gelu", xv.dtype(), [&]<class T>() {
        const T *pg = g.data<T>(), *px = xv.data<T>(), *p_cdf = cdf.data<T>();
        T* pdx = dx.mutable_data<T>();
        const int64_t count = dx.numel();
        kernel::parallel_for(count, kernel::share_elements(count),
                             [=](int64_t i) { pdx[i] = pg[i] * (p_cdf[i] + px[i] * normal_pdf(px[i])); });
      });
      return Grads{dx};
    });
  return out;
}

// out = g * gelu'(x) = g * (Phi(x) + x phi(x)), the backward of gelu as one op (one pass over memory, as
// PyTorch's GeluBackward). Its own derivative, so that gradients of gradients flow:
//   d/dg = Phi(x) + x phi(x)                       (gelu_backward(gg, x))
//   d/dx = g gelu''(x) = g phi(x) (2 - x^2)        since phi'(x) = -x phi(x)
// written in ops, so it can be differentiated again.
Tensor gelu_backward(const Tensor& g, const Tensor& x) {
  if (g.shape() != x.shape() || g.dtype() != x.dtype())
    throw Error("gelu_backward: grad " + shape_str(g.shape()) + " " + dtype_name(g.dtype()) + " and x " +
                shape_str(x.shape()) + " " + dtype_name(x.dtype()) + "; expected one shape and one dtype");
  Tensor out = empty(x.shape(), x.dtype());
  dispatch_float("gelu_backward", x.dtype(), [&]<class T>() {
    kernel::binary<T>(g, x, out, [](T gv, T v) { return gv * (normal_cdf(v) + v * normal_pdf(v)); });
  });
  if (any_requires_grad({&g, &x}))
    record(out, "gelu_backward", {&g, &x}, [g = SavedTensor(g), x = SavedTensor(x)](const Tensor& gg, const Node& n) {
      const Tensor gv = g.unpack(n), xv = x.unpack(n);
      Tensor dx;
      if (n.needs_grad(1)) {
        const Tensor x2 = xv * xv;
        const Tensor pdf = exp(x2 * -0.5) * kInvSqrt2Pi;  // phi(x)
        dx = gg * gv * pdf * (2.0 - x2);
      }
      return Grads{n.needs_grad(0) ? gelu_backward(gg, xv) : Tensor(), dx};
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
  dispatch_float("leaky_relu", x.dtype(), [&]<class T>() {
    const T slope = static_cast<T>(negative_slope);
    kernel::unary<T>(x, out, [slope](T v) { return v > 0 ? v : v * slope; });
  });
  if (any_requires_grad({&x}))
    record(out, "leaky_relu", {&x}, [x = SavedTensor(x), negative_slope](const Tensor& g, const Node& n) {
      const Tensor xv = x.unpack(n);
      Tensor slope = empty(xv.shape(), xv.dtype());
      dispatch_float("leaky_relu", xv.dtype(), [&]<class T>() {
        const T s = static_cast<T>(negative_slope);
        kernel::unary<T>(xv, slope, [s](T v) { return v > 0 ? T(1) : s; });
      });
      return Grads{g * slope};
    });
  return out;
}

// mask_i = [u_i >= p] / (1 - p), u_i ~ U(0, 1) drawn in row-major order: E[mask_i] = 1, so x * mask keeps
// the expected value of x (inverted dropout: evaluation needs no rescaling).
Tensor dropout_mask(const Shape& shape, double p, Dtype dtype) {
  if (!(p >= 0 && p <= 1))
    throw Error("dropout_mask: p = " + std::to_string(p) + " for shape " + shape_str(shape) +
                "; expected a probability in [0, 1]");
  Tensor mask = empty(shape, dtype);
  dispatch_float("dropout_mask", dtype, [&]<class T>() {
    T* m = mask.mutable_data<T>();
    const int64_t n = mask.numel();
    if (p == 1) {  // every element dropped: nothing to draw
      std::fill_n(m, n, T(0));
      return;
    }
    const double keep_scale = 1.0 / (1.0 - p);
    RandomDraws draws;  // one uninterrupted stretch of the generator's sequence
    for (int64_t i = 0; i < n; ++i) m[i] = draws.uniform() >= p ? static_cast<T>(keep_scale) : T(0);
  });
  return mask;
}

}  // namespace ng
