// test_batchnorm.cpp: the two BatchNorms and the BatchNorm modules.
//
// The composed BN (Algorithm 1 from primitive ops, gradient from the graph) and the fused BN (one op,
// closed-form backward) are held to each other and to a third, independent reference: central finite
// differences of BN's definition evaluated in quadruple precision (113-bit mantissa), so that the
// reference is accurate far below the 1e-10 asked of float64. Then the modules: running statistics on
// a worked example with PyTorch's semantics, evaluation mode, and clear errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>

#include "normgrad.h"

namespace {

using ng::Shape;
using ng::Tensor;
namespace F = ng::nn::functional;

// Quadruple precision for the reference: GCC's __float128 where long double is shorter (x86-64).
#if defined(__SIZEOF_FLOAT128__) && LDBL_MANT_DIG < 113
__extension__ typedef __float128 Real;
#else
using Real = long double;
#endif

// One Newton step x' = (x + v/x) / 2 from the long double root doubles its 64 correct bits.
Real quad_sqrt(Real v) {
  const Real root = std::sqrt(static_cast<long double>(v));
  return (root + v / root) / 2;
}

// BN's definition, per channel c over the m = N*S values of x seen as [N, C, S]:
//   y = gamma_c (x - mean_c) / sqrt(var_c + eps) + beta_c,  var_c biased.
std::vector<Real> reference_bn(const std::vector<Real>& x, const std::vector<Real>& gamma,
                               const std::vector<Real>& beta, int64_t N, int64_t C, int64_t S, Real eps) {
  std::vector<Real> y(x.size());
  const auto m = static_cast<Real>(N * S);
  for (int64_t c = 0; c < C; ++c) {
    auto at = [&](int64_t n, int64_t s) { return static_cast<std::size_t>((n * C + c) * S + s); };
    Real mean = 0, var = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) mean += x[at(n, s)];
    mean /= m;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) var += (x[at(n, s)] - mean) * (x[at(n, s)] - mean);
    var /= m;
    const Real inv_std = 1 / quad_sqrt(var + eps);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) y[at(n, s)] = gamma[c] * (x[at(n, s)] - mean) * inv_std + beta[c];
  }
  return y;
}

std::vector<Real> as_real(const Tensor& t) {
  std::vector<Real> out;
  for (double v : t.to_vector()) out.push_back(v);
  return out;
}

struct Reference {
  std::vector<double> y, dx, dgamma, dbeta;
};

// y, and the gradients of L = sum_i dy_i y_i with respect to x, gamma and beta by the fourth-order
// central difference
//   f'(v) = (-f(v + 2h) + 8 f(v + h) - 8 f(v - h) + f(v - 2h)) / (12 h) + O(h^4),
// with h = 1e-6 of the input's spread for x (the O(h^4) term is ~1e-24 relative, the rounding of L in
// quadruple precision ~1e-33 / 1e-6), and h = 1e-6 for gamma and beta (L is linear in them).
Reference reference_gradients(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& dy, double eps,
                              double spread) {
  const int64_t N = x.size(0), C = x.size(1), S = x.numel() / (N * C);
  std::vector<Real> xs = as_real(x), gs = as_real(gamma), bs = as_real(beta), dys = as_real(dy);
  auto loss = [&] {
    const auto y = reference_bn(xs, gs, bs, N, C, S, eps);
    Real total = 0;
    for (std::size_t i = 0; i < y.size(); ++i) total += dys[i] * y[i];
    return total;
  };
  auto derivative = [&](std::vector<Real>& values, Real h) {
    std::vector<double> d(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      const Real original = values[i];
      Real f[4];
      const int offsets[4] = {2, 1, -1, -2};
      for (int k = 0; k < 4; ++k) {
        values[i] = original + offsets[k] * h;
        f[k] = loss();
      }
      values[i] = original;
      d[i] = static_cast<double>((-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h));
    }
    return d;
  };
  Reference r;
  for (Real v : reference_bn(xs, gs, bs, N, C, S, eps)) r.y.push_back(static_cast<double>(v));
  r.dx = derivative(xs, static_cast<Real>(1e-6 * spread));
  r.dgamma = derivative(gs, static_cast<Real>(1e-6));
  r.dbeta = derivative(bs, static_cast<Real>(1e-6));
  return r;
}

// max_i |a_i - b_i| / max_i |b_i|: the error relative to the size of the reference b.
double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return diff / scale;
}

struct Case {
  Shape shape;
  double mean;    // of the input
  double spread;  // its standard deviation
};

// Random shapes (N = 2 among them), [N, C, H, W] inputs, and inputs far from 0 with a tiny spread.
const std::vector<Case> kCases = {
    {{2, 3}, 0, 1},       {{2, 1}, 0, 1},          {{5, 4}, 0.5, 2},      {{16, 7}, 0, 1},
    {{2, 3, 2, 2}, 0, 1}, {{3, 2, 3, 4}, -1, 0.5}, {{8, 3}, 1e3, 1e-2},   {{4, 2, 3, 3}, 1e3, 1e-2},
    {{2, 2}, 1e3, 1e-2},  {{6, 5}, 0, 1e-3},       {{3, 4, 1, 5}, 20, 3},
};

std::vector<Case> cases_where(bool (*keep)(const Case&)) {
  std::vector<Case> kept;
  for (const Case& c : kCases)
    if (keep(c)) kept.push_back(c);
  return kept;
}

struct Agreement {
  double composed_vs_fused = 0, composed_vs_numeric = 0, fused_vs_numeric = 0;
  std::string worst_case;  // the case and part where the largest of the three was seen
};

// Runs the cases in `dtype` and returns the largest relative differences over the outputs and the
// gradients of x, gamma and beta (each compared as a whole tensor).
Agreement measure_agreement(const std::vector<Case>& cases, ng::Dtype dtype, double eps) {
  Agreement worst;
  ng::manual_seed(2015);
  for (const Case& c : cases) {
    const int64_t C = c.shape[1];
    Tensor x = (ng::randn(c.shape, ng::float64) * c.spread + c.mean).to(dtype).requires_grad_();
    Tensor gamma = (ng::randn({C}, ng::float64) * 0.5 + 1.0).to(dtype).requires_grad_();
    Tensor beta = ng::randn({C}, ng::float64).to(dtype).requires_grad_();
    Tensor dy = ng::randn(c.shape, ng::float64).to(dtype);

    const Reference ref = reference_gradients(x, gamma, beta, dy, eps, c.spread);
    const std::vector<double>* reference[4] = {&ref.y, &ref.dx, &ref.dgamma, &ref.dbeta};
    std::vector<double> results[2][4];
    int k = 0;
    for (auto bn : {F::batch_norm_composed, F::batch_norm_fused}) {
      Tensor y = bn(x, gamma, beta, eps);
      const auto grads = ng::grad({y}, {x, gamma, beta}, {dy});
      results[k][0] = y.to_vector();
      for (int part = 1; part < 4; ++part) results[k][part] = grads[part - 1].to_vector();
      ++k;
    }
    const char* part_names[4] = {"y", "dx", "dgamma", "dbeta"};
    for (int part = 0; part < 4; ++part) {
      const double largest = std::max({worst.composed_vs_fused, worst.composed_vs_numeric, worst.fused_vs_numeric});
      worst.composed_vs_fused =
          std::max(worst.composed_vs_fused, relative_difference(results[0][part], results[1][part]));
      worst.composed_vs_numeric =
          std::max(worst.composed_vs_numeric, relative_difference(results[0][part], *reference[part]));
      worst.fused_vs_numeric =
          std::max(worst.fused_vs_numeric, relative_difference(results[1][part], *reference[part]));
      if (std::max({worst.composed_vs_fused, worst.composed_vs_numeric, worst.fused_vs_numeric}) > largest)
        worst.worst_case = std::string(part_names[part]) + " of x " + ng::shape_str(c.shape) + " with mean " +
                           std::to_string(c.mean) + ", spread " + std::to_string(c.spread);
    }
  }
  std::printf(
      "BN in %s, eps %g, %zu cases, largest relative difference (y, dx, dgamma, dbeta): composed vs fused %.1e, "
      "composed vs numeric %.1e, fused vs numeric %.1e (largest at %s)\n",
      ng::dtype_name(dtype), eps, cases.size(), worst.composed_vs_fused, worst.composed_vs_numeric,
      worst.fused_vs_numeric, worst.worst_case.c_str());
  return worst;
}

}  // namespace

TEST_CASE("composed BN, fused BN and finite differences agree in float64 to 1e-10 relative (y, dx, dgamma, dbeta)") {
  const Agreement a = measure_agreement(kCases, ng::float64, 1e-5);
  CHECK(a.composed_vs_fused < 1e-10);
  CHECK(a.composed_vs_numeric < 1e-10);
  CHECK(a.fused_vs_numeric < 1e-10);

  // eps = 0, without N = 2: there BN outputs -1 and +1 whatever x is, so dx is exactly 0 and only
  // rounding noise would be compared (the next test checks that it is 0).
  const Agreement b = measure_agreement(cases_where([](const Case& c) { return c.shape[0] > 2; }), ng::float64, 0.0);
  CHECK(b.composed_vs_fused < 1e-10);
  CHECK(b.composed_vs_numeric < 1e-10);
  CHECK(b.fused_vs_numeric < 1e-10);
}

TEST_CASE("with N = 2 and eps = 0 BN outputs -1 and +1 per channel, so its gradient for x is 0") {
  ng::manual_seed(4);
  Tensor x = ng::randn({2, 5}, ng::float64).requires_grad_();
  Tensor dy = ng::randn({2, 5}, ng::float64);
  Tensor gamma = ng::ones({5}, ng::float64), beta = ng::zeros({5}, ng::float64);
  for (auto bn : {F::batch_norm_composed, F::batch_norm_fused}) {
    Tensor y = bn(x, gamma, beta, 0.0);
    for (int64_t c = 0; c < 5; ++c) CHECK(std::abs(y.at({0, c}) * y.at({1, c}) + 1) < 1e-15);
    // Rounding only: the terms that cancel are of size |dy| / sigma, with sigma = |x0 - x1| / 2.
    Tensor dx = ng::grad({y}, {x}, {dy})[0];
    for (int64_t c = 0; c < 5; ++c) {
      const double sigma = std::abs(x.at({0, c}) - x.at({1, c})) / 2;
      CHECK(std::abs(dx.at({0, c})) < 1e-14 / sigma);
    }
  }
}

// In float32 the composed BN does its arithmetic in float32: its batch mean is rounded to float32
// before it is subtracted, an error of up to 2^-24 |mean| / sigma in x_hat (6e-3 for mean 1e3 and
// spread 1e-2), and with N = 2 its dx (a ~1e-5 residue of O(1) terms that cancel) has no correct digits
// to 1e-4. The fused BN accumulates and normalizes in double, so only its final rounding to float32
// remains. Hence: all three agree where float32 inputs are well conditioned...
TEST_CASE(
    "in float32, composed BN, fused BN and finite differences agree to 1e-4 relative for N > 2, |mean| / spread <= "
    "100") {
  const Agreement a =
      measure_agreement(cases_where([](const Case& c) { return c.shape[0] > 2 && std::abs(c.mean) <= 100 * c.spread; }),
                        ng::float32, 1e-5);
  CHECK(a.composed_vs_fused < 1e-4);
  CHECK(a.composed_vs_numeric < 1e-4);
  CHECK(a.fused_vs_numeric < 1e-4);
}

// ...and the fused BN also where they are not.
TEST_CASE(
    "in float32, the fused BN matches finite differences to 1e-4 relative on every case, N = 2 and mean 1e3 included") {
  const Agreement a = measure_agreement(kCases, ng::float32, 1e-5);
  CHECK(a.fused_vs_numeric < 1e-4);
}

TEST_CASE("gradcheck passes for the composed and the fused BN on [N, C] and [N, C, H, W]") {
  ng::manual_seed(7);
  for (const Shape& shape : {Shape{4, 3}, Shape{2, 2}, Shape{2, 3, 2, 2}}) {
    CAPTURE(ng::shape_str(shape));
    Tensor x = ng::randn(shape, ng::float64).requires_grad_();
    Tensor gamma = ng::randn({shape[1]}, ng::float64).requires_grad_();
    Tensor beta = ng::randn({shape[1]}, ng::float64).requires_grad_();
    for (auto bn : {F::batch_norm_composed, F::batch_norm_fused}) {
      auto result =
          ng::gradcheck([&](const std::vector<Tensor>& in) { return bn(in[0], in[1], in[2], 1e-5); }, {x, gamma, beta});
      CHECK_MESSAGE(result.ok, result.message);
    }
  }
}

TEST_CASE("the BNs without gamma and beta normalize: per channel mean 0 and biased variance 1 (eps = 0)") {
  ng::manual_seed(3);
  Tensor x = ng::randn({6, 3, 2, 2}, ng::float64) * 4.0 + 2.0;
  for (auto bn : {F::batch_norm_composed, F::batch_norm_fused}) {
    Tensor x_hat = bn(x, Tensor(), Tensor(), 0.0);
    Tensor mean = x_hat.mean({0, 2, 3});
    Tensor var = (x_hat * x_hat).mean({0, 2, 3});
    for (int64_t c = 0; c < 3; ++c) {
      CHECK(std::abs(mean.at({c})) < 1e-14);
      CHECK(std::abs(var.at({c}) - 1.0) < 1e-14);
    }
  }
}

// nn/batchnorm_backward.md: dx is g with its components along 1 and along x_hat removed.
TEST_CASE("the gradient BN passes to x sums to 0 per channel, and is orthogonal to x_hat when eps = 0") {
  ng::manual_seed(12);
  Tensor x = (ng::randn({5, 3, 2, 2}, ng::float64) * 2.0 + 1.0).requires_grad_();
  Tensor gamma = ng::randn({3}, ng::float64), beta = ng::randn({3}, ng::float64);
  Tensor dy = ng::randn({5, 3, 2, 2}, ng::float64);
  for (auto bn : {F::batch_norm_composed, F::batch_norm_fused}) {
    Tensor dx = ng::grad({bn(x, gamma, beta, 0.0)}, {x}, {dy})[0];
    Tensor x_hat = bn(x.detach(), Tensor(), Tensor(), 0.0);
    Tensor along_one = dx.sum({0, 2, 3}), along_x_hat = (dx * x_hat).sum({0, 2, 3});
    const double scale = (dx * dx).sum().item();  // |dx|^2, what the sums are compared with
    for (int64_t c = 0; c < 3; ++c) {
      CHECK(std::abs(along_one.at({c})) < 1e-14 * std::sqrt(scale));
      CHECK(std::abs(along_x_hat.at({c})) < 1e-14 * std::sqrt(scale));
    }
  }
}

TEST_CASE("the fused BN is one graph node; the composed BN is a graph of primitive ops") {
  Tensor x = ng::randn({4, 3}).requires_grad_();
  Tensor gamma = ng::ones({3}).requires_grad_(), beta = ng::zeros({3}).requires_grad_();
  Tensor fused = F::batch_norm_fused(x, gamma, beta, 1e-5);
  CHECK(std::string(fused.grad_fn()->op) == "batch_norm");
  CHECK(fused.grad_fn()->next.size() == 3);
  CHECK(ng::graph_nodes(fused).size() == 4);  // batch_norm + 3 leaves
  Tensor composed = F::batch_norm_composed(x, gamma, beta, 1e-5);
  CHECK(ng::graph_nodes(composed).size() > 10);
  CHECK(std::string(composed.grad_fn()->op) == "add");  // the last step of Algorithm 1: + beta
}

TEST_CASE("batch_norm_* reject wrong ranks, shapes, dtypes and single-value channels with clear errors") {
  Tensor gamma = ng::ones({3}), beta = ng::zeros({3});
  for (auto bn : {F::batch_norm_composed, F::batch_norm_fused}) {
    CHECK_THROWS_WITH_AS(bn(ng::ones({4, 3, 2, 2, 2}), gamma, beta, 1e-5),
                         doctest::Contains("expected [N, C], [N, C, L] or [N, C, H, W]"), ng::Error);
    CHECK_THROWS_WITH_AS(bn(ng::ones({4}), gamma, beta, 1e-5), doctest::Contains("shape [4]"), ng::Error);
    CHECK_THROWS_WITH_AS(bn(ng::ones({4, 2}), gamma, beta, 1e-5), doctest::Contains("gamma of shape [3]"), ng::Error);
    CHECK_THROWS_WITH_AS(bn(ng::ones({4, 3}), gamma, ng::zeros({3, 1}), 1e-5),
                         doctest::Contains("beta of shape [3, 1]"), ng::Error);
    CHECK_THROWS_WITH_AS(bn(ng::ones({4, 3}, ng::float64), gamma, beta, 1e-5), doctest::Contains("dtype"), ng::Error);
    CHECK_THROWS_WITH_AS(bn(ng::ones({1, 3}), gamma, beta, 1e-5),
                         doctest::Contains("expected more than 1 value per channel"), ng::Error);
    CHECK_THROWS_WITH_AS(bn(ng::ones({1, 3, 1, 1}), gamma, beta, 1e-5),
                         doctest::Contains("expected more than 1 value per channel"), ng::Error);
    CHECK_THROWS_WITH_AS(bn(ng::ones({2, 3}), gamma, beta, -1.0), doctest::Contains("expected eps >= 0"), ng::Error);
  }
}

// ---- modules ---------------------------------------------------------------------------------------

// Worked example, BatchNorm1d(2), momentum 0.1, float64:
//   batch 1: x = [[1, 2], [3, 6], [5, 10]]                        (m = 3)
//     channel 0: mean 3, biased var (4 + 0 + 4)/3 = 8/3, unbiased 8/2 = 4
//     channel 1: mean 6, biased var (16 + 0 + 16)/3 = 32/3, unbiased 32/2 = 16
//     running_mean = 0.9 * [0, 0] + 0.1 * [3, 6]  = [0.3, 0.6]
//     running_var  = 0.9 * [1, 1] + 0.1 * [4, 16] = [1.3, 2.5]
//   batch 2: x = [[0, 0], [2, 4]]                                  (m = 2)
//     channel 0: mean 1, unbiased var (1 + 1)/1 = 2;  channel 1: mean 2, unbiased var (4 + 4)/1 = 8
//     running_mean = 0.9 * [0.3, 0.6] + 0.1 * [1, 2] = [0.37, 0.74]
//     running_var  = 0.9 * [1.3, 2.5] + 0.1 * [2, 8] = [1.37, 3.05]
TEST_CASE("BatchNorm1d keeps PyTorch's running statistics (unbiased variance, momentum 0.1) and eval mode uses them") {
  for (auto impl : {ng::nn::BatchNormImpl::fused, ng::nn::BatchNormImpl::composed}) {
    ng::nn::BatchNorm1d bn(2, {.impl = impl, .dtype = ng::float64});
    Tensor y1 = bn(ng::tensor({1, 2, 3, 6, 5, 10}, {3, 2}, ng::float64));
    // Training output uses the batch statistics with the biased variance: (1 - 3) / sqrt(8/3 + eps).
    CHECK(y1.at({0, 0}) == doctest::Approx(-2.0 / std::sqrt(8.0 / 3.0 + 1e-5)).epsilon(1e-12));
    CHECK(y1.at({2, 1}) == doctest::Approx(4.0 / std::sqrt(32.0 / 3.0 + 1e-5)).epsilon(1e-12));
    CHECK(bn.running_mean.at({0}) == doctest::Approx(0.3).epsilon(1e-14));
    CHECK(bn.running_mean.at({1}) == doctest::Approx(0.6).epsilon(1e-14));
    CHECK(bn.running_var.at({0}) == doctest::Approx(1.3).epsilon(1e-14));
    CHECK(bn.running_var.at({1}) == doctest::Approx(2.5).epsilon(1e-14));

    bn(ng::tensor({0, 0, 2, 4}, {2, 2}, ng::float64));
    CHECK(bn.running_mean.at({0}) == doctest::Approx(0.37).epsilon(1e-14));
    CHECK(bn.running_mean.at({1}) == doctest::Approx(0.74).epsilon(1e-14));
    CHECK(bn.running_var.at({0}) == doctest::Approx(1.37).epsilon(1e-14));
    CHECK(bn.running_var.at({1}) == doctest::Approx(3.05).epsilon(1e-14));
    CHECK(bn.num_batches_tracked.item() == 2);

    // Eval: y = (x - running_mean) / sqrt(running_var + eps), one sample at a time is fine now,
    // and the running statistics stay as they are.
    bn.eval();
    Tensor y = bn(ng::tensor({1, 1}, {1, 2}, ng::float64));
    CHECK(y.at({0, 0}) == doctest::Approx((1 - 0.37) / std::sqrt(1.37 + 1e-5)).epsilon(1e-12));
    CHECK(y.at({0, 1}) == doctest::Approx((1 - 0.74) / std::sqrt(3.05 + 1e-5)).epsilon(1e-12));
    CHECK(bn.running_mean.at({0}) == doctest::Approx(0.37).epsilon(1e-14));
    CHECK(bn.num_batches_tracked.item() == 2);
  }
}

// BatchNorm2d(1) on x of shape [2, 1, 1, 2] holding 1, 2, 3, 6 (one channel, m = N*H*W = 4):
//   mean 3, biased var (4 + 1 + 0 + 9)/4 = 3.5, unbiased 14/3
//   running_mean = 0.1 * 3 = 0.3, running_var = 0.9 + 0.1 * 14/3 = 1.3666...
TEST_CASE("BatchNorm2d takes its statistics per channel over N, H and W") {
  for (auto impl : {ng::nn::BatchNormImpl::fused, ng::nn::BatchNormImpl::composed}) {
    ng::nn::BatchNorm2d bn(1, {.impl = impl, .dtype = ng::float64});
    Tensor y = bn(ng::tensor({1, 2, 3, 6}, {2, 1, 1, 2}, ng::float64));
    CHECK(y.at({1, 0, 0, 1}) == doctest::Approx(3.0 / std::sqrt(3.5 + 1e-5)).epsilon(1e-12));
    CHECK(bn.running_mean.at({0}) == doctest::Approx(0.3).epsilon(1e-14));
    CHECK(bn.running_var.at({0}) == doctest::Approx(0.9 + 0.1 * 14.0 / 3.0).epsilon(1e-14));
  }
}

TEST_CASE("BatchNorm1d gives the same numbers with the fused and the composed implementation") {
  ng::manual_seed(11);
  ng::nn::BatchNorm1d fused(5, {.impl = ng::nn::BatchNormImpl::fused, .dtype = ng::float64});
  ng::nn::BatchNorm1d composed(5, {.impl = ng::nn::BatchNormImpl::composed, .dtype = ng::float64});
  for (int step = 0; step < 3; ++step) {
    Tensor x = ng::randn({7, 5}, ng::float64) * 3.0 + 1.0;
    Tensor dy = ng::randn({7, 5}, ng::float64);
    Tensor y_fused = fused(x), y_composed = composed(x);
    auto g_fused = ng::grad({y_fused}, {fused.weight, fused.bias}, {dy});
    auto g_composed = ng::grad({y_composed}, {composed.weight, composed.bias}, {dy});
    CHECK(relative_difference(y_fused.to_vector(), y_composed.to_vector()) < 1e-14);
    CHECK(relative_difference(g_fused[0].to_vector(), g_composed[0].to_vector()) < 1e-13);
    CHECK(relative_difference(g_fused[1].to_vector(), g_composed[1].to_vector()) < 1e-13);
    CHECK(relative_difference(fused.running_var.to_vector(), composed.running_var.to_vector()) < 1e-14);
  }
}

TEST_CASE("BatchNorm modules refuse wrong shapes, dtypes and one value per channel in training") {
  ng::nn::BatchNorm1d bn1(3);
  CHECK_THROWS_WITH_AS(bn1(ng::ones({4, 5})), doctest::Contains("BatchNorm1d: input of shape [4, 5]; expected [N, 3]"),
                       ng::Error);
  CHECK_THROWS_WITH_AS(bn1(ng::ones({4, 3, 2, 2})), doctest::Contains("expected [N, 3]"), ng::Error);
  CHECK_THROWS_WITH_AS(bn1(ng::ones({4, 3}, ng::float64)), doctest::Contains("dtype float64"), ng::Error);
  CHECK_THROWS_WITH_AS(bn1(ng::ones({1, 3})), doctest::Contains("expected more than 1 value per channel when training"),
                       ng::Error);
  bn1.eval();
  CHECK(bn1(ng::ones({1, 3})).shape() == Shape{1, 3});  // evaluation normalizes a single sample fine

  ng::nn::BatchNorm2d bn2(2);
  CHECK_THROWS_WITH_AS(bn2(ng::ones({4, 2})),
                       doctest::Contains("BatchNorm2d: input of shape [4, 2]; expected [N, 2, H, W]"), ng::Error);
  CHECK_THROWS_WITH_AS(bn2(ng::ones({1, 2, 1, 1})), doctest::Contains("more than 1 value per channel"), ng::Error);
  CHECK(bn2(ng::ones({1, 2, 2, 1})).shape() == Shape{1, 2, 2, 1});  // m = N*H*W = 2 is enough
  CHECK_THROWS_AS(ng::nn::BatchNorm1d(0), ng::Error);
  CHECK_THROWS_AS(ng::nn::BatchNorm1d(3, {.momentum = 1.5}), ng::Error);
}

TEST_CASE("BatchNorm without affine has no parameters and only normalizes") {
  ng::nn::BatchNorm1d bn(2, {.affine = false, .dtype = ng::float64});
  CHECK(bn.parameters().empty());
  CHECK(!bn.weight.defined());
  Tensor y = bn(ng::tensor({1, 2, 3, 6}, {2, 2}, ng::float64));
  CHECK(y.at({0, 0}) == doctest::Approx(-1 / std::sqrt(1 + 1e-5)).epsilon(1e-12));  // (1 - 2) / sqrt(1 + eps)
}

TEST_CASE("BatchNorm1d on [N, C, L] normalizes each channel over N and L, like BatchNorm2d on [N, C, L, 1]") {
  ng::manual_seed(21);
  Tensor x = ng::randn({5, 3, 4}, ng::float64) * 2.0 + 1.0;
  for (auto impl : {ng::nn::BatchNormImpl::fused, ng::nn::BatchNormImpl::composed}) {
    ng::nn::BatchNorm1d bn1(3, {.impl = impl, .dtype = ng::float64});
    ng::nn::BatchNorm2d bn2(3, {.impl = impl, .dtype = ng::float64});
    const auto y1 = bn1(x).to_vector(), y2 = bn2(x.reshape({5, 3, 4, 1})).to_vector();
    REQUIRE(y1.size() == y2.size());
    for (std::size_t i = 0; i < y1.size(); ++i) CHECK(y1[i] == doctest::Approx(y2[i]).epsilon(1e-12));
    // The running variance is updated with the unbiased variance over the m = N * L = 20 values.
    const auto rv1 = bn1.running_var.to_vector(), rv2 = bn2.running_var.to_vector();
    for (std::size_t c = 0; c < rv1.size(); ++c) CHECK(rv1[c] == doctest::Approx(rv2[c]).epsilon(1e-12));
    bn1.eval();  // evaluation uses those running statistics on the 3-D layout too
    bn2.eval();
    const auto e1 = bn1(x).to_vector(), e2 = bn2(x.reshape({5, 3, 4, 1})).to_vector();
    for (std::size_t i = 0; i < e1.size(); ++i) CHECK(e1[i] == doctest::Approx(e2[i]).epsilon(1e-12));
  }
  // Both implementations pass gradcheck on the 3-D layout.
  Tensor x_small = ng::randn({3, 2, 2}, ng::float64).requires_grad_();
  Tensor gamma = ng::randn({2}, ng::float64).requires_grad_(), beta = ng::randn({2}, ng::float64).requires_grad_();
  for (auto bn : {F::batch_norm_composed, F::batch_norm_fused}) {
    auto result = ng::gradcheck([&](const std::vector<Tensor>& in) { return bn(in[0], in[1], in[2], 1e-5); },
                                {x_small, gamma, beta});
    CHECK_MESSAGE(result.ok, result.message);
  }
}
