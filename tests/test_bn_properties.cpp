// test_bn_properties.cpp: the scale invariance of Batch Normalization, as RapidCheck properties.
//
// Section 3.3 of the paper: with x = W u, BN(a W u) = BN(W u) for a scalar a > 0, so the layer's output,
// and the gradient that flows back to u, do not depend on the scale of W, while the gradient for W
// shrinks as 1/a (larger weights get smaller updates, which stabilizes training). These hold exactly
// for eps = 0; with eps > 0 only approximately, by an amount derived and bounded below.
//
// Each property draws sizes (N >= 2), a seed for W, u, gamma, beta, and a scalar a, and checks both the
// composed and the fused BN. rc::check returns whether the property held; on failure RapidCheck prints
// the drawn values, shrunk to a small counterexample, and the seed to reproduce it (RC_PARAMS="reproduce=...").
#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <cfloat>
#include <cmath>

#include "normgrad.h"

namespace {

using ng::Tensor;
namespace F = ng::nn::functional;

using BatchNorm = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, double);
const BatchNorm kBatchNorms[] = {F::batch_norm_composed, F::batch_norm_fused};

// A random layer x = u W^T (W: [C_out, C_in], u: [N, C_in]) followed by BN with gamma, beta: [C_out].
struct Problem {
  int64_t N, C_in, C_out;
  Tensor W, u, gamma, beta;
};

Problem draw_problem() {
  Problem p;
  p.N = *rc::gen::inRange<int64_t>(2, 9);
  p.C_in = *rc::gen::inRange<int64_t>(1, 7);
  p.C_out = *rc::gen::inRange<int64_t>(1, 7);
  ng::manual_seed(*rc::gen::arbitrary<uint32_t>());
  p.W = ng::randn({p.C_out, p.C_in}, ng::float64);
  p.u = ng::randn({p.N, p.C_in}, ng::float64);
  p.gamma = ng::randn({p.C_out}, ng::float64);
  p.beta = ng::randn({p.C_out}, ng::float64);
  return p;
}

// a > 0, log-uniform over six orders of magnitude, 1e-3 to 1e3.
double draw_scale() { return std::pow(10.0, *rc::gen::inRange(-3000, 3001) / 1000.0); }

Tensor layer(const Tensor& W, const Tensor& u) { return ng::matmul(u, W.t()); }  // [N, C_in] -> [N, C_out]

// Per feature j of x: [N, C], the batch mean and biased variance, in plain double loops.
struct FeatureStats {
  std::vector<double> mean, var;
};
FeatureStats feature_stats(const Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1);
  FeatureStats s{std::vector<double>(C, 0.0), std::vector<double>(C, 0.0)};
  for (int64_t j = 0; j < C; ++j) {
    for (int64_t i = 0; i < N; ++i) s.mean[j] += x.at({i, j}) / N;
    for (int64_t i = 0; i < N; ++i) s.var[j] += (x.at({i, j}) - s.mean[j]) * (x.at({i, j}) - s.mean[j]) / N;
  }
  return s;
}

// How far float64 rounding alone can move a normalized output, relative to its size 1. x_ij is a sum of
// terms as large as scale_j = max_i sum_k |u_ik W_jk| (plus |b_j| when a bias was added); computing it,
// and BN's own sums, make errors of about (C_in + N) * DBL_EPSILON * scale_j, and normalizing divides
// them by the batch standard deviation sigma_j. The factor 64 leaves room for the constants in these
// estimates; anything beyond it would be a real violation, not rounding.
double rounding_tolerance(const Problem& p, const Tensor& x, const std::vector<double>& bias = {}) {
  const FeatureStats s = feature_stats(x);
  double worst = 0;
  for (int64_t j = 0; j < p.C_out; ++j) {
    double scale = bias.empty() ? 0.0 : std::abs(bias[j]);
    for (int64_t i = 0; i < p.N; ++i) {
      double terms = 0;
      for (int64_t k = 0; k < p.C_in; ++k) terms += std::abs(p.u.at({i, k}) * p.W.at({j, k}));
      scale = std::max(scale, terms + (bias.empty() ? 0.0 : std::abs(bias[j])));
    }
    worst = std::max(worst, 1.0 + scale / std::sqrt(s.var[j]));
  }
  return 64.0 * static_cast<double>(p.C_in + p.N) * DBL_EPSILON * worst;
}

double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}

// The gradients of sum(dy * BN(u W^T)) with respect to u and W.
std::vector<Tensor> gradients(BatchNorm bn, const Problem& p, const Tensor& W, const Tensor& dy, double eps) {
  Tensor u = p.u.detach().requires_grad_();
  Tensor w = W.detach().requires_grad_();
  return ng::grad({bn(layer(w, u), p.gamma, p.beta, eps)}, {u, w}, {dy});
}

// How large the gradients of u and W can be, the scale their rounding errors are relative to. BN's
// gradient for feature j, dx = gamma / sigma (dy - mean(dy) - x_hat mean(dy x_hat)), with |x_hat| <= sqrt(N - 1),
// is at most |gamma_j| / sigma_j * max|dy| * (2 + sqrt(N)); then du = dx W and dW = dx^T u. (The gradients
// themselves can be far smaller, as with N = 2, where BN outputs -1 and +1 whatever u is, and they are 0.)
struct GradientScale {
  double du = 0, dW = 0;
};
GradientScale gradient_scale(const Problem& p, const Tensor& x, const Tensor& dy) {
  const FeatureStats s = feature_stats(x);
  std::vector<double> dx_bound(static_cast<std::size_t>(p.C_out));
  for (int64_t j = 0; j < p.C_out; ++j)
    dx_bound[j] = std::abs(p.gamma.at({j})) / std::sqrt(s.var[j]) * max_abs(dy.to_vector()) * (2 + std::sqrt(p.N));
  GradientScale scale;
  for (int64_t k = 0; k < p.C_in; ++k) {
    double du = 0, u_column = 0;
    for (int64_t j = 0; j < p.C_out; ++j) du += dx_bound[j] * std::abs(p.W.at({j, k}));
    for (int64_t i = 0; i < p.N; ++i) u_column += std::abs(p.u.at({i, k}));
    scale.du = std::max(scale.du, du);
    for (int64_t j = 0; j < p.C_out; ++j) scale.dW = std::max(scale.dW, dx_bound[j] * u_column);
  }
  return scale;
}

}  // namespace

TEST_CASE("BN output is unchanged when W is scaled by a > 0: BN(a W u) = BN(W u), eps = 0") {
  CHECK(rc::check("BN((aW) u) = BN(W u) to float64 rounding", [] {
    const Problem p = draw_problem();
    const double a = draw_scale();
    const Tensor x = layer(p.W, p.u), x_scaled = layer(p.W * a, p.u);
    const double tolerance = rounding_tolerance(p, x) * (1 + max_abs(p.gamma.to_vector()));
    for (BatchNorm bn : kBatchNorms) {
      const double difference =
          max_abs_difference(bn(x_scaled, p.gamma, p.beta, 0.0).to_vector(), bn(x, p.gamma, p.beta, 0.0).to_vector());
      RC_ASSERT(difference <= tolerance);
    }
  }));
}

TEST_CASE("the gradient reaching u does not depend on the scale of W: d BN((aW) u)/du = d BN(W u)/du, eps = 0") {
  CHECK(rc::check("d BN((aW) u)/du = d BN(W u)/du", [] {
    const Problem p = draw_problem();
    const double a = draw_scale();
    const Tensor dy = ng::randn({p.N, p.C_out}, ng::float64);
    const Tensor x = layer(p.W, p.u);
    const double tolerance = rounding_tolerance(p, x) * gradient_scale(p, x, dy).du;
    for (BatchNorm bn : kBatchNorms) {
      const auto du = gradients(bn, p, p.W, dy, 0.0)[0].to_vector();
      const auto du_scaled = gradients(bn, p, p.W * a, dy, 0.0)[0].to_vector();
      RC_ASSERT(max_abs_difference(du_scaled, du) <= tolerance);
    }
  }));
}

TEST_CASE("the gradient for a scaled W shrinks as 1/a: d BN((aW) u)/d(aW) = (1/a) d BN(W u)/dW, eps = 0") {
  CHECK(rc::check("a * d BN((aW) u)/d(aW) = d BN(W u)/dW", [] {
    const Problem p = draw_problem();
    const double a = draw_scale();
    const Tensor dy = ng::randn({p.N, p.C_out}, ng::float64);
    const Tensor x = layer(p.W, p.u);
    const double tolerance = rounding_tolerance(p, x) * gradient_scale(p, x, dy).dW;
    for (BatchNorm bn : kBatchNorms) {
      const auto dW = gradients(bn, p, p.W, dy, 0.0)[1].to_vector();
      const auto dW_scaled_times_a = (gradients(bn, p, p.W * a, dy, 0.0)[1] * a).to_vector();
      RC_ASSERT(max_abs_difference(dW_scaled_times_a, dW) <= tolerance);
    }
  }));
}

TEST_CASE("for a < 0 the normalized output x_hat flips sign, eps = 0") {
  CHECK(rc::check("x_hat((-a) W u) = -x_hat(W u)", [] {
    const Problem p = draw_problem();
    const double a = -draw_scale();
    const Tensor x = layer(p.W, p.u), x_scaled = layer(p.W * a, p.u);
    for (BatchNorm bn : kBatchNorms) {
      const Tensor x_hat = bn(x, Tensor(), Tensor(), 0.0), x_hat_scaled = bn(x_scaled, Tensor(), Tensor(), 0.0);
      RC_ASSERT(max_abs_difference(x_hat_scaled.to_vector(), (-x_hat).to_vector()) <= rounding_tolerance(p, x));
    }
  }));
}

// Which is why a Linear layer right before BN needs no bias: BN subtracts the batch mean, bias included.
TEST_CASE("a per-feature bias added before BN changes nothing: BN(W u + b) = BN(W u), eps = 0") {
  CHECK(rc::check("BN(W u + b) = BN(W u)", [] {
    const Problem p = draw_problem();
    const double size = draw_scale();
    const Tensor b = ng::randn({p.C_out}, ng::float64) * size;
    const Tensor x = layer(p.W, p.u);
    const double tolerance = rounding_tolerance(p, x, b.to_vector()) * (1 + max_abs(p.gamma.to_vector()));
    for (BatchNorm bn : kBatchNorms) {
      const double difference =
          max_abs_difference(bn(x + b, p.gamma, p.beta, 0.0).to_vector(), bn(x, p.gamma, p.beta, 0.0).to_vector());
      RC_ASSERT(difference <= tolerance);
    }
  }));
}

TEST_CASE("before gamma and beta, each feature's batch mean is 0 and its biased variance 1, eps = 0") {
  CHECK(rc::check("mean(x_hat) = 0, mean(x_hat^2) = 1 per feature", [] {
    const Problem p = draw_problem();
    const Tensor x = layer(p.W, p.u);
    const double tolerance = rounding_tolerance(p, x);
    for (BatchNorm bn : kBatchNorms) {
      const FeatureStats s = feature_stats(bn(x, Tensor(), Tensor(), 0.0));
      for (int64_t j = 0; j < p.C_out; ++j) {
        RC_ASSERT(std::abs(s.mean[j]) <= tolerance);
        RC_ASSERT(std::abs(s.var[j] - 1.0) <= tolerance);
      }
    }
  }));
}

// With eps > 0 the invariance is only approximate. Per feature, with d = x - mu and v the batch variance
// of x, scaling x by a > 0 scales d by a and v by a^2, so
//   x_hat_a = a d / sqrt(a^2 v + eps) = d / sqrt(v + eps/a^2) = r * x_hat,
//   x_hat   = d / sqrt(v + eps),       r = sqrt((v + eps) / (v + eps/a^2)).
// Writing P = v + eps and Q = v + eps/a^2, |r - 1| = |sqrt(P) - sqrt(Q)| / sqrt(Q)
//   = |P - Q| / (sqrt(Q) (sqrt(P) + sqrt(Q))) <= |P - Q| / (2 min(P, Q)),
// because sqrt(Q) (sqrt(P) + sqrt(Q)) >= 2 min(P, Q) whichever of P, Q is smaller. With |P - Q| = eps |1 - 1/a^2|:
//   |x_hat_a - x_hat| <= |x_hat| * eps |1 - 1/a^2| / (2 (v + eps min(1, 1/a^2))).
// So the error is relative to |x_hat|, vanishes for a = 1, and grows like eps / (2 v) as the batch variance
// v shrinks towards eps: under 0.5% for v = 100 eps, up to 50% for v = eps (sqrt(2) - 1 = 41% as a -> oo).
// Below, x is rescaled so that v lands anywhere from eps/10 to 1000 eps.
TEST_CASE("with eps > 0, BN(a x) differs from BN(x) by at most |x_hat| eps |1 - 1/a^2| / (2 (v + eps min(1, 1/a^2)))") {
  CHECK(rc::check("|x_hat(a x) - x_hat(x)| within the derived bound, and equal to (r - 1) x_hat", [] {
    const Problem p = draw_problem();
    const double a = draw_scale();
    const double eps = std::pow(10.0, *rc::gen::inRange(-6000, -999) / 1000.0);  // 1e-6 .. 1e-1
    const double variance_over_eps = std::pow(10.0, *rc::gen::inRange(-1000, 3001) / 1000.0);
    const Tensor layer_output = layer(p.W, p.u);
    const double tolerance = rounding_tolerance(p, layer_output);
    // Feature 0 gets v = variance_over_eps * eps; the others are scaled alike.
    const Tensor x = layer_output * std::sqrt(variance_over_eps * eps / feature_stats(layer_output).var[0]);
    const FeatureStats s = feature_stats(x);
    const Tensor x_scaled = x * a;
    for (BatchNorm bn : kBatchNorms) {
      const Tensor x_hat = bn(x, Tensor(), Tensor(), eps), x_hat_scaled = bn(x_scaled, Tensor(), Tensor(), eps);
      for (int64_t j = 0; j < p.C_out; ++j) {
        const double v = s.var[j];
        const double r = std::sqrt((v + eps) / (v + eps / (a * a)));
        const double bound = eps * std::abs(1 - 1 / (a * a)) / (2 * (v + eps * std::min(1.0, 1 / (a * a))));
        RC_ASSERT(std::abs(r - 1) <= bound * (1 + 1e-12));
        for (int64_t i = 0; i < p.N; ++i) {
          const double change = x_hat_scaled.at({i, j}) - x_hat.at({i, j});
          RC_ASSERT(std::abs(change - (r - 1) * x_hat.at({i, j})) <= tolerance);
          RC_ASSERT(std::abs(change) <= std::abs(x_hat.at({i, j})) * bound + tolerance);
        }
      }
    }
  }));
}
