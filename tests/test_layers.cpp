// test_layers.cpp: the ops, layers and losses a character-level language model needs, checked against
// hand-computed values, plain reference loops and finite differences (gradcheck, float64).
//
//   ops     softmax, erf, leaky_relu, multinomial
//   nn      Embedding, LayerNorm, GroupNorm, GELU, LeakyReLU, Softmax
//   losses  nll_loss, cross_entropy (ignore_index, label_smoothing), binary_cross_entropy_with_logits
//   utils   clip_grad_norm_
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include "normgrad.h"
#include "test_helpers.h"

using doctest::Approx;

namespace {

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

// The gradient of sum(op(x) * w) with respect to x, itself differentiable (create_graph), so that
// gradcheck of it checks the second derivative: the op's backward must be written in ops. (gradcheck's
// finite differences pass copies that do not require grad, under NoGradGuard: then only the value counts.)
ng::Tensor first_derivative(const std::function<ng::Tensor(const ng::Tensor&)>& op, const ng::Tensor& x,
                            const ng::Tensor& w) {
  if (x.requires_grad()) return ng::grad({ng::sum(op(x) * w)}, {x}, {.retain_graph = true, .create_graph = true})[0];
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
          auto at = [&](int64_t m) { return d == 0 ? x.at({m, j, k}) : d == 1 ? x.at({i, m, k}) : x.at({i, j, m}); };
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
  check_gradients(
      "softmax second derivative",
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

TEST_CASE(
    "leaky_relu passes gradcheck away from 0, its gradient at 0 is the slope, and its backward is differentiable") {
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
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({0.5, -0.1, 0.6}), 1, true), "multinomial", "non-negative",
                       "category 1");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({0.5, nan}), 1, true), "multinomial", "NaN", "category 1");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({0.5, inf}), 1, true), "multinomial", "finite");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({1, 2, 0, 0}, {2, 2}), 1, true), "multinomial", "row 1", "all zeros");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({0.2, 0.3, 0.5}), 4, false), "multinomial", "4 samples",
                       "3 categories", "replacement");
  CHECK_ERROR_MENTIONS(ng::multinomial(ng::tensor({0.2, 0, 0.5}), 3, false), "multinomial", "only 2",
                       "positive weight");
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

// ---- nn::Embedding --------------------------------------------------------------------------------

TEST_CASE("Embedding looks up rows of weight for indices of any shape: [*] -> [*, dim]") {
  ng::nn::Embedding emb(4, 2, ng::float64);
  {
    ng::NoGradGuard no_grad;
    emb.weight.copy_(ng::tensor({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2}, ng::float64));
  }
  ng::Tensor idx = ng::from_vector<int64_t>({3, 0, 2, 2, 1, 3}, {2, 3});
  ng::Tensor y = emb(idx);
  REQUIRE(y.shape() == ng::Shape{2, 3, 2});
  const int64_t* id = idx.data<int64_t>();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 2; ++k) CHECK(y.at({i, j, k}) == 10.0 * static_cast<double>(id[i * 3 + j]) + k);
  ng::Tensor one = emb(ng::from_vector<int64_t>({2}, {}));  // a 0-dim index gives one vector
  REQUIRE(one.shape() == ng::Shape{2});
  CHECK(one.at({1}) == 21);
}

TEST_CASE("Embedding's weight is a parameter named weight, drawn from N(0, 1)") {
  ng::manual_seed(10);
  ng::nn::Embedding emb(1000, 50);
  auto named = emb.named_parameters();
  REQUIRE(named.size() == 1);
  CHECK(named[0].first == "weight");
  CHECK(named[0].second.shape() == ng::Shape{1000, 50});
  CHECK(named[0].second.requires_grad());
  const std::vector<double> w = emb.weight.to_vector();
  double mean = 0, var = 0;
  for (double v : w) mean += v / static_cast<double>(w.size());
  for (double v : w) var += (v - mean) * (v - mean) / static_cast<double>(w.size());
  // 50000 draws: the sample mean has std 1/sqrt(50000) = 0.0045, the sample variance about 0.0063.
  CHECK(std::abs(mean) < 0.02);
  CHECK(std::abs(var - 1) < 0.03);
}

TEST_CASE("Embedding's gradient adds up over repeated indices, and passes gradcheck") {
  ng::nn::Embedding emb(5, 3, ng::float64);
  ng::Tensor idx = ng::from_vector<int64_t>({1, 4, 1, 1, 0, 4}, {3, 2});
  ng::Tensor upstream = ng::arange(0, 18, 1, ng::float64).reshape({3, 2, 3});
  emb(idx).backward(upstream);
  // Row 1 is used at positions 0, 2, 3 (upstream rows 0, 2, 3), row 4 at 1 and 5, row 0 at 4; rows 2, 3 never.
  const std::vector<std::vector<int64_t>> used_at = {{4}, {0, 2, 3}, {}, {}, {1, 5}};
  for (int64_t r = 0; r < 5; ++r)
    for (int64_t k = 0; k < 3; ++k) {
      double expected = 0;
      for (int64_t p : used_at[r]) expected += static_cast<double>(p * 3 + k);
      CHECK(emb.weight.grad().at({r, k}) == expected);
    }
  ng::Tensor weight = emb.weight.detach().requires_grad_();
  check_gradients("Embedding",
                  [&emb, idx](const Inputs& in) {
                    emb.weight = in[0];  // the forward reads the public member
                    return emb(idx);
                  },
                  {weight});
}

TEST_CASE("Embedding rejects out-of-range and non-int64 indices with a message naming the index and the range") {
  ng::nn::Embedding emb(27, 10);
  CHECK_ERROR_MENTIONS(emb(ng::from_vector<int64_t>({3, 27}, {2})), "Embedding", "index 27", "27 embeddings", "0..26");
  CHECK_ERROR_MENTIONS(emb(ng::from_vector<int64_t>({-1}, {1})), "Embedding", "index -1");
  CHECK_ERROR_MENTIONS(emb(ng::tensor({1, 2})), "Embedding", "float32", "int64");
  CHECK_ERROR_MENTIONS(ng::nn::Embedding(0, 3), "Embedding", "positive");
}

// ---- LayerNorm and GroupNorm ----------------------------------------------------------------------

TEST_CASE("LayerNorm normalizes each row of [[1, 2, 3, 4], [2, 4, 6, 8]] by its own mean and variance") {
  // Row 0: mean 2.5, variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25. Row 1 = 2 * row 0: mean 5, variance 5.
  ng::Tensor x = ng::tensor({1, 2, 3, 4, 2, 4, 6, 8}, {2, 4}, ng::float64);
  ng::nn::LayerNorm ln({4}, 1e-5, true, ng::float64);
  ng::Tensor y = ln(x);
  const double means[] = {2.5, 5}, vars[] = {1.25, 5};
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 4; ++i)
      CHECK(y.at({n, i}) == Approx((x.at({n, i}) - means[n]) / std::sqrt(vars[n] + 1e-5)).epsilon(1e-13));
  // With eps = 0: exactly (-3, -1, 1, 3) / sqrt(5) for both rows; then weight and bias per feature.
  ng::Tensor weight = ng::tensor({1, 2, 3, 4}, ng::float64), bias = ng::tensor({0, 0.5, 0, -1}, ng::float64);
  ng::Tensor z = ng::nn::functional::layer_norm(x, {4}, weight, bias, 0.0);
  const double x_hat[] = {-3 / std::sqrt(5.0), -1 / std::sqrt(5.0), 1 / std::sqrt(5.0), 3 / std::sqrt(5.0)};
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 4; ++i)
      CHECK(z.at({n, i}) == Approx(x_hat[i] * weight.at({i}) + bias.at({i})).epsilon(1e-13));
}

TEST_CASE("LayerNorm over the last two dims matches a reference loop, with a batch of one, in train and eval") {
  ng::manual_seed(11);
  ng::Tensor x = ng::randn({1, 2, 3}, ng::float64) * 4.0 + 1.0;
  ng::nn::LayerNorm ln({2, 3}, 1e-5, true, ng::float64);
  ng::Tensor y_train = ln(x);
  ln.eval();
  ng::Tensor y_eval = ln(x);
  double mean = 0, var = 0;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) mean += x.at({0, i, j}) / 6;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) var += (x.at({0, i, j}) - mean) * (x.at({0, i, j}) - mean) / 6;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      const double expected = (x.at({0, i, j}) - mean) / std::sqrt(var + 1e-5);
      CHECK(y_train.at({0, i, j}) == Approx(expected).epsilon(1e-12));
      CHECK(y_eval.at({0, i, j}) == y_train.at({0, i, j}));
    }
}

TEST_CASE("GroupNorm of one example [1, 4, 2] in 2 groups normalizes channels {0, 1} and {2, 3} together") {
  // Group 0 holds 1, 3, 5, 7 (channels 0 and 1): mean 4, variance (9 + 1 + 1 + 9) / 4 = 5.
  // Group 1 holds 0, 0, 2, 2 (channels 2 and 3): mean 1, variance 1.
  ng::Tensor x = ng::tensor({1, 3, 5, 7, 0, 0, 2, 2}, {1, 4, 2}, ng::float64);
  ng::Tensor weight = ng::tensor({1, 2, 3, 4}, ng::float64), bias = ng::tensor({0, 1, 0, -1}, ng::float64);
  ng::Tensor y = ng::nn::functional::group_norm(x, 2, weight, bias, 0.0);
  const double s5 = std::sqrt(5.0);
  const double expected[] = {-3 / s5 * 1, -1 / s5 * 1, 1 / s5 * 2 + 1, 3 / s5 * 2 + 1,
                             -1 * 3.0,    -1 * 3.0,    1 * 4.0 - 1,    1 * 4.0 - 1};
  const std::vector<double> got = y.to_vector();
  for (std::size_t i = 0; i < 8; ++i) CHECK(got[i] == Approx(expected[i]).epsilon(1e-13));
}

TEST_CASE("GroupNorm on [2, 6, 3, 2] with 3 groups matches a reference loop, and its parameters are weight and bias") {
  ng::manual_seed(12);
  ng::nn::GroupNorm gn(3, 6, 1e-5, true, ng::float64);
  auto named = gn.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "weight");
  CHECK(named[1].first == "bias");
  for (double v : gn.weight.to_vector()) CHECK(v == 1);
  for (double v : gn.bias.to_vector()) CHECK(v == 0);
  {
    ng::NoGradGuard no_grad;
    gn.weight.copy_(ng::randn({6}, ng::float64));
    gn.bias.copy_(ng::randn({6}, ng::float64));
  }
  ng::Tensor x = ng::randn({2, 6, 3, 2}, ng::float64) * 2.0 - 1.0;
  ng::Tensor y = gn(x);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t g = 0; g < 3; ++g) {
      double mean = 0, var = 0;
      for (int64_t c = 2 * g; c < 2 * g + 2; ++c)
        for (int64_t h = 0; h < 3; ++h)
          for (int64_t w = 0; w < 2; ++w) mean += x.at({n, c, h, w}) / 12;
      for (int64_t c = 2 * g; c < 2 * g + 2; ++c)
        for (int64_t h = 0; h < 3; ++h)
          for (int64_t w = 0; w < 2; ++w) var += (x.at({n, c, h, w}) - mean) * (x.at({n, c, h, w}) - mean) / 12;
      for (int64_t c = 2 * g; c < 2 * g + 2; ++c)
        for (int64_t h = 0; h < 3; ++h)
          for (int64_t w = 0; w < 2; ++w) {
            const double expected =
                (x.at({n, c, h, w}) - mean) / std::sqrt(var + 1e-5) * gn.weight.at({c}) + gn.bias.at({c});
            CHECK(y.at({n, c, h, w}) == Approx(expected).epsilon(1e-12));
          }
    }
}

TEST_CASE("layer_norm and group_norm pass gradcheck with respect to the input, weight and bias") {
  ng::manual_seed(13);
  {
    ng::Tensor x = uniform({3, 4}, -2, 2), w = uniform({4}, 0.5, 1.5), b = uniform({4}, -1, 1);
    check_gradients("layer_norm [3, 4] over [4]",
                    [](const Inputs& in) { return ng::nn::functional::layer_norm(in[0], {4}, in[1], in[2]); },
                    {x, w, b});
  }
  {
    ng::Tensor x = uniform({2, 3, 4}, -2, 2), w = uniform({3, 4}, 0.5, 1.5), b = uniform({3, 4}, -1, 1);
    check_gradients("layer_norm [2, 3, 4] over [3, 4]",
                    [](const Inputs& in) {
                      return ng::nn::functional::layer_norm(in[0], {3, 4}, in[1], in[2]);
                    },
                    {x, w, b});
  }
  for (int64_t groups : {1, 2, 4}) {
    ng::Tensor x = uniform({2, 4, 3}, -2, 2), w = uniform({4}, 0.5, 1.5), b = uniform({4}, -1, 1);
    check_gradients("group_norm [2, 4, 3], groups " + std::to_string(groups),
                    [groups](const Inputs& in) { return ng::nn::functional::group_norm(in[0], groups, in[1], in[2]); },
                    {x, w, b});
  }
  ng::Tensor x2 = uniform({3, 4}, -2, 2);  // [N, C]: each group is C/G features of one example
  check_gradients("group_norm [3, 4], 2 groups, no affine",
                  [](const Inputs& in) { return ng::nn::functional::group_norm(in[0], 2); }, {x2});
}

TEST_CASE("LayerNorm and GroupNorm reject bad shapes and arguments with messages saying what was expected") {
  using namespace ng::nn;
  CHECK_ERROR_MENTIONS(functional::layer_norm(ng::zeros({2, 3}), {4}), "layer_norm", "[2, 3]", "[4]", "[*, 4]");
  CHECK_ERROR_MENTIONS(functional::layer_norm(ng::zeros({3}), {2, 3}), "layer_norm", "[3]", "[2, 3]");
  CHECK_ERROR_MENTIONS(functional::layer_norm(ng::zeros({2, 3}), {3}, ng::ones({2})), "layer_norm", "weight", "[2]",
                       "expected [3]");
  CHECK_ERROR_MENTIONS(functional::layer_norm(ng::zeros({2, 3}), {3}, ng::ones({3}, ng::float64)), "layer_norm",
                       "float64", "float32");
  CHECK_ERROR_MENTIONS(functional::layer_norm(ng::zeros({2, 3}), {3}, {}, {}, -1), "layer_norm", "eps");
  CHECK_ERROR_MENTIONS(LayerNorm(ng::Shape{}), "LayerNorm", "empty");
  CHECK_ERROR_MENTIONS(functional::group_norm(ng::zeros({2, 6, 3}), 4), "group_norm", "6 channels", "4 groups");
  CHECK_ERROR_MENTIONS(functional::group_norm(ng::zeros({6}), 2), "group_norm", "[6]", "[N, C, *]");
  CHECK_ERROR_MENTIONS(functional::group_norm(ng::zeros({2, 6}), 2, ng::ones({3})), "group_norm", "weight", "[6]");
  CHECK_ERROR_MENTIONS(GroupNorm(4, 6), "GroupNorm", "num_groups = 4", "num_channels = 6");
  CHECK_ERROR_MENTIONS(GroupNorm(2, 6)(ng::zeros({2, 4, 3})), "GroupNorm", "[2, 4, 3]", "[N, 6, *]");
}

// ---- activations ----------------------------------------------------------------------------------

TEST_CASE("GELU is x Phi(x): tabulated values, and gradcheck") {
  // Phi(1) = 0.8413447460685429, Phi(-1) = 0.15865525393145707, Phi(2) = 0.9772498680518208.
  ng::nn::GELU gelu;
  const std::vector<double> y = gelu(ng::tensor({0, 1, -1, 2}, ng::float64)).to_vector();
  const double expected[] = {0, 0.8413447460685429, -0.15865525393145707, 2 * 0.9772498680518208};
  for (std::size_t i = 0; i < 4; ++i) CHECK(y[i] == Approx(expected[i]).epsilon(1e-15));
  ng::manual_seed(14);
  check_gradients("GELU", [&gelu](const Inputs& in) { return gelu(in[0]); }, {uniform({3, 4}, -3, 3)});
}

TEST_CASE("LeakyReLU and Softmax modules apply their ops, and pass gradcheck") {
  ng::nn::LeakyReLU leaky(0.1);
  const std::vector<double> y = leaky(ng::tensor({-3, 2}, ng::float64)).to_vector();
  CHECK(y[0] == Approx(-0.3));
  CHECK(y[1] == 2);
  CHECK(ng::nn::LeakyReLU().negative_slope == 0.01);
  ng::nn::Softmax softmax(1);
  ng::Tensor p = softmax(ng::tensor({0, 0, std::log(2.0), 0}, {2, 2}, ng::float64));
  CHECK(p.at({0, 0}) == Approx(0.5));
  CHECK(p.at({1, 0}) == Approx(2.0 / 3));
  ng::manual_seed(15);
  check_gradients("LeakyReLU", [&leaky](const Inputs& in) { return leaky(in[0]); }, {away_from_zero({3, 4})});
  check_gradients("Softmax", [&softmax](const Inputs& in) { return softmax(in[0]); }, {uniform({3, 4}, -2, 2)});
}

// ---- losses ---------------------------------------------------------------------------------------

TEST_CASE("nll_loss is minus the mean of the picked log-probabilities over the targets not ignored") {
  ng::Tensor log_probs = ng::tensor({-1, -2, -3, -0.5, -1.5, -2.5, -4, -5, -6}, {3, 3}, ng::float64);
  // Row 2 is ignored (-100, the default): (1 + 2.5) / 2.
  CHECK(ng::nn::nll_loss(log_probs, ng::from_vector<int64_t>({0, 2, -100}, {3})).item() == Approx(1.75));
  // A class index may serve as ignore_index: ignoring class 1 leaves rows 0 and 2: (1 + 4) / 2.
  CHECK(ng::nn::nll_loss(log_probs, ng::from_vector<int64_t>({0, 1, 0}, {3}), 1).item() == Approx(2.5));
  // Every target ignored: 0 / 0 = NaN, as PyTorch's mean reduction.
  CHECK(std::isnan(ng::nn::nll_loss(log_probs, ng::from_vector<int64_t>({-100, -100, -100}, {3})).item()));
}

TEST_CASE("nll_loss with ignore_index passes gradcheck, and ignored rows get zero gradient") {
  ng::manual_seed(16);
  ng::Tensor x = uniform({4, 5}, -3, -0.1);
  ng::Tensor targets = ng::from_vector<int64_t>({1, -100, 4, 0}, {4});
  check_gradients("nll_loss", [targets](const Inputs& in) { return ng::nn::nll_loss(in[0], targets); }, {x});
  ng::nn::nll_loss(x, targets).backward();
  for (int64_t c = 0; c < 5; ++c) CHECK(x.grad().at({1, c}) == 0);
  CHECK(x.grad().at({0, 1}) == Approx(-1.0 / 3));  // three rows counted
}

namespace {
// The cross entropy against the smoothed target distribution q = (1 - eps) one_hot + eps / C, averaged
// over the rows whose target is not `ignore`: a reference loop written from the definition.
double reference_cross_entropy(const ng::Tensor& logits, const std::vector<int64_t>& targets, double eps,
                               int64_t ignore) {
  const int64_t N = logits.size(0), C = logits.size(1);
  double total = 0;
  int64_t counted = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == ignore) continue;
    double log_sum = 0;
    for (int64_t c = 0; c < C; ++c) log_sum += std::exp(logits.at({n, c}));
    log_sum = std::log(log_sum);
    for (int64_t c = 0; c < C; ++c) {
      const double q = (c == targets[n] ? 1 - eps : 0) + eps / static_cast<double>(C);
      total -= q * (logits.at({n, c}) - log_sum);
    }
    ++counted;
  }
  return total / static_cast<double>(counted);
}
}  // namespace

TEST_CASE("cross_entropy with label_smoothing and ignore_index matches the smoothed-target definition") {
  ng::manual_seed(17);
  ng::Tensor logits = ng::randn({5, 4}, ng::float64) * 2.0;
  const std::vector<int64_t> t = {3, -100, 0, 2, -100};
  ng::Tensor targets = ng::from_vector(t, {5});
  for (double eps : {0.0, 0.1, 0.5, 1.0})
    CHECK(ng::nn::cross_entropy(logits, targets, {.label_smoothing = eps}).item() ==
          Approx(reference_cross_entropy(logits, t, eps, -100)).epsilon(1e-12));
  const std::vector<int64_t> t2 = {3, 1, 0, 1, 1};
  CHECK(ng::nn::cross_entropy(logits, ng::from_vector(t2, {5}), {.ignore_index = 1, .label_smoothing = 0.2}).item() ==
        Approx(reference_cross_entropy(logits, t2, 0.2, 1)).epsilon(1e-12));
  // The existing two-argument call is unchanged: mean over all rows, no smoothing.
  const std::vector<int64_t> t3 = {3, 1, 0, 1, 2};
  CHECK(ng::nn::cross_entropy(logits, ng::from_vector(t3, {5})).item() ==
        Approx(reference_cross_entropy(logits, t3, 0, -100)).epsilon(1e-12));
  CHECK(std::isnan(ng::nn::cross_entropy(logits, ng::full({5}, -100, ng::int64), {.label_smoothing = 0.1}).item()));
}

TEST_CASE("cross_entropy with label_smoothing and ignore_index passes gradcheck") {
  ng::manual_seed(18);
  ng::Tensor logits = uniform({4, 3}, -2, 2);
  ng::Tensor targets = ng::from_vector<int64_t>({2, -100, 0, 1}, {4});
  check_gradients(
      "cross_entropy label_smoothing 0.1",
      [targets](const Inputs& in) { return ng::nn::cross_entropy(in[0], targets, {.label_smoothing = 0.1}); },
      {logits});
  ng::Tensor zeros_ignored = ng::from_vector<int64_t>({2, 0, 0, 1}, {4});
  check_gradients("cross_entropy ignore_index 0, label_smoothing 0.3",
                  [zeros_ignored](const Inputs& in) {
                    return ng::nn::cross_entropy(in[0], zeros_ignored, {.ignore_index = 0, .label_smoothing = 0.3});
                  },
                  {logits});
}

TEST_CASE("binary_cross_entropy_with_logits matches -t log s - (1 - t) log(1 - s) and stays finite for huge logits") {
  ng::Tensor x = ng::tensor({-2, -0.5, 0, 0.7, 3}, ng::float64), t = ng::tensor({0, 1, 0.3, 1, 0.2}, ng::float64);
  double expected = 0;
  for (int64_t i = 0; i < 5; ++i) {
    const double s = 1 / (1 + std::exp(-x.at({i})));
    expected += (-t.at({i}) * std::log(s) - (1 - t.at({i})) * std::log(1 - s)) / 5;
  }
  CHECK(ng::nn::binary_cross_entropy_with_logits(x, t).item() == Approx(expected).epsilon(1e-14));
  // x = 1000 with t = 0 costs 1000, x = -1000 with t = 1 too; the right answers cost about e^-1000 = 0.
  ng::Tensor huge = ng::tensor({1000, -1000, 1000, -1000}, ng::float32);
  ng::Tensor labels = ng::tensor({0, 1, 1, 0}, ng::float32);
  CHECK(ng::nn::binary_cross_entropy_with_logits(huge, labels).item() == Approx(500.0));
}

TEST_CASE("binary_cross_entropy_with_logits passes gradcheck, and its gradient at x = 0 is (1/2 - t) / n") {
  ng::manual_seed(19);
  ng::Tensor x = uniform({3, 4}, -4, 4), t = ng::rand({3, 4}, ng::float64);
  check_gradients("bce_with_logits",
                  [t](const Inputs& in) { return ng::nn::binary_cross_entropy_with_logits(in[0], t); }, {x});
  ng::Tensor zero = ng::zeros({2}, ng::float64).requires_grad_();
  ng::nn::binary_cross_entropy_with_logits(zero, ng::tensor({0, 1}, ng::float64)).backward();
  CHECK(zero.grad().at({0}) == Approx(0.25));
  CHECK(zero.grad().at({1}) == Approx(-0.25));
}

TEST_CASE("the losses reject bad arguments with messages saying what was expected") {
  ng::Tensor scores = ng::zeros({2, 3});
  CHECK_ERROR_MENTIONS(ng::nn::nll_loss(scores, ng::from_vector<int64_t>({0, 3}, {2})), "nll_loss", "target 3",
                       "3 classes", "ignore_index = -100");
  CHECK_ERROR_MENTIONS(ng::nn::nll_loss(ng::zeros({3}), ng::from_vector<int64_t>({0}, {1})), "nll_loss", "log_probs",
                       "[N, C]");
  CHECK_ERROR_MENTIONS(ng::nn::cross_entropy(scores, ng::from_vector<int64_t>({0, 1}, {2}), {.label_smoothing = 1.5}),
                       "cross_entropy", "label_smoothing", "[0, 1]");
  CHECK_ERROR_MENTIONS(ng::nn::binary_cross_entropy_with_logits(scores, ng::zeros({3, 2})),
                       "binary_cross_entropy_with_logits", "[2, 3]", "[3, 2]");
  CHECK_ERROR_MENTIONS(ng::nn::binary_cross_entropy_with_logits(scores, ng::zeros({2, 3}, ng::float64)),
                       "binary_cross_entropy_with_logits", "float64");
}

// ---- clip_grad_norm_ ------------------------------------------------------------------------------

TEST_CASE("clip_grad_norm_ scales all gradients by max_norm / (total_norm + 1e-6) when that is below 1") {
  ng::Tensor a = ng::zeros({2}, ng::float64).requires_grad_(), b = ng::zeros({1}, ng::float64).requires_grad_();
  ng::Tensor no_grad = ng::zeros({3}, ng::float64).requires_grad_();  // no gradient: skipped
  a.set_grad(ng::tensor({3, 4}, ng::float64));
  b.set_grad(ng::tensor({-12}, ng::float64));
  // ||(3, 4, -12)||_2 = 13.
  ng::Tensor norm = ng::nn::clip_grad_norm_({a, no_grad, b}, 6.5);
  CHECK(norm.item() == 13);
  const double coef = 6.5 / (13 + 1e-6);
  CHECK(a.grad().at({0}) == Approx(3 * coef).epsilon(1e-15));
  CHECK(a.grad().at({1}) == Approx(4 * coef).epsilon(1e-15));
  CHECK(b.grad().at({0}) == Approx(-12 * coef).epsilon(1e-15));
  CHECK(!no_grad.grad().defined());
  // Below max_norm: returned, nothing changed.
  a.set_grad(ng::tensor({3, 4}, ng::float64));
  CHECK(ng::nn::clip_grad_norm_({a}, 20).item() == 5);
  CHECK(a.grad().at({1}) == 4);
}

TEST_CASE("clip_grad_norm_ measures the 1-norm and the max norm when asked") {
  ng::Tensor a = ng::zeros({3}).requires_grad_();
  a.set_grad(ng::tensor({3, -4, 12}));
  CHECK(ng::nn::clip_grad_norm_({a}, 100, 1).item() == Approx(19));
  CHECK(ng::nn::clip_grad_norm_({a}, 6, INFINITY).item() == Approx(12));
  CHECK(a.grad().at({2}) == Approx(12 * 6 / (12 + 1e-6)));
  CHECK(ng::nn::clip_grad_norm_({ng::zeros({2}).requires_grad_()}, 1).item() == 0);
  CHECK_ERROR_MENTIONS(ng::nn::clip_grad_norm_({a}, -1), "clip_grad_norm_", "max_norm");
  CHECK_ERROR_MENTIONS(ng::nn::clip_grad_norm_({a}, 1, 0), "clip_grad_norm_", "norm_type");
}

TEST_CASE("Linear, LayerNorm and GroupNorm take PyTorch's keyword arguments as an options struct") {
  const ng::nn::Linear plain(3, 2, {.bias = false});
  CHECK_FALSE(plain.bias.defined());
  CHECK(plain.weight.shape() == ng::Shape{2, 3});
  const ng::nn::Linear wide(3, 2, {.dtype = ng::float64});
  CHECK(wide.bias.defined());
  CHECK(wide.weight.dtype() == ng::float64);
  const ng::nn::LayerNorm ln({4}, {.eps = 1e-3, .elementwise_affine = false});
  CHECK(ln.eps == 1e-3);
  CHECK_FALSE(ln.weight.defined());
  const ng::nn::GroupNorm gn(2, 4, {.affine = false});
  CHECK_FALSE(gn.bias.defined());
  CHECK(gn.eps == 1e-5);
}
