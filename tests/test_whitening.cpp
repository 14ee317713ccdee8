// test_whitening.cpp: IterNorm (nn/whitening.h), the whitening layer composed from primitive ops: its
// gradients against finite differences, how close to I its output's covariance gets, its running
// averages in evaluation mode, and the errors it gives.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "nn/whitening.h"
#include "normgrad.h"
#include "test_helpers.h"

namespace {

using ng::Tensor;
namespace F = ng::nn::functional;

// x: [m, d] -> (1/m) (x - mu)^T (x - mu): [d, d]
Tensor covariance(const Tensor& x) {
  const Tensor centered = x - x.mean({0}, true);
  return ng::matmul(centered.t(), centered) / static_cast<double>(x.size(0));
}

// max |M_jk - I_jk| over M: [d, d]
double distance_from_identity(const Tensor& M) {
  const int64_t d = M.size(0);
  const std::vector<double> m = M.to_vector();
  double worst = 0;
  for (int64_t j = 0; j < d; ++j)
    for (int64_t k = 0; k < d; ++k)
      worst = std::max(worst, std::abs(m[static_cast<std::size_t>(j * d + k)] - (j == k ? 1.0 : 0.0)));
  return worst;
}

// m examples of d correlated features: z [m, d] standard normal times a mixing matrix with 1 on the
// diagonal and 0.5 below it, so every feature shares half of its neighbours' noise.
Tensor correlated(int64_t m, int64_t d, uint64_t seed) {
  ng::manual_seed(seed);
  std::vector<double> mix(static_cast<std::size_t>(d * d), 0.0);
  for (int64_t j = 0; j < d; ++j) {
    mix[static_cast<std::size_t>(j * d + j)] = 1;
    if (j > 0) mix[static_cast<std::size_t>(j * d + j - 1)] = 0.5;
  }
  return ng::matmul(ng::randn({m, d}, ng::float64), ng::tensor(mix, {d, d}, ng::float64)) + 3.0;
}

}  // namespace

TEST_CASE("iter_norm's gradients from the graph match finite differences in float64") {
  for (int64_t iterations : {1, 3, 5}) {
    const Tensor x = correlated(7, 3, 11).requires_grad_();
    // weighted by a fixed random v, so every output element's gradient takes part with its own weight
    ng::manual_seed(12);
    const Tensor v = ng::randn({7, 3}, ng::float64);
    check_gradients("iter_norm, " + std::to_string(iterations) + " iterations",
                    [&](const Inputs& in) { return F::iter_norm(in[0], iterations, 1e-5).y * v; }, {x});
  }
}

TEST_CASE("IterNorm's training-mode output, gamma and beta included, has the gradients of finite differences") {
  ng::manual_seed(13);
  const Tensor gamma = (ng::rand({4}, ng::float64) + 0.5).requires_grad_();
  const Tensor beta = ng::randn({4}, ng::float64).requires_grad_();
  const Tensor x = correlated(6, 4, 14).requires_grad_();
  check_gradients("IterNorm forward w.r.t. x, gamma, beta",
                  [&](const Inputs& in) { return F::iter_norm(in[0], 4, 1e-5).y * in[1] + in[2]; }, {x, gamma, beta});
  // the module computes the same function as that composition
  ng::nn::IterNorm layer(4, {.iterations = 4, .dtype = ng::float64});
  {
    ng::NoGradGuard no_grad;
    layer.weight.copy_(gamma);
    layer.bias.copy_(beta);
  }
  const Tensor by_module = layer(x).detach();
  const Tensor by_hand = (F::iter_norm(x, 4, 1e-5).y * gamma + beta).detach();
  CHECK(ng::max(ng::abs(by_module - by_hand).reshape({-1}), 0).values.item() < 1e-12);
}

TEST_CASE("with enough iterations the output's covariance is the identity; with one it is not") {
  // 400 examples of 5 correlated features; the eigenvalues of Sigma / tr(Sigma) lie between ~0.03 and
  // ~0.35, so p <- (3p - p^3 lambda) / 2 needs about 6 steps on the smallest, and then converges
  // quadratically. eps = 0: nothing but the iteration stands between the output and covariance I.
  // (Not many more: past convergence the rounding errors of this uncoupled form grow again, to ~1e-4
  // after 30 steps here; IterNorm stops at a few, so that does not arise in training.)
  const Tensor x = correlated(400, 5, 21);
  const double before = distance_from_identity(covariance(x));
  const double after_1 = distance_from_identity(covariance(F::iter_norm(x, 1, 0).y));
  const double after_12 = distance_from_identity(covariance(F::iter_norm(x, 12, 0).y));
  CHECK(before > 0.4);
  CHECK(after_1 > 0.1);
  CHECK(after_12 < 1e-10);
  // and more iterations never make it worse on the way there
  double previous = after_1;
  for (int64_t t : {2, 4, 8}) {
    const double now = distance_from_identity(covariance(F::iter_norm(x, t, 0).y));
    CHECK_MESSAGE(now < previous, t << " iterations: " << now << " after " << previous);
    previous = now;
  }
}

TEST_CASE("for a single feature IterNorm is BatchNorm without gamma and beta") {
  // d = 1: Sigma_N = 1, so P stays 1 and y = (x - mu) / sqrt(var + eps), BN's x_hat.
  const Tensor x = correlated(9, 1, 31);
  const Tensor whitened = F::iter_norm(x, 5, 1e-5).y;
  const Tensor normalized = F::batch_norm_fused(x, Tensor(), Tensor(), 1e-5);
  CHECK(ng::max(ng::abs(whitened - normalized).reshape({-1}), 0).values.item() < 1e-12);
}

TEST_CASE("in eval mode IterNorm whitens with its running averages, which momentum 1 sets to the last batch") {
  ng::nn::IterNorm layer(3, {.momentum = 1.0, .dtype = ng::float64});
  const Tensor x = correlated(50, 3, 41);
  const Tensor in_training = layer(x);
  CHECK(distance_from_identity(layer.running_whitening) > 0.1);  // moved away from its start, I
  layer.eval();
  const Tensor in_eval = layer(x);
  CHECK(ng::max(ng::abs(in_training - in_eval).reshape({-1}), 0).values.item() < 1e-12);
  // and a single example can be whitened in eval mode
  CHECK(layer(ng::slice(x, 0, 0, 1)).shape() == ng::Shape{1, 3});
}

TEST_CASE("IterNorm names what is wrong with its input or options") {
  ng::nn::IterNorm layer(3);
  CHECK_ERROR_MENTIONS(layer(ng::zeros({4, 5})), "IterNorm", "[4, 5]", "[N, 3]");
  CHECK_ERROR_MENTIONS(layer(ng::zeros({4, 3}, ng::float64)), "IterNorm", "float64");
  CHECK_ERROR_MENTIONS(layer(ng::zeros({1, 3})), "IterNorm", "more than 1 example");
  CHECK_ERROR_MENTIONS(ng::nn::IterNorm(0), "IterNorm", "num_features");
  CHECK_ERROR_MENTIONS(ng::nn::IterNorm(3, {.iterations = 0}), "IterNorm", "iterations");
  CHECK_ERROR_MENTIONS(F::iter_norm(ng::zeros({1, 3}), 5, 1e-5), "iter_norm", "m >= 2");
  CHECK_ERROR_MENTIONS(F::iter_norm(ng::zeros({4, 3}), 0, 1e-5), "iter_norm", "iterations");
}
