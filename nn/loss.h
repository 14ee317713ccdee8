// loss.h: the losses, composed from primitive ops so that their gradients come from the graph.
#pragma once

#include "autograd/tensor.h"

namespace ng::nn {

// logits: [N, C], targets: int64 [N] with values in 0..C-1 -> 0-dim
//   loss = -(1/N) sum_n log_softmax(logits)[n, targets[n]]      (PyTorch's default mean reduction)
Tensor cross_entropy(const Tensor& logits, const Tensor& targets);

// prediction, target: the same shape -> 0-dim      loss = mean((prediction - target)^2)
Tensor mse_loss(const Tensor& prediction, const Tensor& target);

}  // namespace ng::nn
