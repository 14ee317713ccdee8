// activation.cpp: the activation layers (wrappers of the primitive ops), GELU composed from erf, and dropout
// (functional::dropout, which the Dropout module calls).
#include "activation.h"

#include <cmath>
#include <numbers>

#include "autograd/graph.h"
#include "autograd/ops.h"

namespace ng::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }

Dropout::Dropout(double probability) : p(probability) {
  if (!(p >= 0 && p <= 1)) throw Error("Dropout: p = " + std::to_string(p) + "; expected a probability in [0, 1]");
}

Tensor Dropout::forward(const Tensor& x) { return functional::dropout(x, p, is_training()); }

namespace functional {
// x: any shape -> y: same shape.   y = x * mask, mask_i = [u_i >= p] / (1 - p) with u_i ~ U(0, 1),
// so dy/dx = mask: the gradient passes exactly where the input did (and the mask, a constant, makes
// the second derivative 0).
Tensor dropout(const Tensor& x, double p, bool training) {
  if (!(p >= 0 && p <= 1))
    throw Error("dropout: p = " + std::to_string(p) + " for an input of shape " + shape_str(x.shape()) +
                "; expected a probability in [0, 1]");
  if (!training || p == 0) return x;
  Tensor mask;
  {
    NoGradGuard no_grad;
    mask = zeros(x.shape(), x.dtype());
    if (p < 1) {
      const double keep_scale = 1.0 / (1.0 - p);
      dispatch_float("dropout", x.dtype(), [&](auto zero) {
        using T = decltype(zero);
        T* m = mask.mutable_data<T>();
        RandomDraws draws;
        for (int64_t i = 0; i < mask.numel(); ++i) m[i] = draws.uniform() >= p ? static_cast<T>(keep_scale) : T(0);
      });
    }
  }
  return x * mask;
}

// y = 0.5 x (1 + erf(x / sqrt 2)), composed from erf (ops_activation.cpp), mul and add:
//   dy/dx = Phi(x) + x phi(x) = 0.5 (1 + erf(x / sqrt 2)) + x e^(-x^2/2) / sqrt(2 pi), which the graph computes.
Tensor gelu(const Tensor& x) { return x * 0.5 * (1.0 + erf(x * (1 / std::numbers::sqrt2))); }
}  // namespace functional

Tensor GELU::forward(const Tensor& x) { return functional::gelu(x); }

LeakyReLU::LeakyReLU(double slope) : negative_slope(slope) {
  if (!std::isfinite(slope))
    throw Error("LeakyReLU: negative_slope = " + std::to_string(slope) + "; expected a finite number");
}
Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope); }

Softmax::Softmax(int64_t d) : dim(d) {}
Tensor Softmax::forward(const Tensor& x) { return softmax(x, dim); }

}  // namespace ng::nn
