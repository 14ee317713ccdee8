// test_gradcheck_ops.cpp: every differentiable op's backward against central finite differences.
//
// Each case runs ng::gradcheck in float64 (gradcheck.h) on ordinary shapes, on broadcast shapes
// ([3,1] op [1,4], [2,3,4] op [4], a 0-dim scalar op a tensor) and on reductions with and without
// keepdim. Inputs stay away from the kinks and edges of the ops: abs and relu away from 0, log, sqrt,
// division and pow on positive numbers, max on distinct values.
#include <doctest/doctest.h>

#include <functional>
#include <span>
#include <string>

#include "normgrad.h"

namespace {

using Inputs = std::vector<ng::Tensor>;
using Fn = std::function<ng::Tensor(const Inputs&)>;

// A float64 leaf of `shape` with values uniform in [lo, hi).
ng::Tensor uniform(const ng::Shape& shape, double lo, double hi) {
  ng::Tensor t = ng::rand(shape, ng::float64) * (hi - lo) + lo;
  t.requires_grad_();
  return t;
}

// A float64 leaf whose values have magnitude in [0.2, 1) and a random sign: never near 0.
ng::Tensor away_from_zero(const ng::Shape& shape) {
  ng::Tensor t = ng::empty(shape, ng::float64);
  for (double& v : std::span<double>(t.mutable_data<double>(), static_cast<std::size_t>(t.numel())))
    v = (0.2 + 0.8 * ng::random_uniform()) * (ng::random_uniform() < 0.5 ? -1 : 1);
  t.requires_grad_();
  return t;
}

void check_gradients(const std::string& what, const Fn& f, const Inputs& inputs) {
  const ng::GradcheckResult result = ng::gradcheck(f, inputs);
  CHECK_MESSAGE(result.ok, what << ": " << result.message);
}

// The shape pairs every binary op is checked on: equal, broadcast both ways, and a 0-dim scalar.
const std::vector<std::pair<ng::Shape, ng::Shape>> kBinaryShapes = {
    {{2, 3}, {2, 3}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {4}}, {{4}, {2, 3, 4}},
    {{}, {2, 3}},     {{2, 3}, {}},     {{2, 1, 4}, {3, 1}}, {{}, {}},
};

void check_binary(const char* name, ng::Tensor (*op)(const ng::Tensor&, const ng::Tensor&), double lo, double hi) {
  ng::manual_seed(7);
  for (const auto& [shape_a, shape_b] : kBinaryShapes) {
    const std::string what = std::string(name) + " " + ng::shape_str(shape_a) + " " + ng::shape_str(shape_b);
    check_gradients(what, [op](const Inputs& in) { return op(in[0], in[1]); },
                    {uniform(shape_a, lo, hi), uniform(shape_b, lo, hi)});
  }
}

ng::Tensor pow_tensor(const ng::Tensor& a, const ng::Tensor& b) { return ng::pow(a, b); }

}  // namespace

// ---- elementwise -------------------------------------------------------------------------------------

TEST_CASE("add passes gradcheck on equal, broadcast and 0-dim shapes") { check_binary("add", ng::add, -2, 2); }
TEST_CASE("sub passes gradcheck on equal, broadcast and 0-dim shapes") { check_binary("sub", ng::sub, -2, 2); }
TEST_CASE("mul passes gradcheck on equal, broadcast and 0-dim shapes") { check_binary("mul", ng::mul, -2, 2); }
TEST_CASE("div passes gradcheck on equal, broadcast and 0-dim shapes") { check_binary("div", ng::div, 0.5, 2); }
TEST_CASE("pow tensor^tensor passes gradcheck on equal, broadcast and 0-dim shapes") {
  check_binary("pow", pow_tensor, 0.5, 2);
}

TEST_CASE("only the input that requires grad gets a gradient, and it passes gradcheck") {
  ng::manual_seed(8);
  ng::Tensor constant = ng::rand({3, 1}, ng::float64) + 0.5;
  check_gradients("mul by constant", [&](const Inputs& in) { return in[0] * constant; }, {uniform({1, 4}, -1, 1)});
  check_gradients("div of constant", [&](const Inputs& in) { return constant / in[0]; }, {uniform({1, 4}, 0.5, 2)});
  check_gradients("pow with constant base", [&](const Inputs& in) { return ng::pow(constant, in[0]); },
                  {uniform({1, 4}, -1, 1)});
}

TEST_CASE("the operators with a double on either side pass gradcheck") {
  ng::manual_seed(9);
  const Inputs x = {uniform({2, 3}, 0.5, 2)};
  check_gradients("x + 3", [](const Inputs& in) { return in[0] + 3.0; }, x);
  check_gradients("3 + x", [](const Inputs& in) { return 3.0 + in[0]; }, x);
  check_gradients("x - 3", [](const Inputs& in) { return in[0] - 3.0; }, x);
  check_gradients("3 - x", [](const Inputs& in) { return 3.0 - in[0]; }, x);
  check_gradients("x * 3", [](const Inputs& in) { return in[0] * 3.0; }, x);
  check_gradients("3 * x", [](const Inputs& in) { return 3.0 * in[0]; }, x);
  check_gradients("x / 3", [](const Inputs& in) { return in[0] / 3.0; }, x);
  check_gradients("3 / x", [](const Inputs& in) { return 3.0 / in[0]; }, x);
  check_gradients("-x", [](const Inputs& in) { return -in[0]; }, x);
}

TEST_CASE("the unary ops pass gradcheck on a matrix and on a 0-dim scalar") {
  for (const ng::Shape& shape : {ng::Shape{2, 3}, ng::Shape{}}) {
    ng::manual_seed(10);
    const std::string at = ng::shape_str(shape);
    check_gradients("neg " + at, [](const Inputs& in) { return ng::neg(in[0]); }, {uniform(shape, -2, 2)});
    check_gradients("sqrt " + at, [](const Inputs& in) { return ng::sqrt(in[0]); }, {uniform(shape, 0.5, 3)});
    check_gradients("exp " + at, [](const Inputs& in) { return ng::exp(in[0]); }, {uniform(shape, -2, 2)});
    check_gradients("log " + at, [](const Inputs& in) { return ng::log(in[0]); }, {uniform(shape, 0.5, 3)});
    check_gradients("abs " + at, [](const Inputs& in) { return ng::abs(in[0]); }, {away_from_zero(shape)});
    check_gradients("relu " + at, [](const Inputs& in) { return ng::relu(in[0]); }, {away_from_zero(shape)});
    check_gradients("sigmoid " + at, [](const Inputs& in) { return ng::sigmoid(in[0]); }, {uniform(shape, -3, 3)});
    check_gradients("tanh " + at, [](const Inputs& in) { return ng::tanh(in[0]); }, {uniform(shape, -2, 2)});
  }
}

TEST_CASE("pow tensor^scalar passes gradcheck for integer, fractional, negative and zero exponents") {
  ng::manual_seed(11);
  for (double p : {2.0, 3.0, 0.5, -1.5, 1.0, 0.0}) {
    check_gradients("pow " + std::to_string(p), [p](const Inputs& in) { return ng::pow(in[0], p); },
                    {uniform({2, 3}, 0.5, 2)});
  }
  check_gradients("pow 3 of negatives", [](const Inputs& in) { return in[0].pow(3); }, {uniform({4}, -2, -0.5)});
}

TEST_CASE("sigmoid passes gradcheck far from 0, where it saturates") {
  check_gradients("sigmoid", [](const Inputs& in) { return ng::sigmoid(in[0]); },
                  {ng::tensor({-30, -8, 8, 30}, ng::float64).requires_grad_()});
}

// ---- reductions --------------------------------------------------------------------------------------

TEST_CASE("sum and mean pass gradcheck over all elements and over given dims, with and without keepdim") {
  ng::manual_seed(12);
  const Inputs x = {uniform({2, 3, 4}, -1, 1)};
  check_gradients("sum", [](const Inputs& in) { return ng::sum(in[0]); }, x);
  check_gradients("mean", [](const Inputs& in) { return ng::mean(in[0]); }, x);
  const std::vector<std::vector<int64_t>> dim_lists = {{0}, {1}, {2}, {-1}, {0, 2}, {1, 2}, {2, 0}, {0, 1, 2}};
  for (const auto& dims : dim_lists)
    for (bool keepdim : {false, true}) {
      std::string what = "dims";
      for (int64_t d : dims) what.append(" ").append(std::to_string(d));
      what += keepdim ? " keepdim" : "";
      check_gradients("sum " + what, [&](const Inputs& in) { return in[0].sum(dims, keepdim); }, x);
      check_gradients("mean " + what, [&](const Inputs& in) { return in[0].mean(dims, keepdim); }, x);
    }
}

TEST_CASE("sum and mean pass gradcheck on a 0-dim tensor and on size-1 dims") {
  ng::manual_seed(13);
  check_gradients("sum 0-dim", [](const Inputs& in) { return ng::sum(in[0]); }, {uniform({}, -1, 1)});
  check_gradients("mean 0-dim", [](const Inputs& in) { return ng::mean(in[0]); }, {uniform({}, -1, 1)});
  const Inputs x = {uniform({3, 1, 2}, -1, 1)};
  check_gradients("sum dim 1", [](const Inputs& in) { return in[0].sum({1}); }, x);
  check_gradients("mean dims 0 1 keepdim", [](const Inputs& in) { return in[0].mean({0, 1}, true); }, x);
}

TEST_CASE("max over a dim passes gradcheck for every dim, with and without keepdim") {
  ng::manual_seed(14);
  const Inputs x = {uniform({3, 4, 5}, -1, 1)};
  for (int64_t dim : {0, 1, 2, -1})
    for (bool keepdim : {false, true})
      check_gradients("max dim " + std::to_string(dim) + (keepdim ? " keepdim" : ""),
                      [=](const Inputs& in) { return ng::max(in[0], dim, keepdim).values; }, x);
}

TEST_CASE("log_softmax passes gradcheck along every dim") {
  ng::manual_seed(15);
  const Inputs x = {uniform({2, 3, 4}, -2, 2)};
  for (int64_t dim : {0, 1, 2, -1})
    check_gradients("log_softmax dim " + std::to_string(dim),
                    [=](const Inputs& in) { return ng::log_softmax(in[0], dim); }, x);
  check_gradients("log_softmax 1-D", [](const Inputs& in) { return ng::log_softmax(in[0], 0); }, {uniform({5}, -2, 2)});
}

// ---- matmul ------------------------------------------------------------------------------------------

TEST_CASE("matmul passes gradcheck for 2-D, batched 3-D, mixed 3-D/2-D and vector operands") {
  ng::manual_seed(16);
  const std::vector<std::pair<ng::Shape, ng::Shape>> cases = {
      {{3, 4}, {4, 5}},       // [n,k]@[k,m]
      {{2, 3, 4}, {2, 4, 5}}, // batched
      {{2, 3, 4}, {4, 5}},    // 3-D @ 2-D: the matrix is shared by the batch
      {{3, 4}, {2, 4, 5}},    // 2-D @ 3-D
      {{1, 3, 4}, {2, 4, 5}}, // a batch of 1 is shared
      {{2, 3, 4}, {1, 4, 5}},
      {{4}, {4}},             // dot product
      {{3, 4}, {4}},          // matrix @ vector
      {{4}, {4, 5}},          // vector @ matrix
      {{2, 3, 4}, {4}},
      {{4}, {2, 4, 5}},
      {{1, 1}, {1, 1}},
  };
  for (const auto& [shape_a, shape_b] : cases)
    check_gradients("matmul " + ng::shape_str(shape_a) + " @ " + ng::shape_str(shape_b),
                    [](const Inputs& in) { return ng::matmul(in[0], in[1]); },
                    {uniform(shape_a, -1, 1), uniform(shape_b, -1, 1)});
}

TEST_CASE("matmul passes gradcheck when only one side requires grad") {
  ng::manual_seed(17);
  ng::Tensor a = ng::rand({2, 3, 4}, ng::float64);
  ng::Tensor b = ng::rand({4, 5}, ng::float64);
  check_gradients("constant @ b", [&](const Inputs& in) { return ng::matmul(a, in[0]); }, {uniform({4, 5}, -1, 1)});
  check_gradients("a @ constant", [&](const Inputs& in) { return ng::matmul(in[0], b); }, {uniform({2, 3, 4}, -1, 1)});
}

// ---- shape ops ---------------------------------------------------------------------------------------

TEST_CASE("reshape and view pass gradcheck, including an inferred -1 size") {
  ng::manual_seed(18);
  const Inputs x = {uniform({2, 3, 4}, -1, 1)};
  check_gradients("reshape [6, 4]", [](const Inputs& in) { return ng::reshape(in[0], {6, 4}); }, x);
  check_gradients("reshape [-1]", [](const Inputs& in) { return in[0].reshape({-1}); }, x);
  check_gradients("reshape [4, -1, 2]", [](const Inputs& in) { return in[0].reshape({4, -1, 2}); }, x);
  check_gradients("view [3, 8]", [](const Inputs& in) { return in[0].view({3, 8}) * 2.0; }, x);
  check_gradients("reshape to 0-dim", [](const Inputs& in) { return in[0].reshape({}); }, {uniform({1, 1}, -1, 1)});
}

TEST_CASE("transpose and permute pass gradcheck for every reordering of three dims") {
  ng::manual_seed(19);
  const Inputs x = {uniform({2, 3, 4}, -1, 1)};
  const std::vector<std::vector<int64_t>> orders = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (const auto& order : orders)
    check_gradients("permute " + ng::shape_str(order), [&](const Inputs& in) { return in[0].permute(order); }, x);
  check_gradients("transpose 0 2", [](const Inputs& in) { return ng::transpose(in[0], 0, 2); }, x);
  check_gradients("transpose -1 -2", [](const Inputs& in) { return in[0].transpose(-1, -2); }, x);
  check_gradients("t", [](const Inputs& in) { return in[0].t(); }, {uniform({3, 5}, -1, 1)});
}

TEST_CASE("unsqueeze and squeeze pass gradcheck") {
  ng::manual_seed(20);
  check_gradients("unsqueeze 0", [](const Inputs& in) { return in[0].unsqueeze(0); }, {uniform({2, 3}, -1, 1)});
  check_gradients("unsqueeze -1", [](const Inputs& in) { return in[0].unsqueeze(-1); }, {uniform({2, 3}, -1, 1)});
  check_gradients("squeeze 1", [](const Inputs& in) { return in[0].squeeze(1); }, {uniform({2, 1, 3}, -1, 1)});
  check_gradients("squeeze all", [](const Inputs& in) { return ng::squeeze(in[0]); }, {uniform({1, 2, 1, 3}, -1, 1)});
}

TEST_CASE("cat passes gradcheck along every dim, also when one input needs no gradient") {
  ng::manual_seed(21);
  check_gradients("cat dim 0", [](const Inputs& in) { return ng::cat({in[0], in[1], in[2]}, 0); },
                  {uniform({1, 3}, -1, 1), uniform({2, 3}, -1, 1), uniform({3, 3}, -1, 1)});
  check_gradients("cat dim 1", [](const Inputs& in) { return ng::cat({in[0], in[1]}, 1); },
                  {uniform({2, 2, 3}, -1, 1), uniform({2, 4, 3}, -1, 1)});
  check_gradients("cat dim -1", [](const Inputs& in) { return ng::cat({in[0], in[1]}, -1); },
                  {uniform({2, 2, 1}, -1, 1), uniform({2, 2, 3}, -1, 1)});
  ng::Tensor constant = ng::rand({2, 3}, ng::float64);
  check_gradients("cat with a constant", [&](const Inputs& in) { return ng::cat({constant, in[0], constant}, 0); },
                  {uniform({1, 3}, -1, 1)});
}

TEST_CASE("slice passes gradcheck along every dim, with negative bounds and an empty range") {
  ng::manual_seed(22);
  const Inputs x = {uniform({4, 5, 3}, -1, 1)};
  check_gradients("slice dim 0 [1, 3)", [](const Inputs& in) { return ng::slice(in[0], 0, 1, 3); }, x);
  check_gradients("slice dim 1 [0, 2)", [](const Inputs& in) { return ng::slice(in[0], 1, 0, 2); }, x);
  check_gradients("slice dim -1 [-2, 3)", [](const Inputs& in) { return ng::slice(in[0], -1, -2, 3); }, x);
  check_gradients("slice dim 1 [2, -1)", [](const Inputs& in) { return ng::slice(in[0], 1, 2, -1); }, x);
  check_gradients("slice dim 1 [2, 2)", [](const Inputs& in) { return ng::slice(in[0], 1, 2, 2).sum(); }, x);
}

TEST_CASE("index_select passes gradcheck along dim 0 and other dims, with repeated indices") {
  ng::manual_seed(23);
  const Inputs x = {uniform({3, 4, 2}, -1, 1)};
  const ng::Tensor repeated = ng::from_vector<int64_t>({2, 0, 2, 1}, {4});
  const ng::Tensor some = ng::from_vector<int64_t>({3, 1}, {2});
  check_gradients("index_select dim 0", [&](const Inputs& in) { return ng::index_select(in[0], 0, repeated); }, x);
  check_gradients("index_select dim 1", [&](const Inputs& in) { return ng::index_select(in[0], 1, some); }, x);
  const ng::Tensor last = ng::from_vector<int64_t>({0, 1, 0}, {3});
  check_gradients("index_select dim -1", [&](const Inputs& in) { return ng::index_select(in[0], -1, last); }, x);
}

TEST_CASE("broadcast_to and sum_to pass gradcheck") {
  ng::manual_seed(24);
  check_gradients("broadcast_to [3,1] -> [2,3,4]", [](const Inputs& in) { return ng::broadcast_to(in[0], {2, 3, 4}); },
                  {uniform({3, 1}, -1, 1)});
  check_gradients("broadcast_to [4] -> [2,3,4]", [](const Inputs& in) { return ng::broadcast_to(in[0], {2, 3, 4}); },
                  {uniform({4}, -1, 1)});
  check_gradients("broadcast_to [] -> [2,3]", [](const Inputs& in) { return ng::broadcast_to(in[0], {2, 3}); },
                  {uniform({}, -1, 1)});
  const Inputs x = {uniform({2, 3, 4}, -1, 1)};
  for (const ng::Shape& target : {ng::Shape{3, 1}, ng::Shape{4}, ng::Shape{}, ng::Shape{2, 1, 4}, ng::Shape{1, 3, 4},
                                  ng::Shape{2, 3, 4}})
    check_gradients("sum_to " + ng::shape_str(target), [&](const Inputs& in) { return ng::sum_to(in[0], target); }, x);
}

TEST_CASE("to(dtype) and clone pass gradcheck, and to(float32) sends a float64 gradient back") {
  ng::manual_seed(25);
  const Inputs x = {uniform({2, 3}, -1, 1)};
  check_gradients("to float64", [](const Inputs& in) { return in[0].to(ng::float64) * 2.0; }, x);
  check_gradients("clone", [](const Inputs& in) { return in[0].clone() * in[0]; }, x);
  // Through float32 the finite differences are too coarse for gradcheck, so the gradient is checked
  // directly: d/dx sum(3 * float32(x)) = 3, in x's dtype.
  ng::Tensor x64 = uniform({2, 2}, -1, 1);
  (x64.to(ng::float32) * 3.0).sum().backward();
  CHECK(x64.grad().dtype() == ng::float64);
  CHECK(x64.grad().to_vector() == std::vector<double>{3, 3, 3, 3});
}

// ---- compositions ------------------------------------------------------------------------------------

TEST_CASE("a composed batch normalization (mean and variance over dim 0) passes gradcheck") {
  ng::manual_seed(26);
  // x_hat = (x - mu) / sqrt(var + eps), y = gamma x_hat + beta, over a batch of 5 with 3 features
  auto batch_norm = [](const Inputs& in) {
    const ng::Tensor& x = in[0];
    ng::Tensor mu = x.mean({0});
    ng::Tensor var = (x - mu).pow(2).mean({0});
    ng::Tensor x_hat = (x - mu) / (var + 1e-5).sqrt();
    return in[1] * x_hat + in[2];
  };
  check_gradients("batch norm", batch_norm, {uniform({5, 3}, -1, 1), uniform({3}, 0.5, 2), uniform({3}, -1, 1)});
}

TEST_CASE("a small two-layer network with a log_softmax loss passes gradcheck in all its parameters") {
  ng::manual_seed(27);
  const ng::Tensor input = ng::rand({4, 3}, ng::float64);
  const ng::Tensor picks = ng::from_vector<int64_t>({1, 2, 4, 7}, {4});  // one class per row of a [4, 2] output
  auto loss = [&](const Inputs& in) {
    ng::Tensor hidden = ng::tanh(input.matmul(in[0]) + in[1]);
    ng::Tensor log_p = ng::log_softmax(hidden.matmul(in[2]), -1);
    return -ng::index_select(log_p.reshape({-1}), 0, picks).mean();
  };
  check_gradients("mlp", loss, {uniform({3, 5}, -1, 1), uniform({5}, -1, 1), uniform({5, 2}, -1, 1)});
}

TEST_CASE("float32 and float64 give the same values and gradients for a composition of every op kind") {
  ng::manual_seed(28);
  const ng::Tensor x_values = ng::rand({2, 3, 4}, ng::float64) + 1.5;  // log(x) > 0 for the sqrt
  const ng::Tensor w_values = ng::rand({4, 3}, ng::float64) - 0.5;
  std::vector<std::vector<double>> results[2];
  for (int k = 0; k < 2; ++k) {
    const ng::Dtype dtype = k == 0 ? ng::float64 : ng::float32;
    ng::Tensor x = x_values.to(dtype).requires_grad_();
    ng::Tensor w = w_values.to(dtype).requires_grad_();
    ng::Tensor h = ng::matmul(x.log().sqrt() * x.exp().sigmoid(), w).tanh();  // [2, 3, 3]
    ng::Tensor y = ng::log_softmax(h.permute({0, 2, 1}), 1) + ng::max(h, 1, true).values / x.sum({2}, true).abs();
    ng::Tensor loss = ng::cat({y, ng::slice(y, 1, 0, 1).relu()}, 1).pow(2).mean();
    loss.backward();
    results[k] = {loss.to_vector(), x.grad().to_vector(), w.grad().to_vector()};
  }
  for (std::size_t r = 0; r < 3; ++r) {
    REQUIRE(results[0][r].size() == results[1][r].size());
    for (std::size_t i = 0; i < results[0][r].size(); ++i)
      CHECK(results[1][r][i] == doctest::Approx(results[0][r][i]).epsilon(1e-4));
  }
}
