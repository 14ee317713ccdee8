// test_layers.cpp: the ops, layers and losses a character-level language model needs, checked against
// hand-computed values, plain reference loops and finite differences (gradcheck, float64).
//
//   ops     softmax, erf, leaky_relu, multinomial
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include "normgrad.h"

using doctest::Approx;
using doctest::Contains;

// Checks that `expr` throws ng::Error whose message contains each of the strings that follow.
#define CHECK_ERROR_MENTIONS(expr, ...)             \
  for (const char* expected_part : {__VA_ARGS__}) \
  CHECK_THROWS_WITH_AS(expr, Contains(expected_part), ng::Error)

namespace {

using Inputs = std::vector<ng::Tensor>;
using Fn = std::function<ng::Tensor(const Inputs&)>;

// A float64 leaf of `shape`, values uniform in [lo, hi).
ng::Tensor uniform(const ng::Shape& shape, double lo, double hi) {
  ng::Tensor t = (ng::rand(shape, ng::float64) * (hi - lo) + lo).detach();
  t.requires_grad_();
  return t;
}

// A float64 leaf whose values have magnitude in [0.2, 1) and a random sign: never near a kink at 0.
ng::Tensor away_from_zero(const ng::Shape& shape) {
  ng::Tensor t = ng::empty(shape, ng::float64);
  double* v = t.mutable_data<double>();
  for (int64_t i = 0; i < t.numel(); ++i)
    v[i] = (0.2 + 0.8 * ng::random_uniform()) * (ng::random_uniform() < 0.5 ? -1 : 1);
  t.requires_grad_();
  return t;
}

void check_gradients(const std::string& what, const Fn& f, const Inputs& inputs) {
  const ng::GradcheckResult result = ng::gradcheck(f, inputs);
  CHECK_MESSAGE(result.ok, what << ": " << result.message);
}

// The gradient of sum(op(x) * w) with respect to x, itself differentiable (create_graph), so that
// gradcheck of it checks the second derivative: the op's backward must be written in ops. (gradcheck's
// finite differences pass copies that do not require grad, under NoGradGuard: then only the value counts.)
ng::Tensor first_derivative(const std::function<ng::Tensor(const ng::Tensor&)>& op, const ng::Tensor& x,
                            const ng::Tensor& w) {
  if (x.requires_grad()) return ng::grad({ng::sum(op(x) * w)}, {x}, {}, true, true)[0];
  ng::GradModeGuard grad_mode(true);
  ng::Tensor leaf = x.detach().requires_grad_();
  return ng::grad({ng::sum(op(leaf) * w)}, {leaf})[0].detach();
}

}  // namespace

// ---- softmax --------------------------------------------------------------------------------------

TEST_CASE("softmax of [1, 2, 3] is e^k / (e + e^2 + e^3)") {
  ng::Tensor y = ng::softmax(ng::tensor({1, 2, 3}, ng::float64), 0);
  const double total = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  for (int64_t k = 0; k < 3; ++k) CHECK(y.at({k}) == Approx(std::exp(k + 1.0) / total).epsilon(1e-14));
}

TEST_CASE("softmax along each dim of a 3-D tensor matches a reference loop and sums to 1 along that dim") {
  ng::manual_seed(1);
  ng::Tensor x = ng::randn({2, 3, 4}, ng::float64) * 3.0;
  for (int64_t d = 0; d < 3; ++d) {
    ng::Tensor y = x.softmax(d);
    const int64_t size = x.size(d);
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t k = 0; k < 4; ++k) {
          auto at = [&](int64_t m) {
            return d == 0 ? x.at({m, j, k}) : d == 1 ? x.at({i, m, k}) : x.at({i, j, m});
          };
          double total = 0;
          for (int64_t m = 0; m < size; ++m) total += std::exp(at(m));
          const int64_t own = d == 0 ? i : d == 1 ? j : k;
          CHECK(y.at({i, j, k}) == Approx(std::exp(at(own)) / total).epsilon(1e-13));
        }
    ng::Tensor sums = ng::sum(y, {d});
    for (double s : sums.to_vector()) CHECK(s == Approx(1.0).epsilon(1e-14));
  }
}

TEST_CASE("softmax of large scores does not overflow: [1000, 1001] gives [1/(1+e), e/(1+e)]") {
  for (ng::Dtype dtype : {ng::float32, ng::float64}) {
    ng::Tensor y = ng::softmax(ng::tensor({1000, 1001}, dtype), 0);
    CHECK(y.at({0}) == Approx(1 / (1 + std::exp(1.0))).epsilon(1e-6));
    CHECK(y.at({1}) == Approx(std::exp(1.0) / (1 + std::exp(1.0))).epsilon(1e-6));
  }
}

TEST_CASE("softmax equals exp(log_softmax) and passes gradcheck along every dim") {
  ng::manual_seed(2);
  ng::Tensor x = uniform({2, 3, 4}, -2, 2);
  for (int64_t d = -3; d < 3; ++d) {
    const std::vector<double> a = ng::softmax(x, d).to_vector(), b = ng::exp(ng::log_softmax(x, d)).to_vector();
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-13));
    check_gradients("softmax dim " + std::to_string(d), [d](const Inputs& in) { return ng::softmax(in[0], d); }, {x});
  }
}

TEST_CASE("softmax's backward is differentiable: its second derivative passes gradcheck") {
  ng::manual_seed(3);
  ng::Tensor x = uniform({3, 4}, -2, 2), w = ng::randn({3, 4}, ng::float64);
  check_gradients("softmax second derivative",
                  [w](const Inputs& in) { return first_derivative([](const ng::Tensor& t) { return t.softmax(1); }, in[0], w); },
                  {x});
}

// ---- erf and leaky_relu ---------------------------------------------------------------------------

TEST_CASE("erf matches tabulated values") {
  // erf(0) = 0, erf(0.5) = 0.5204998778130465, erf(1) = 0.8427007929497149, erf(2) = 0.9953222650189527; odd.
  ng::Tensor y = ng::erf(ng::tensor({0, 0.5, 1, 2, -1}, ng::float64));
  const double expected[] = {0, 0.5204998778130465, 0.8427007929497149, 0.9953222650189527, -0.8427007929497149};
  for (int64_t i = 0; i < 5; ++i) CHECK(y.at({i}) == Approx(expected[i]).epsilon(1e-15));
}

TEST_CASE("erf passes gradcheck, and its derivative 2/sqrt(pi) e^(-x^2) does too") {
  ng::manual_seed(4);
  ng::Tensor x = uniform({3, 5}, -2.5, 2.5), w = ng::randn({3, 5}, ng::float64);
  check_gradients("erf", [](const Inputs& in) { return ng::erf(in[0]); }, {x});
  check_gradients("erf second derivative", [w](const Inputs& in) { return first_derivative(ng::erf, in[0], w); }, {x});
  ng::Tensor at_zero = ng::zeros({1}, ng::float64).requires_grad_();
  ng::erf(at_zero).sum().backward();
  CHECK(at_zero.grad().at({0}) == Approx(2 / std::sqrt(std::numbers::pi)).epsilon(1e-15));
}

TEST_CASE("leaky_relu keeps positive values and scales negative ones by the slope (default 0.01)") {
  ng::Tensor x = ng::tensor({-2, -0.5, 0, 0.5, 3}, ng::float64);
  const std::vector<double> y = ng::leaky_relu(x).to_vector(), y2 = ng::leaky_relu(x, 0.2).to_vector();
  const std::vector<double> expected = {-0.02, -0.005, 0, 0.5, 3}, expected2 = {-0.4, -0.1, 0, 0.5, 3};
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(y[i] == Approx(expected[i]).epsilon(1e-15));
    CHECK(y2[i] == Approx(expected2[i]).epsilon(1e-15));
  }
}

TEST_CASE("leaky_relu passes gradcheck away from 0, its gradient at 0 is the slope, and its backward is differentiable") {
  ng::manual_seed(5);
  ng::Tensor x = away_from_zero({4, 3}), w = ng::randn({4, 3}, ng::float64);
  for (double slope : {0.01, 0.3, -0.5})
    check_gradients("leaky_relu slope " + std::to_string(slope),
                    [slope](const Inputs& in) { return ng::leaky_relu(in[0], slope); }, {x});
  check_gradients("leaky_relu second derivative",
                  [w](const Inputs& in) {
                    return first_derivative([](const ng::Tensor& t) { return ng::leaky_relu(t, 0.2); }, in[0], w);
                  },
                  {x});
  ng::Tensor zero = ng::zeros({1}, ng::float64).requires_grad_();
  ng::leaky_relu(zero, 0.2).sum().backward();
  CHECK(zero.grad().at({0}) == 0.2);
}

// ---- multinomial ----------------------------------------------------------------------------------

namespace {
// Pearson's chi-square statistic of observed counts against expected probabilities (over categories
// with p > 0).
double chi_square(const std::vector<int64_t>& counts, const std::vector<double>& p, int64_t draws) {
  double chi2 = 0;
  for (std::size_t k = 0; k < p.size(); ++k) {
    if (p[k] == 0) continue;
    const double expected = p[k] * static_cast<double>(draws);
    chi2 += (static_cast<double>(counts[k]) - expected) * (static_cast<double>(counts[k]) - expected) / expected;
  }
  return chi2;
}
}  // namespace

TEST_CASE("multinomial with replacement draws each category with its probability (chi-square, 200000 draws)") {
  // Weights need not sum to 1: [1, 2, 3, 4, 0] means p = [0.1, 0.2, 0.3, 0.4, 0].
  ng::manual_seed(6);
  const int64_t n = 200000;
  ng::Tensor samples = ng::multinomial(ng::tensor({1, 2, 3, 4, 0}), n, true);
  REQUIRE(samples.dtype() == ng::int64);
  REQUIRE(samples.shape() == ng::Shape{n});
  std::vector<int64_t> counts(5, 0);
  const int64_t* s = samples.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) ++counts.at(static_cast<std::size_t>(s[i]));
  CHECK(counts[4] == 0);  // a zero weight is never drawn
  // 3 degrees of freedom: P(chi2 > 16.27) = 0.001 for a correct sampler (and the seed is fixed). One that
  // moved 0.01 of probability from category 0 to 1 would give about n (0.01^2/0.1 + 0.01^2/0.2) = 300.
  CHECK(chi_square(counts, {0.1, 0.2, 0.3, 0.4, 0}, n) < 16.27);
}

TEST_CASE("multinomial on a 2-D probs draws each row from its own distribution") {
  ng::manual_seed(7);
  const int64_t n = 100000;
  ng::Tensor probs = ng::tensor({0.7, 0.2, 0.1, 0.0, 0.0, 1.0}, {2, 3}, ng::float64);
  ng::Tensor samples = ng::multinomial(probs, n, true);
  REQUIRE(samples.shape() == ng::Shape{2, n});
  std::vector<int64_t> counts(3, 0);
  for (int64_t i = 0; i < n; ++i) ++counts.at(static_cast<std::size_t>(samples.at({0, i})));
  CHECK(chi_square(counts, {0.7, 0.2, 0.1}, n) < 13.82);  // 2 degrees of freedom, P = 0.001
  for (int64_t i = 0; i < n; ++i) REQUIRE(samples.at({1, i}) == 2);
}

TEST_CASE("multinomial with the same seed gives the same samples, and another seed different ones") {
  ng::Tensor probs = ng::softmax(ng::tensor({0.3, -1, 2, 0.5, 1, 0, -0.2, 0.7}), 0);
  ng::manual_seed(42);
  const std::vector<double> a = ng::multinomial(probs, 50, true).to_vector();
  ng::manual_seed(42);
  const std::vector<double> b = ng::multinomial(probs, 50, true).to_vector();
  ng::manual_seed(43);
  const std::vector<double> c = ng::multinomial(probs, 50, true).to_vector();
  CHECK(a == b);
  CHECK(a != c);
}

TEST_CASE("multinomial without replacement gives distinct indices, all of them when num_samples = categories") {
  ng::manual_seed(8);
  ng::Tensor probs = ng::tensor({5, 1, 0.5, 2, 0.1, 3, 1, 1, 4, 0.2, 1, 2}, {2, 6});
  for (int trial = 0; trial < 200; ++trial) {
    ng::Tensor some = ng::multinomial(probs, 4, false);
    for (int64_t r = 0; r < 2; ++r) {
      std::set<int64_t> seen;
      for (int64_t s = 0; s < 4; ++s) seen.insert(static_cast<int64_t>(some.at({r, s})));
      CHECK(seen.size() == 4);
      for (int64_t k : seen) CHECK((k >= 0 && k < 6));
    }
  }
  ng::Tensor all = ng::multinomial(ng::tensor({0.1, 0.6, 0.3}), 3, false);
  std::set<int64_t> seen;
  for (double v : all.to_vector()) seen.insert(static_cast<int64_t>(v));
  CHECK(seen == std::set<int64_t>{0, 1, 2});
}

TEST_CASE("multinomial without replacement draws its first sample with the row's probabilities") {
  ng::manual_seed(9);
  const int64_t n = 40000;
  ng::Tensor probs = ng::tensor({0.5, 0.3, 0.2});
  std::vector<int64_t> counts(3, 0);
  for (int64_t i = 0; i < n; ++i) ++counts.at(static_cast<std::size_t>(ng::multinomial(probs, 2, false).at({0})));
  CHECK(chi_square(counts, {0.5, 0.3, 0.2}, n) < 13.82);
}

TEST_CASE("multinomial rejects bad distributions and sample counts with messages that say what was expected") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({0.5, -0.1, 0.6}), 1, true), "multinomial", "non-negative", "category 1");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({0.5, nan}), 1, true), "multinomial", "NaN", "category 1");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({0.5, inf}), 1, true), "multinomial", "finite");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({1, 2, 0, 0}, {2, 2}), 1, true), "multinomial", "row 1", "all zeros");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({0.2, 0.3, 0.5}), 4, false), "multinomial", "4 samples",
                       "3 categories", "replacement");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({0.2, 0, 0.5}), 3, false), "multinomial", "only 2", "positive weight");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({0.2, 0.3}), 0, true), "multinomial", "num_samples = 0", "positive");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::zeros({2, 2, 2}), 1, true), "multinomial", "[2, 2, 2]", "[R, C]");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::arange(3, ng::int64), 1, true), "multinomial", "int64");
  // With replacement, more samples than categories is fine.
  CHECK(ng::multinomial(ng::tensor({0.2, 0.8}), 5, true).numel() == 5);
}

TEST_CASE("softmax, erf and leaky_relu reject bad arguments with messages naming the op") {
  CHECK_ERROR_MENTIONS(ng::softmax(ng::scalar(1), 0), "softmax", "0-dim");
  CHECK_ERROR_MENTIONS(ng::softmax(ng::zeros({2, 3}), 2), "softmax", "dim 2");
  CHECK_ERROR_MENTIONS(ng::softmax(ng::arange(3, ng::int64), 0), "softmax", "int64");
  CHECK_ERROR_MENTIONS(ng::erf(ng::arange(3, ng::int64)), "erf", "int64");
  CHECK_ERROR_MENTIONS(ng::leaky_relu(ng::zeros({2}), std::nan("")), "leaky_relu", "negative_slope");
}
