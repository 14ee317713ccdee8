// batchnorm_shapes.h: the argument checks the BatchNorm functions share (internal to nn/, not installed).
//
// A BatchNorm input is seen as [N, C, S]: N samples, C channels, S = H*W positions per channel (S = 1
// for [N, C]). Channel c's values sit at (n * C + c) * S + s, and its statistics run over the
// m = N * S values of the mini-batch.
#pragma once

#include <string>

#include "autograd/ops.h"
#include "autograd/tensor.h"
#include "checks.h"

namespace ng::nn::detail {

struct ChannelLayout {
  int64_t N = 0, C = 0, S = 1;
  int64_t m() const { return N * S; }  // values per channel
};

// The shape [C] of gamma, beta, and the statistics, checked against x's channels; an undefined
// tensor (no gamma, no beta) passes.
inline void check_per_channel(const char* op, const char* what, const Tensor& t, const Tensor& x) {
  if (!t.defined()) return;
  if (t.dim() != 1 || t.size(0) != x.size(1))
    throw Error(std::string(op) + ": " + what + " of shape " + shape_str(t.shape()) + " for input " +
                shape_str(x.shape()) + "; expected [" + std::to_string(x.size(1)) + "], one value per channel");
  check_same_dtype(op, what, t, x);
}

// Checks x ([N, C], [N, C, L] or [N, C, H, W], floating point) and gamma, beta; returns x's layout.
inline ChannelLayout check_batch_norm_args(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta) {
  if (x.dim() < 2 || x.dim() > 4)
    throw Error(std::string(op) + ": input of shape " + shape_str(x.shape()) +
                "; expected [N, C], [N, C, L] or [N, C, H, W] (statistics per channel, dim 1)");
  check_floating(op, x);
  check_per_channel(op, "gamma", gamma, x);
  check_per_channel(op, "beta", beta, x);
  int64_t positions = 1;  // S: the positions (L, or H*W) each example has per channel
  for (int64_t d = 2; d < x.dim(); ++d) positions *= x.size(d);
  ChannelLayout layout{x.size(0), x.size(1), positions};
  if (layout.C == 0) throw Error(std::string(op) + ": input of shape " + shape_str(x.shape()) + " has no channels");
  return layout;
}

// Batch statistics need at least two values per channel (with one, x - mean is 0 and the variance 0).
// PyTorch refuses this in training mode with the same message.
// `hint` is appended to the message (a module says how to normalize single samples instead).
inline void check_batch_size(const std::string& op, const Tensor& x, const ChannelLayout& layout,
                             const std::string& hint = "") {
  if (layout.m() <= 1)
    throw Error(op + ": expected more than 1 value per channel when training, got input of shape " +
                shape_str(x.shape()) + " (" + std::to_string(layout.m()) + " value(s) per channel)" + hint);
}

// The dims a channel's statistics run over, and the shape that lines a [C] tensor up with x's channel
// dim for broadcasting: [N, C] -> dims {0}, [C] broadcasts as is; [N, C, L] -> dims {0, 2}, [1, C, 1];
// [N, C, H, W] -> dims {0, 2, 3}, [1, C, 1, 1].
inline std::vector<int64_t> batch_dims(const Tensor& x) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

inline Tensor per_channel(const Tensor& t, const Tensor& x) {
  if (x.dim() == 2) return t;
  Shape shape(static_cast<std::size_t>(x.dim()), 1);
  shape[1] = x.size(1);
  return reshape(t, shape);
}

}  // namespace ng::nn::detail
