// test_init.cpp: nn::init, the in-place initializers. Random ones are held to their distribution
// (sample mean and spread within a few standard errors, bounds never crossed and nearly reached) with
// fixed seeds; all of them to their contract (same handle returned, no graph recorded, leaves only,
// float dtypes only, bad arguments refused by name).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "normgrad.h"

using ng::Shape;
using ng::Tensor;
namespace init = ng::nn::init;

namespace {

struct Moments {
  double mean, std;  // the sample's mean and (biased) standard deviation
};
Moments moments(const Tensor& t) {
  const std::vector<double> v = t.to_vector();
  double sum = 0, sum_sq = 0;
  for (double x : v) sum += x;
  const double mean = sum / static_cast<double>(v.size());
  for (double x : v) sum_sq += (x - mean) * (x - mean);
  return {mean, std::sqrt(sum_sq / static_cast<double>(v.size()))};
}

double largest_magnitude(const Tensor& t) {
  double largest = 0;
  for (double x : t.to_vector()) largest = std::max(largest, std::abs(x));
  return largest;
}

}  // namespace

// For n draws of N(mean, std^2) the sample mean has standard error std / sqrt(n) and the sample std
// about std / sqrt(2n); 5 standard errors are never crossed by chance at these fixed seeds and would
// catch a wrong formula (a variance for a std, a missing mean) by a wide margin.
TEST_CASE("normal_ draws mean + std * z: sample mean and std within 5 standard errors, float32 and float64") {
  const int64_t n = 100'000;
  for (ng::Dtype dtype : {ng::float32, ng::float64}) {
    CAPTURE(ng::dtype_name(dtype));
    ng::manual_seed(11);
    Tensor t = init::normal_(ng::empty({250, 400}, dtype), 2.0, 3.0);
    const Moments m = moments(t);
    CHECK(std::abs(m.mean - 2.0) < 5 * 3.0 / std::sqrt(n));
    CHECK(std::abs(m.std - 3.0) < 5 * 3.0 / std::sqrt(2.0 * n));
  }
  Tensor defaults = init::normal_(ng::empty({n}, ng::float64));  // N(0, 1)
  CHECK(std::abs(moments(defaults).mean) < 5 / std::sqrt(n));
  CHECK(std::abs(moments(defaults).std - 1) < 5 / std::sqrt(2.0 * n));
}

// examples/common/paper_mlp.cpp relies on this: its weights did not change when it moved to normal_.
TEST_CASE("normal_(t, 0, std) on float32 gives exactly the numbers of randn(shape) * std from the same seed") {
  ng::manual_seed(5);
  const Tensor expected = ng::randn({7, 13}) * 0.1;
  ng::manual_seed(5);
  const Tensor filled = init::normal_(ng::empty({7, 13}), 0, 0.1);
  CHECK(filled.to_vector() == expected.to_vector());
}

// U(a, b) has mean (a + b) / 2 and std (b - a) / sqrt(12).
TEST_CASE("uniform_ stays in [a, b], nearly reaches both ends, has mean (a + b) / 2 and std (b - a) / sqrt(12)") {
  const int64_t n = 100'000;
  const double a = -3, b = 5;
  for (ng::Dtype dtype : {ng::float32, ng::float64}) {
    CAPTURE(ng::dtype_name(dtype));
    ng::manual_seed(12);
    const Tensor t = init::uniform_(ng::empty({n}, dtype), a, b);
    const std::vector<double> v = t.to_vector();
    const auto [lowest, highest] = std::minmax_element(v.begin(), v.end());
    CHECK(*lowest >= a);
    CHECK(*highest <= b);
    // P(no draw within 0.001 (b - a) of an end) = 0.999^100000, about e^-100.
    CHECK(*lowest < a + 0.001 * (b - a));
    CHECK(*highest > b - 0.001 * (b - a));
    const double std = (b - a) / std::sqrt(12.0);
    const Moments m = moments(t);
    CHECK(std::abs(m.mean - (a + b) / 2) < 5 * std / std::sqrt(n));
    CHECK(std::abs(m.std - std) < 0.01 * std);
  }
  const Tensor point = init::uniform_(ng::empty({3}, ng::float64), 2, 2);  // a = b: every value is a
  CHECK(point.to_vector() == std::vector<double>{2, 2, 2});
}

TEST_CASE("constant_, zeros_ and ones_ set every element") {
  for (ng::Dtype dtype : {ng::float32, ng::float64}) {
    CAPTURE(ng::dtype_name(dtype));
    Tensor t = ng::randn({2, 3}, dtype);
    CHECK(init::constant_(t, -1.5).to_vector() == std::vector<double>(6, -1.5));
    CHECK(init::zeros_(t).to_vector() == std::vector<double>(6, 0));
    CHECK(init::ones_(t).to_vector() == std::vector<double>(6, 1));
  }
}

TEST_CASE("an initializer fills the tensor itself: same handle, still a leaf that requires grad, no graph node") {
  ng::nn::Linear linear(4, 3);
  const ng::TensorImpl* weight_impl = linear.weight.impl();
  const int64_t nodes_before = ng::live_nodes();
  Tensor returned = init::constant_(linear.weight, 0.25);
  CHECK(returned.impl() == weight_impl);
  CHECK(linear.weight.at({2, 3}) == 0.25);  // the module's own parameter changed
  CHECK(linear.weight.is_leaf());
  CHECK(linear.weight.requires_grad());
  CHECK(ng::live_nodes() == nodes_before);
}

TEST_CASE("the same seed gives the same initial values") {
  ng::manual_seed(3);
  const std::vector<double> first = init::kaiming_normal_(ng::empty({5, 4}, ng::float64)).to_vector();
  ng::manual_seed(3);
  CHECK(init::kaiming_normal_(ng::empty({5, 4}, ng::float64)).to_vector() == first);
  CHECK(init::kaiming_normal_(ng::empty({5, 4}, ng::float64)).to_vector() != first);  // the generator moved on
}

TEST_CASE("initializers refuse int64, undefined and non-leaf tensors and bad arguments, naming the function") {
  CHECK_THROWS_WITH_AS(
      init::normal_(ng::zeros({2, 3}, ng::int64)),
      doctest::Contains("init::normal_: tensor of shape [2, 3] has dtype int64; expected float32 or float64"),
      ng::Error);
  CHECK_THROWS_WITH_AS(init::zeros_(Tensor()), doctest::Contains("init::zeros_: the tensor is undefined"), ng::Error);
  Tensor leaf = ng::ones({2}).requires_grad_();
  Tensor made = leaf * 2.0;
  CHECK_THROWS_WITH_AS(init::ones_(made), doctest::Contains("init::ones_: tensor of shape [2] was made by 'mul'"),
                       ng::Error);
  CHECK_THROWS_WITH_AS(init::normal_(ng::empty({2}), 0, -1), doctest::Contains("init::normal_: std = -1"), ng::Error);
  CHECK_THROWS_WITH_AS(init::uniform_(ng::empty({2}), 1, 0), doctest::Contains("expected a <= b"), ng::Error);
  CHECK_THROWS_WITH_AS(init::kaiming_uniform_(ng::empty({5})),
                       doctest::Contains("init::kaiming_uniform_: tensor of shape [5] has no fan in and fan out"),
                       ng::Error);
  CHECK_THROWS_WITH_AS(init::xavier_normal_(ng::empty({})),
                       doctest::Contains("init::xavier_normal_: tensor of shape []"), ng::Error);
}

TEST_CASE("calculate_fans: a weight [out, in, k1, k2] has fan_in = in k1 k2 and fan_out = out k1 k2") {
  const init::Fans linear = init::calculate_fans("test", ng::empty({7, 5}));
  CHECK(linear.fan_in == 5);
  CHECK(linear.fan_out == 7);
  const init::Fans conv = init::calculate_fans("test", ng::empty({8, 3, 5, 5}));
  CHECK(conv.fan_in == 3 * 25);
  CHECK(conv.fan_out == 8 * 25);
}

// Kaiming: std = sqrt(2 / (1 + a^2)) / sqrt(fan); the uniform version has bound sqrt(3) std.
TEST_CASE("kaiming_uniform_ stays within sqrt(3) std and kaiming_normal_ has std sqrt(2 / ((1 + a^2) fan))") {
  ng::manual_seed(21);
  const Tensor relu_in = init::kaiming_uniform_(ng::empty({200, 50}, ng::float64));  // a = 0, fan_in = 50
  const double bound = std::sqrt(6.0 / 50);
  CHECK(largest_magnitude(relu_in) <= bound);
  CHECK(largest_magnitude(relu_in) > 0.999 * bound);  // 10,000 draws: P(all below) = 0.999^10000 ~ e^-10
  CHECK(moments(relu_in).std == doctest::Approx(std::sqrt(2.0 / 50)).epsilon(0.02));

  const Tensor fan_out = init::kaiming_uniform_(ng::empty({200, 50}, ng::float64), 1.0, init::FanMode::fan_out);
  const double fan_out_bound = std::sqrt(6.0 / (2 * 200));  // a = 1: gain 1, fan_out = 200
  CHECK(largest_magnitude(fan_out) <= fan_out_bound);
  CHECK(largest_magnitude(fan_out) > 0.999 * fan_out_bound);

  const Tensor normal = init::kaiming_normal_(ng::empty({400, 100}, ng::float64));
  // 40,000 draws: the mean's standard error is std / 200, the std's relative one 1 / sqrt(80000) = 0.35%.
  CHECK(std::abs(moments(normal).mean) < 5 * std::sqrt(2.0 / 100) / 200);
  CHECK(moments(normal).std == doctest::Approx(std::sqrt(2.0 / 100)).epsilon(0.02));
}

// Xavier: std = gain sqrt(2 / (fan_in + fan_out)); the uniform version has bound sqrt(3) std.
TEST_CASE("xavier_uniform_ stays within sqrt(3) std and xavier_normal_ has std gain sqrt(2 / (fan_in + fan_out))") {
  ng::manual_seed(22);
  const Tensor uniform = init::xavier_uniform_(ng::empty({120, 80}, ng::float64), 2.0);
  const double bound = 2.0 * std::sqrt(6.0 / 200);
  CHECK(largest_magnitude(uniform) <= bound);
  CHECK(largest_magnitude(uniform) > 0.999 * bound);
  const Tensor normal = init::xavier_normal_(ng::empty({300, 200}, ng::float64), 2.0);
  CHECK(moments(normal).std == doctest::Approx(2.0 * std::sqrt(2.0 / 500)).epsilon(0.02));
}

TEST_CASE("an empty weight is left empty by the scaled initializers") {
  CHECK(init::kaiming_uniform_(ng::empty({0, 4})).numel() == 0);
  CHECK(init::xavier_normal_(ng::empty({3, 0})).numel() == 0);
}

// PyTorch's nn.Linear draws W, then b, each element u ~ U[0, 1) turned into -k + 2k u with k = 1/sqrt(in).
TEST_CASE("Linear starts as PyTorch's default: W then b uniform in [-1/sqrt(in), 1/sqrt(in)], in draw order") {
  ng::manual_seed(9);
  ng::nn::Linear linear(16, 3, true, ng::float64);
  ng::manual_seed(9);
  const double k = 1 / std::sqrt(16.0);
  for (const Tensor& p : {linear.weight, linear.bias})
    for (double value : p.to_vector())
      CHECK(value == doctest::Approx(-k + 2 * k * ng::random_uniform()).epsilon(1e-15));
  linear.reset_parameters();  // draws again, from where the generator is now
  CHECK(largest_magnitude(linear.weight) <= k);
}
