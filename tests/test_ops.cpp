// test_ops.cpp: the forward values of the ops (autograd/ops.h) on small cases computed by hand.
//
// Expected values are worked out in the comments next to them, never produced by normgrad. Gradients
// are checked against finite differences in test_gradcheck_ops.cpp, errors on bad input in
// test_core_errors.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "normgrad.h"

using doctest::Approx;
using Values = std::vector<double>;

namespace {

ng::Tensor t64(const Values& values, const ng::Shape& shape) { return ng::tensor(values, shape, ng::float64); }

// Element-by-element comparison, by default with a relative tolerance of 1e-6 (float32 results are
// compared too: their rounding error is about 6e-8 relative).
void check_values(const ng::Tensor& actual, const Values& expected, const ng::Shape& shape, double tolerance = 1e-6) {
  CHECK(actual.shape() == shape);
  const Values got = actual.to_vector();
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expected[i]).epsilon(tolerance));
}

}  // namespace

// ---- elementwise -------------------------------------------------------------------------------------

TEST_CASE("add, sub, mul and div of equal shapes work elementwise") {
  ng::Tensor a = t64({1, 2, 3, 4}, {2, 2});
  ng::Tensor b = t64({10, 20, 30, 40}, {2, 2});
  check_values(a + b, {11, 22, 33, 44}, {2, 2});
  check_values(a - b, {-9, -18, -27, -36}, {2, 2});
  check_values(a * b, {10, 40, 90, 160}, {2, 2});
  check_values(b / a, {10, 10, 10, 10}, {2, 2});
  check_values(-a, {-1, -2, -3, -4}, {2, 2});
}

TEST_CASE("binary ops broadcast a column against a row into a matrix") {
  // [3,1] + [1,4] -> [3,4]: out[i][j] = a[i] + b[j]
  ng::Tensor a = t64({0, 10, 20}, {3, 1});
  ng::Tensor b = t64({1, 2, 3, 4}, {1, 4});
  check_values(a + b, {1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24}, {3, 4});
  // out[i][j] = a[i] - b[j] and b[j] - a[i]: both operand orders
  check_values(a - b, {-1, -2, -3, -4, 9, 8, 7, 6, 19, 18, 17, 16}, {3, 4});
  check_values(b - a, {1, 2, 3, 4, -9, -8, -7, -6, -19, -18, -17, -16}, {3, 4});
}

TEST_CASE("binary ops broadcast a trailing vector over leading dimensions, in both operand orders") {
  // [2,2,3] * [3]: every row of x is multiplied by [1, 10, 100]
  ng::Tensor x = t64({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 2, 3});
  ng::Tensor v = t64({1, 10, 100}, {3});
  const Values expected = {1, 20, 300, 4, 50, 600, 7, 80, 900, 10, 110, 1200};
  check_values(x * v, expected, {2, 2, 3});
  check_values(v * x, expected, {2, 2, 3});
  // [2,1,3] - [2,1]: out[i][j][k] = x[i][0][k] - y[j][0], y = [1, 2]
  ng::Tensor x3 = t64({10, 20, 30, 40, 50, 60}, {2, 1, 3});
  ng::Tensor y = t64({1, 2}, {2, 1});
  check_values(x3 - y, {9, 19, 29, 8, 18, 28, 39, 49, 59, 38, 48, 58}, {2, 2, 3});
}

TEST_CASE("a 0-dim scalar combines with a tensor of any shape, on either side") {
  ng::Tensor s = ng::scalar(2, ng::float64);
  ng::Tensor x = t64({1, 2, 4}, {3});
  check_values(s / x, {2, 1, 0.5}, {3});
  check_values(x / s, {0.5, 1, 2}, {3});
  check_values(s * s, {4}, {});
  check_values(x - 1.0, {0, 1, 3}, {3});
  check_values(1.0 - x, {0, -1, -3}, {3});
  check_values(8.0 / x, {8, 4, 2}, {3});
}

TEST_CASE("broadcasting over a dimension of size 0 gives an empty result") {
  ng::Tensor empty_rows = ng::zeros({0, 3}, ng::float64);
  check_values(empty_rows + t64({1, 2, 3}, {3}), {}, {0, 3});
}

TEST_CASE("pow, sqrt, exp, log, abs, relu, sigmoid and tanh give their textbook values") {
  ng::Tensor x = t64({-2, 0, 0.5, 3}, {4});
  check_values(x.pow(2), {4, 0, 0.25, 9}, {4});
  check_values(x.pow(3), {-8, 0, 0.125, 27}, {4});
  check_values(t64({4, 9, 0.25}, {3}).pow(0.5), {2, 3, 0.5}, {3});
  check_values(t64({4, 9, 0.25}, {3}).sqrt(), {2, 3, 0.5}, {3});
  check_values(t64({2, 4}, {2}).pow(-1), {0.5, 0.25}, {2});
  check_values(ng::pow(t64({2, 3, 4}, {3}), t64({3, 2, 0.5}, {3})), {8, 9, 2}, {3});            // 2^3, 3^2, 4^0.5
  check_values(t64({0, 1}, {2}).exp(), {1, 2.718281828459045}, {2});                            // e^0, e^1
  check_values(t64({1, 2.718281828459045, 0.5}, {3}).log(), {0, 1, -0.6931471805599453}, {3});  // ln 0.5 = -ln 2
  check_values(x.abs(), {2, 0, 0.5, 3}, {4});
  check_values(x.relu(), {0, 0, 0.5, 3}, {4});
  // sigmoid(0) = 1/2, sigmoid(ln 3) = 1/(1 + 1/3) = 3/4, sigmoid(-ln 3) = 1/4
  check_values(t64({0, std::log(3.0), -std::log(3.0)}, {3}).sigmoid(), {0.5, 0.75, 0.25}, {3});
  // tanh(0) = 0, tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 3/5
  check_values(t64({0, std::log(2.0), -std::log(2.0)}, {3}).tanh(), {0, 0.6, -0.6}, {3});
}

TEST_CASE("sigmoid and exp of large inputs saturate without producing NaN") {
  // sigmoid(-1000) = e^-1000 / (1 + e^-1000) underflows to 0; sigmoid(1000) = 1
  check_values(t64({-1000, 1000}, {2}).sigmoid(), {0, 1}, {2});
  check_values(ng::tensor({-1000, 1000}).sigmoid(), {0, 1}, {2});
}

TEST_CASE("the float32 kernels give the same values as the float64 ones") {
  ng::Tensor a = ng::tensor({0.5, 1.5, 2.5, 3.5, 4.5, 5.5}, {2, 3});
  ng::Tensor b = ng::tensor({2, 4, 8}, {3});
  CHECK(a.dtype() == ng::float32);
  check_values(a * b + 1.0, {2, 7, 21, 8, 19, 45}, {2, 3});  // 0.5*2+1, 1.5*4+1, 2.5*8+1, ...
  check_values((a / b).sqrt(),
               {0.5, std::sqrt(0.375), std::sqrt(0.3125), std::sqrt(1.75), std::sqrt(1.125), std::sqrt(0.6875)},
               {2, 3});
}

// ---- reductions --------------------------------------------------------------------------------------

TEST_CASE("sum and mean over all elements and over given dims, with and without keepdim") {
  // x = [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 10], [11, 12]]]   shape [2, 3, 2]
  ng::Tensor x = t64({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 3, 2});
  check_values(x.sum(), {78}, {});  // 12 * 13 / 2
  check_values(x.mean(), {6.5}, {});
  // over dim 0: [1+7, 2+8, 3+9, 4+10, 5+11, 6+12]
  check_values(x.sum({0}), {8, 10, 12, 14, 16, 18}, {3, 2});
  check_values(x.sum({0}, true), {8, 10, 12, 14, 16, 18}, {1, 3, 2});
  // over dim 1: [1+3+5, 2+4+6, 7+9+11, 8+10+12]
  check_values(x.sum({1}), {9, 12, 27, 30}, {2, 2});
  check_values(x.mean({1}, true), {3, 4, 9, 10}, {2, 1, 2});
  // over the last dim: pairs
  check_values(x.sum({-1}), {3, 7, 11, 15, 19, 23}, {2, 3});
  // over dims 0 and 2: [1+2+7+8, 3+4+9+10, 5+6+11+12]
  check_values(x.sum({0, 2}), {18, 26, 34}, {3});
  check_values(x.mean({2, 0}, true), {4.5, 6.5, 8.5}, {1, 3, 1});
  // all dims with keepdim
  check_values(x.sum({0, 1, 2}, true), {78}, {1, 1, 1});
}

TEST_CASE("sum of a float32 tensor accumulates in double, so adding many small numbers stays exact") {
  // 2^24 + 1 is the first integer float32 cannot hold: a float accumulator would stop at 2^24.
  const int64_t n = (int64_t{1} << 24) + 8;
  CHECK(ng::ones({n}).sum().item() == static_cast<double>(n));
}

TEST_CASE("sum_to sums a broadcast shape back down to the original one") {
  // x [2, 3] = [[1, 2, 3], [4, 5, 6]]
  ng::Tensor x = t64({1, 2, 3, 4, 5, 6}, {2, 3});
  check_values(ng::sum_to(x, {3}), {5, 7, 9}, {3});
  check_values(ng::sum_to(x, {1, 3}), {5, 7, 9}, {1, 3});
  check_values(ng::sum_to(x, {2, 1}), {6, 15}, {2, 1});
  check_values(ng::sum_to(x, {}), {21}, {});
  check_values(ng::sum_to(x, {2, 3}), {1, 2, 3, 4, 5, 6}, {2, 3});
}

TEST_CASE("max over a dim gives the values and the index of the first maximum") {
  // x = [[1, 5, 3], [7, 2, 7]]
  ng::Tensor x = t64({1, 5, 3, 7, 2, 7}, {2, 3});
  ng::MaxResult over_cols = ng::max(x, 1);
  check_values(over_cols.values, {5, 7}, {2});
  CHECK(over_cols.indices.dtype() == ng::int64);
  CHECK(over_cols.indices.to_vector() == Values{1, 0});  // 7 appears twice: the first one wins
  ng::MaxResult over_rows = ng::max(x, 0, true);
  check_values(over_rows.values, {7, 5, 7}, {1, 3});
  CHECK(over_rows.indices.to_vector() == Values{1, 0, 1});
  CHECK(ng::argmax(x, -1).to_vector() == Values{1, 0});
}

TEST_CASE("the gradient of max flows only to the first maximal element") {
  ng::Tensor x = t64({1, 5, 3, 7, 2, 7}, {2, 3}).requires_grad_();
  ng::max(x, 1).values.sum().backward();
  CHECK(x.grad().to_vector() == Values{0, 1, 0, 1, 0, 0});
}

TEST_CASE("max returns a NaN when the dim holds one, with the index of the first NaN") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ng::MaxResult result = ng::max(t64({1, nan, 3, nan}, {4}), 0);
  CHECK(std::isnan(result.values.item()));
  CHECK(result.indices.item() == 1);
}

TEST_CASE("log_softmax along a dim is x - log(sum(exp(x))) and does not overflow") {
  // [0, ln 3]: sum of exps = 1 + 3 = 4, so log_softmax = [-ln 4, ln 3 - ln 4]
  check_values(ng::log_softmax(t64({0, std::log(3.0)}, {2}), 0), {-std::log(4.0), std::log(0.75)}, {2});
  // Shifting a row by a constant changes nothing, even by 1000 where exp overflows: [1000, 1000 + ln 3]
  check_values(ng::log_softmax(t64({1000, 1000 + std::log(3.0)}, {1, 2}), 1), {-std::log(4.0), std::log(0.75)}, {1, 2});
  // Along dim 0 of [[0, 0], [ln 3, 0]]: column 0 is [0, ln 3], column 1 is [0, 0] -> [-ln 2, -ln 2]
  check_values(ng::log_softmax(t64({0, 0, std::log(3.0), 0}, {2, 2}), 0),
               {-std::log(4.0), -std::log(2.0), std::log(0.75), -std::log(2.0)}, {2, 2});
  // In float32 the input 1000 + ln 3 itself is rounded to a multiple of 2^-14 = 6.1e-5.
  check_values(ng::log_softmax(ng::tensor({1000, 1000 + std::log(3.0)}), 0), {-std::log(4.0), std::log(0.75)}, {2},
               1e-4);
}

TEST_CASE("logsumexp along a dim is log(sum(exp(x))), does not overflow or underflow, and keeps the dim on request") {
  // [0, ln 3]: ln(1 + 3) = ln 4
  check_values(ng::logsumexp(t64({0, std::log(3.0)}, {2}), 0), {std::log(4.0)}, {});
  // Shifted by +-1000, where exp overflows to inf or underflows to 0: the shift comes out unchanged
  check_values(ng::logsumexp(t64({1000, 1000 + std::log(3.0)}, {1, 2}), 1), {1000 + std::log(4.0)}, {1});
  check_values(ng::logsumexp(t64({-1000, -1000 + std::log(3.0)}, {2}), 0), {-1000 + std::log(4.0)}, {});
  // Along dim 0 of [[0, 0], [ln 3, 0]], keepdim: columns [0, ln 3] -> ln 4 and [0, 0] -> ln 2
  check_values(ng::logsumexp(t64({0, 0, std::log(3.0), 0}, {2, 2}), 0, true), {std::log(4.0), std::log(2.0)}, {1, 2});
  // The method form, and a 0-dim input (as PyTorch: the sum of one e^x is e^x)
  check_values(t64({0, 0, std::log(3.0), 0}, {2, 2}).logsumexp(-1), {std::log(2.0), std::log(4.0)}, {2});
  check_values(ng::logsumexp(ng::scalar(2.5, ng::float64), 0), {2.5}, {});
  // A row of -inf sums no mass: -inf; a row holding +inf: +inf (both as PyTorch, not NaN)
  const double inf = std::numeric_limits<double>::infinity();
  const ng::Tensor rows = ng::logsumexp(t64({-inf, -inf, 1, inf}, {2, 2}), 1);
  CHECK(rows.at({0}) == -inf);
  CHECK(rows.at({1}) == inf);
  // float32 goes through the vectorized exp (max_sum_exp): still within float32's rounding
  check_values(ng::logsumexp(ng::tensor({1000, 1000 + std::log(3.0)}), 0), {1000 + std::log(4.0)}, {}, 1e-4);
  // Its gradient is softmax along the dim (gradcheck of the same is in tests/op_cases.h)
  ng::Tensor x = t64({0, std::log(3.0)}, {2}).requires_grad_();
  ng::logsumexp(x, 0).backward();
  check_values(x.grad(), {0.25, 0.75}, {2});
}

// ---- shape ops ---------------------------------------------------------------------------------------

TEST_CASE("reshape and view keep the row-major order of the elements and share the buffer") {
  ng::Tensor x = t64({1, 2, 3, 4, 5, 6}, {2, 3});
  ng::Tensor r = x.reshape({3, -1});
  check_values(r, {1, 2, 3, 4, 5, 6}, {3, 2});
  r.set({0, 1}, 20);
  CHECK(x.at({0, 1}) == 20);  // a reshape is a view of the same numbers
  check_values(x.view({6}), {1, 20, 3, 4, 5, 6}, {6});
  check_values(ng::reshape(t64({7}, {1}), {}), {7}, {});
}

TEST_CASE("transpose and permute move elements to their new positions") {
  // x [2, 3] = [[1, 2, 3], [4, 5, 6]] -> x.t() [3, 2] = [[1, 4], [2, 5], [3, 6]]
  ng::Tensor x = t64({1, 2, 3, 4, 5, 6}, {2, 3});
  check_values(x.t(), {1, 4, 2, 5, 3, 6}, {3, 2});
  check_values(ng::transpose(x, -1, 0), {1, 4, 2, 5, 3, 6}, {3, 2});
  // y [2, 2, 3]: y[i][j][k] = 100 i + 10 j + k; permute(2, 0, 1)[k][i][j] = y[i][j][k]
  ng::Tensor y = t64({0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112}, {2, 2, 3});
  check_values(y.permute({2, 0, 1}), {0, 10, 100, 110, 1, 11, 101, 111, 2, 12, 102, 112}, {3, 2, 2});
  // permute(1, 2, 0)[j][k][i] = y[i][j][k]
  check_values(y.permute({1, 2, 0}), {0, 100, 1, 101, 2, 102, 10, 110, 11, 111, 12, 112}, {2, 3, 2});
  // transpose(0, 1)[j][i][k] = y[i][j][k]
  check_values(y.transpose(0, 1), {0, 1, 2, 100, 101, 102, 10, 11, 12, 110, 111, 112}, {2, 2, 3});
}

TEST_CASE("unsqueeze inserts a size-1 dim and squeeze removes size-1 dims") {
  ng::Tensor x = t64({1, 2, 3}, {3});
  CHECK(x.unsqueeze(0).shape() == ng::Shape{1, 3});
  CHECK(x.unsqueeze(1).shape() == ng::Shape{3, 1});
  CHECK(x.unsqueeze(-1).shape() == ng::Shape{3, 1});
  ng::Tensor y = ng::zeros({1, 3, 1});
  CHECK(y.squeeze(0).shape() == ng::Shape{3, 1});
  CHECK(y.squeeze(-1).shape() == ng::Shape{1, 3});
  CHECK(y.squeeze(1).shape() == ng::Shape{1, 3, 1});  // size 3: left alone, as PyTorch
  CHECK(ng::squeeze(y).shape() == ng::Shape{3});
  check_values(x.unsqueeze(0).squeeze(0), {1, 2, 3}, {3});
}

TEST_CASE("cat joins tensors along a dim") {
  ng::Tensor a = t64({1, 2, 3, 4}, {2, 2});
  ng::Tensor b = t64({5, 6}, {1, 2});
  ng::Tensor c = t64({7, 8}, {2, 1});
  check_values(ng::cat({a, b}, 0), {1, 2, 3, 4, 5, 6}, {3, 2});
  // [[1, 2, 7], [3, 4, 8]]
  check_values(ng::cat({a, c}, 1), {1, 2, 7, 3, 4, 8}, {2, 3});
  check_values(ng::cat({a, c, a}, -1), {1, 2, 7, 1, 2, 3, 4, 8, 3, 4}, {2, 5});
  check_values(ng::cat({b}, 0), {5, 6}, {1, 2});
}

TEST_CASE("slice takes [start, end) along a dim; negative bounds count from the end") {
  // x [3, 4]: x[i][j] = 10 i + j
  ng::Tensor x = t64({0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23}, {3, 4});
  check_values(ng::slice(x, 0, 1, 3), {10, 11, 12, 13, 20, 21, 22, 23}, {2, 4});
  check_values(ng::slice(x, 1, 1, 3), {1, 2, 11, 12, 21, 22}, {3, 2});
  check_values(ng::slice(x, -1, -2, 4), {2, 3, 12, 13, 22, 23}, {3, 2});
  check_values(ng::slice(x, 0, 0, -1), {0, 1, 2, 3, 10, 11, 12, 13}, {2, 4});
  check_values(ng::slice(x, 1, 2, 2), {}, {3, 0});
}

TEST_CASE("index_select picks rows (dim 0) or columns (dim 1), repeating indices as given") {
  ng::Tensor x = t64({0, 1, 2, 10, 11, 12, 20, 21, 22}, {3, 3});
  ng::Tensor rows = ng::from_vector<int64_t>({2, 0, 2}, {3});
  check_values(ng::index_select(x, 0, rows), {20, 21, 22, 0, 1, 2, 20, 21, 22}, {3, 3});
  ng::Tensor cols = ng::from_vector<int64_t>({1}, {1});
  check_values(ng::index_select(x, 1, cols), {1, 11, 21}, {3, 1});
}

TEST_CASE("index_select with a repeated index sums the gradients of its copies") {
  ng::Tensor x = t64({1, 2, 3}, {3}).requires_grad_();
  ng::index_select(x, 0, ng::from_vector<int64_t>({2, 0, 2, 2}, {4})).sum().backward();
  CHECK(x.grad().to_vector() == Values{1, 0, 3});
}

TEST_CASE("broadcast_to copies a tensor into a larger broadcast-compatible shape") {
  check_values(ng::broadcast_to(t64({1, 2}, {2, 1}), {2, 3}), {1, 1, 1, 2, 2, 2}, {2, 3});
  check_values(ng::broadcast_to(t64({1, 2, 3}, {3}), {2, 3}), {1, 2, 3, 1, 2, 3}, {2, 3});
  check_values(ng::broadcast_to(ng::scalar(4, ng::float64), {2}), {4, 4}, {2});
}

TEST_CASE("ops on tensors with a zero-sized dimension run forward and backward") {
  ng::Tensor x = ng::zeros({0, 3}, ng::float64).requires_grad_();
  ng::Tensor y = ng::cat({ng::slice(x, 1, 0, 2), ng::zeros({0, 1}, ng::float64)}, 1);
  ng::Tensor z = ng::matmul(y.t().permute({1, 0}), ng::ones({3, 2}, ng::float64));
  CHECK(z.shape() == ng::Shape{0, 2});
  ng::Tensor total = z.sum() + x.sum({0}).sum();
  CHECK(total.item() == 0);
  total.backward();
  CHECK(x.grad().shape() == ng::Shape{0, 3});
}

// ---- matmul ------------------------------------------------------------------------------------------

TEST_CASE("matmul of two matrices") {
  // [[1, 2], [3, 4]] @ [[5, 6], [7, 8]] = [[1*5 + 2*7, 1*6 + 2*8], [3*5 + 4*7, 3*6 + 4*8]] = [[19, 22], [43, 50]]
  check_values(ng::matmul(t64({1, 2, 3, 4}, {2, 2}), t64({5, 6, 7, 8}, {2, 2})), {19, 22, 43, 50}, {2, 2});
  // [1, 3] @ [3, 2]: [1, 2, 3] @ [[1, 0], [0, 1], [1, 1]] = [1 + 3, 2 + 3]
  check_values(t64({1, 2, 3}, {1, 3}).matmul(t64({1, 0, 0, 1, 1, 1}, {3, 2})), {4, 5}, {1, 2});
  check_values(ng::matmul(ng::tensor({1, 2, 3, 4}, {2, 2}), ng::tensor({5, 6, 7, 8}, {2, 2})), {19, 22, 43, 50},
               {2, 2});
}

TEST_CASE("batched matmul multiplies matrix by matrix, sharing a 2-D or batch-1 side") {
  // batch 0: I @ B = B;  batch 1: 2I @ B = 2B,  with B = [[1, 2], [3, 4]]
  ng::Tensor a = t64({1, 0, 0, 1, 2, 0, 0, 2}, {2, 2, 2});
  ng::Tensor b = t64({1, 2, 3, 4}, {2, 2});
  check_values(ng::matmul(a, b), {1, 2, 3, 4, 2, 4, 6, 8}, {2, 2, 2});
  // B @ batch: B @ I = B, B @ 2I = 2B
  check_values(ng::matmul(b, a), {1, 2, 3, 4, 2, 4, 6, 8}, {2, 2, 2});
  check_values(ng::matmul(a, b.unsqueeze(0)), {1, 2, 3, 4, 2, 4, 6, 8}, {2, 2, 2});
  check_values(ng::matmul(a, ng::cat({b.unsqueeze(0), b.unsqueeze(0)}, 0)), {1, 2, 3, 4, 2, 4, 6, 8}, {2, 2, 2});
}

TEST_CASE("matmul with vectors: dot product, matrix @ vector, vector @ matrix") {
  ng::Tensor v = t64({1, 2}, {2});
  ng::Tensor m = t64({1, 2, 3, 4}, {2, 2});
  check_values(ng::matmul(v, v), {5}, {});       // 1 + 4
  check_values(ng::matmul(m, v), {5, 11}, {2});  // [1 + 4, 3 + 8]
  check_values(ng::matmul(v, m), {7, 10}, {2});  // [1 + 6, 2 + 8]
  // A batch of two matrices, m and 2m: the vector's dimension is removed, the batch stays.
  ng::Tensor batch = ng::cat({m.unsqueeze(0), (2.0 * m).unsqueeze(0)}, 0);
  check_values(ng::matmul(batch, v), {5, 11, 10, 22}, {2, 2});
  check_values(ng::matmul(v, batch), {7, 10, 14, 20}, {2, 2});
  check_values(ng::matmul(m.unsqueeze(0), v), {5, 11}, {1, 2});
  check_values(ng::matmul(v, m.unsqueeze(0)), {7, 10}, {1, 2});
}

// Without replacement, after 0 (weight 1) is drawn, 1 and 2 (1e-17 each) are equally likely next.
// Over 2000 seeds the count of the order 0,1,2 is Binomial(2000, 1/2): mean 1000, standard deviation
// 22.4; the bound 1000 +- 150 is 6.7 standard deviations (a false alarm once in 10^10), while a sampler
// that loses the small weights to rounding gives 2000 and 0.
TEST_CASE("multinomial without replacement draws among tiny remaining weights in proportion to them") {
  auto orders = [](const ng::Tensor& probs) {
    int in_order = 0, swapped = 0;
    for (uint64_t seed = 1; seed <= 2000; ++seed) {
      ng::manual_seed(seed);
      const Values drawn = ng::multinomial(probs, 3, false).to_vector();
      in_order += drawn == Values{0, 1, 2};
      swapped += drawn == Values{0, 2, 1};
    }
    return std::pair{in_order, swapped};
  };
  for (const ng::Tensor& probs : {ng::tensor({1, 1e-17, 1e-17}, ng::float64),
                                  ng::softmax(ng::tensor({40, 0, 0}), 0)}) {  // float32 [1, 4.2e-18, 4.2e-18]
    const auto [in_order, swapped] = orders(probs);
    CAPTURE(probs.to_vector());
    CHECK(in_order + swapped == 2000);  // 0 (nearly all the weight) first every time
    CHECK(std::abs(in_order - 1000) <= 150);
    CHECK(std::abs(swapped - 1000) <= 150);
  }
}
