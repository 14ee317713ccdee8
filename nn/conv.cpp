// conv.cpp: nn::Conv2d: its parameters, PyTorch's default initialization, and the forward.
#include "conv.h"

#include <cmath>

#include "checks.h"
#include "init.h"

namespace ng::nn {

Conv2d::Conv2d(int64_t in, int64_t out, Pair kernel, Pair stride_, Pair padding_, Pair dilation_, int64_t groups_,
               bool with_bias, Dtype dtype)
    : in_channels(in),
      out_channels(out),
      kernel_size(kernel),
      stride(stride_),
      padding(padding_),
      dilation(dilation_),
      groups(groups_) {
  const std::string args = "Conv2d(" + std::to_string(in) + ", " + std::to_string(out) + ", kernel " +
                           std::to_string(kernel[0]) + "x" + std::to_string(kernel[1]) + ", groups " +
                           std::to_string(groups) + ")";
  if (in <= 0 || out <= 0 || kernel[0] <= 0 || kernel[1] <= 0 || groups <= 0)
    throw Error(args + ": expected positive channel counts, kernel sizes and groups");
  if (in % groups != 0 || out % groups != 0)
    throw Error(args + ": expected in_channels and out_channels divisible by groups");
  for (int a = 0; a < 2; ++a)
    if (stride[a] < 1 || dilation[a] < 1 || padding[a] < 0)
      throw Error(args + ": stride {" + std::to_string(stride[0]) + ", " + std::to_string(stride[1]) + "}, padding {" +
                  std::to_string(padding[0]) + ", " + std::to_string(padding[1]) + "}, dilation {" +
                  std::to_string(dilation[0]) + ", " + std::to_string(dilation[1]) +
                  "}; expected strides and dilations >= 1 and paddings >= 0");
  detail::check_parameter_dtype(args, dtype);
  weight = register_parameter("weight", empty({out, in / groups, kernel[0], kernel[1]}, dtype));
  if (with_bias) bias = register_parameter("bias", empty({out}, dtype));
  reset_parameters();
}

// PyTorch's reset_parameters, as for Linear: kaiming_uniform_ with a = sqrt(5) on W, whose bound
//   sqrt(3) * gain / sqrt(fan_in) with gain = sqrt(2 / (1 + 5)) = 1/sqrt(3)
// reduces to 1/sqrt(fan_in); b is uniform with the same bound. fan_in = in/groups * kH * kW: the
// number of inputs each output sums over.
void Conv2d::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(init::calculate_fans("Conv2d", weight).fan_in));
    init::uniform_(bias, -bound, bound);
  }
}

// x: [N, in, H, W] -> y: [N, out, H_out, W_out]
//   y[n, o] = b[o] + sum over the group's input channels c of (W[o, c] correlated with x[n, c])
Tensor Conv2d::forward(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != in_channels)
    throw Error("Conv2d: input of shape " + shape_str(x.shape()) + "; expected [N, " + std::to_string(in_channels) +
                ", H, W]");
  return conv2d(x, weight, bias, stride, padding, dilation, groups);
}

}  // namespace ng::nn
