// test_conv_blocks.cpp: conv2d and its two backward ops on batches large enough that ops_conv.cpp
// cuts them into several blocks of images (one gemm per block and group; the last block partial),
// compared with plain loops: the seven-loop conv2d_reference for the forward, and the same seven
// loops written here for the backward sums
//   dx[n, g*Cg + c, ih, iw] += G[n, co, oh, ow] W[co, c, i, j]
//   dW[co, c, i, j]         += G[n, co, oh, ow] x[n, g*Cg + c, ih, iw]
// with ih = oh*s_h - p_h + i*d_h, iw = ow*s_w - p_w + j*d_w inside the image.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "autograd/conv_reference.h"
#include "normgrad.h"

namespace {

using ng::Pair;

struct Backward {
  ng::Tensor dx, dw;
};

Backward backward_loops(const ng::Tensor& x, const ng::Tensor& w, const ng::Tensor& g, Pair s, Pair p, Pair d,
                        int64_t groups) {
  const ng::Shape& xs = x.shape();
  const ng::Shape& ws = w.shape();
  const ng::Shape& gs = g.shape();
  const auto X = x.to(ng::float64).to_vector(), W = w.to(ng::float64).to_vector(), G = g.to(ng::float64).to_vector();
  std::vector<double> dx(X.size(), 0.0), dw(W.size(), 0.0);
  const int64_t C = xs[1], H = xs[2], Wd = xs[3], C_out = ws[0], Cg = ws[1], kH = ws[2], kW = ws[3];
  const int64_t H_out = gs[2], W_out = gs[3], M = C_out / groups;
  for (int64_t n = 0; n < xs[0]; ++n)
    for (int64_t co = 0; co < C_out; ++co)
      for (int64_t oh = 0; oh < H_out; ++oh)
        for (int64_t ow = 0; ow < W_out; ++ow) {
          const double gv = G[static_cast<std::size_t>(((n * C_out + co) * H_out + oh) * W_out + ow)];
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < kH; ++i)
              for (int64_t j = 0; j < kW; ++j) {
                const int64_t ih = oh * s[0] - p[0] + i * d[0], iw = ow * s[1] - p[1] + j * d[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= Wd) continue;
                const auto xi = static_cast<std::size_t>(((n * C + co / M * Cg + c) * H + ih) * Wd + iw);
                const auto wi = static_cast<std::size_t>(((co * Cg + c) * kH + i) * kW + j);
                dx[xi] += gv * W[wi];
                dw[wi] += gv * X[xi];
              }
        }
  return {ng::tensor(dx, xs, ng::float64), ng::tensor(dw, ws, ng::float64)};
}

void check_close(const ng::Tensor& a, const ng::Tensor& b, double tolerance, const std::string& what) {
  REQUIRE_MESSAGE(a.shape() == b.shape(),
                  what << ": " << ng::shape_str(a.shape()) << " vs " << ng::shape_str(b.shape()));
  const auto va = a.to(ng::float64).to_vector(), vb = b.to(ng::float64).to_vector();
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::abs(va[i] - vb[i]));
  CHECK_MESSAGE(worst <= tolerance, what << ": largest difference " << worst);
}

void check_case(ng::Dtype dtype, double tolerance, const ng::Shape& xs, const ng::Shape& ws, Pair s, Pair p, Pair d,
                int64_t groups) {
  const std::string what = std::string(ng::dtype_name(dtype)) + " x " + ng::shape_str(xs) + " w " + ng::shape_str(ws);
  const ng::Tensor x = ng::randn(xs, dtype), w = ng::randn(ws, dtype), b = ng::randn({ws[0]}, dtype);
  const ng::Tensor out = ng::conv2d(x, w, b, s, p, d, groups);
  check_close(out, ng::detail::conv2d_reference(x, w, b, s, p, d, groups), tolerance, "conv2d " + what);
  const ng::Tensor g = ng::randn(out.shape(), dtype);
  const Backward expected = backward_loops(x, w, g, s, p, d, groups);
  check_close(ng::conv2d_backward_input(g, w, xs, s, p, d, groups), expected.dx, tolerance,
              "conv2d_backward_input " + what);
  check_close(ng::conv2d_backward_weight(x, g, ws, s, p, d, groups), expected.dw, tolerance * 30,
              "conv2d_backward_weight " + what);  // dW sums over every image: larger rounding in float32
}

}  // namespace

// ops_conv.cpp puts 1024 / L images in a block (L = H_out * W_out; fewer if their columns pass 512 KB):
// case 1: L = 19 * 8 = 152, blocks of 6 images (6 + 1), K = 18 > M = 3 (dW computed transposed);
// case 2: L = 12 * 12 = 144, blocks of 7 images (7 + 2), K = 9 < M = 12 (dW computed directly).
TEST_CASE("conv2d and its backward ops equal plain loops when the batch spans several image blocks, the last partial") {
  ng::manual_seed(11);
  for (auto [dtype, tolerance] : {std::pair{ng::float64, 1e-10}, std::pair{ng::float32, 2e-4}}) {
    check_case(dtype, tolerance, {7, 4, 21, 17}, {6, 2, 3, 3}, {1, 2}, {1, 0}, {2, 1}, 2);
    check_case(dtype, tolerance, {9, 1, 12, 12}, {12, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 1);
  }
}
