// batchnorm.h: Batch Normalization (Ioffe & Szegedy 2015), as functions and as modules.
//
// Two implementations of the training-mode transform, which must give the same numbers:
//   batch_norm_composed  Algorithm 1 of the paper written with primitive ops (mean, sub, pow, sqrt, div,
//                        mul, add); its backward is whatever the graph of those ops produces.
//                        (batchnorm_composed.cpp)
//   batch_norm_fused     one op, one graph node: plain loops for the forward and the closed-form
//                        backward derived in nn/batchnorm_backward.md. (batchnorm_fused.cpp)
// The modules BatchNorm1d / BatchNorm2d use one of them in training (fused by default) and keep the
// running averages that evaluation mode uses instead of the batch statistics (Algorithm 2).
#pragma once

#include "module.h"

namespace ng::nn {

namespace functional {

// Statistics are per channel (dim 1) over the m = N*H*W values of the mini-batch.
//   x: [N, C] or [N, C, H, W], gamma, beta: [C] -> y: the shape of x
//   y = gamma * (x - batch_mean) / sqrt(batch_var + eps) + beta,   batch_var biased (1/m)
// gamma or beta may be undefined (Tensor()): then the scale is 1 or the shift 0, as PyTorch's weight=None.
Tensor batch_norm_composed(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps);
Tensor batch_norm_fused(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps);

// The output together with the batch statistics it used (detached, [C], biased variance), which the
// modules fold into their running averages.
struct BatchNormResult {
  Tensor y;
  Tensor batch_mean;
  Tensor batch_var;
};
BatchNormResult batch_norm_composed_with_stats(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps);
BatchNormResult batch_norm_fused_with_stats(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps);

// Algorithm 2 (inference): the same transform with fixed statistics, an affine map of x per channel.
//   x: [N, C] or [N, C, H, W], running_mean, running_var, gamma, beta: [C] -> y: the shape of x
Tensor batch_norm_inference(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& gamma,
                            const Tensor& beta, double eps);

}  // namespace functional

enum class BatchNormImpl { fused, composed };

// PyTorch's defaults. momentum weighs the newest batch in the running averages:
//   running = (1 - momentum) * running + momentum * batch_statistic
struct BatchNormOptions {
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;  // learn gamma (weight) and beta (bias)
  BatchNormImpl impl = BatchNormImpl::fused;
  Dtype dtype = float32;
};

// What BatchNorm1d and BatchNorm2d share; they differ only in the rank of the input they accept.
class BatchNormBase : public Module {
 public:
  // Training: normalize with the batch statistics, then update the running averages (the variance with
  // the unbiased batch variance, m/(m-1) times the biased one). Evaluation: use the running averages.
  Tensor forward(const Tensor& x) override;

  int64_t num_features;
  BatchNormOptions options;
  Tensor weight;               // gamma [C], starts at 1 (undefined when !affine)
  Tensor bias;                 // beta [C], starts at 0 (undefined when !affine)
  Tensor running_mean;         // buffer [C], starts at 0
  Tensor running_var;          // buffer [C], starts at 1
  Tensor num_batches_tracked;  // buffer, int64 0-dim: training batches seen

 protected:
  BatchNormBase(const char* name, int64_t expected_dim, int64_t num_features, BatchNormOptions options);

 private:
  void check_input(const Tensor& x) const;
  void update_running_stats(const functional::BatchNormResult& batch, int64_t m);

  const char* name_;
  int64_t expected_dim_;
};

// x: [N, C] -> y: [N, C]
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(int64_t num_features, BatchNormOptions options = {});
};

// x: [N, C, H, W] -> y: [N, C, H, W], statistics per channel over N, H and W
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(int64_t channels, BatchNormOptions options = {});
};

}  // namespace ng::nn
