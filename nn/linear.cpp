// linear.cpp: nn::Linear, composed from matmul and add (its gradients come from the graph).
#include "linear.h"

#include <cmath>

#include "autograd/graph.h"
#include "autograd/ops.h"

namespace ng::nn {

namespace {

// Uniform in [-bound, bound), from the global generator (so manual_seed makes it reproducible).
Tensor uniform(const Shape& shape, double bound, Dtype dtype) {
  NoGradGuard no_grad;
  return (rand(shape, dtype) * 2.0 - 1.0) * bound;
}

}  // namespace

Linear::Linear(int64_t in, int64_t out, bool with_bias, Dtype dtype) : in_features(in), out_features(out) {
  if (in <= 0 || out <= 0)
    throw Error("Linear: sizes in_features = " + std::to_string(in) + ", out_features = " + std::to_string(out) +
                "; expected both positive");
  if (dtype == int64) throw Error("Linear: dtype int64 cannot hold parameters; expected float32 or float64");
  // PyTorch: kaiming_uniform(a = sqrt(5)) on W reduces to the bound 1/sqrt(fan_in), and b uses the same.
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight = register_parameter("weight", uniform({out, in}, bound, dtype));
  if (with_bias) bias = register_parameter("bias", uniform({out}, bound, dtype));
}

// x: [N, in] -> y: [N, out]     y = x W^T + b
Tensor Linear::forward(const Tensor& x) {
  if (x.dim() != 2 || x.size(1) != in_features)
    throw Error("Linear: input of shape " + shape_str(x.shape()) + "; expected [N, " + std::to_string(in_features) + "]");
  // y = x @ W^T + b, as one `linear` node (autograd/ops_matmul.cpp): the same numbers as
  // matmul(x, weight.t()) + bias, without copying W into its transpose on every step.
  return ng::linear(x, weight, bias);
}

}  // namespace ng::nn
