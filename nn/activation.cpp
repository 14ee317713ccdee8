// activation.cpp: the activation layers (wrappers of the primitive ops) and Dropout.
#include "activation.h"

#include "autograd/graph.h"
#include "autograd/ops.h"

namespace ng::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }

Dropout::Dropout(double probability) : p(probability) {
  if (!(p >= 0 && p <= 1)) throw Error("Dropout: p = " + std::to_string(p) + "; expected a probability in [0, 1]");
}

// x: any shape -> y: same shape.   y = x * mask, mask_i = [u_i >= p] / (1 - p) with u_i ~ U(0, 1),
// so dy/dx = mask: the gradient passes exactly where the input did.
Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p == 0) return x;
  Tensor mask;
  {
    NoGradGuard no_grad;
    mask = zeros(x.shape(), x.dtype());
    if (p < 1) {
      const double keep_scale = 1.0 / (1.0 - p);
      dispatch_float("Dropout", x.dtype(), [&](auto zero) {
        using T = decltype(zero);
        T* m = mask.mutable_data<T>();
        RandomDraws draws;
        for (int64_t i = 0; i < mask.numel(); ++i) m[i] = draws.uniform() >= p ? static_cast<T>(keep_scale) : T(0);
      });
    }
  }
  return x * mask;
}

}  // namespace ng::nn
