// whitening.h: a decorrelating layer, IterNorm (Huang et al. 2019), composed from primitive ops.
//
// BatchNorm makes each feature mean 0 and variance 1 but leaves the features correlated. Whitening
// goes all the way: it makes the covariance of the features the identity. For a batch x: [m, d],
//   mu      = (1/m) sum_i x_i                                  the batch mean            [d]
//   Sigma   = (1/m) (x - mu)^T (x - mu) + eps I                the batch covariance      [d, d]
//   y       = (x - mu) Sigma^(-1/2)                            covariance of y ~ I       [m, d]
// ZCA (examples/whitening_cost) takes Sigma^(-1/2) from an eigendecomposition. IterNorm needs only
// matrix products: with Sigma_N = Sigma / tr(Sigma), whose eigenvalues lie in (0, 1], Newton's
// iteration for the inverse square root,
//   P_0 = I,    P_k = (3 P_{k-1} - P_{k-1}^3 Sigma_N) / 2,     Sigma^(-1/2) ~ P_T / sqrt(tr(Sigma)),
// converges to Sigma_N^(-1/2) (on an eigenvalue lambda, p <- (3p - p^3 lambda) / 2 has the fixed point
// 1/sqrt(lambda)). Every step is matmul, mul, add, sum or sqrt, so the gradient comes out of the graph.
// A small eigenvalue lambda needs about log_1.5(1/sqrt(lambda)) iterations before its direction is
// scaled up fully; the paper stops early on purpose (T = 5): the strong directions are whitened, the
// weak ones only partly, which is cheaper and less noisy than a full whitening of a small batch.
// (Run far past convergence, the rounding errors of this uncoupled form of the iteration grow again:
// tests/test_whitening.cpp sees ~1e-13 after 8 steps and ~1e-4 after 30. Another reason to stop early.)
//
// As BatchNorm, the module learns a scale and a shift per feature after the whitening (y = gamma y + beta)
// and keeps running averages of mu and of the whitening matrix for evaluation mode.
#pragma once

#include "module.h"

namespace ng::nn {

namespace functional {

// The whitened batch and the statistics it used (mean [d] and the whitening matrix [d, d], both in
// the graph: the module detaches them for its running averages).
struct WhiteningResult {
  Tensor y;
  Tensor batch_mean;
  Tensor whitening;
};

// x: [m, d] (m >= 2) -> y = (x - mu) P_T / sqrt(tr(Sigma)): [m, d], after `iterations` (>= 1) Newton steps.
WhiteningResult iter_norm(const Tensor& x, int64_t iterations, double eps);

}  // namespace functional

// eps and momentum as BatchNorm's; 5 iterations as the paper's default.
struct IterNormOptions {
  int64_t iterations = 5;
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;  // learn gamma (weight) and beta (bias) per feature
  Dtype dtype = float32;
};

class IterNorm : public Module {
 public:
  explicit IterNorm(int64_t num_features, IterNormOptions options = {});

  // x: [N, C] -> y: [N, C]. Training: whiten with the batch's statistics and fold them into the running
  // averages. Evaluation: y = (x - running_mean) running_whitening, then the scale and shift.
  Tensor forward(const Tensor& x) override;

  int64_t num_features;
  IterNormOptions options;
  Tensor weight;             // gamma [C], starts at 1 (undefined when !affine)
  Tensor bias;               // beta [C], starts at 0 (undefined when !affine)
  Tensor running_mean;       // buffer [C], starts at 0
  Tensor running_whitening;  // buffer [C, C], starts at I

 private:
  void check_input(const Tensor& x) const;
};

}  // namespace ng::nn
