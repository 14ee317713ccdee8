// flatten.h: a Flatten layer (PyTorch's nn.Flatten), which nn/ does not provide: the examples' MLPs
// take images [N, 1, 28, 28] and need rows of 784 pixels.
#pragma once

#include "nn/module.h"

namespace examples {

// x: [N, d1, d2, ...] -> y: [N, d1 * d2 * ...]  (a reshape: no copy, the gradient flows through)
class Flatten : public ng::nn::Module {
 public:
  ng::Tensor forward(const ng::Tensor& x) override { return x.reshape({x.size(0), -1}); }
};

}  // namespace examples
