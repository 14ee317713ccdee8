// conv.h: nn::Conv2d, a layer of learned 2-D convolution filters (PyTorch's nn.Conv2d).
#pragma once

#include "autograd/ops.h"
#include "module.h"

namespace ng::nn {

class Conv2d : public Module {
 public:
  // Parameters start as reset_parameters() leaves them. in and out must be divisible by groups.
  Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Pair stride = {1, 1}, Pair padding = {0, 0},
         Pair dilation = {1, 1}, int64_t groups = 1, bool bias = true, Dtype dtype = float32);

  // PyTorch's default initialization: W and b uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)],
  // fan_in = in/groups * kH * kW (conv.cpp).
  void reset_parameters();

  // x: [N, in, H, W] -> y: [N, out, H_out, W_out]   (ng::conv2d, autograd/ops_conv.cpp)
  Tensor forward(const Tensor& x) override;

  int64_t in_channels, out_channels;
  Pair kernel_size, stride, padding, dilation;
  int64_t groups;
  Tensor weight;  // [out, in/groups, kH, kW]
  Tensor bias;    // [out]; undefined when constructed with bias = false
};

}  // namespace ng::nn
