// activation.h: the parameter-free layers: ReLU, Sigmoid, Tanh, Identity, Dropout, GELU, LeakyReLU, Softmax.
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
// forward is functional::dropout(x, p, is_training()).
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  double p;
};

// GELU (Hendrycks & Gimpel 2016), exact form: y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), Phi the standard
// normal CDF. A smooth ReLU: near 0 for x << 0, near x for x >> 0. (PyTorch's approximate='none'.)
class GELU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

// y = x if x > 0 else negative_slope * x: a ReLU whose negative side still passes a (small) gradient.
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01);
  Tensor forward(const Tensor& x) override;
  double negative_slope;
};

// y = softmax(x, dim): each slice along dim becomes a probability distribution.
class Softmax : public Module {
 public:
  explicit Softmax(int64_t dim);
  Tensor forward(const Tensor& x) override;
  int64_t dim;
};

namespace functional {
Tensor gelu(const Tensor& x);           // 0.5 x (1 + erf(x / sqrt 2)), one node (ng::gelu)
Tensor gelu_composed(const Tensor& x);  // the same from erf, mul and add: five nodes, for comparison
// PyTorch's F.dropout. x: any shape -> y: same shape. With training, each element is zeroed with
// probability p (a draw of the global generator, manual_seed) and the rest are scaled by 1/(1-p);
// p = 1 gives zeros. Without training, or with p = 0, y is x itself. An Error unless 0 <= p <= 1.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true);
}  // namespace functional

}  // namespace ng::nn
