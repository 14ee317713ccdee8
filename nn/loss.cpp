// loss.cpp: cross_entropy, nll_loss, binary_cross_entropy_with_logits and mse_loss.
//
// nll_loss picks, in each row of the log-probabilities, the entry of the row's target class. It is
// composed (index_select on the flattened [N*C] tensor, then a sum divided by the number of rows
// counted) rather than fused, because every piece already has a checked backward: for cross_entropy
// the gradient that reaches the logits is
//   d loss / d logits[n, k] = (softmax(logits)[n, k] - [k = targets[n]]) / K     (K rows not ignored),
// which the graph produces without any new code.
#include "loss.h"

#include "autograd/ops.h"

namespace ng::nn {

namespace {

// The rows of a classification loss that count (targets[n] != ignore_index): their indices in [N],
// and the flat positions n * C + targets[n] of their target entries in the [N * C] scores.
struct CountedRows {
  Tensor rows;       // int64 [K]
  Tensor picked_at;  // int64 [K]
};

// scores: [N, C] (`what` names them in messages), targets: int64 [N] with values in 0..C-1 or ignore_index.
CountedRows counted_rows(const char* op, const char* what, const Tensor& scores, const Tensor& targets,
                         int64_t ignore_index) {
  if (scores.dim() != 2)
    throw Error(std::string(op) + ": " + what + " of shape " + shape_str(scores.shape()) + "; expected [N, C]");
  const int64_t N = scores.size(0), C = scores.size(1);
  if (targets.dtype() != int64)
    throw Error(std::string(op) + ": targets have dtype " + dtype_name(targets.dtype()) +
                "; expected int64 class indices");
  if (targets.dim() != 1 || targets.size(0) != N)
    throw Error(std::string(op) + ": targets of shape " + shape_str(targets.shape()) + " for " + what + " " +
                shape_str(scores.shape()) + "; expected [" + std::to_string(N) + "]");
  if (N == 0)
    throw Error(std::string(op) + ": empty batch (" + what + " " + shape_str(scores.shape()) + "); expected N > 0");
  if (C == 0)
    throw Error(std::string(op) + ": " + what + " have 0 classes (shape " + shape_str(scores.shape()) +
                "); expected C >= 1");
  const int64_t* target = targets.data<int64_t>();
  std::vector<int64_t> rows, picked_at;
  for (int64_t n = 0; n < N; ++n) {
    if (target[n] == ignore_index) continue;
    if (target[n] < 0 || target[n] >= C)
      throw Error(std::string(op) + ": target " + std::to_string(target[n]) + " at position " + std::to_string(n) +
                  " is not a class index for " + std::to_string(C) + " classes; expected 0.." + std::to_string(C - 1) +
                  " (or ignore_index = " + std::to_string(ignore_index) + ")");
    rows.push_back(n);
    picked_at.push_back(n * C + target[n]);
  }
  const auto K = static_cast<int64_t>(rows.size());
  return {from_vector(rows, {K}), from_vector(picked_at, {K})};
}

// -(1/K) sum_k log_probs.flat[picked_at[k]]; K = 0 gives -0/0 = NaN (PyTorch's mean over no targets).
Tensor mean_negative_log_likelihood(const Tensor& log_probs, const CountedRows& counted) {
  const int64_t K = counted.picked_at.numel();
  Tensor target_log_probs = index_select(reshape(log_probs, {log_probs.numel()}), 0, counted.picked_at);  // [K]
  return -sum(target_log_probs) / static_cast<double>(K);
}

}  // namespace

// log_probs: [N, C], targets: int64 [N] -> 0-dim
Tensor nll_loss(const Tensor& log_probs, const Tensor& targets, int64_t ignore_index) {
  return mean_negative_log_likelihood(log_probs,
                                      counted_rows("nll_loss", "log_probs", log_probs, targets, ignore_index));
}

// logits: [N, C], targets: int64 [N] -> 0-dim
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options) {
  const double eps = options.label_smoothing;
  if (!(eps >= 0 && eps <= 1))
    throw Error("cross_entropy: label_smoothing = " + std::to_string(eps) + "; expected a value in [0, 1]");
  const CountedRows counted = counted_rows("cross_entropy", "logits", logits, targets, options.ignore_index);
  Tensor log_probs = log_softmax(logits, 1);                      // [N, C]
  Tensor nll = mean_negative_log_likelihood(log_probs, counted);  // 0-dim
  if (eps == 0) return nll;
  // Label smoothing (Szegedy et al. 2016), PyTorch's formula: the target distribution is
  // (1 - eps) one_hot + eps / C, so the cross entropy splits into (1 - eps) nll + eps * smooth, with
  // smooth the mean over counted rows of the average over classes of -log p.
  const int64_t C = logits.size(1), K = counted.rows.numel();
  Tensor row_log_prob_sums = index_select(sum(log_probs, {1}), 0, counted.rows);  // [K]: sum_c log p[n, c]
  Tensor smooth = -sum(row_log_prob_sums) / static_cast<double>(K * C);           // 0-dim
  return nll * (1 - eps) + smooth * eps;
}

// logits, targets: the same shape -> 0-dim
// max(x, 0) is written (x + |x|) / 2: the same numbers, but at x = 0 the graph's derivative is then
// 1/2 + 0 (abs' is 0 at 0) rather than relu's 0, and with log(1 + e^-|x|)'s 0 there the total is
// sigmoid(0) - t, the true derivative of the (smooth) loss. d loss / dx = sigmoid(x) - t everywhere.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets) {
  if (logits.shape() != targets.shape())
    throw Error("binary_cross_entropy_with_logits: logits of shape " + shape_str(logits.shape()) +
                " and targets of shape " + shape_str(targets.shape()) + "; expected the same shape");
  if (logits.dtype() == int64 || targets.dtype() != logits.dtype())
    throw Error("binary_cross_entropy_with_logits: logits " + std::string(dtype_name(logits.dtype())) +
                " and targets " + dtype_name(targets.dtype()) +
                "; expected both float32 or both float64 (targets are probabilities)");
  if (logits.numel() == 0)
    throw Error("binary_cross_entropy_with_logits: empty tensors; expected at least one element");
  Tensor abs_x = abs(logits);
  Tensor positive_part = (logits + abs_x) * 0.5;  // max(x, 0)
  Tensor log_term = log(1.0 + exp(-abs_x));       // log(1 + e^-|x|), e^-|x| <= 1
  return mean(positive_part - logits * targets + log_term);
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
