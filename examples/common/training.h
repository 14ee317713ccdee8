// training.h: the two halves of every supervised training loop in the examples: one SGD step on a
// mini-batch, and accuracy on held-out data measured in eval mode without building a graph.
#pragma once

#include <cstdint>

#include "data/dataset.h"
#include "nn/module.h"
#include "optim/optimizer.h"

namespace examples {

// One step of the optimizer on a batch: forward, cross-entropy, backward, update. Returns the loss.
double train_step(ng::nn::Module& model, ng::optim::Optimizer& optimizer, const ng::data::Batch& batch);

// The fraction of the first `count` examples of `data` (all when count < 0) whose highest logit is
// their label. Runs in eval mode (BN uses its running averages, dropout is off) under NoGradGuard,
// `batch_size` (>= 1, else std::invalid_argument) examples at a time; the model's mode is restored afterwards.
double test_accuracy(ng::nn::Module& model, const ng::data::Dataset& data, int64_t count = -1,
                     int64_t batch_size = 1000);

// Puts a module in eval mode for one scope, then back into the mode it was in.
class EvalScope {
 public:
  explicit EvalScope(ng::nn::Module& m) : module_(m), was_training_(m.is_training()) { m.eval(); }
  ~EvalScope() { module_.train(was_training_); }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  ng::nn::Module& module_;
  bool was_training_;
};

}  // namespace examples
