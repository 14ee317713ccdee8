// pooling.h: the pooling layers, which have no parameters (PyTorch's nn.MaxPool2d, nn.AvgPool2d,
// nn.AdaptiveAvgPool2d). Each calls its op of autograd/ops_conv.cpp.
#pragma once

#include "autograd/ops.h"
#include "module.h"

namespace ng::nn {

// The maximum of each window; stride defaults to the kernel size (non-overlapping windows).
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Pair kernel_size);
  MaxPool2d(Pair kernel_size, Pair stride, Pair padding = {0, 0});
  // x: [N, C, H, W] -> y: [N, C, H_out, W_out]
  Tensor forward(const Tensor& x) override;
  Pair kernel_size, stride, padding;
};

// The mean of each window, padding counted as zeros (count_include_pad = true).
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Pair kernel_size);
  AvgPool2d(Pair kernel_size, Pair stride, Pair padding = {0, 0});
  // x: [N, C, H, W] -> y: [N, C, H_out, W_out]
  Tensor forward(const Tensor& x) override;
  Pair kernel_size, stride, padding;
};

// Means over windows sized so that the output is output_size whatever the input's size;
// {1, 1} is global average pooling.
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Pair output_size);
  // x: [N, C, H, W] -> y: [N, C, out_h, out_w]
  Tensor forward(const Tensor& x) override;
  Pair output_size;
};

}  // namespace ng::nn
