// adam.h: Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as PyTorch's torch.optim.Adam
// and torch.optim.AdamW compute them: same options, same defaults, same bias correction.
//
// The two differ only in weight decay. Adam adds weight_decay * p to the gradient (an L2 penalty),
// so the decay passes through the moving averages and gets rescaled per coordinate. AdamW shrinks
// the parameter directly, p = p * (1 - lr * weight_decay), before the Adam step ("decoupled").
#pragma once

#include <initializer_list>

#include "optim/optimizer.h"

namespace ng::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;    // decay of the first-moment average m
  double beta2 = 0.999;  // decay of the second-moment average v
  double eps = 1e-8;
  double weight_decay = 0;
};

// AdamW's options are Adam's with PyTorch's AdamW default weight_decay = 1e-2 (as libtorch's
// AdamWOptions): so AdamW(params, {.lr = 3e-4}) still decays, as torch.optim.AdamW(params, lr=3e-4) does.
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};
// A group's lr and weight_decay (ParamGroup, optimizer.h) replace the options' for its parameters.

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options = {});  // one group
  Adam(std::vector<ParamGroup> groups, AdamOptions options = {});
  // The same, so that a braced list of groups (and `{}`) picks this form rather than the first.
  Adam(std::initializer_list<ParamGroup> groups, AdamOptions options = {});

  void step() override;

  const AdamOptions& options() const { return options_; }

 protected:
  Adam(const char* name, std::vector<ParamGroup> groups, AdamOptions options, bool decoupled_weight_decay);
  // Per parameter after its first step: "state.<i>.step" (int64 scalar), "state.<i>.exp_avg" (m),
  // "state.<i>.exp_avg_sq" (v).
  NamedTensors parameter_state() const override;
  void load_parameter_state(const NamedTensors& state) override;

 private:
  AdamOptions options_;
  bool decoupled_weight_decay_;
  std::vector<int64_t> steps_;       // per parameter: how many updates it has had (t)
  std::vector<Tensor> exp_avgs_;     // m, undefined until the parameter's first step
  std::vector<Tensor> exp_avg_sqs_;  // v
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options = {});  // one group
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});
  AdamW(std::initializer_list<ParamGroup> groups, AdamWOptions options = {});
};

}  // namespace ng::optim
