// linear.cpp: nn::Linear: its parameters, PyTorch's default initialization, and the forward.
#include "linear.h"

#include <cmath>

#include "autograd/ops.h"
#include "checks.h"
#include "init.h"

namespace ng::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Dtype dtype) : in_features(in), out_features(out) {
  if (in <= 0 || out <= 0)
    throw Error("Linear: sizes in_features = " + std::to_string(in) + ", out_features = " + std::to_string(out) +
                "; expected both positive");
  detail::check_parameter_dtype("Linear", dtype);
  weight = register_parameter("weight", empty({out, in}, dtype));
  if (with_bias) bias = register_parameter("bias", empty({out}, dtype));
  reset_parameters();
}

// PyTorch's reset_parameters: kaiming_uniform_ with a = sqrt(5) on W, whose bound
//   sqrt(3) * gain / sqrt(in) with gain = sqrt(2 / (1 + 5)) = 1/sqrt(3)
// reduces to 1/sqrt(in); b is uniform with the same bound.
void Linear::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    init::uniform_(bias, -bound, bound);
  }
}

// x: [*, in] -> y: [*, out]     y = x W^T + b
Tensor Linear::forward(const Tensor& x) {
  if (x.dim() == 0 || x.size(-1) != in_features)
    throw Error("Linear: input of shape " + shape_str(x.shape()) + "; expected [N, " + std::to_string(in_features) +
                "] (or [*, " + std::to_string(in_features) + "])");
  // y = x @ W^T + b, as one `linear` node (autograd/ops_matmul.cpp): the same numbers as
  // matmul(x, weight.t()) + bias, without copying W into its transpose on every step.
  if (x.dim() == 2) return ng::linear(x, weight, bias);
  // Other ranks: the leading dimensions become one of rows, and come back afterwards.
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  return reshape(ng::linear(reshape(x, {x.numel() / in_features, in_features}), weight, bias), out_shape);
}

}  // namespace ng::nn
