// activation.h: the parameter-free layers: ReLU, Sigmoid, Tanh, Identity and Dropout.
#pragma once

#include "module.h"

namespace ng::nn {

// x: any shape -> y: same shape, for all of these.
class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};

// Inverted dropout: in training each element is zeroed with probability p and the survivors are
// scaled by 1/(1-p), so that the expected output equals the input and eval mode can be the identity.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  double p;
};

}  // namespace ng::nn
