// test_fast_paths.cpp: each fast path against its plain reference: the register-tiled matmul kernel
// against the triple loop, the `linear` op against matmul(x, W^T) + b, fast_exp against std::exp.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "autograd/fast_exp.h"
#include "autograd/gemm.h"
#include "normgrad.h"

namespace {

// Largest |fast - reference| over C = A @ B for one shape, with A and/or B read transposed.
template <class T> double gemm_difference(int64_t M, int64_t N, int64_t K, bool a_transposed, bool b_transposed) {
  std::vector<T> A(static_cast<std::size_t>(M * K)), B(static_cast<std::size_t>(K * N));
  for (auto& v : A) v = static_cast<T>(ng::random_normal());
  for (auto& v : B) v = static_cast<T>(ng::random_normal());
  // C starts non-zero: both kernels accumulate into it.
  std::vector<T> fast(static_cast<std::size_t>(M * N), T(1)), reference = fast;
  const int64_t a_row = a_transposed ? 1 : K, a_col = a_transposed ? M : 1;
  const int64_t b_row = b_transposed ? 1 : N, b_col = b_transposed ? K : 1;
  ng::kernel::gemm(M, N, K, A.data(), a_row, a_col, B.data(), b_row, b_col, fast.data());
  ng::kernel::gemm_reference(M, N, K, A.data(), a_row, a_col, B.data(), b_row, b_col, reference.data());
  double worst = 0;
  for (std::size_t i = 0; i < fast.size(); ++i) worst = std::max(worst, std::abs(double(fast[i]) - double(reference[i])));
  return worst;
}

}  // namespace

TEST_CASE("the tiled gemm equals the reference loop on every edge case of its tiling") {
  ng::manual_seed(11);
  // Shapes around the tile (6 x 16) and the k-slice (256): exact multiples, ragged rows, ragged
  // columns, fewer than one tile, and K spanning several slices.
  const int64_t shapes[][3] = {{6, 16, 8},  {12, 32, 256}, {7, 17, 3},   {1, 1, 1},   {5, 15, 257},
                               {60, 100, 784}, {60, 10, 100}, {13, 40, 513}, {100, 784, 60}};
  for (const auto& s : shapes)
    for (bool at : {false, true})
      for (bool bt : {false, true}) {
        CAPTURE(s[0]);
        CAPTURE(s[1]);
        CAPTURE(s[2]);
        CAPTURE(at);
        CAPTURE(bt);
        // Sums of K products of N(0,1) numbers: rounding differences grow like sqrt(K) * epsilon.
        CHECK(gemm_difference<double>(s[0], s[1], s[2], at, bt) < 1e-12 * std::sqrt(double(s[2])) * 10);
        CHECK(gemm_difference<float>(s[0], s[1], s[2], at, bt) < 1e-5 * std::sqrt(double(s[2])) * 10);
      }
}

TEST_CASE("the AVX-512 gemm tiles (12x16) give bit-identical results to the 6x16 ones") {
  if (!ng::kernel::gemm_wide_available()) {
    MESSAGE("skipped: this CPU has no AVX-512, so gemm runs the 6x16 tiles only");
    return;
  }
  ng::manual_seed(12);
  // Around both tile heights (6, 12), the panel width (16) and the k-slice (256), transposed or not.
  const int64_t shapes[][3] = {{12, 16, 8}, {13, 17, 3}, {11, 33, 257}, {1, 1, 1}, {60, 100, 784}, {32, 784, 144},
                               {100, 784, 60}, {25, 9, 600}};
  for (const auto& s : shapes)
    for (bool at : {false, true})
      for (bool bt : {false, true}) {
        const int64_t M = s[0], N = s[1], K = s[2];
        CAPTURE(M);
        CAPTURE(N);
        CAPTURE(K);
        CAPTURE(at);
        CAPTURE(bt);
        std::vector<float> A(static_cast<std::size_t>(M * K)), B(static_cast<std::size_t>(K * N));
        for (auto& v : A) v = static_cast<float>(ng::random_normal());
        for (auto& v : B) v = static_cast<float>(ng::random_normal());
        std::vector<float> wide(static_cast<std::size_t>(M * N), 0.5f), narrow = wide;
        std::vector<double> Ad(A.begin(), A.end()), Bd(B.begin(), B.end());
        std::vector<double> wide_d(static_cast<std::size_t>(M * N), 0.5), narrow_d = wide_d;
        const int64_t a_row = at ? 1 : K, a_col = at ? M : 1, b_row = bt ? 1 : N, b_col = bt ? K : 1;
        ng::kernel::gemm_with(true, M, N, K, A.data(), a_row, a_col, B.data(), b_row, b_col, wide.data());
        ng::kernel::gemm_with(false, M, N, K, A.data(), a_row, a_col, B.data(), b_row, b_col, narrow.data());
        ng::kernel::gemm_with(true, M, N, K, Ad.data(), a_row, a_col, Bd.data(), b_row, b_col, wide_d.data());
        ng::kernel::gemm_with(false, M, N, K, Ad.data(), a_row, a_col, Bd.data(), b_row, b_col, narrow_d.data());
        CHECK(wide == narrow);
        CHECK(wide_d == narrow_d);
      }
}

TEST_CASE("linear(x, W, b) equals matmul(x, W^T) + b, forward and gradients") {
  ng::manual_seed(3);
  ng::Tensor x = ng::randn({7, 19}, ng::float64).requires_grad_();
  ng::Tensor w = ng::randn({5, 19}, ng::float64).requires_grad_();
  ng::Tensor b = ng::randn({5}, ng::float64).requires_grad_();
  ng::Tensor g = ng::randn({7, 5}, ng::float64);
  auto fused = ng::grad({ng::linear(x, w, b)}, {x, w, b}, {g});
  auto composed = ng::grad({ng::matmul(x, w.t()) + b}, {x, w, b}, {g});
  ng::Tensor y_fused = ng::linear(x, w, b), y_composed = ng::matmul(x, w.t()) + b;
  for (int64_t i = 0; i < y_fused.numel(); ++i)
    CHECK(y_fused.to_vector()[i] == doctest::Approx(y_composed.to_vector()[i]).epsilon(1e-12));
  for (int k = 0; k < 3; ++k) {
    auto a = fused[k].to_vector(), c = composed[k].to_vector();
    REQUIRE(a.size() == c.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(c[i]).epsilon(1e-12));
  }
}

TEST_CASE("linear passes gradcheck with and without bias") {
  ng::manual_seed(4);
  ng::Tensor x = ng::randn({4, 3}, ng::float64).requires_grad_();
  ng::Tensor w = ng::randn({2, 3}, ng::float64).requires_grad_();
  ng::Tensor b = ng::randn({2}, ng::float64).requires_grad_();
  auto with_bias = ng::gradcheck([](const std::vector<ng::Tensor>& in) { return ng::linear(in[0], in[1], in[2]); }, {x, w, b});
  CHECK_MESSAGE(with_bias.ok, with_bias.message);
  auto without = ng::gradcheck([](const std::vector<ng::Tensor>& in) { return ng::linear(in[0], in[1]); }, {x, w});
  CHECK_MESSAGE(without.ok, without.message);
}

TEST_CASE("linear names the shapes when they do not fit") {
  ng::Tensor x = ng::zeros({60, 784}), w = ng::zeros({10, 100});
  CHECK_THROWS_WITH_AS(ng::linear(x, w), doctest::Contains("linear: input [60, 784], weight [10, 100]"), ng::Error);
}

TEST_CASE("fast_exp is within 3e-7 relative of std::exp over the whole float range") {
  double worst = 0;
  for (float x = -87.0f; x < 88.3f; x += 0.00731f) {
    const double exact = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(static_cast<double>(ng::kernel::fast_exp(x)) - exact) / exact);
  }
  CHECK(worst < 3e-7);  // two float ulps: the Taylor remainder (1.3e-7) plus rounding
  // Beyond the range it gives what the exact e^x rounds to (0 and inf), never a wrong power of two.
  CHECK(ng::kernel::fast_exp(-1000.0f) == 0.0f);
  CHECK(ng::kernel::fast_exp(-90.0f) < 1e-37f);
  CHECK(ng::kernel::fast_exp(1000.0f) == std::numeric_limits<float>::infinity());
  CHECK(ng::kernel::fast_exp(88.5f) > 1e38f);
}

TEST_CASE("float32 sigmoid (fast_exp) agrees with the float64 one to float precision, saturating cleanly") {
  ng::Tensor x64 = ng::arange(-120.0, 120.0, 0.0173, ng::float64);
  ng::Tensor x32 = x64.to(ng::float32);
  auto y32 = ng::sigmoid(x32).to_vector();
  auto y64 = ng::sigmoid(x32.to(ng::float64)).to_vector();  // same (rounded) inputs, exact exp
  double worst = 0;
  for (std::size_t i = 0; i < y32.size(); ++i) worst = std::max(worst, std::abs(y32[i] - y64[i]));
  CHECK(worst < 2e-7);
  CHECK(y32.front() < 1e-30);
  CHECK(y32.back() == 1.0);
}
