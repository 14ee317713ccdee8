// batchnorm_composed.cpp: Batch Normalization written with primitive ops only, as the paper states it.
//
// This is the reference implementation: nothing about BatchNorm's gradient is written here. The
// backward pass is the chain rule run through the graph of mean, sub, pow, sqrt, div, mul and add
// (examples/bn_graph draws that graph). batchnorm_fused.cpp computes the same function in one op with
// a hand-derived backward, and the tests check the two against each other and finite differences.
#include "autograd/graph.h"
#include "autograd/ops.h"
#include "batchnorm.h"
#include "batchnorm_shapes.h"

namespace ng::nn::functional {

namespace {

// gamma and beta lined up with x's channels; without them (affine = false) the scale is 1 and the shift 0.
struct Affine {
  Tensor gamma, beta;
};
using detail::batch_dims;
using detail::per_channel;

Affine per_channel_affine(const Tensor& gamma, const Tensor& beta, const Tensor& x) {
  return {per_channel(gamma.defined() ? gamma : ones({x.size(1)}, x.dtype()), x),
          per_channel(beta.defined() ? beta : zeros({x.size(1)}, x.dtype()), x)};
}

}  // namespace

// x: [N, C], [N, C, L] or [N, C, H, W], gamma, beta: [C] -> y: the shape of x
BatchNormResult batch_norm_composed_with_stats(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  const auto layout = detail::check_batch_norm_args("batch_norm_composed", x, gamma, beta);
  detail::check_batch_size("batch_norm_composed", x, layout);
  detail::check_eps("batch_norm_composed", eps);
  const std::vector<int64_t> B = batch_dims(x);  // the mini-batch B = {x_1..m} of each channel
  const Affine affine = per_channel_affine(gamma, beta, x);

  // Algorithm 1 of Ioffe & Szegedy (2015), one line per step:
  // (x_i - mu_B) appears in two lines of the paper; it is computed once, as x_centered.
  Tensor batch_mean = mean(x, B, true);                    // mu_B      = 1/m sum_i x_i
  Tensor x_centered = x - batch_mean;                      //             x_i - mu_B
  Tensor batch_var = mean(pow(x_centered, 2.0), B, true);  // sigma_B^2 = 1/m sum_i (x_i - mu_B)^2
  Tensor x_hat = x_centered / sqrt(batch_var + eps);       // x_hat_i   = (x_i - mu_B) / sqrt(sigma_B^2 + eps)
  Tensor y = affine.gamma * x_hat + affine.beta;           // y_i       = gamma x_hat_i + beta

  return {y, reshape(batch_mean.detach(), {layout.C}), reshape(batch_var.detach(), {layout.C})};
}

Tensor batch_norm_composed(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  return batch_norm_composed_with_stats(x, gamma, beta, eps).y;
}

// x: [N, C], [N, C, L] or [N, C, H, W], statistics and gamma, beta: [C] -> y: the shape of x
// Algorithm 2, line 11: y = gamma / sqrt(Var[x] + eps) * x + (beta - gamma E[x] / sqrt(Var[x] + eps)),
// written here in the equivalent form gamma * (x - E[x]) / sqrt(Var[x] + eps) + beta.
Tensor batch_norm_inference(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& gamma,
                            const Tensor& beta, double eps) {
  detail::check_batch_norm_args("batch_norm_inference", x, gamma, beta);
  detail::check_per_channel("batch_norm_inference", "running_mean", running_mean, x);
  detail::check_per_channel("batch_norm_inference", "running_var", running_var, x);
  detail::check_eps("batch_norm_inference", eps);
  if (!running_mean.defined() || !running_var.defined())
    throw Error("batch_norm_inference: running_mean and running_var are required; got an undefined tensor");
  const Affine affine = per_channel_affine(gamma, beta, x);
  Tensor x_hat = (x - per_channel(running_mean, x)) / sqrt(per_channel(running_var, x) + eps);
  return affine.gamma * x_hat + affine.beta;
}

}  // namespace ng::nn::functional
