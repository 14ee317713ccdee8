// test_norm_properties.cpp: LayerNorm and GroupNorm as RapidCheck properties: how they relate to each
// other and to instance normalization, their invariance to the scale of their input (which BN shares),
// and their independence from the rest of the batch (which BN lacks).
//
// Each property draws sizes, a seed for the tensors, and (where it matters) a scale a; on failure
// RapidCheck prints the drawn values, shrunk, and the seed to reproduce them (RC_PARAMS="reproduce=...").
// Comparisons allow float64 rounding only, bounded as in test_bn_properties.cpp: errors of about
// m * DBL_EPSILON * max|x| in the sums, divided by the smallest standard deviation a group has.
#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "normgrad.h"

namespace {

using ng::Tensor;
namespace F = ng::nn::functional;

// An input [N, C, H, W] with C = groups * channels_per_group, drawn with a random seed, mean and spread.
struct Images {
  int64_t N, C, H, W, groups;
  Tensor x;
};

Images draw_images() {
  Images p;
  p.N = *rc::gen::inRange<int64_t>(1, 4);
  p.groups = *rc::gen::inRange<int64_t>(1, 4);
  p.C = p.groups * *rc::gen::inRange<int64_t>(1, 4);
  p.H = *rc::gen::inRange<int64_t>(1, 4);
  p.W = *rc::gen::inRange<int64_t>(2, 4);  // at least two values per channel, so no group is constant
  ng::manual_seed(*rc::gen::arbitrary<uint32_t>());
  p.x = ng::randn({p.N, p.C, p.H, p.W}, ng::float64) * 3.0 + ng::randn({}, ng::float64).item();
  return p;
}

// a > 0, log-uniform from 1e-3 to 1e3.
double draw_scale() { return std::pow(10.0, *rc::gen::inRange(-3000, 3001) / 1000.0); }

double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

// Reference statistics, in plain loops: mean and biased variance of x's values at `positions`
// (flat offsets).
struct Stats {
  double mean = 0, var = 0;
};
Stats stats_at(const std::vector<double>& x, const std::vector<int64_t>& positions) {
  Stats s;
  for (int64_t i : positions) s.mean += x[i] / static_cast<double>(positions.size());
  for (int64_t i : positions) s.var += (x[i] - s.mean) * (x[i] - s.mean) / static_cast<double>(positions.size());
  return s;
}

// The flat offsets of example n, channels [c0, c1), all positions, in x: [N, C, S].
std::vector<int64_t> group_positions(const Images& p, int64_t n, int64_t c0, int64_t c1) {
  std::vector<int64_t> positions;
  const int64_t S = p.H * p.W;
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t s = 0; s < S; ++s) positions.push_back((n * p.C + c) * S + s);
  return positions;
}

// The rounding bound for normalizing groups of channels_per_group channels: 64 (m + 1) eps max|x| / min sigma.
double rounding_tolerance(const Images& p, int64_t channels_per_group) {
  const std::vector<double> x = p.x.to_vector();
  double max_x = 0, min_sigma = INFINITY;
  for (double v : x) max_x = std::max(max_x, std::abs(v));
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t c0 = 0; c0 < p.C; c0 += channels_per_group)
      min_sigma = std::min(min_sigma, std::sqrt(stats_at(x, group_positions(p, n, c0, c0 + channels_per_group)).var));
  const double m = static_cast<double>(channels_per_group * p.H * p.W);
  return 64.0 * (m + 1) * DBL_EPSILON * (1 + max_x / min_sigma);
}

}  // namespace

TEST_CASE("GroupNorm with one group equals LayerNorm over (C, H, W), both without affine") {
  CHECK(rc::check("group_norm(x, 1) = layer_norm(x, [C, H, W])", [] {
    const Images p = draw_images();
    const double eps = *rc::gen::element(0.0, 1e-5);
    const Tensor group = F::group_norm(p.x, 1, Tensor(), Tensor(), eps);
    const Tensor layer = F::layer_norm(p.x, {p.C, p.H, p.W}, Tensor(), Tensor(), eps);
    RC_ASSERT(max_abs_difference(group.to_vector(), layer.to_vector()) <= rounding_tolerance(p, p.C));
  }));
}

TEST_CASE("GroupNorm with C groups is instance normalization: each channel of each example on its own") {
  CHECK(rc::check("group_norm(x, C) = (x - mean_nc) / sqrt(var_nc + eps)", [] {
    const Images p = draw_images();
    const double eps = *rc::gen::element(0.0, 1e-5);
    const std::vector<double> x = p.x.to_vector(), y = F::group_norm(p.x, p.C, Tensor(), Tensor(), eps).to_vector();
    std::vector<double> expected(x.size());
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t c = 0; c < p.C; ++c) {
        const std::vector<int64_t> positions = group_positions(p, n, c, c + 1);
        const Stats s = stats_at(x, positions);
        for (int64_t i : positions) expected[i] = (x[i] - s.mean) / std::sqrt(s.var + eps);
      }
    RC_ASSERT(max_abs_difference(y, expected) <= rounding_tolerance(p, 1));
  }));
}

TEST_CASE("LayerNorm output is unchanged when its input is scaled by a > 0: LN(a x) = LN(x), eps = 0") {
  CHECK(rc::check("layer_norm(a x) = layer_norm(x)", [] {
    const Images p = draw_images();
    const double a = draw_scale();
    const Tensor weight = ng::randn({p.C, p.H, p.W}, ng::float64), bias = ng::randn({p.C, p.H, p.W}, ng::float64);
    const ng::Shape shape{p.C, p.H, p.W};
    const Tensor y = F::layer_norm(p.x, shape, weight, bias, 0.0);
    const Tensor y_scaled = F::layer_norm(p.x * a, shape, weight, bias, 0.0);
    double max_weight = 0;
    for (double w : weight.to_vector()) max_weight = std::max(max_weight, std::abs(w));
    RC_ASSERT(max_abs_difference(y_scaled.to_vector(), y.to_vector()) <= rounding_tolerance(p, p.C) * (1 + max_weight));
  }));
}

TEST_CASE("GroupNorm output is unchanged when its input is scaled by a > 0: GN(a x) = GN(x), eps = 0") {
  CHECK(rc::check("group_norm(a x) = group_norm(x)", [] {
    const Images p = draw_images();
    const double a = draw_scale();
    const Tensor weight = ng::randn({p.C}, ng::float64), bias = ng::randn({p.C}, ng::float64);
    const Tensor y = F::group_norm(p.x, p.groups, weight, bias, 0.0);
    const Tensor y_scaled = F::group_norm(p.x * a, p.groups, weight, bias, 0.0);
    double max_weight = 0;
    for (double w : weight.to_vector()) max_weight = std::max(max_weight, std::abs(w));
    RC_ASSERT(max_abs_difference(y_scaled.to_vector(), y.to_vector()) <=
              rounding_tolerance(p, p.C / p.groups) * (1 + max_weight));
  }));
}

// Unlike BN, whose output for one example moves with the rest of its batch.
TEST_CASE("LayerNorm and GroupNorm of an example do not depend on the rest of the batch") {
  CHECK(rc::check("norm(x)[n] = norm(x[n:n+1])", [] {
    const Images p = draw_images();
    const int64_t n = *rc::gen::inRange<int64_t>(0, p.N);
    const Tensor alone = ng::slice(p.x, 0, n, n + 1);
    const Tensor layer_in_batch = ng::slice(F::layer_norm(p.x, {p.C, p.H, p.W}), 0, n, n + 1);
    const Tensor group_in_batch = ng::slice(F::group_norm(p.x, p.groups), 0, n, n + 1);
    RC_ASSERT(layer_in_batch.to_vector() == F::layer_norm(alone, {p.C, p.H, p.W}).to_vector());
    RC_ASSERT(group_in_batch.to_vector() == F::group_norm(alone, p.groups).to_vector());
  }));
}
