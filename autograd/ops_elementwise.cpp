// ops_elementwise.cpp: elementwise ops, binary (with broadcasting) and unary, each with its backward.
//
// A binary op's backward receives g = dL/dout with out's (broadcast) shape; the gradient for an input
// is the local derivative times g, summed back to the input's shape with sum_to, because an input
// element that was broadcast contributed to every output element it was copied to.
#include <cmath>
#include <type_traits>

#include "fast_exp.h"
#include "graph.h"
#include "kernels.h"
#include "ops.h"

namespace ng {

using Grads = std::vector<Tensor>;

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {  // i counts from the right
    int64_t sa = i < a.size() ? a[a.size() - 1 - i] : 1;
    int64_t sb = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (sa != sb && sa != 1 && sb != 1)
      throw Error(std::string(op) + ": shapes " + shape_str(a) + " and " + shape_str(b) +
                  " cannot be broadcast together (dim " + std::to_string(-static_cast<int64_t>(i) - 1) + ": " +
                  std::to_string(sa) + " vs " + std::to_string(sb) + "; sizes must match or be 1)");
    out[n - 1 - i] = sa == 1 ? sb : sa;
  }
  return out;
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw Error(std::string(op) + ": dtypes " + dtype_name(a.dtype()) + " " + shape_str(a.shape()) + " and " +
                dtype_name(b.dtype()) + " " + shape_str(b.shape()) + " differ; convert one with .to()");
}

namespace {

// The forward of a binary op: checks, broadcasts and runs f on every pair of elements.
template <class F> Tensor binary_forward(const char* op, const Tensor& a, const Tensor& b, F f) {
  check_same_dtype(op, a, b);
  Tensor out = empty(broadcast_shapes(op, a.shape(), b.shape()), a.dtype());
  dispatch_float(op, a.dtype(), [&]<class T>() { kernel::binary<T>(a, b, out, f); });
  return out;
}

template <class F> Tensor unary_forward(const char* op, const Tensor& x, F f) {
  Tensor out = empty(x.shape(), x.dtype());
  dispatch_float(op, x.dtype(), [&]<class T>() { kernel::unary<T>(x, out, f); });
  return out;
}

}  // namespace

// Every backward below is written with ops (add, mul, sum_to, ... and the fused *_backward ops at the
// end of this file), never with raw loops, so that under create_graph it is recorded like a forward
// and can be differentiated again. The tensors it needs are kept as SavedTensor: only those it needs,
// so that a write into an operand whose value the gradient does not use is no error.

// out = a + b        d(a+b)/da = 1, d(a+b)/db = 1
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("add", a, b, [](auto x, auto y) { return x + y; });
  if (any_requires_grad({&a, &b}))
    record(out, "add", {&a, &b}, [sa = a.shape(), sb = b.shape()](const Tensor& g, const Node& n) {
      return Grads{n.needs_grad(0) ? sum_to(g, sa) : Tensor(), n.needs_grad(1) ? sum_to(g, sb) : Tensor()};
    });
  return out;
}

// out = a - b        d(a-b)/da = 1, d(a-b)/db = -1
Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("sub", a, b, [](auto x, auto y) { return x - y; });
  if (any_requires_grad({&a, &b}))
    record(out, "sub", {&a, &b}, [sa = a.shape(), sb = b.shape()](const Tensor& g, const Node& n) {
      return Grads{n.needs_grad(0) ? sum_to(g, sa) : Tensor(), n.needs_grad(1) ? sum_to(-g, sb) : Tensor()};
    });
  return out;
}

// A tensor saved only when `needed` (the other operand's gradient uses it).
static SavedTensor save_if(bool needed, const Tensor& t) { return needed ? SavedTensor(t) : SavedTensor(); }

// out = a * b        d(a*b)/da = b, d(a*b)/db = a
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("mul", a, b, [](auto x, auto y) { return x * y; });
  if (any_requires_grad({&a, &b}))
    record(out, "mul", {&a, &b},
           [sa = a.shape(), sb = b.shape(), a = save_if(b.requires_grad(), a), b = save_if(a.requires_grad(), b)](
               const Tensor& g, const Node& n) {
             return Grads{n.needs_grad(0) ? sum_to(g * b.unpack(n), sa) : Tensor(),
                          n.needs_grad(1) ? sum_to(g * a.unpack(n), sb) : Tensor()};
           });
  return out;
}

// out = a / b        d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -out/b
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("div", a, b, [](auto x, auto y) { return x / y; });
  if (any_requires_grad({&a, &b}))
    record(out, "div", {&a, &b},
           [sa = a.shape(), b = SavedTensor(b), out = b.requires_grad() ? SavedTensor::output(out) : SavedTensor()](
               const Tensor& g, const Node& n) {
             const Tensor bv = b.unpack(n);
             Tensor g_over_b = g / bv;
             return Grads{n.needs_grad(0) ? sum_to(g_over_b, sa) : Tensor(),
                          n.needs_grad(1) ? sum_to(-(g_over_b * out.unpack(n)), bv.shape()) : Tensor()};
           });
  return out;
}

// out = base^exponent    d/dbase = exponent * base^(exponent-1),  d/dexponent = base^exponent * ln(base)
Tensor pow(const Tensor& base, const Tensor& exponent) {
  Tensor out = binary_forward("pow", base, exponent, [](auto x, auto y) { return std::pow(x, y); });
  if (any_requires_grad({&base, &exponent}))
    record(out, "pow", {&base, &exponent},
           [base = SavedTensor(base), exponent = SavedTensor(exponent),
            out = exponent.requires_grad() ? SavedTensor::output(out) : SavedTensor()](const Tensor& g, const Node& n) {
             const Tensor x = base.unpack(n), p = exponent.unpack(n);
             return Grads{n.needs_grad(0) ? sum_to(g * p * pow(x, p - 1.0), x.shape()) : Tensor(),
                          n.needs_grad(1) ? sum_to(g * out.unpack(n) * log(x), p.shape()) : Tensor()};
           });
  return out;
}

// out = -x           d(-x)/dx = -1
Tensor neg(const Tensor& x) {
  Tensor out = unary_forward("neg", x, [](auto v) { return -v; });
  if (any_requires_grad({&x})) record(out, "neg", {&x}, [](const Tensor& g, const Node&) { return Grads{-g}; });
  return out;
}

// out = x^p          d(x^p)/dx = p * x^(p-1)    (one fused op, pow_backward below)
Tensor pow(const Tensor& x, double p) {
  Tensor out = dispatch_float("pow", x.dtype(), [&]<class T>() {
    const T exponent = static_cast<T>(p);
    if (p == 2) return unary_forward("pow", x, [](T v) { return v * v; });
    return unary_forward("pow", x, [exponent](T v) { return std::pow(v, exponent); });
  });
  if (any_requires_grad({&x}))
    record(out, "pow", {&x},
           [x = SavedTensor(x), p](const Tensor& g, const Node& n) { return Grads{pow_backward(g, x.unpack(n), p)}; });
  return out;
}

// out = sqrt(x)      d(sqrt x)/dx = 1 / (2 sqrt x) = 1 / (2 out)
Tensor sqrt(const Tensor& x) {
  Tensor out = unary_forward("sqrt", x, [](auto v) { return std::sqrt(v); });
  if (any_requires_grad({&x}))
    record(out, "sqrt", {&x}, [out = SavedTensor::output(out)](const Tensor& g, const Node& n) {
      return Grads{g / (out.unpack(n) * 2.0)};
    });
  return out;
}

// out = e^x          d(e^x)/dx = e^x = out
// float32 uses the vectorizable fast_exp (relative error ~1.3e-7; it is the backward of erf, so of
// GELU), float64 and -Dreference_kernels=true use std::exp.
Tensor exp(const Tensor& x) {
  Tensor out = unary_forward("exp", x, [](auto v) { return kernel::exp_of(v); });
  if (any_requires_grad({&x}))
    record(out, "exp", {&x},
           [out = SavedTensor::output(out)](const Tensor& g, const Node& n) { return Grads{g * out.unpack(n)}; });
  return out;
}

// out = ln x         d(ln x)/dx = 1/x
Tensor log(const Tensor& x) {
  Tensor out = unary_forward("log", x, [](auto v) { return std::log(v); });
  if (any_requires_grad({&x}))
    record(out, "log", {&x}, [x = SavedTensor(x)](const Tensor& g, const Node& n) { return Grads{g / x.unpack(n)}; });
  return out;
}

// sign(x) = -1, 0 or 1. Its derivative is 0 wherever it exists, so it records nothing.
Tensor sign(const Tensor& x) {
  return unary_forward("sign", x, [](auto v) { return static_cast<decltype(v)>((v > 0) - (v < 0)); });
}

// out = |x|          d|x|/dx = sign(x)  (0 at x = 0, as PyTorch)
Tensor abs(const Tensor& x) {
  Tensor out = unary_forward("abs", x, [](auto v) { return std::abs(v); });
  if (any_requires_grad({&x}))
    record(out, "abs", {&x},
           [x = SavedTensor(x)](const Tensor& g, const Node& n) { return Grads{g * sign(x.unpack(n))}; });
  return out;
}

// out = max(x, 0)    d relu(x)/dx = 1 if x > 0 else 0    (threshold_backward below)
// Written as "0 if x < 0, else x" so that a NaN passes through, as in PyTorch: a NaN is never hidden.
Tensor relu(const Tensor& x) {
  Tensor out = unary_forward("relu", x, [](auto v) { return v < 0 ? decltype(v){0} : v; });
  if (any_requires_grad({&x}))
    record(out, "relu", {&x}, [out = SavedTensor::output(out)](const Tensor& g, const Node& n) {
      return Grads{threshold_backward(g, out.unpack(n))};
    });
  return out;
}

// out = 1 / (1 + e^-x)   d sigmoid(x)/dx = out * (1 - out)    (sigmoid_backward below)
// For very negative x, e^-x overflows to inf and 1 / (1 + inf) = 0, the right limit, so no case split
// is needed. float32 uses the vectorizable fast_exp (this is the hot loop of a sigmoid network), which
// also gives inf past float's range, so sigmoid(-1000) is exactly 0 there too (as with std::exp, which
// -Dreference_kernels=true uses).
Tensor sigmoid(const Tensor& x) {
  Tensor out = unary_forward("sigmoid", x, [](auto v) {
    using T = decltype(v);
    return T(1) / (T(1) + kernel::exp_of(-v));
  });
  if (any_requires_grad({&x}))
    record(out, "sigmoid", {&x}, [out = SavedTensor::output(out)](const Tensor& g, const Node& n) {
      return Grads{sigmoid_backward(g, out.unpack(n))};
    });
  return out;
}

// out = tanh x       d tanh(x)/dx = 1 - out^2    (tanh_backward below)
Tensor tanh(const Tensor& x) {
  Tensor out = unary_forward("tanh", x, [](auto v) { return std::tanh(v); });
  if (any_requires_grad({&x}))
    record(out, "tanh", {&x}, [out = SavedTensor::output(out)](const Tensor& g, const Node& n) {
      return Grads{tanh_backward(g, out.unpack(n))};
    });
  return out;
}

// ---- fused backward ops ---------------------------------------------------------------------------
// The hot backward formulas as single ops (one pass over memory instead of three or four), as PyTorch's
// sigmoid_backward. Each is an op like any other: it records its own derivative, with respect to both
// the incoming gradient g and the saved value, so a second derivative can flow through it. They
// broadcast like the other binary ops, so each gradient is summed back to its operand's shape.

// out = g * y * (1 - y)      d/dg = y (1 - y),  d/dy = g (1 - 2y)
Tensor sigmoid_backward(const Tensor& g, const Tensor& y) {
  Tensor out =
      binary_forward("sigmoid_backward", g, y, [](auto gv, auto yv) { return gv * yv * (decltype(yv)(1) - yv); });
  if (any_requires_grad({&g, &y}))
    record(out, "sigmoid_backward", {&g, &y},
           [g = SavedTensor(g), y = SavedTensor(y)](const Tensor& gg, const Node& n) {
             const Tensor gv = g.unpack(n), yv = y.unpack(n);
             return Grads{n.needs_grad(0) ? sum_to(sigmoid_backward(gg, yv), gv.shape()) : Tensor(),
                          n.needs_grad(1) ? sum_to(gg * gv * (1.0 - 2.0 * yv), yv.shape()) : Tensor()};
           });
  return out;
}

// out = g * (1 - y^2)        d/dg = 1 - y^2,  d/dy = -2 g y
Tensor tanh_backward(const Tensor& g, const Tensor& y) {
  Tensor out = binary_forward("tanh_backward", g, y, [](auto gv, auto yv) { return gv * (decltype(yv)(1) - yv * yv); });
  if (any_requires_grad({&g, &y}))
    record(out, "tanh_backward", {&g, &y}, [g = SavedTensor(g), y = SavedTensor(y)](const Tensor& gg, const Node& n) {
      const Tensor gv = g.unpack(n), yv = y.unpack(n);
      return Grads{n.needs_grad(0) ? sum_to(tanh_backward(gg, yv), gv.shape()) : Tensor(),
                   n.needs_grad(1) ? sum_to(gg * gv * yv * -2.0, yv.shape()) : Tensor()};
    });
  return out;
}

// out = g where y > 0, else 0 (relu's backward)      d/dg = [y > 0],  d/dy = 0 (almost everywhere)
Tensor threshold_backward(const Tensor& g, const Tensor& y) {
  Tensor out =
      binary_forward("threshold_backward", g, y, [](auto gv, auto yv) { return yv > 0 ? gv : decltype(gv){0}; });
  if (any_requires_grad({&g}))
    record(out, "threshold_backward", {&g}, [sg = g.shape(), y = SavedTensor(y)](const Tensor& gg, const Node& n) {
      return Grads{sum_to(threshold_backward(gg, y.unpack(n)), sg)};
    });
  return out;
}

// out = g * p * x^(p-1) (pow's backward)
//   d/dg = p x^(p-1) = pow_backward(1, x, p),   d/dx = g p (p-1) x^(p-2) = p * pow_backward(g, x, p-1)
// p = 0 gives exactly 0 (no 0 * inf at x = 0), so every order of derivative stays finite for integer p.
Tensor pow_backward(const Tensor& g, const Tensor& x, double p) {
  Tensor out = dispatch_float("pow_backward", x.dtype(), [&]<class T>() {
    const T tp = static_cast<T>(p);
    if (p == 0) return binary_forward("pow_backward", g, x, [](T, T) { return T(0); });
    if (p == 1) return binary_forward("pow_backward", g, x, [](T gv, T) { return gv; });
    if (p == 2) return binary_forward("pow_backward", g, x, [](T gv, T xv) { return gv * T(2) * xv; });
    return binary_forward("pow_backward", g, x, [tp](T gv, T xv) { return gv * tp * std::pow(xv, tp - T(1)); });
  });
  if (p != 0 && any_requires_grad({&g, &x}))
    record(out, "pow_backward", {&g, &x}, [g = SavedTensor(g), x = SavedTensor(x), p](const Tensor& gg, const Node& n) {
      const Tensor gv = g.unpack(n), xv = x.unpack(n);
      return Grads{n.needs_grad(0) ? sum_to(pow_backward(gg, xv, p), gv.shape()) : Tensor(),
                   n.needs_grad(1) ? sum_to(pow_backward(gg * gv, xv, p - 1) * p, xv.shape()) : Tensor()};
    });
  return out;
}

// ---- operators ------------------------------------------------------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }

static Tensor like(const Tensor& t, double v) { return scalar(v, t.dtype()); }
Tensor operator+(const Tensor& a, double b) { return add(a, like(a, b)); }
Tensor operator+(double a, const Tensor& b) { return add(like(b, a), b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, like(a, b)); }
Tensor operator-(double a, const Tensor& b) { return sub(like(b, a), b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, like(a, b)); }
Tensor operator*(double a, const Tensor& b) { return mul(like(b, a), b); }
Tensor operator/(const Tensor& a, double b) { return div(a, like(a, b)); }
Tensor operator/(double a, const Tensor& b) { return div(like(b, a), b); }

// ---- method forms ---------------------------------------------------------------------------------
Tensor Tensor::pow(double exponent) const { return ng::pow(*this, exponent); }
Tensor Tensor::sqrt() const { return ng::sqrt(*this); }
Tensor Tensor::exp() const { return ng::exp(*this); }
Tensor Tensor::log() const { return ng::log(*this); }
Tensor Tensor::abs() const { return ng::abs(*this); }
Tensor Tensor::relu() const { return ng::relu(*this); }
Tensor Tensor::sigmoid() const { return ng::sigmoid(*this); }
Tensor Tensor::tanh() const { return ng::tanh(*this); }

}  // namespace ng
