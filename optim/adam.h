// adam.h: Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as PyTorch's torch.optim.Adam
// and torch.optim.AdamW compute them: same options, same defaults, same bias correction.
//
// The two differ only in weight decay. Adam adds weight_decay * p to the gradient (an L2 penalty),
// so the decay passes through the moving averages and gets rescaled per coordinate. AdamW shrinks
// the parameter directly, p = p * (1 - lr * weight_decay), before the Adam step ("decoupled").
#pragma once

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

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options = {});

  void step() override;
  // Per parameter after its first step: "state.<i>.step" (int64 scalar), "state.<i>.exp_avg" (m),
  // "state.<i>.exp_avg_sq" (v).
  NamedTensors state_dict() const override;
  void load_state_dict(const NamedTensors& state) override;

  const AdamOptions& options() const { return options_; }

 protected:
  Adam(const char* name, std::vector<Tensor> params, AdamOptions options, bool decoupled_weight_decay);

 private:
  AdamOptions options_;
  bool decoupled_weight_decay_;
  std::vector<int64_t> steps_;       // per parameter: how many updates it has had (t)
  std::vector<Tensor> exp_avgs_;     // m, undefined until the parameter's first step
  std::vector<Tensor> exp_avg_sqs_;  // v
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options = {});
};

}  // namespace ng::optim
