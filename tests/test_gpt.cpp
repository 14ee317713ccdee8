// test_gpt.cpp: the ops and layers a tiny GPT needs: matmul with any number of batch dims,
// masked_fill, tril/triu, select, split/chunk, scaled_dot_product_attention with and without dropout
// (autograd/), and nn::ModuleList, nn::RMSNorm and nn::CausalSelfAttention (nn/).
//
// Forward values are compared with plain loops (a batch of 2-D products, attention written out element
// by element); gradients and second derivatives with ng::gradcheck / ng::gradgradcheck in float64, on
// broadcast batch dims, size-1 dims and negative dims and indices.
#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "nn/attention.h"
#include "normgrad.h"
#include "test_helpers.h"

using doctest::Approx;

namespace {

// Row-major flat offset of `index` in `shape`, where a size-1 dim of `shape` (or a missing leading
// one) is broadcast: it always reads position 0. `index` is right-aligned with `shape`.
int64_t broadcast_offset(const std::vector<int64_t>& index, const ng::Shape& shape) {
  const std::size_t skip = index.size() - shape.size();
  int64_t offset = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) offset = offset * shape[d] + (shape[d] == 1 ? 0 : index[skip + d]);
  return offset;
}

// a [*, M, K] @ b [*, K, N] by plain loops: for every index of the broadcast batch, the 2-D product of
// the matrices of a and b it reads.
ng::Tensor reference_matmul(const ng::Tensor& a, const ng::Tensor& b) {
  const ng::Shape sa = a.shape(), sb = b.shape();
  const int64_t M = sa[sa.size() - 2], K = sa.back(), N = sb.back();
  const ng::Shape a_batch(sa.begin(), sa.end() - 2), b_batch(sb.begin(), sb.end() - 2);
  const ng::Shape batch = ng::broadcast_shapes("reference", a_batch, b_batch);
  ng::Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  std::vector<double> out;
  std::vector<int64_t> index(batch.size(), 0);
  const int64_t matrices = ng::shape_numel(batch);
  for (int64_t m = 0; m < matrices; ++m) {
    int64_t rest = m;  // index = the digits of m in the mixed radix `batch`
    for (std::size_t d = batch.size(); d-- > 0;) {
      index[d] = rest % batch[d];
      rest /= batch[d];
    }
    const double* A = va.data() + broadcast_offset(index, a_batch) * M * K;
    const double* B = vb.data() + broadcast_offset(index, b_batch) * K * N;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double sum = 0;
        for (int64_t k = 0; k < K; ++k) sum += A[i * K + k] * B[k * N + j];
        out.push_back(sum);
      }
  }
  return ng::tensor(out, out_shape, ng::float64);
}

// Attention for q [B, H, L, E], k, v [B, H, S, E] written out element by element (Vaswani et al. eq. 1):
// out[b,h,i,:] = sum_j w_ij v[b,h,j,:], w_ij = e^(s_ij) / sum_j' e^(s_ij'), s_ij = q_i . k_j / sqrt(E),
// where allowed(i, j) is false for masked pairs (they get weight 0).
ng::Tensor reference_attention(const ng::Tensor& q, const ng::Tensor& k, const ng::Tensor& v,
                               const std::function<bool(int64_t, int64_t)>& allowed) {
  const int64_t B = q.size(0), H = q.size(1), L = q.size(2), E = q.size(3), S = k.size(2), Ev = v.size(3);
  ng::Tensor out = ng::zeros({B, H, L, Ev}, ng::float64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < L; ++i) {
        std::vector<double> score(static_cast<std::size_t>(S), 0);
        double largest = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < S; ++j) {
          if (!allowed(i, j)) continue;
          for (int64_t e = 0; e < E; ++e) score[j] += q.at({b, h, i, e}) * k.at({b, h, j, e});
          score[j] /= std::sqrt(static_cast<double>(E));
          largest = std::max(largest, score[j]);
        }
        double total = 0;
        for (int64_t j = 0; j < S; ++j) total += allowed(i, j) ? std::exp(score[j] - largest) : 0;
        for (int64_t j = 0; j < S; ++j) {
          if (!allowed(i, j)) continue;
          const double weight = std::exp(score[j] - largest) / total;
          for (int64_t e = 0; e < Ev; ++e) out.set({b, h, i, e}, out.at({b, h, i, e}) + weight * v.at({b, h, j, e}));
        }
      }
  return out;
}

}  // namespace

// ---- matmul with batch dims --------------------------------------------------------------------------

TEST_CASE("matmul with broadcast batch dims equals a loop of 2-D products over the batch indices") {
  ng::manual_seed(18);
  const std::vector<std::pair<ng::Shape, ng::Shape>> cases = {
      {{2, 3, 4, 5}, {2, 3, 5, 6}},  // [B,H,T,d] @ [B,H,d,T]
      {{3, 4, 5}, {5, 2}},           // [B,T,C] @ [C,D]: the batch folds into one product
      {{4, 5}, {2, 3, 5, 4}},        // [T,d] @ [B,H,d,T]
      {{2, 1, 4, 5}, {1, 3, 5, 2}},  // size-1 batch dims on both sides
      {{2, 1, 3, 4, 5}, {3, 5, 6}},  // 5-D with 3-D
      {{1, 4, 5}, {3, 5, 2}},        // 3-D, one batch of 1
      {{2, 3, 1, 5}, {2, 3, 5, 1}},  // 1 x 1 results
      {{3, 4, 5}, {3, 5, 2}},        // the plain 3-D case
  };
  for (const auto& shapes : cases) {
    const ng::Shape& sa = shapes.first;  // not a structured binding: clang 14 cannot capture one (CAPTURE)
    const ng::Shape& sb = shapes.second;
    CAPTURE(ng::shape_str(sa));
    CAPTURE(ng::shape_str(sb));
    const ng::Tensor a = ng::randn(sa, ng::float64), b = ng::randn(sb, ng::float64);
    CHECK(max_abs_difference(ng::matmul(a, b), reference_matmul(a, b)) < 1e-12);
    const ng::Tensor a32 = a.to(ng::float32), b32 = b.to(ng::float32);
    CHECK(max_abs_difference(ng::matmul(a32, b32).to(ng::float64), reference_matmul(a, b)) < 1e-4);
  }
}

TEST_CASE("matmul of a vector with an N-d operand adds and removes a dim as PyTorch does") {
  ng::manual_seed(2);
  const ng::Tensor x = ng::randn({2, 3, 4, 5}, ng::float64), w = ng::randn({5}, ng::float64),
                   u = ng::randn({4}, ng::float64);
  const ng::Tensor xw = ng::matmul(x, w), ux = ng::matmul(u, x);
  CHECK(xw.shape() == ng::Shape{2, 3, 4});
  CHECK(ux.shape() == ng::Shape{2, 3, 5});
  CHECK(max_abs_difference(xw, ng::reshape(reference_matmul(x, ng::reshape(w, {5, 1})), {2, 3, 4})) < 1e-12);
  CHECK(max_abs_difference(ux, ng::reshape(reference_matmul(ng::reshape(u, {1, 4}), x), {2, 3, 5})) < 1e-12);
}

TEST_CASE("N-d matmul passes gradcheck and gradgradcheck, the broadcast side's gradient summed over the batch") {
  ng::manual_seed(3);
  const std::vector<std::pair<ng::Shape, ng::Shape>> cases = {
      {{2, 2, 3, 2}, {2, 2, 2, 3}}, {{2, 3, 2}, {2, 3}}, {{3, 2}, {2, 1, 2, 3}}, {{2, 1, 3, 2}, {1, 2, 2, 1}},
      {{1, 2, 1, 3, 2}, {2, 4}},    {{2, 2, 3, 2}, {2}}, {{3}, {2, 2, 3, 2}},
  };
  for (const auto& [sa, sb] : cases) {
    const std::string what = "matmul " + ng::shape_str(sa) + " @ " + ng::shape_str(sb);
    check_first_and_second_derivatives(what, [](const Inputs& in) { return ng::matmul(in[0], in[1]); },
                                       {uniform_leaf(sa, -1, 1), uniform_leaf(sb, -1, 1)});
  }
}

TEST_CASE("matmul's gradient for a shared 2-D operand is the sum of its per-batch gradients") {
  ng::manual_seed(4);
  const ng::Tensor a = uniform_leaf({2, 3, 4, 5}, -1, 1), w = uniform_leaf({5, 2}, -1, 1);
  ng::sum(ng::matmul(a, w)).backward();
  // d/dw sum(a @ w) = sum over the batch of a_b^T @ ones
  ng::Tensor expected = ng::zeros({5, 2}, ng::float64);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      expected = expected + ng::matmul(ng::transpose(ng::select(ng::select(a.detach(), 0, i), 0, j), 0, 1),
                                       ng::ones({4, 2}, ng::float64));
  CHECK(max_abs_difference(w.grad(), expected) < 1e-12);
}

TEST_CASE("matmul of batch dims that do not broadcast names the op, both shapes and the batch dims") {
  CHECK_ERROR_MENTIONS(ng::matmul(ng::zeros({2, 3, 4, 5}), ng::zeros({3, 3, 5, 6})), "matmul", "[2, 3, 4, 5]",
                       "[3, 3, 5, 6]", "batch");
  CHECK_ERROR_MENTIONS(ng::matmul(ng::zeros({2, 2, 3, 4}), ng::zeros({2, 5, 6})), "matmul", "[2, 2, 3, 4]",
                       "[2, 5, 6]");
  CHECK_ERROR_MENTIONS(ng::matmul(ng::scalar(1), ng::zeros({2, 2, 4, 5})), "matmul", "[]", "at least 1");
}

// ---- masked_fill, tril, triu --------------------------------------------------------------------------

TEST_CASE("masked_fill puts the value where the mask is nonzero, the mask broadcast to the input") {
  const ng::Tensor x = ng::arange(0, 12, 1, ng::float64).reshape({2, 2, 3});
  for (ng::Dtype mask_dtype : {ng::int64, ng::float32, ng::float64}) {
    const ng::Tensor mask = ng::tensor({1, 0, 0, 0, 1, 1}, {2, 3}, mask_dtype);  // [2, 3] broadcast to [2, 2, 3]
    const ng::Tensor out = ng::masked_fill(x, mask, -7);
    REQUIRE(out.shape() == x.shape());
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 3; ++j) CHECK(out.at({b, i, j}) == (mask.at({i, j}) != 0 ? -7 : x.at({b, i, j})));
    CHECK(max_abs_difference(x.masked_fill(mask, -7), out) == 0);  // the method form
  }
}

TEST_CASE("masked_fill sends no gradient to the filled positions, and passes gradcheck and gradgradcheck") {
  const ng::Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  const ng::Tensor mask = ng::tensor({0, 1, 0}, {3}, ng::int64);
  ng::sum(ng::masked_fill(x, mask, 100) * 3.0).backward();  // d/dx = 3 where kept, 0 where filled
  CHECK(x.grad().to_vector() == std::vector<double>{3, 0, 3, 3, 0, 3});

  ng::manual_seed(5);
  check_first_and_second_derivatives("masked_fill",
                                     [mask](const Inputs& in) { return ng::masked_fill(in[0], mask, 0.5) * in[0]; },
                                     {uniform_leaf({2, 1, 3}, -1, 1)});
}

TEST_CASE("masked_fill with -inf then softmax gives masked entries weight 0, and a fully masked row NaN as PyTorch") {
  const double inf = std::numeric_limits<double>::infinity();
  const ng::Tensor scores = ng::tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3}, ng::float64);
  const ng::Tensor mask = ng::tensor({0, 1, 1, 0, 0, 1, 1, 1, 1}, {3, 3}, ng::int64);  // row 2 fully masked
  const ng::Tensor weights = ng::softmax(ng::masked_fill(scores, mask, -inf), -1);
  CHECK(weights.at({0, 0}) == 1);
  CHECK(weights.at({0, 1}) == 0);
  CHECK(weights.at({1, 0}) == Approx(1 / (1 + std::exp(1.0))));
  CHECK(weights.at({1, 2}) == 0);
  // softmax of [-inf, -inf, -inf] is 0/0: NaN, as torch.softmax gives (no "safe" softmax here).
  for (int64_t j = 0; j < 3; ++j) CHECK(std::isnan(weights.at({2, j})));
}

TEST_CASE("masked_fill with -inf followed by softmax passes gradcheck and gradgradcheck on rows with a kept entry") {
  ng::manual_seed(6);
  const ng::Tensor mask = ng::triu(ng::ones({3, 4}, ng::int64), 1);
  check_first_and_second_derivatives("softmax(masked_fill(-inf))",
                                     [mask](const Inputs& in) {
                                       return ng::softmax(
                                           ng::masked_fill(in[0], mask, -std::numeric_limits<double>::infinity()), -1);
                                     },
                                     {uniform_leaf({2, 3, 4}, -1, 1)});
}

TEST_CASE("tril and triu keep the triangle j - i <= diagonal (tril) or >= diagonal (triu) of the last two dims") {
  const ng::Tensor x = ng::arange(1, 25, 1, ng::float64).reshape({2, 3, 4});
  for (int64_t diagonal : {-4, -1, 0, 1, 2, 5}) {
    CAPTURE(diagonal);
    const ng::Tensor lower = ng::tril(x, diagonal), upper = ng::triu(x, diagonal);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 4; ++j) {
          CHECK(lower.at({b, i, j}) == (j - i <= diagonal ? x.at({b, i, j}) : 0));
          CHECK(upper.at({b, i, j}) == (j - i >= diagonal ? x.at({b, i, j}) : 0));
        }
    CHECK(max_abs_difference(x.tril(diagonal), lower) == 0);
    CHECK(max_abs_difference(x.triu(diagonal), upper) == 0);
  }
  // an infinity outside the triangle becomes 0, not NaN (no multiplication by a 0/1 mask)
  const ng::Tensor with_inf = ng::tensor({1, std::numeric_limits<double>::infinity(), 3, 4}, {2, 2}, ng::float64);
  CHECK(ng::tril(with_inf).to_vector() == std::vector<double>{1, 0, 3, 4});
}

TEST_CASE("tril and triu pass gradcheck and gradgradcheck (gradient 1 inside the triangle, 0 outside)") {
  ng::manual_seed(7);
  for (int64_t diagonal : {-1, 0, 2}) {
    const std::string suffix = " diagonal " + std::to_string(diagonal);
    check_first_and_second_derivatives("tril" + suffix,
                                       [diagonal](const Inputs& in) { return ng::tril(in[0], diagonal) * in[0]; },
                                       {uniform_leaf({2, 3, 4}, -1, 1)});
    check_first_and_second_derivatives("triu" + suffix,
                                       [diagonal](const Inputs& in) { return ng::triu(in[0], diagonal) * in[0]; },
                                       {uniform_leaf({1, 4, 3}, -1, 1)});
  }
}

TEST_CASE("masked_fill, tril and triu refuse bad arguments naming the op and the shapes") {
  CHECK_ERROR_MENTIONS(ng::masked_fill(ng::zeros({3}), ng::ones({2, 3}, ng::int64), 0), "masked_fill", "[2, 3]", "[3]");
  CHECK_ERROR_MENTIONS(ng::masked_fill(ng::zeros({3}), ng::ones({4}, ng::int64), 0), "masked_fill", "[4]", "[3]");
  CHECK_ERROR_MENTIONS(
      ng::masked_fill(ng::zeros({3}, ng::int64), ng::ones({3}, ng::int64), -std::numeric_limits<double>::infinity()),
      "masked_fill", "int64");
  CHECK_ERROR_MENTIONS(ng::tril(ng::zeros({3})), "tril", "[3]", "2 dims");
  CHECK_ERROR_MENTIONS(ng::triu(ng::scalar(1)), "triu", "[]");
}

// ---- select, split, chunk ----------------------------------------------------------------------------

TEST_CASE("select removes the dim and picks one index, negative dim and index counting from the end") {
  const ng::Tensor x = ng::arange(0, 24, 1, ng::float64).reshape({2, 3, 4});
  const ng::Tensor middle = ng::select(x, 1, 2);
  REQUIRE(middle.shape() == ng::Shape{2, 4});
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t c = 0; c < 4; ++c) CHECK(middle.at({a, c}) == x.at({a, 2, c}));
  CHECK(max_abs_difference(ng::select(x, -2, -1), middle) == 0);
  CHECK(max_abs_difference(x.select(1, 2), middle) == 0);
  const ng::Tensor last = ng::select(x, -1, -4);
  REQUIRE(last.shape() == ng::Shape{2, 3});
  CHECK(last.at({1, 2}) == x.at({1, 2, 0}));
  CHECK(ng::select(ng::tensor({5, 6}), 0, -1).shape() == ng::Shape{});
  CHECK(ng::select(ng::tensor({5, 6}), 0, -1).item() == 6);
}

TEST_CASE("select's backward puts the gradient into zeros at the index; it passes gradcheck and gradgradcheck") {
  const ng::Tensor x = leaf({1, 2, 3, 4, 5, 6}, {3, 2});
  ng::sum(ng::select(x, 0, -2) * 10.0).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 10, 10, 0, 0});

  ng::manual_seed(8);
  check_first_and_second_derivatives("select(x, -1, -1)",
                                     [](const Inputs& in) { return ng::pow(ng::select(in[0], -1, -1), 2.0); },
                                     {uniform_leaf({2, 1, 3}, -1, 1)});
  check_first_and_second_derivatives("select(x, 1, 0) on a size-1 dim",
                                     [](const Inputs& in) { return ng::pow(ng::select(in[0], 1, 0), 3.0); },
                                     {uniform_leaf({2, 1, 3}, -1, 1)});
}

TEST_CASE("split and chunk cut along a dim like PyTorch: the last piece smaller, chunk possibly fewer pieces") {
  const ng::Tensor x = ng::arange(0, 10, 1, ng::float64).reshape({2, 5});
  const auto sizes_of = [](const std::vector<ng::Tensor>& pieces, int64_t dim) {
    std::vector<int64_t> sizes;
    for (const ng::Tensor& p : pieces) sizes.push_back(p.size(dim));
    return sizes;
  };
  CHECK(sizes_of(ng::split(x, 2, 1), 1) == std::vector<int64_t>{2, 2, 1});
  CHECK(sizes_of(ng::split(x, 5, -1), 1) == std::vector<int64_t>{5});
  CHECK(sizes_of(ng::split(x, 7, 1), 1) == std::vector<int64_t>{5});
  CHECK(sizes_of(ng::split(x, {1, 0, 4}, 1), 1) == std::vector<int64_t>{1, 0, 4});
  CHECK(sizes_of(ng::chunk(x, 2, 1), 1) == std::vector<int64_t>{3, 2});
  CHECK(sizes_of(ng::chunk(x, 4, 1), 1) == std::vector<int64_t>{2, 2, 1});  // 3 pieces, as torch.chunk
  CHECK(sizes_of(ng::chunk(x, 5, -1), 1) == std::vector<int64_t>{1, 1, 1, 1, 1});
  CHECK(sizes_of(ng::chunk(x, 3, 0), 0) == std::vector<int64_t>{1, 1});
  CHECK(sizes_of(ng::chunk(ng::zeros({0, 2}), 3, 0), 0) == std::vector<int64_t>{0, 0, 0});
  CHECK(sizes_of(ng::split(ng::zeros({0, 2}), 2, 0), 0) == std::vector<int64_t>{0});
  CHECK(sizes_of(x.split(3, 1), 1) == std::vector<int64_t>{3, 2});
  CHECK(sizes_of(x.chunk(3, 1), 1) == std::vector<int64_t>{2, 2, 1});
  // the pieces are x's values in order: joined again they are x
  for (const auto& pieces : {ng::split(x, 2, 1), ng::chunk(x, 4, -1), ng::split(x, {3, 2}, 1)})
    CHECK(max_abs_difference(ng::cat(pieces, 1), x) == 0);
  // copies: writing into a piece leaves x alone
  std::vector<ng::Tensor> pieces = ng::split(x, 2, 1);
  pieces[0].set({0, 0}, 100);
  CHECK(x.at({0, 0}) == 0);
}

TEST_CASE("split and chunk pass gradcheck and gradgradcheck, pieces used differently") {
  ng::manual_seed(9);
  check_first_and_second_derivatives("split",
                                     [](const Inputs& in) {
                                       std::vector<ng::Tensor> p =
                                           ng::split(in[0], 2, -1);  // [2, 3, 2], [2, 3, 2], [2, 3, 1]
                                       return p[0] * p[1] + ng::pow(p[2], 2.0);
                                     },
                                     {uniform_leaf({2, 3, 5}, -1, 1)});
  check_first_and_second_derivatives("chunk",
                                     [](const Inputs& in) {
                                       std::vector<ng::Tensor> p =
                                           ng::chunk(in[0], 3, 0);  // q, k, v style: three [1, 4]
                                       return ng::matmul(p[0], ng::transpose(p[1], 0, 1)) * p[2];
                                     },
                                     {uniform_leaf({3, 4}, -1, 1)});
}

TEST_CASE("select, split and chunk refuse bad arguments naming the op, the shape and what was expected") {
  const ng::Tensor x = ng::zeros({2, 3});
  CHECK_ERROR_MENTIONS(ng::select(x, 1, 3), "select", "index 3", "[2, 3]", "-3 <= index < 3");
  CHECK_ERROR_MENTIONS(ng::select(x, 0, -3), "select", "index -3", "[2, 3]");
  CHECK_ERROR_MENTIONS(ng::select(x, 2, 0), "select");
  CHECK_ERROR_MENTIONS(ng::select(ng::scalar(1), 0, 0), "select", "0-dim");
  CHECK_ERROR_MENTIONS(ng::split(x, 0, 1), "split", "split_size 0", "[2, 3]");
  CHECK_ERROR_MENTIONS(ng::split(x, -1, 1), "split", "[2, 3]");
  CHECK_ERROR_MENTIONS(ng::split(x, {1, 1}, 1), "split", "[1, 1]", "[2, 3]", "add up to 3");
  CHECK_ERROR_MENTIONS(ng::split(x, {4, -1}, 1), "split", "[4, -1]", "non-negative");
  CHECK_ERROR_MENTIONS(ng::chunk(x, 0, 1), "chunk", "chunks = 0", "[2, 3]");
  CHECK_ERROR_MENTIONS(ng::chunk(x, 2, 5), "chunk");
}

// ---- scaled_dot_product_attention --------------------------------------------------------------------

TEST_CASE("scaled_dot_product_attention equals attention written out element by element") {
  ng::manual_seed(10);
  const int64_t B = 2, H = 3, L = 4, S = 5, E = 6;
  const ng::Tensor q = ng::randn({B, H, L, E}, ng::float64), k = ng::randn({B, H, S, E}, ng::float64),
                   v = ng::randn({B, H, S, 2}, ng::float64);
  const auto all = [](int64_t, int64_t) { return true; };
  const auto causal = [](int64_t i, int64_t j) { return j <= i; };  // top-left aligned, as ones(L, S).tril()
  const auto banded = [](int64_t i, int64_t j) { return (i + j) % 3 != 0; };
  CHECK(max_abs_difference(ng::scaled_dot_product_attention(q, k, v), reference_attention(q, k, v, all)) < 1e-12);
  CHECK(max_abs_difference(ng::scaled_dot_product_attention(q, k, v, {}, 0, true),
                           reference_attention(q, k, v, causal)) < 1e-12);
  // an int64 mask is PyTorch's bool mask: nonzero may attend; [L, S] broadcast over [B, H]
  ng::Tensor allowed = ng::zeros({L, S}, ng::int64);
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < S; ++j) allowed.set({i, j}, banded(i, j));
  CHECK(max_abs_difference(ng::scaled_dot_product_attention(q, k, v, allowed), reference_attention(q, k, v, banded)) <
        1e-12);
  // a float mask is added to the scores: 0 where allowed, -inf elsewhere gives the same
  const ng::Tensor additive =
      ng::masked_fill(ng::zeros({L, S}, ng::float64), ng::eq(allowed, 0.0), -std::numeric_limits<double>::infinity());
  CHECK(max_abs_difference(ng::scaled_dot_product_attention(q, k, v, additive), reference_attention(q, k, v, banded)) <
        1e-12);
  // float32 agrees to float32 precision
  CHECK(max_abs_difference(
            ng::scaled_dot_product_attention(q.to(ng::float32), k.to(ng::float32), v.to(ng::float32), {}, 0, true)
                .to(ng::float64),
            reference_attention(q, k, v, causal)) < 1e-5);
}

TEST_CASE("scaled_dot_product_attention scales by 1/sqrt(E) unless given a scale, and broadcasts batch dims") {
  ng::manual_seed(11);
  const ng::Tensor q = ng::randn({2, 3, 4}, ng::float64), k = ng::randn({3, 4}, ng::float64),
                   v = ng::randn({1, 3, 2}, ng::float64);
  const ng::Tensor expected = ng::matmul(ng::softmax(ng::matmul(q, ng::transpose(k, 0, 1)) * 0.5, -1), v);
  CHECK(max_abs_difference(ng::scaled_dot_product_attention(q, k, v), expected) < 1e-12);  // 1/sqrt(4)
  const ng::Tensor scaled = ng::matmul(ng::softmax(ng::matmul(q, ng::transpose(k, 0, 1)) * 3.0, -1), v);
  CHECK(max_abs_difference(ng::scaled_dot_product_attention(q, k, v, {}, 0, false, 3.0), scaled) < 1e-12);
}

TEST_CASE("scaled_dot_product_attention with every key masked out gives NaN for that query, as softmax does") {
  const ng::Tensor q = ng::ones({1, 2, 2}, ng::float64), k = ng::ones({1, 3, 2}, ng::float64),
                   v = ng::ones({1, 3, 2}, ng::float64);
  const ng::Tensor allowed = ng::tensor({1, 0, 1, 0, 0, 0}, {2, 3}, ng::int64);  // query 1 may attend nowhere
  const ng::Tensor out = ng::scaled_dot_product_attention(q, k, v, allowed);
  CHECK(out.at({0, 0, 0}) == Approx(1));
  CHECK(std::isnan(out.at({0, 1, 0})));
}

TEST_CASE("scaled_dot_product_attention passes gradcheck and gradgradcheck in q, k and v") {
  ng::manual_seed(12);
  check_first_and_second_derivatives(
      "sdpa causal",
      [](const Inputs& in) { return ng::scaled_dot_product_attention(in[0], in[1], in[2], {}, 0, true); },
      {uniform_leaf({1, 2, 3, 2}, -1, 1), uniform_leaf({1, 2, 3, 2}, -1, 1), uniform_leaf({1, 2, 3, 2}, -1, 1)});
  const ng::Tensor allowed = ng::tensor({1, 1, 0, 0, 1, 1}, {2, 3}, ng::int64);
  check_first_and_second_derivatives(
      "sdpa masked, broadcast batch, L != S",
      [allowed](const Inputs& in) { return ng::scaled_dot_product_attention(in[0], in[1], in[2], allowed); },
      {uniform_leaf({2, 1, 2, 3}, -1, 1), uniform_leaf({1, 3, 3}, -1, 1), uniform_leaf({3, 1}, -1, 1)});
}

TEST_CASE("scaled_dot_product_attention refuses bad arguments naming the op and the shapes") {
  const ng::Tensor q = ng::zeros({2, 4, 8}), k = ng::zeros({2, 5, 8}), v = ng::zeros({2, 5, 3});
  const char* op = "scaled_dot_product_attention";
  CHECK_ERROR_MENTIONS(ng::scaled_dot_product_attention(q, ng::zeros({2, 5, 7}), v), op, "[2, 4, 8]", "[2, 5, 7]", "E");
  CHECK_ERROR_MENTIONS(ng::scaled_dot_product_attention(q, k, ng::zeros({2, 4, 3})), op, "[2, 4, 3]", "S");
  CHECK_ERROR_MENTIONS(ng::scaled_dot_product_attention(ng::zeros({8}), k, v), op, "[8]");
  CHECK_ERROR_MENTIONS(ng::scaled_dot_product_attention(ng::zeros({3, 4, 8}), k, v), op, "[3, 4, 8]", "batch");
  CHECK_ERROR_MENTIONS(ng::scaled_dot_product_attention(q, k, v, ng::ones({4, 4}, ng::int64)), op, "[4, 4]",
                       "[2, 4, 5]");
  CHECK_ERROR_MENTIONS(ng::scaled_dot_product_attention(q, k, v, ng::ones({4, 5}, ng::int64), 0, true), op,
                       "is_causal");
  CHECK_ERROR_MENTIONS(ng::scaled_dot_product_attention(q, k.to(ng::float64), v), op, "float64");
  CHECK_ERROR_MENTIONS(ng::scaled_dot_product_attention(q, k, v, ng::ones({4, 5}, ng::float64)), op, "float64");
}

TEST_CASE("scaled_dot_product_attention with dropout_p = 0 draws nothing and gives the output without dropout") {
  ng::manual_seed(30);
  const ng::Tensor q = ng::randn({2, 3, 4, 5}, ng::float64), k = ng::randn({2, 3, 6, 5}, ng::float64),
                   v = ng::randn({2, 3, 6, 2}, ng::float64);
  const ng::Tensor state = ng::get_rng_state();
  const ng::Tensor out = ng::scaled_dot_product_attention(q, k, v, {}, 0.0, true);
  CHECK(ng::get_rng_state().to_vector() == state.to_vector());
  const auto causal = [](int64_t i, int64_t j) { return j <= i; };
  CHECK(max_abs_difference(out, reference_attention(q, k, v, causal)) < 1e-12);
}

TEST_CASE("scaled_dot_product_attention with dropout_p > 0 is softmax, then dropout's mask, then @ v") {
  // The same generator state gives the same mask: sdpa draws it over the weights [*, L, S] in row-major
  // order, as nn::functional::dropout on those weights does.
  ng::manual_seed(31);
  const int64_t B = 2, H = 3, L = 5, S = 7, E = 4;
  const double p = 0.3;
  for (const ng::Dtype dtype : {ng::float64, ng::float32}) {
    CAPTURE(ng::dtype_name(dtype));
    const ng::Tensor q = ng::randn({B, H, L, E}, dtype), k = ng::randn({B, H, S, E}, dtype),
                     v = ng::randn({B, H, S, 3}, dtype);
    const ng::Tensor scores = ng::matmul(q, ng::transpose(k, -2, -1)) * (1 / std::sqrt(double(E)));
    const ng::Tensor future = ng::triu(ng::ones({L, S}, ng::int64), 1);               // key j > query i
    const ng::Tensor allowed = ng::tensor({1, 0, 1, 1, 0, 1, 1}, {1, S}, ng::int64);  // keys 1 and 4 never
    const double tolerance = dtype == ng::float64 ? 1e-12 : 1e-5;
    const double minus_inf = -std::numeric_limits<double>::infinity();
    struct Case {
      std::string name;
      ng::Tensor mask;
      bool causal;
      ng::Tensor weights;  // softmax of the masked scores, before dropout
    };
    const std::vector<Case> cases{
        {"no mask", {}, false, ng::softmax(scores, -1)},
        {"causal", {}, true, ng::softmax(ng::masked_fill(scores, future, minus_inf), -1)},
        {"bool mask", allowed, false, ng::softmax(ng::masked_fill(scores, ng::eq(allowed, 0.0), minus_inf), -1)}};
    for (const Case& c : cases) {
      CAPTURE(c.name);
      const ng::Tensor state = ng::get_rng_state();
      const ng::Tensor out = ng::scaled_dot_product_attention(q, k, v, c.mask, p, c.causal);
      const ng::Tensor after = ng::get_rng_state();
      ng::set_rng_state(state);
      const ng::Tensor expected = ng::matmul(ng::nn::functional::dropout(c.weights, p, true), v);
      CHECK(ng::get_rng_state().to_vector() == after.to_vector());  // both drew one mask of [B, H, L, S]
      CHECK(max_abs_difference(out, expected) < tolerance);
      // the next call draws the next mask: some weight kept before is dropped now, or the reverse
      CHECK(max_abs_difference(ng::scaled_dot_product_attention(q, k, v, c.mask, p, c.causal), out) > 0);
    }
  }
}

TEST_CASE("scaled_dot_product_attention with dropout passes gradcheck and gradgradcheck with its mask fixed") {
  // Each evaluation starts from the same generator state, so every one of them draws the same mask.
  ng::manual_seed(32);
  const ng::Tensor state = ng::get_rng_state();
  check_first_and_second_derivatives(
      "sdpa causal, dropout 0.4",
      [state](const Inputs& in) {
        ng::set_rng_state(state);
        return ng::scaled_dot_product_attention(in[0], in[1], in[2], {}, 0.4, true);
      },
      {uniform_leaf({1, 2, 3, 2}, -1, 1), uniform_leaf({1, 2, 3, 2}, -1, 1), uniform_leaf({1, 2, 3, 2}, -1, 1)});
  const ng::Tensor allowed = ng::tensor({1, 1, 0, 0, 1, 1}, {2, 3}, ng::int64);
  check_first_and_second_derivatives(
      "sdpa masked, dropout 0.25",
      [state, allowed](const Inputs& in) {
        ng::set_rng_state(state);
        return ng::scaled_dot_product_attention(in[0], in[1], in[2], allowed, 0.25);
      },
      {uniform_leaf({2, 1, 2, 3}, -1, 1), uniform_leaf({1, 3, 3}, -1, 1), uniform_leaf({3, 1}, -1, 1)});
}

TEST_CASE("scaled_dot_product_attention refuses a dropout_p outside [0, 1), naming the op and the value") {
  const ng::Tensor q = ng::zeros({2, 4, 8}), k = ng::zeros({2, 5, 8}), v = ng::zeros({2, 5, 3});
  const char* op = "scaled_dot_product_attention";
  CHECK_ERROR_MENTIONS(ng::scaled_dot_product_attention(q, k, v, {}, -0.1), op, "dropout_p = -0.1", "[0, 1)");
  CHECK_ERROR_MENTIONS(ng::scaled_dot_product_attention(q, k, v, {}, 1.0), op, "dropout_p = 1.0", "[0, 1)");
  CHECK_ERROR_MENTIONS(ng::scaled_dot_product_attention(q, k, v, {}, 1.5), op, "dropout_p = 1.5", "[0, 1)");
  CHECK_ERROR_MENTIONS(ng::scaled_dot_product_attention(q, k, v, {}, std::nan("")), op, "dropout_p = nan", "[0, 1)");
}

// ---- nn::RMSNorm --------------------------------------------------------------------------------------

TEST_CASE("RMSNorm divides by the root mean square over the normalized dims and scales by weight") {
  ng::manual_seed(13);
  const ng::Tensor x = ng::randn({2, 3, 4}, ng::float64);
  ng::nn::RMSNorm norm({4}, 1e-6, true, ng::float64);
  {
    ng::NoGradGuard no_grad;
    norm.weight.copy_(ng::tensor({1, 2, 3, 4}, ng::float64));
  }
  const ng::Tensor y = norm(x);
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t t = 0; t < 3; ++t) {
      double mean_square = 0;
      for (int64_t c = 0; c < 4; ++c) mean_square += x.at({a, t, c}) * x.at({a, t, c}) / 4;
      for (int64_t c = 0; c < 4; ++c)
        CHECK(y.at({a, t, c}) == Approx(x.at({a, t, c}) / std::sqrt(mean_square + 1e-6) * (c + 1)).epsilon(1e-12));
    }
  // over the last two dims: one root mean square per leading index
  const ng::Tensor y2 = ng::nn::functional::rms_norm(x, {3, 4});
  const ng::Tensor rms = ng::sqrt(ng::mean(ng::pow(x, 2.0), {1, 2}, true) + std::numeric_limits<double>::epsilon());
  CHECK(max_abs_difference(y2, x / rms) < 1e-12);
}

TEST_CASE("RMSNorm has PyTorch's parameter (weight, ones) and default eps (the dtype's machine epsilon)") {
  ng::nn::RMSNorm norm({4});
  const auto named = norm.named_parameters();
  REQUIRE(named.size() == 1);
  CHECK(named[0].first == "weight");
  CHECK(named[0].second.to_vector() == std::vector<double>{1, 1, 1, 1});
  CHECK_FALSE(norm.eps.has_value());
  // all zeros: 0 / sqrt(0 + eps) = 0, not NaN
  CHECK(norm(ng::zeros({2, 4})).to_vector() == std::vector<double>(8, 0));
  // eps = finfo(float32).eps: x = 1e-4 has mean square 1e-8, so y = 1e-4 / sqrt(1e-8 + 1.19e-7)
  const double eps32 = std::numeric_limits<float>::epsilon();
  CHECK(norm(ng::full({1, 4}, 1e-4)).at({0, 0}) == Approx(1e-4 / std::sqrt(1e-8 + eps32)).epsilon(1e-5));
  ng::nn::RMSNorm without_weight({4}, 1e-5, false);
  CHECK(without_weight.parameters().empty());
}

TEST_CASE("rms_norm passes gradcheck and gradgradcheck in x and weight") {
  ng::manual_seed(14);
  check_first_and_second_derivatives(
      "rms_norm", [](const Inputs& in) { return ng::nn::functional::rms_norm(in[0], {3}, in[1], 1e-5); },
      {uniform_leaf({2, 1, 3}, -1, 1), uniform_leaf({3}, -1, 1)});
  check_first_and_second_derivatives("rms_norm over two dims, default eps",
                                     [](const Inputs& in) {
                                       return ng::nn::functional::rms_norm(in[0], {2, 3});
                                     },
                                     {uniform_leaf({2, 2, 3}, -1, 1)});
}

TEST_CASE("RMSNorm refuses bad shapes and arguments naming the layer and the shapes") {
  CHECK_ERROR_MENTIONS(ng::nn::functional::rms_norm(ng::zeros({2, 3}), {4}), "rms_norm", "[2, 3]", "[4]");
  CHECK_ERROR_MENTIONS(ng::nn::functional::rms_norm(ng::zeros({2, 3}), {3}, ng::ones({2})), "rms_norm", "weight", "[2]",
                       "[3]");
  CHECK_ERROR_MENTIONS(ng::nn::RMSNorm({}), "RMSNorm", "normalized_shape");
  CHECK_ERROR_MENTIONS(ng::nn::RMSNorm({3}, -1.0), "RMSNorm", "eps");
  ng::nn::RMSNorm norm({3});
  CHECK_ERROR_MENTIONS(norm(ng::zeros({3, 2})), "rms_norm", "[3, 2]");
}

// ---- nn::ModuleList -----------------------------------------------------------------------------------

namespace {

// A GPT block as nanoGPT names it: ln_1, attn, ln_2 (no MLP: not needed for the names).
struct Block : ng::nn::Module {
  Block(int64_t n_embd, int64_t n_head) {
    ln_1 = register_module("ln_1", std::make_shared<ng::nn::RMSNorm>(ng::Shape{n_embd}));
    attn = register_module("attn", std::make_shared<ng::nn::CausalSelfAttention>(n_embd, n_head));
    ln_2 = register_module("ln_2", std::make_shared<ng::nn::RMSNorm>(ng::Shape{n_embd}));
  }
  // x: [B, T, C] -> [B, T, C], the pre-norm residual branch
  ng::Tensor forward(const ng::Tensor& x) override { return x + (*attn)((*ln_1)(x)); }
  std::shared_ptr<ng::nn::RMSNorm> ln_1, ln_2;
  std::shared_ptr<ng::nn::CausalSelfAttention> attn;
};

struct TinyGpt : ng::nn::Module {
  TinyGpt(int64_t n_layer, int64_t n_embd, int64_t n_head) {
    auto blocks = std::make_shared<ng::nn::ModuleList>();
    for (int64_t i = 0; i < n_layer; ++i) blocks->append(std::make_shared<Block>(n_embd, n_head));
    h = register_module("h", blocks);
    ln_f = register_module("ln_f", std::make_shared<ng::nn::RMSNorm>(ng::Shape{n_embd}));
  }
  ng::Tensor forward(const ng::Tensor& x) override {
    ng::Tensor y = x;
    for (const auto& block : *h) y = (*block)(y);
    return (*ln_f)(y);
  }
  std::shared_ptr<ng::nn::ModuleList> h;
  std::shared_ptr<ng::nn::RMSNorm> ln_f;
};

}  // namespace

TEST_CASE("a ModuleList of blocks registered as h names its parameters h.0.attn.c_attn.weight, as PyTorch") {
  TinyGpt gpt(2, 8, 2);
  std::vector<std::string> names;
  for (const auto& [name, tensor] : gpt.named_parameters()) names.push_back(name);
  const std::vector<std::string> expected = {
      "h.0.ln_1.weight",      "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias", "h.0.attn.c_proj.weight",
      "h.0.attn.c_proj.bias", "h.0.ln_2.weight",        "h.1.ln_1.weight",      "h.1.attn.c_attn.weight",
      "h.1.attn.c_attn.bias", "h.1.attn.c_proj.weight", "h.1.attn.c_proj.bias", "h.1.ln_2.weight",
      "ln_f.weight"};
  CHECK(names == expected);
  // registered after it was filled, the tensors' own names (to_dot's labels) carry the full path too
  CHECK(gpt.h->get<Block>(1)->attn->c_proj->weight.name() == "h.1.attn.c_proj.weight");
  const ng::Tensor y = gpt(ng::randn({2, 3, 8}));
  CHECK(y.shape() == ng::Shape{2, 3, 8});
}

TEST_CASE("ModuleList indexes from either end, iterates in order and has no forward") {
  auto first = std::make_shared<ng::nn::Linear>(2, 3), second = std::make_shared<ng::nn::Linear>(3, 4);
  ng::nn::ModuleList list{first, second};
  CHECK(list.size() == 2);
  CHECK(&list[0] == first.get());
  CHECK(&list[-1] == second.get());
  CHECK(list.get<ng::nn::Linear>(-2) == first);
  std::vector<ng::nn::Module*> seen;
  for (const auto& module : list) seen.push_back(module.get());
  CHECK(seen == std::vector<ng::nn::Module*>{first.get(), second.get()});
  CHECK(list.parameters().size() == 4);
  CHECK_ERROR_MENTIONS(list[2], "ModuleList", "index 2", "2 modules");
  CHECK_ERROR_MENTIONS(list[-3], "ModuleList", "index -3");
  CHECK_ERROR_MENTIONS(list.get<ng::nn::RMSNorm>(0), "ModuleList", "type");
  CHECK_ERROR_MENTIONS(list(ng::zeros({1, 2})), "ModuleList", "forward", "[1, 2]");
  CHECK_ERROR_MENTIONS(list.append(nullptr), "ModuleList", "null");
}

// ---- nn::CausalSelfAttention --------------------------------------------------------------------------

TEST_CASE("CausalSelfAttention has nanoGPT's parameters: c_attn [3C, C] and [3C], c_proj [C, C] and [C]") {
  ng::nn::CausalSelfAttention attn(12, 3);
  const auto named = attn.named_parameters();
  REQUIRE(named.size() == 4);
  CHECK(named[0].first == "c_attn.weight");
  CHECK(named[0].second.shape() == ng::Shape{36, 12});
  CHECK(named[1].first == "c_attn.bias");
  CHECK(named[1].second.shape() == ng::Shape{36});
  CHECK(named[2].first == "c_proj.weight");
  CHECK(named[2].second.shape() == ng::Shape{12, 12});
  CHECK(named[3].first == "c_proj.bias");
  CHECK(named[3].second.shape() == ng::Shape{12});
  CHECK(ng::nn::CausalSelfAttention(12, 3, false).parameters().size() == 2);
}

TEST_CASE("CausalSelfAttention equals heads of causal attention written out by hand") {
  ng::manual_seed(15);
  const int64_t B = 2, T = 4, C = 6, n_head = 2, hs = C / n_head;
  ng::nn::CausalSelfAttention attn(C, n_head, true, ng::float64);
  const ng::Tensor x = ng::randn({B, T, C}, ng::float64);
  // qkv = x W^T + b, then head h of q is qkv[.., h * hs .. (h+1) * hs), of k the same + C, of v + 2C
  const ng::Tensor W = attn.c_attn->weight.detach(), bias = attn.c_attn->bias.detach();
  ng::Tensor q = ng::zeros({B, n_head, T, hs}, ng::float64), k = q.clone(), v = q.clone();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t o = 0; o < 3 * C; ++o) {
        double sum = bias.at({o});
        for (int64_t c = 0; c < C; ++c) sum += x.at({b, t, c}) * W.at({o, c});
        ng::Tensor& target = o < C ? q : o < 2 * C ? k : v;
        const int64_t feature = o % C;
        target.set({b, feature / hs, t, feature % hs}, sum);
      }
  const ng::Tensor heads = reference_attention(q, k, v, [](int64_t i, int64_t j) { return j <= i; });
  const ng::Tensor Wp = attn.c_proj->weight.detach(), bp = attn.c_proj->bias.detach();
  ng::Tensor expected = ng::zeros({B, T, C}, ng::float64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t o = 0; o < C; ++o) {
        double sum = bp.at({o});
        for (int64_t c = 0; c < C; ++c) sum += heads.at({b, c / hs, t, c % hs}) * Wp.at({o, c});
        expected.set({b, t, o}, sum);
      }
  CHECK(max_abs_difference(attn(x), expected) < 1e-12);
}

TEST_CASE("CausalSelfAttention: changing later tokens never changes the outputs at earlier positions") {
  ng::manual_seed(16);
  const int64_t B = 2, T = 6, C = 8;
  ng::nn::CausalSelfAttention attn(C, 4);
  const ng::Tensor x = ng::randn({B, T, C});
  const ng::Tensor y = attn(x);
  for (int64_t t = 0; t < T; ++t) {
    CAPTURE(t);
    // x with every position after t replaced by other random values
    ng::Tensor perturbed = x.clone();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t later = t + 1; later < T; ++later)
        for (int64_t c = 0; c < C; ++c) perturbed.set({b, later, c}, 10 * ng::random_normal());
    const ng::Tensor y_perturbed = attn(perturbed);
    bool earlier_unchanged = true, later_changed = t + 1 == T;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < T; ++s)
        for (int64_t c = 0; c < C; ++c) {
          if (s <= t) earlier_unchanged = earlier_unchanged && y_perturbed.at({b, s, c}) == y.at({b, s, c});
          if (s > t) later_changed = later_changed || y_perturbed.at({b, s, c}) != y.at({b, s, c});
        }
    CHECK(earlier_unchanged);  // bit for bit: masked keys get weight exactly 0
    CHECK(later_changed);
  }
  // and the gradient of an early output reaches no later input
  ng::Tensor xg = x.detach().clone().requires_grad_();
  ng::sum(ng::select(attn(xg), 1, 2)).backward();
  for (int64_t later = 3; later < T; ++later) CHECK(ng::max(ng::abs(ng::select(xg.grad(), 1, later))).item() == 0);
  CHECK(ng::max(ng::abs(ng::select(xg.grad(), 1, 0))).item() > 0);
}

TEST_CASE("CausalSelfAttention passes gradcheck and gradgradcheck in its input") {
  ng::manual_seed(17);
  auto attn = std::make_shared<ng::nn::CausalSelfAttention>(4, 2, true, ng::float64);
  check_first_and_second_derivatives("CausalSelfAttention", [attn](const Inputs& in) { return (*attn)(in[0]); },
                                     {uniform_leaf({2, 3, 4}, -1, 1)});
}

TEST_CASE("CausalSelfAttention's dropout acts in training mode only, on the attention weights and the output") {
  ng::manual_seed(18);
  const int64_t B = 2, T = 5, C = 8, n_head = 2, hs = C / n_head;
  ng::nn::CausalSelfAttention attn(C, n_head, true, ng::float64, 0.3);
  ng::nn::CausalSelfAttention plain(C, n_head, true, ng::float64);  // the same weights, no dropout
  const std::vector<ng::Tensor> from = attn.parameters(), to = plain.parameters();
  for (std::size_t i = 0; i < from.size(); ++i) to[i].detach().copy_(from[i].detach());
  const ng::Tensor x = ng::randn({B, T, C}, ng::float64);

  // eval: no dropout at all, and no draw from the generator
  attn.eval();
  const ng::Tensor state = ng::get_rng_state();
  CHECK(max_abs_difference(attn(x), plain(x)) == 0);
  CHECK(ng::get_rng_state().to_vector() == state.to_vector());

  // training: the module is sdpa with dropout_p = 0.3, then c_proj, then dropout(0.3), in that order of draws
  attn.train();
  const ng::Tensor y = attn(x);
  ng::set_rng_state(state);
  const auto heads = [&](const ng::Tensor& t) { return t.reshape({B, T, n_head, hs}).transpose(1, 2); };
  const ng::Tensor projected = ng::linear(x.reshape({B * T, C}), attn.c_attn->weight, attn.c_attn->bias);
  const std::vector<ng::Tensor> qkv = ng::split(projected.reshape({B, T, 3 * C}), C, 2);
  const ng::Tensor attended =
      ng::scaled_dot_product_attention(heads(qkv[0]), heads(qkv[1]), heads(qkv[2]), {}, 0.3, true);
  const ng::Tensor mixed =
      ng::linear(attended.transpose(1, 2).reshape({B * T, C}), attn.c_proj->weight, attn.c_proj->bias);
  const ng::Tensor expected = ng::nn::functional::dropout(mixed.reshape({B, T, C}), 0.3, true);
  CHECK(max_abs_difference(y, expected) < 1e-12);
  CHECK(max_abs_difference(y, plain(x)) > 0);
  CHECK_ERROR_MENTIONS(ng::nn::CausalSelfAttention(8, 2, true, ng::float32, 1.0), "CausalSelfAttention",
                       "dropout = 1.0", "[0, 1)");
  CHECK_ERROR_MENTIONS(ng::nn::CausalSelfAttention(8, 2, true, ng::float32, -0.5), "CausalSelfAttention",
                       "dropout = -0.5");
}

TEST_CASE("CausalSelfAttention refuses bad sizes and inputs naming the layer and the shapes") {
  CHECK_ERROR_MENTIONS(ng::nn::CausalSelfAttention(10, 3), "CausalSelfAttention", "n_embd = 10", "n_head = 3");
  CHECK_ERROR_MENTIONS(ng::nn::CausalSelfAttention(0, 1), "CausalSelfAttention", "n_embd = 0");
  ng::nn::CausalSelfAttention attn(8, 2);
  CHECK_ERROR_MENTIONS(attn(ng::zeros({2, 3, 6})), "CausalSelfAttention", "[2, 3, 6]", "[B, T, 8]");
  CHECK_ERROR_MENTIONS(attn(ng::zeros({3, 8})), "CausalSelfAttention", "[3, 8]");
}

// ---- causality as a property: LayerNorm keeps it, BatchNorm over batch and time breaks it ----------------

namespace {

// norm, then causal attention, on x [B, T, C]: the LayerNorm block of a GPT, or the same with BatchNorm1d
// over the B*T tokens (each feature's statistics over every position of every sequence), in training mode.
struct NormThenAttention {
  bool batch_norm;
  int64_t C, heads;
  ng::nn::LayerNorm layer_norm{ng::Shape{C}};
  ng::nn::BatchNorm1d bn{C};
  ng::nn::CausalSelfAttention attn{C, heads};
  ng::Tensor operator()(const ng::Tensor& x) {
    const ng::Tensor normed = batch_norm ? bn(x.reshape({-1, C})).reshape(x.shape()) : layer_norm(x);
    return attn(normed);
  }
};

// Random sizes, a random split point t (at least one position after it) and a random x; returns whether
// the outputs at positions 0..t stayed bit for bit the same when every token after t was replaced.
bool earlier_outputs_unchanged(bool batch_norm) {
  // At least two sequences: with only two rows in all (B = 1, T = 2), BN's output is +-1 up to an eps term
  // that float32 can round away, so changing one row need not change the other's bits.
  const int64_t B = *rc::gen::inRange<int64_t>(2, 5), T = *rc::gen::inRange<int64_t>(2, 9);
  const int64_t heads = *rc::gen::element<int64_t>(1, 2, 4), C = heads * *rc::gen::inRange<int64_t>(1, 4);
  const int64_t t = *rc::gen::inRange<int64_t>(0, T - 1);  // positions t+1 .. T-1 change
  ng::manual_seed(*rc::gen::arbitrary<uint64_t>());
  NormThenAttention block{batch_norm, C, heads};
  const ng::Tensor x = ng::randn({B, T, C});
  ng::Tensor changed = x.clone();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t later = t + 1; later < T; ++later)
      for (int64_t c = 0; c < C; ++c) changed.set({b, later, c}, 3 * ng::random_normal() + 1);
  ng::NoGradGuard no_grad;
  return ng::slice(block(x), 1, 0, t + 1).to_vector() == ng::slice(block(changed), 1, 0, t + 1).to_vector();
}

}  // namespace

TEST_CASE(
    "property: with LayerNorm no output looks ahead; with BatchNorm over batch and time, earlier outputs change") {
  CHECK(rc::check("LayerNorm then causal attention: tokens after t never change the outputs at 0..t",
                  [] { RC_ASSERT(earlier_outputs_unchanged(false)); }));
  CHECK(rc::check("BatchNorm over batch and time then causal attention: tokens after t change the outputs at 0..t",
                  [] { RC_ASSERT(!earlier_outputs_unchanged(true)); }));
}
