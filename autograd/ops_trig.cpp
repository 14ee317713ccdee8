// ops_trig.cpp: sin and cos, each with its backward.
//
// Each one's derivative is the other (up to sign), written with the ops themselves, so every order of
// derivative can be taken: d^2 sin(x)/dx^2 = -sin(x), and so on around the circle.
#include <cmath>

#include "graph.h"
#include "kernels.h"
#include "ops.h"

namespace ng {

using Grads = std::vector<Tensor>;

namespace {
// x: any shape -> out: x's shape, out = f(x) elementwise (float32 or float64).
template <class F> Tensor trig_forward(const char* op, const Tensor& x, F f) {
  Tensor out = empty(x.shape(), x.dtype());
  dispatch_float(op, x.dtype(), [&]<class T>() { kernel::unary<T>(x, out, f); });
  return out;
}
}  // namespace

// out = sin x        d sin(x)/dx = cos x
Tensor sin(const Tensor& x) {
  Tensor out = trig_forward("sin", x, [](auto v) { return std::sin(v); });
  if (any_requires_grad({&x}))
    record(out, "sin", {&x},
           [x = SavedTensor(x)](const Tensor& g, const Node& n) { return Grads{g * cos(x.unpack(n))}; });
  return out;
}

// out = cos x        d cos(x)/dx = -sin x
Tensor cos(const Tensor& x) {
  Tensor out = trig_forward("cos", x, [](auto v) { return std::cos(v); });
  if (any_requires_grad({&x}))
    record(out, "cos", {&x},
           [x = SavedTensor(x)](const Tensor& g, const Node& n) { return Grads{-(g * sin(x.unpack(n)))}; });
  return out;
}

}  // namespace ng
