// flatten.h: nn::Flatten, which merges a range of dimensions into one (PyTorch's nn.Flatten): with
// the defaults, images [N, C, H, W] become rows [N, C*H*W] for a Linear layer.
#pragma once

#include "module.h"

namespace ng::nn {

class Flatten : public Module {
 public:
  // The dimensions start_dim..end_dim (inclusive; negative counts from the end) become one.
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1);

  // x: [d0, ..., d_start, ..., d_end, ...] -> y: [d0, ..., d_start * ... * d_end, ...]
  // A reshape: no copy, and the gradient is reshaped back.
  Tensor forward(const Tensor& x) override;

  int64_t start_dim, end_dim;
};

}  // namespace ng::nn
