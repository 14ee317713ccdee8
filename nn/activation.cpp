// activation.cpp: the activation layers (wrappers of the primitive ops), GELU (one op, and composed from erf
// for comparison) and dropout (functional::dropout, which the Dropout module calls).
#include "activation.h"

#include <cmath>
#include <numbers>

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
  return x * dropout_mask(x.shape(), p, x.dtype());  // the mask: autograd/ops_activation.cpp
}

// y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), one op (ng::gelu, ops_activation.cpp) whose backward is
//   dy/dx = Phi(x) + x phi(x) = 0.5 (1 + erf(x / sqrt 2)) + x e^(-x^2/2) / sqrt(2 pi)
// (gelu_composed, the same formula in erf, mul and add, leaves that derivative to the graph; tests hold
// the two to each other).
Tensor gelu(const Tensor& x) { return ng::gelu(x); }
Tensor gelu_composed(const Tensor& x) { return x * 0.5 * (1.0 + erf(x * (1 / std::numbers::sqrt2))); }
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
