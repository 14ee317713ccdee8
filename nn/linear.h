// linear.h: nn::Linear, the fully connected layer y = x W^T + b.
#pragma once

#include "module.h"

namespace ng::nn {

// PyTorch's keyword arguments of nn.Linear, so a call reads `Linear(1, 32, {.bias = false})`.
struct LinearOptions {
  bool bias = true;
  Dtype dtype = float32;
};

class Linear : public Module {
 public:
  // Parameters start as reset_parameters() leaves them.
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Dtype dtype = float32);
  Linear(int64_t in_features, int64_t out_features, LinearOptions options)
      : Linear(in_features, out_features, options.bias, options.dtype) {}

  // PyTorch's default initialization: W and b uniform in [-1/sqrt(in), 1/sqrt(in)] (linear.cpp).
  void reset_parameters();

  // x: [*, in] -> y: [*, out]   (any number of leading dimensions, as in PyTorch; usually [N, in])
  Tensor forward(const Tensor& x) override;

  int64_t in_features, out_features;
  Tensor weight;  // [out, in]
  Tensor bias;    // [out]; undefined when constructed with bias = false
};

}  // namespace ng::nn
