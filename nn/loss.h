// loss.h: the losses, composed from primitive ops so that their gradients come from the graph.
#pragma once

#include "autograd/tensor.h"

namespace ng::nn {

// PyTorch's keyword arguments of cross_entropy, so a call reads `cross_entropy(logits, y, {.label_smoothing = 0.1})`.
struct CrossEntropyOptions {
  // Rows whose target is ignore_index add nothing to the loss and are not counted in the mean (padding).
  int64_t ignore_index = -100;
  // eps in [0, 1]: the target distribution puts 1 - eps on the target class and eps spread evenly over all C.
  double label_smoothing = 0.0;
};

// logits: [N, C], targets: int64 [N] with values in 0..C-1 (or ignore_index) -> 0-dim
//   loss = (1 - eps) * nll + eps * smooth, over the K rows whose target is not ignored:
//     nll    = -(1/K) sum_n log_softmax(logits)[n, targets[n]]          (PyTorch's mean reduction)
//     smooth = -(1/K) sum_n (1/C) sum_c log_softmax(logits)[n, c]       (the uniform target's term)
// When every target is ignored (K = 0) the loss is 0/0 = NaN, as in PyTorch.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options = {});

// log_probs: [N, C] (log-probabilities, e.g. log_softmax's output), targets: int64 [N] -> 0-dim
//   loss = -(1/K) sum over the K rows n with targets[n] != ignore_index of log_probs[n, targets[n]]
// NaN when every target is ignored (K = 0), as in PyTorch. cross_entropy = nll_loss(log_softmax(logits)).
Tensor nll_loss(const Tensor& log_probs, const Tensor& targets, int64_t ignore_index = -100);

// logits, targets (probabilities in [0, 1], float): the same shape -> 0-dim
//   loss = mean(-t log sigmoid(x) - (1 - t) log(1 - sigmoid(x))) = mean(max(x, 0) - x t + log(1 + e^-|x|))
// The second form never takes the exponential of a positive number, so it is finite for any logit.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets);

// prediction, target: the same shape -> 0-dim      loss = mean((prediction - target)^2)
Tensor mse_loss(const Tensor& prediction, const Tensor& target);

}  // namespace ng::nn
