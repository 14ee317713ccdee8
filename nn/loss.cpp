// loss.cpp: cross_entropy and mse_loss.
//
// cross_entropy picks, in each row of log_softmax(logits), the entry of the row's target class. It is
// composed (log_softmax, then index_select on the flattened [N*C] tensor, then mean) rather than fused,
// because every piece already has a checked backward: the gradient that reaches the logits is
//   d loss / d logits[n, k] = (softmax(logits)[n, k] - [k = targets[n]]) / N,
// which the graph produces without any new code.
#include "loss.h"

#include "autograd/ops.h"

namespace ng::nn {

// logits: [N, C], targets: int64 [N] -> 0-dim
Tensor cross_entropy(const Tensor& logits, const Tensor& targets) {
  if (logits.dim() != 2)
    throw Error("cross_entropy: logits of shape " + shape_str(logits.shape()) + "; expected [N, C]");
  const int64_t N = logits.size(0), C = logits.size(1);
  if (targets.dtype() != int64)
    throw Error("cross_entropy: targets have dtype " + std::string(dtype_name(targets.dtype())) +
                "; expected int64 class indices");
  if (targets.dim() != 1 || targets.size(0) != N)
    throw Error("cross_entropy: targets of shape " + shape_str(targets.shape()) + " for logits " +
                shape_str(logits.shape()) + "; expected [" + std::to_string(N) + "]");
  if (N == 0) throw Error("cross_entropy: empty batch (logits " + shape_str(logits.shape()) + "); expected N > 0");

  // Position of (n, targets[n]) in the flattened [N*C] log-probabilities.
  Tensor picked_at = empty({N}, int64);
  const int64_t* target = targets.data<int64_t>();
  int64_t* flat_index = picked_at.mutable_data<int64_t>();
  for (int64_t n = 0; n < N; ++n) {
    if (target[n] < 0 || target[n] >= C)
      throw Error("cross_entropy: target " + std::to_string(target[n]) + " at position " + std::to_string(n) +
                  " is not a class index for " + std::to_string(C) + " classes; expected 0.." + std::to_string(C - 1));
    flat_index[n] = n * C + target[n];
  }
  Tensor log_probs = log_softmax(logits, 1);                                 // [N, C]
  Tensor target_log_probs = index_select(reshape(log_probs, {N * C}), 0, picked_at);  // [N]
  return -mean(target_log_probs);
}

// prediction, target: same shape -> 0-dim
Tensor mse_loss(const Tensor& prediction, const Tensor& target) {
  if (prediction.shape() != target.shape())
    throw Error("mse_loss: prediction of shape " + shape_str(prediction.shape()) + " and target of shape " +
                shape_str(target.shape()) + "; expected the same shape");
  if (prediction.numel() == 0) throw Error("mse_loss: empty tensors; expected at least one element");
  return mean(pow(prediction - target, 2.0));
}

}  // namespace ng::nn
