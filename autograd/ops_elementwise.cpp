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

namespace kernel {

std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t stride = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& target) {
  std::vector<int64_t> own = strides_of(shape), strides(target.size(), 0);
  const std::size_t skip = target.size() - shape.size();
  for (std::size_t d = 0; d < shape.size(); ++d) strides[skip + d] = shape[d] == 1 ? 0 : own[d];
  return strides;
}

AroundDim around_dim(const Shape& shape, int64_t dim) {
  AroundDim r;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < dim) r.outer *= shape[d];
    if (d == dim) r.size = shape[d];
    if (d > dim) r.inner *= shape[d];
  }
  return r;
}

}  // namespace kernel

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
  dispatch_float(op, a.dtype(), [&](auto zero) { kernel::binary<decltype(zero)>(a, b, out, f); });
  return out;
}

template <class F> Tensor unary_forward(const char* op, const Tensor& x, F f) {
  Tensor out = empty(x.shape(), x.dtype());
  dispatch_float(op, x.dtype(), [&](auto zero) { kernel::unary<decltype(zero)>(x, out, f); });
  return out;
}

}  // namespace

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

// out = a * b        d(a*b)/da = b, d(a*b)/db = a
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("mul", a, b, [](auto x, auto y) { return x * y; });
  if (any_requires_grad({&a, &b}))
    record(out, "mul", {&a, &b}, [a = a.detach(), b = b.detach()](const Tensor& g, const Node& n) {
      return Grads{n.needs_grad(0) ? sum_to(g * b, a.shape()) : Tensor(),
                   n.needs_grad(1) ? sum_to(g * a, b.shape()) : Tensor()};
    });
  return out;
}

// out = a / b        d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -out/b
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("div", a, b, [](auto x, auto y) { return x / y; });
  if (any_requires_grad({&a, &b}))
    record(out, "div", {&a, &b}, [sa = a.shape(), b = b.detach(), out = out.detach()](const Tensor& g, const Node& n) {
      Tensor g_over_b = g / b;
      return Grads{n.needs_grad(0) ? sum_to(g_over_b, sa) : Tensor(),
                   n.needs_grad(1) ? sum_to(-(g_over_b * out), b.shape()) : Tensor()};
    });
  return out;
}

// out = base^exponent    d/dbase = exponent * base^(exponent-1),  d/dexponent = base^exponent * ln(base)
Tensor pow(const Tensor& base, const Tensor& exponent) {
  Tensor out = binary_forward("pow", base, exponent, [](auto x, auto y) { return std::pow(x, y); });
  if (any_requires_grad({&base, &exponent}))
    record(out, "pow", {&base, &exponent},
           [base = base.detach(), exponent = exponent.detach(), out = out.detach()](const Tensor& g, const Node& n) {
             return Grads{n.needs_grad(0) ? sum_to(g * exponent * pow(base, exponent - 1.0), base.shape()) : Tensor(),
                          n.needs_grad(1) ? sum_to(g * out * log(base), exponent.shape()) : Tensor()};
           });
  return out;
}

// out = -x           d(-x)/dx = -1
Tensor neg(const Tensor& x) {
  Tensor out = unary_forward("neg", x, [](auto v) { return -v; });
  if (any_requires_grad({&x})) record(out, "neg", {&x}, [](const Tensor& g, const Node&) { return Grads{-g}; });
  return out;
}

// out = x^p          d(x^p)/dx = p * x^(p-1)
Tensor pow(const Tensor& x, double p) {
  Tensor out = dispatch_float("pow", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T exponent = static_cast<T>(p);
    if (p == 2) return unary_forward("pow", x, [](T v) { return v * v; });
    return unary_forward("pow", x, [exponent](T v) { return std::pow(v, exponent); });
  });
  if (any_requires_grad({&x}))
    record(out, "pow", {&x}, [x = x.detach(), p](const Tensor& g, const Node&) {
      return Grads{kernel::zip(g, x, [p](auto gv, auto xv) {
        using T = decltype(xv);
        return gv * static_cast<T>(p) * (p == 2 ? xv : std::pow(xv, static_cast<T>(p - 1)));
      })};
    });
  return out;
}

// out = sqrt(x)      d(sqrt x)/dx = 1 / (2 sqrt x) = 1 / (2 out)
Tensor sqrt(const Tensor& x) {
  Tensor out = unary_forward("sqrt", x, [](auto v) { return std::sqrt(v); });
  if (any_requires_grad({&x}))
    record(out, "sqrt", {&x}, [out = out.detach()](const Tensor& g, const Node&) {
      return Grads{kernel::zip(g, out, [](auto gv, auto y) { return gv / (y + y); })};
    });
  return out;
}

// out = e^x          d(e^x)/dx = e^x = out
Tensor exp(const Tensor& x) {
  Tensor out = unary_forward("exp", x, [](auto v) { return std::exp(v); });
  if (any_requires_grad({&x}))
    record(out, "exp", {&x}, [out = out.detach()](const Tensor& g, const Node&) {
      return Grads{kernel::zip(g, out, [](auto gv, auto y) { return gv * y; })};
    });
  return out;
}

// out = ln x         d(ln x)/dx = 1/x
Tensor log(const Tensor& x) {
  Tensor out = unary_forward("log", x, [](auto v) { return std::log(v); });
  if (any_requires_grad({&x}))
    record(out, "log", {&x}, [x = x.detach()](const Tensor& g, const Node&) {
      return Grads{kernel::zip(g, x, [](auto gv, auto xv) { return gv / xv; })};
    });
  return out;
}

// out = |x|          d|x|/dx = sign(x)  (0 at x = 0, as PyTorch)
Tensor abs(const Tensor& x) {
  Tensor out = unary_forward("abs", x, [](auto v) { return std::abs(v); });
  if (any_requires_grad({&x}))
    record(out, "abs", {&x}, [x = x.detach()](const Tensor& g, const Node&) {
      return Grads{kernel::zip(g, x, [](auto gv, auto xv) { return xv > 0 ? gv : xv < 0 ? -gv : decltype(gv){0}; })};
    });
  return out;
}

// out = max(x, 0)    d relu(x)/dx = 1 if x > 0 else 0
Tensor relu(const Tensor& x) {
  Tensor out = unary_forward("relu", x, [](auto v) { return v > 0 ? v : decltype(v){0}; });
  if (any_requires_grad({&x}))
    record(out, "relu", {&x}, [out = out.detach()](const Tensor& g, const Node&) {
      return Grads{kernel::zip(g, out, [](auto gv, auto y) { return y > 0 ? gv : decltype(gv){0}; })};
    });
  return out;
}

// out = 1 / (1 + e^-x)   d sigmoid(x)/dx = out * (1 - out)
// For very negative x, e^-x overflows to inf and 1 / (1 + inf) = 0, the right limit, so no case split
// is needed. float32 uses the vectorizable fast_exp (this is the hot loop of a sigmoid network), which
// clamps e^-x at about 2e38 instead, so there the result is about 4e-39 rather than exactly 0.
Tensor sigmoid(const Tensor& x) {
  Tensor out = unary_forward("sigmoid", x, [](auto v) {
    using T = decltype(v);
    if constexpr (std::is_same_v<T, float>)
      return 1.0f / (1.0f + kernel::fast_exp(-v));
    else
      return T(1) / (T(1) + std::exp(-v));
  });
  if (any_requires_grad({&x}))
    record(out, "sigmoid", {&x}, [out = out.detach()](const Tensor& g, const Node&) {
      return Grads{kernel::zip(g, out, [](auto gv, auto y) { return gv * y * (decltype(y)(1) - y); })};
    });
  return out;
}

// out = tanh x       d tanh(x)/dx = 1 - out^2
Tensor tanh(const Tensor& x) {
  Tensor out = unary_forward("tanh", x, [](auto v) { return std::tanh(v); });
  if (any_requires_grad({&x}))
    record(out, "tanh", {&x}, [out = out.detach()](const Tensor& g, const Node&) {
      return Grads{kernel::zip(g, out, [](auto gv, auto y) { return gv * (decltype(y)(1) - y * y); })};
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
