// sgd.h: stochastic gradient descent with momentum, Nesterov momentum and weight decay (PyTorch's
// torch.optim.SGD, same options, same defaults, same update).
#pragma once

#include "optim/optimizer.h"

namespace ng::optim {

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0;
  double dampening = 0;
  bool nesterov = false;
  double weight_decay = 0;  // L2 penalty: adds weight_decay * p to the gradient
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options);

  void step() override;
  // "state.<i>.momentum_buffer" for each parameter that has one (momentum != 0, after its first step).
  NamedTensors state_dict() const override;
  void load_state_dict(const NamedTensors& state) override;

  const SGDOptions& options() const { return options_; }

 private:
  SGDOptions options_;
  std::vector<Tensor> momentum_buffers_;  // one per parameter; undefined until its first step
};

}  // namespace ng::optim
