// sgd.h: stochastic gradient descent with momentum, Nesterov momentum and weight decay (PyTorch's
// torch.optim.SGD, same options, same defaults, same update).
#pragma once

#include <initializer_list>

#include "optim/optimizer.h"

namespace ng::optim {

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0;
  double dampening = 0;
  bool nesterov = false;
  double weight_decay = 0;  // L2 penalty: adds weight_decay * p to the gradient
};
// A group's lr and weight_decay (ParamGroup, optimizer.h) replace the options' for its parameters.

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options);  // one group
  SGD(std::vector<ParamGroup> groups, SGDOptions options);
  // The same, so that a braced list of groups (and `{}`) picks this form rather than the one above.
  SGD(std::initializer_list<ParamGroup> groups, SGDOptions options);

  void step() override;

  const SGDOptions& options() const { return options_; }

 protected:
  // "state.<i>.momentum_buffer" for each parameter that has one (momentum != 0, after its first step).
  NamedTensors parameter_state() const override;
  void load_parameter_state(const NamedTensors& state) override;

 private:
  SGDOptions options_;
  std::vector<Tensor> momentum_buffers_;  // one per parameter; undefined until its first step
};

}  // namespace ng::optim
