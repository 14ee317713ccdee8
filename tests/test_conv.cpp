// test_conv.cpp: convolution and pooling (autograd/ops_conv.cpp) against plain loops, their gradients
// against finite differences (first and second order), and every bad argument they refuse.
//
// conv2d is compared with conv2d_reference (the seven-loop definition, autograd/conv_reference.h);
// the pools and pad with loops written here from PyTorch's definitions. Shapes are chosen awkward:
// odd sizes, stride > 1, padding, dilation, groups, size-1 dims, batch 1.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "autograd/conv_reference.h"
#include "normgrad.h"
#include "test_requirements.h"

namespace {

using Inputs = std::vector<ng::Tensor>;
using Fn = std::function<ng::Tensor(const Inputs&)>;
using ng::Pair;

ng::Tensor leaf(ng::Tensor t) {
  t.requires_grad_();
  return t;
}

// float64 normal values, requiring grad.
ng::Tensor randn64(const ng::Shape& shape) { return leaf(ng::randn(shape, ng::float64)); }

// float64 values 0.1 * (a random permutation of 0..n-1): all distinct, 0.1 apart (far more than
// gradcheck's eps), so that every max is unique and stays where it is under the perturbation.
ng::Tensor distinct64(const ng::Shape& shape) {
  ng::Tensor t = ng::empty(shape, ng::float64);
  const int64_t n = t.numel();
  double* p = t.mutable_data<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = 0.1 * static_cast<double>(i);
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(p[i], p[static_cast<int64_t>(ng::random_u64() % static_cast<uint64_t>(i + 1))]);
  return leaf(t);
}

void check_gradients(const std::string& what, const Fn& f, const Inputs& inputs) {
  const ng::GradcheckResult result = ng::gradcheck(f, inputs);
  CHECK_MESSAGE(result.ok, what << ": " << result.message);
}

// x -> the first derivatives of sum(f(x) * r) for all inputs, flattened into one tensor and recorded
// (create_graph), r a fixed non-uniform weighting. gradcheck of this checks second derivatives.
Fn first_derivatives(const Fn& f) {
  return [f](const Inputs& inputs) {
    ng::GradModeGuard grad_mode(true);  // gradcheck evaluates its perturbed inputs without grad
    Inputs leaves;
    for (const ng::Tensor& t : inputs) leaves.push_back(t.requires_grad() ? t : leaf(t.detach()));
    const ng::Tensor y = f(leaves);
    std::vector<double> r(static_cast<std::size_t>(y.numel()));
    for (std::size_t i = 0; i < r.size(); ++i) r[i] = std::sin(1.0 + 0.7 * static_cast<double>(i));
    const ng::Tensor loss = ng::sum(y * ng::tensor(r, y.shape(), ng::float64));
    std::vector<ng::Tensor> flat;
    for (const ng::Tensor& g : ng::grad({loss}, leaves, {.create_graph = true})) flat.push_back(ng::reshape(g, {-1}));
    return ng::cat(flat, 0);
  };
}

void check_close(const ng::Tensor& a, const ng::Tensor& b, double tolerance, const std::string& what) {
  REQUIRE_MESSAGE(a.shape() == b.shape(),
                  what << ": " << ng::shape_str(a.shape()) << " vs " << ng::shape_str(b.shape()));
  const auto va = a.to_vector(), vb = b.to_vector();
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::abs(va[i] - vb[i]));
  CHECK_MESSAGE(worst <= tolerance, what << ": largest difference " << worst);
}

struct ConvCase {
  ng::Shape x, w;
  Pair stride, padding, dilation;
  int64_t groups;
  bool bias;
};
std::string describe(const ConvCase& c) {
  return "x " + ng::shape_str(c.x) + " w " + ng::shape_str(c.w) + " stride " + std::to_string(c.stride[0]) + "," +
         std::to_string(c.stride[1]) + " pad " + std::to_string(c.padding[0]) + "," + std::to_string(c.padding[1]) +
         " dil " + std::to_string(c.dilation[0]) + "," + std::to_string(c.dilation[1]) + " groups " +
         std::to_string(c.groups) + (c.bias ? " bias" : "");
}

// Awkward configurations: odd sizes, batch 1, 1x1 kernels and images, stride 2 and 3, asymmetric
// padding and dilation, grouped and depthwise.
const std::vector<ConvCase> kConvCases = {
    {{2, 3, 7, 6}, {4, 3, 3, 3}, {1, 1}, {0, 0}, {1, 1}, 1, true},
    {{1, 3, 7, 5}, {5, 3, 3, 2}, {2, 1}, {1, 0}, {1, 1}, 1, true},
    {{2, 4, 9, 8}, {6, 2, 3, 3}, {2, 3}, {1, 2}, {2, 1}, 2, false},
    {{1, 1, 1, 1}, {2, 1, 1, 1}, {1, 1}, {0, 0}, {1, 1}, 1, true},
    {{3, 2, 5, 1}, {3, 2, 2, 1}, {1, 1}, {1, 0}, {1, 1}, 1, true},
    {{1, 6, 6, 7}, {6, 1, 3, 3}, {1, 2}, {1, 1}, {1, 2}, 6, true},   // depthwise
    {{2, 6, 5, 5}, {3, 2, 1, 1}, {2, 2}, {0, 0}, {1, 1}, 3, false},  // 1x1, strided, grouped
    {{1, 2, 4, 4}, {1, 2, 4, 4}, {1, 1}, {0, 0}, {1, 1}, 1, true},   // the kernel covers the image
};

Fn conv_fn(const ConvCase& c) {
  return [c](const Inputs& in) {
    return ng::conv2d(in[0], in[1], c.bias ? in[2] : ng::Tensor(), c.stride, c.padding, c.dilation, c.groups);
  };
}
Inputs conv_inputs(const ConvCase& c) {
  Inputs in = {randn64(c.x), randn64(c.w)};
  if (c.bias) in.push_back(randn64({c.w[0]}));
  return in;
}

}  // namespace

TEST_CASE("conv2d equals the seven-loop definition on awkward shapes, in float64 and float32") {
  ng::manual_seed(1);
  for (const ConvCase& c : kConvCases) {
    const Inputs in = conv_inputs(c);
    const ng::Tensor b = c.bias ? in[2] : ng::Tensor();
    check_close(ng::conv2d(in[0], in[1], b, c.stride, c.padding, c.dilation, c.groups),
                ng::detail::conv2d_reference(in[0], in[1], b, c.stride, c.padding, c.dilation, c.groups), 1e-12,
                describe(c) + " float64");
    const ng::Tensor x32 = in[0].to(ng::float32), w32 = in[1].to(ng::float32), b32 = c.bias ? b.to(ng::float32) : b;
    check_close(ng::conv2d(x32, w32, b32, c.stride, c.padding, c.dilation, c.groups),
                ng::detail::conv2d_reference(x32, w32, b32, c.stride, c.padding, c.dilation, c.groups), 1e-4,
                describe(c) + " float32");
  }
}

TEST_CASE("conv2d_reference computes a hand-worked 3x3 by 2x2 correlation") {
  // x = [[1,2,3],[4,5,6],[7,8,9]], W = [[1,0],[0,-1]], bias 10: out[i][j] = 10 + x[i][j] - x[i+1][j+1] = 6.
  const ng::Tensor x = ng::tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, ng::float64);
  const ng::Tensor w = ng::tensor({1, 0, 0, -1}, {1, 1, 2, 2}, ng::float64);
  const ng::Tensor b = ng::tensor({10}, ng::float64);
  CHECK(ng::detail::conv2d_reference(x, w, b).to_vector() == std::vector<double>{6, 6, 6, 6});
  CHECK(ng::conv2d(x, w, b).to_vector() == std::vector<double>{6, 6, 6, 6});
  // padding 1, stride 2 on the padded 5x5 image xp (xp[r][c] = x[r-1][c-1], 0 on the border):
  // out[i][j] = 10 + xp[2i][2j] - xp[2i+1][2j+1]: 10 + 0 - 1, 10 + 0 - 3, 10 + 0 - 7, 10 + 5 - 9.
  CHECK(ng::conv2d(x, w, b, {2, 2}, {1, 1}).to_vector() == std::vector<double>{9, 7, 3, 6});
}

TEST_CASE("conv2d's gradients for input, weight and bias match finite differences") {
  ng::manual_seed(2);
  for (const ConvCase& c : kConvCases) check_gradients("conv2d " + describe(c), conv_fn(c), conv_inputs(c));
}

TEST_CASE("conv2d's second derivatives (create_graph) match finite differences of its gradients") {
  ng::manual_seed(3);
  for (const ConvCase& c : {kConvCases[1], kConvCases[2], kConvCases[5]})
    check_gradients("conv2d gradgrad " + describe(c), first_derivatives(conv_fn(c)), conv_inputs(c));
}

TEST_CASE("conv2d_backward_input and conv2d_backward_weight have correct gradients themselves") {
  ng::manual_seed(4);
  for (const ConvCase& c : {kConvCases[1], kConvCases[2]}) {
    ng::Tensor out_shape_probe;
    {
      ng::NoGradGuard no_grad;
      out_shape_probe = ng::conv2d(ng::zeros(c.x, ng::float64), ng::zeros(c.w, ng::float64), ng::Tensor(), c.stride,
                                   c.padding, c.dilation, c.groups);
    }
    const ng::Tensor g = randn64(out_shape_probe.shape());
    check_gradients("conv2d_backward_input " + describe(c),
                    [c](const Inputs& in) {
                      return ng::conv2d_backward_input(in[0], in[1], c.x, c.stride, c.padding, c.dilation, c.groups);
                    },
                    {g, randn64(c.w)});
    check_gradients("conv2d_backward_weight " + describe(c),
                    [c](const Inputs& in) {
                      return ng::conv2d_backward_weight(in[0], in[1], c.w, c.stride, c.padding, c.dilation, c.groups);
                    },
                    {randn64(c.x), g});
  }
}

TEST_CASE("conv1d equals conv2d on images of height 1, and its gradients match finite differences") {
  ng::manual_seed(5);
  const ng::Tensor x = randn64({2, 4, 9}), w = randn64({6, 2, 3}), b = randn64({6});
  const ng::Tensor expected =
      ng::detail::conv2d_reference(ng::unsqueeze(x, 2), ng::unsqueeze(w, 2), b, {1, 2}, {0, 1}, {1, 2}, 2);
  check_close(ng::conv1d(x, w, b, 2, 1, 2, 2), ng::squeeze(expected, 2), 1e-12, "conv1d");
  check_gradients("conv1d", [](const Inputs& in) { return ng::conv1d(in[0], in[1], in[2], 2, 1, 2, 2); }, {x, w, b});
}

// ---- pooling --------------------------------------------------------------------------------------

namespace {

// PyTorch's max_pool2d, as loops: the window of output (oh, ow) covers rows oh*s - p .. + k - 1
// (padding is -inf, so only image elements can win), and ties go to the first in row-major order.
// Returns the output and, in `grad`, the gradient of sum(out * g) (g's entry to each window's max).
ng::Tensor max_pool_loops(const ng::Tensor& x, Pair k, Pair s, Pair p, const ng::Tensor& g, ng::Tensor& grad) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = (H + 2 * p[0] - k[0]) / s[0] + 1, Wo = (W + 2 * p[1] - k[1]) / s[1] + 1;
  ng::Tensor out = ng::zeros({N, C, Ho, Wo}, ng::float64);
  grad = ng::zeros(x.shape(), ng::float64);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double best = -std::numeric_limits<double>::infinity();
          int64_t bh = -1, bw = -1;
          for (int64_t i = 0; i < k[0]; ++i)
            for (int64_t j = 0; j < k[1]; ++j) {
              const int64_t h = oh * s[0] - p[0] + i, w = ow * s[1] - p[1] + j;
              if (h < 0 || h >= H || w < 0 || w >= W) continue;
              if (x.at({n, c, h, w}) > best) {
                best = x.at({n, c, h, w});
                bh = h;
                bw = w;
              }
            }
          out.set({n, c, oh, ow}, best);
          grad.set({n, c, bh, bw}, grad.at({n, c, bh, bw}) + g.at({n, c, oh, ow}));
        }
  return out;
}

// avg_pool2d (count_include_pad) as loops: the window's sum over image elements / (kH kW).
ng::Tensor avg_pool_loops(const ng::Tensor& x, Pair k, Pair s, Pair p) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = (H + 2 * p[0] - k[0]) / s[0] + 1, Wo = (W + 2 * p[1] - k[1]) / s[1] + 1;
  ng::Tensor out = ng::zeros({N, C, Ho, Wo}, ng::float64);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double total = 0;
          for (int64_t i = 0; i < k[0]; ++i)
            for (int64_t j = 0; j < k[1]; ++j) {
              const int64_t h = oh * s[0] - p[0] + i, w = ow * s[1] - p[1] + j;
              if (h >= 0 && h < H && w >= 0 && w < W) total += x.at({n, c, h, w});
            }
          out.set({n, c, oh, ow}, total / static_cast<double>(k[0] * k[1]));
        }
  return out;
}

// adaptive_avg_pool2d as loops: rows floor(i H / out) .. ceil((i + 1) H / out) - 1, likewise columns.
ng::Tensor adaptive_avg_pool_loops(const ng::Tensor& x, Pair out_size) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  ng::Tensor out = ng::zeros({N, C, out_size[0], out_size[1]}, ng::float64);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < out_size[0]; ++i)
        for (int64_t j = 0; j < out_size[1]; ++j) {
          const auto h0 = static_cast<int64_t>(std::floor(double(i * H) / double(out_size[0])));
          const auto h1 = static_cast<int64_t>(std::ceil(double((i + 1) * H) / double(out_size[0])));
          const auto w0 = static_cast<int64_t>(std::floor(double(j * W) / double(out_size[1])));
          const auto w1 = static_cast<int64_t>(std::ceil(double((j + 1) * W) / double(out_size[1])));
          double total = 0;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) total += x.at({n, c, h, w});
          out.set({n, c, i, j}, total / static_cast<double>((h1 - h0) * (w1 - w0)));
        }
  return out;
}

struct PoolCase {
  ng::Shape x;
  Pair kernel, stride, padding;
};
std::string describe(const PoolCase& c) {
  return "x " + ng::shape_str(c.x) + " kernel " + std::to_string(c.kernel[0]) + "x" + std::to_string(c.kernel[1]) +
         " stride " + std::to_string(c.stride[0]) + "," + std::to_string(c.stride[1]) + " pad " +
         std::to_string(c.padding[0]) + "," + std::to_string(c.padding[1]);
}
const std::vector<PoolCase> kPoolCases = {
    {{2, 3, 6, 6}, {2, 2}, {2, 2}, {0, 0}},  // the usual halving
    {{1, 2, 7, 5}, {3, 3}, {2, 2}, {1, 1}},  // overlapping, padded, odd sizes
    {{2, 1, 5, 7}, {3, 2}, {1, 2}, {1, 1}},  // stride < kernel along h
    {{1, 1, 1, 1}, {1, 1}, {1, 1}, {0, 0}}, {{3, 2, 4, 1}, {2, 1}, {1, 1}, {1, 0}},
};

}  // namespace

TEST_CASE("max_pool2d equals the loop definition, and its gradient reaches each window's maximum") {
  ng::manual_seed(6);
  for (const PoolCase& c : kPoolCases) {
    ng::Tensor x = distinct64(c.x);
    ng::Tensor out = ng::max_pool2d(x, c.kernel, c.stride, c.padding);
    const ng::Tensor g = ng::randn(out.shape(), ng::float64);
    ng::Tensor expected_grad;
    check_close(out, max_pool_loops(x, c.kernel, c.stride, c.padding, g, expected_grad), 0, describe(c));
    out.backward(g);
    check_close(x.grad(), expected_grad, 1e-12, describe(c) + " gradient");
  }
}

TEST_CASE("max_pool2d sends the gradient of a tie to the first maximum in row-major order") {
  // Overlapping 2x2 windows, stride 1, over a constant image with one larger value: every window
  // without the 5 has a four-way tie, won by its top-left element.
  ng::Tensor x = leaf(ng::tensor({1, 1, 1, 1, 5, 1, 1, 1, 1}, {1, 1, 3, 3}, ng::float64));
  const auto [out, indices] = ng::max_pool2d_with_indices(x, {2, 2}, {1, 1});
  CHECK(out.to_vector() == std::vector<double>{5, 5, 5, 5});
  CHECK(indices.to_vector() == std::vector<double>{4, 4, 4, 4});
  ng::Tensor y = leaf(ng::ones({1, 1, 3, 3}, ng::float64));
  ng::sum(ng::max_pool2d(y, {2, 2}, {1, 1})).backward();
  CHECK(y.grad().to_vector() == std::vector<double>{1, 1, 0, 1, 1, 0, 0, 0, 0});
  // With padding (-inf), the padded positions never win, even over negative values.
  ng::Tensor z = leaf(ng::full({1, 1, 2, 2}, -3.0, ng::float64));
  const auto padded = ng::max_pool2d_with_indices(z, {2, 2}, {2, 2}, {1, 1});
  CHECK(padded.values.to_vector() == std::vector<double>{-3, -3, -3, -3});
  CHECK(padded.indices.to_vector() == std::vector<double>{0, 1, 2, 3});
}

TEST_CASE("max_pool2d's first and second derivatives match finite differences") {
  ng::manual_seed(7);
  for (const PoolCase& c : kPoolCases) {
    const Fn f = [c](const Inputs& in) { return ng::max_pool2d(in[0], c.kernel, c.stride, c.padding); };
    check_gradients("max_pool2d " + describe(c), f, {distinct64(c.x)});
    check_gradients("max_pool2d gradgrad " + describe(c), first_derivatives([f](const Inputs& in) {
                      return f(in) * f(in);  // nonlinear, so that the second derivative is not zero
                    }),
                    {distinct64(c.x)});
  }
}

TEST_CASE("max_pool2d's stride defaults to the kernel size") {
  ng::manual_seed(8);
  const ng::Tensor x = ng::randn({2, 3, 7, 6});
  check_close(ng::max_pool2d(x, {2, 3}), ng::max_pool2d(x, {2, 3}, {2, 3}), 0, "max_pool2d default stride");
  check_close(ng::avg_pool2d(x, {2, 3}), ng::avg_pool2d(x, {2, 3}, {2, 3}), 0, "avg_pool2d default stride");
}

TEST_CASE(
    "max_pool2d's 2x2 stride-2 path equals the loop definition on odd sizes and short rows, in float32 and "
    "float64") {
  // Odd H and W leave a last row and column that no window covers. Rows of fewer than 8 windows (9 / 2 = 4;
  // 14 / 2 = 7, as an MNIST CNN's second pool) read past their end, except the last rows of x.
  ng::manual_seed(12);
  for (const ng::Shape& shape :
       {ng::Shape{2, 3, 7, 9}, ng::Shape{1, 2, 2, 2}, ng::Shape{3, 1, 5, 34}, ng::Shape{3, 4, 14, 14}}) {
    const ng::Tensor x64 = distinct64(shape);
    for (const ng::Dtype dtype : {ng::float64, ng::float32}) {
      ng::Tensor x = leaf(x64.detach().to(dtype));
      ng::Tensor out = ng::max_pool2d(x, {2, 2});
      const ng::Tensor g = ng::randn(out.shape(), ng::float64);
      ng::Tensor expected_grad;
      const std::string what = "2x2/2 " + ng::shape_str(shape) + " " + ng::dtype_name(dtype);
      // the reference reads x's own values (rounded to float32 when x is float32)
      check_close(out, max_pool_loops(x.detach().to(ng::float64), {2, 2}, {2, 2}, {0, 0}, g, expected_grad), 0, what);
      out.backward(g.to(dtype));
      check_close(x.grad(), expected_grad, 1e-6, what + " gradient");
    }
  }
}

TEST_CASE("max_pool2d's index is the first maximum of a tie and the first NaN, with or without the 2x2 fast path") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // One 2x2 window per case, in row-major order a b / c d.
  struct Window {
    std::vector<double> values;
    int64_t first;
  };
  const std::vector<Window> windows = {{{1, 1, 1, 1}, 0},    {{0, 2, 2, 2}, 1},     {{0, 1, 3, 3}, 2},
                                       {{0, 1, 2, 3}, 3},    {{5, nan, nan, 9}, 1}, {{1, 2, 3, nan}, 3},
                                       {{nan, 9, 9, nan}, 0}};
  for (const Window& w : windows)
    for (const Pair stride : {Pair{2, 2}, Pair{1, 1}}) {
      // stride 2: the 2x2 fast path; stride 1 (the same single window): the general path
      const auto [out, indices] =
          ng::max_pool2d_with_indices(ng::tensor(w.values, {1, 1, 2, 2}, ng::float64), {2, 2}, stride);
      const double best = out.to_vector().at(0), expected = w.values[static_cast<std::size_t>(w.first)];
      CHECK((std::isnan(expected) ? std::isnan(best) : best == expected));
      CHECK(indices.to_vector() == std::vector<double>{static_cast<double>(w.first)});
    }
}

namespace {
// The indices of 3x3 windows with stride 1 over 4x4 images: every window covers rows and columns 1..2,
// so all four windows of a plane share its largest element, put at (1, 1) or (1, 2).
ng::Tensor shared_argmax_indices(ng::Tensor& out) {
  ng::Tensor x = ng::zeros({2, 2, 4, 4}, ng::float64);
  double* p = x.mutable_data<double>();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = 0.01 * static_cast<double>(i % 7);
  for (int64_t plane = 0; plane < 4; ++plane) p[plane * 16 + 5 + plane % 2] = 10;  // (1, 1) or (1, 2)
  const auto result = ng::max_pool2d_with_indices(x, {3, 3}, {1, 1});
  out = result.values;
  return result.indices;
}
}  // namespace

TEST_CASE("max_pool2d_backward adds each gradient at its plane's index, summing where windows share an argmax") {
  ng::Tensor out;
  const ng::Tensor indices = shared_argmax_indices(out);
  REQUIRE(indices.shape() == ng::Shape{2, 2, 2, 2});
  const ng::Tensor g = ng::tensor({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, {2, 2, 2, 2}, ng::float64);
  const ng::Tensor dx = ng::max_pool2d_backward(g, indices, {2, 2, 4, 4});
  // each plane's four gradients add up at its one argmax, flat position 5 = (1, 1) or 6 = (1, 2)
  std::vector<double> expected(64, 0.0);
  expected[5] = 1 + 2 + 3 + 4;
  expected[16 + 6] = 5 + 6 + 7 + 8;
  expected[32 + 5] = 9 + 10 + 11 + 12;
  expected[48 + 6] = 13 + 14 + 15 + 16;
  CHECK(dx.to_vector() == expected);
}

TEST_CASE("max_pool2d_backward's first and second derivatives match finite differences") {
  ng::Tensor out;
  const ng::Tensor indices = shared_argmax_indices(out);
  const Fn f = [indices](const Inputs& in) { return ng::max_pool2d_backward(in[0], indices, {2, 2, 4, 4}); };
  check_gradients("max_pool2d_backward", f, {randn64({2, 2, 2, 2})});
  const ng::GradcheckResult second = ng::gradgradcheck(f, {randn64({2, 2, 2, 2})});
  CHECK_MESSAGE(second.ok, "max_pool2d_backward gradgrad: " << second.message);
  // through max_pool2d: g -> dx depends on g only, and dx * dx makes the second derivative non-zero
  check_gradients("max_pool2d_backward squared", first_derivatives([f](const Inputs& in) { return f(in) * f(in); }),
                  {randn64({2, 2, 2, 2})});
}

TEST_CASE("max_pool2d_backward refuses indices of the wrong dtype, shape or range") {
  auto throws = [](const std::function<void()>& f, const std::string& expected) {
    CHECK_THROWS_WITH_AS(f(), doctest::Contains(expected.c_str()), ng::Error);
  };
  const ng::Tensor g = ng::zeros({1, 2, 2, 2});
  const ng::Tensor ok = ng::zeros({1, 2, 2, 2}, ng::int64);
  throws(
      [&] {
        ng::max_pool2d_backward(g, ng::zeros({1, 2, 2, 2}), {1, 2, 4, 4});
      },
      "max_pool2d_backward: gradient [1, 2, 2, 2], indices [1, 2, 2, 2] float32, input shape [1, 2, 4, 4]: expected "
      "int64 indices of the gradient's shape");
  throws(
      [&] {
        ng::max_pool2d_backward(g, ng::zeros({1, 2, 2, 1}, ng::int64), {1, 2, 4, 4});
      },
      "expected int64 indices of the gradient's shape");
  throws([&] { ng::max_pool2d_backward(g, ok, {1, 3, 4, 4}); }, "expected a 4-D input shape [N, C, H, W]");
  throws([&] { ng::max_pool2d_backward(g, ok, {2, 4, 4}); }, "expected a 4-D input shape [N, C, H, W]");
  throws(
      [&] {
        ng::max_pool2d_backward(g, ng::full({1, 2, 2, 2}, 16.0, ng::int64), {1, 2, 4, 4});
      },
      "index 16 is out of range; expected 0 <= index < H*W = 16");
  throws(
      [&] {
        ng::max_pool2d_backward(g, ng::full({1, 2, 2, 2}, -1.0, ng::int64), {1, 2, 4, 4});
      },
      "index -1 is out of range");
}

TEST_CASE(
    "avg_pool2d equals the loop definition (padding counted as zeros) and its gradients match finite differences") {
  ng::manual_seed(9);
  for (const PoolCase& c : kPoolCases) {
    const ng::Tensor x = randn64(c.x);
    check_close(ng::avg_pool2d(x, c.kernel, c.stride, c.padding), avg_pool_loops(x, c.kernel, c.stride, c.padding),
                1e-12, "avg_pool2d " + describe(c));
    const Fn f = [c](const Inputs& in) { return ng::avg_pool2d(in[0], c.kernel, c.stride, c.padding); };
    check_gradients("avg_pool2d " + describe(c), f, {x});
    check_gradients("avg_pool2d gradgrad " + describe(c),
                    first_derivatives([f](const Inputs& in) { return f(in) * f(in); }), {x});
  }
}

TEST_CASE("adaptive_avg_pool2d equals PyTorch's window formula, and to 1x1 is the mean over H and W") {
  ng::manual_seed(10);
  const ng::Tensor x = randn64({2, 3, 7, 5});
  for (const Pair out : {Pair{1, 1}, Pair{3, 2}, Pair{7, 5}, Pair{4, 4}, Pair{9, 1}})
    check_close(ng::adaptive_avg_pool2d(x, out), adaptive_avg_pool_loops(x, out), 1e-12,
                "adaptive_avg_pool2d to " + std::to_string(out[0]) + "x" + std::to_string(out[1]));
  check_close(ng::adaptive_avg_pool2d(x, {1, 1}), ng::mean(x, {2, 3}, true), 1e-12, "adaptive to 1x1");
}

TEST_CASE("adaptive_avg_pool2d's first and second derivatives match finite differences") {
  ng::manual_seed(11);
  for (const Pair out : {Pair{1, 1}, Pair{3, 2}, Pair{4, 6}}) {
    const Fn f = [out](const Inputs& in) { return ng::adaptive_avg_pool2d(in[0], out); };
    check_gradients("adaptive_avg_pool2d", f, {randn64({2, 2, 5, 4})});
    check_gradients("adaptive_avg_pool2d gradgrad", first_derivatives([f](const Inputs& in) { return f(in) * f(in); }),
                    {randn64({1, 2, 5, 4})});
  }
}

TEST_CASE("pad surrounds the last dims with the value in F.pad's order, and its gradient is the slice back") {
  ng::Tensor x = leaf(ng::tensor({1, 2, 3, 4, 5, 6}, {1, 2, 3}, ng::float64));
  // {left 1, right 0, top 0, bottom 2}: [1, 2, 3] -> [1, 4, 4]
  ng::Tensor y = ng::pad(x, {1, 0, 0, 2}, -1);
  CHECK(y.shape() == ng::Shape{1, 4, 4});
  CHECK(y.to_vector() == std::vector<double>{-1, 1, 2, 3, -1, 4, 5, 6, -1, -1, -1, -1, -1, -1, -1, -1});
  // Only the last dim: {2, 1}.
  CHECK(ng::pad(x, {2, 1}).to_vector() == std::vector<double>{0, 0, 1, 2, 3, 0, 0, 0, 4, 5, 6, 0});
  // All three dims, one each side: [3, 4, 5].
  CHECK(ng::pad(x, {1, 1, 1, 1, 1, 1}).shape() == ng::Shape{3, 4, 5});
  const ng::Tensor g = ng::arange(0, 16, 1, ng::float64).reshape({1, 4, 4});
  y.backward(g);
  CHECK(x.grad().to_vector() == std::vector<double>{1, 2, 3, 5, 6, 7});  // g[0, 0:2, 1:4]
  ng::manual_seed(12);
  const Fn f = [](const Inputs& in) { return ng::pad(in[0], {2, 1, 0, 3}, 0.5); };
  check_gradients("pad", f, {randn64({2, 3, 2})});
  check_gradients("pad gradgrad", first_derivatives([f](const Inputs& in) { return f(in) * f(in); }),
                  {randn64({1, 2, 2})});
}

TEST_CASE("convolution and pooling refuse bad arguments with a message naming the op, the shapes and the expectation") {
  const ng::Tensor x = ng::zeros({2, 4, 5, 5}), w = ng::zeros({6, 4, 3, 3});
  auto throws = [](const std::function<void()>& f, const std::string& expected) {
    CHECK_THROWS_WITH_AS(f(), doctest::Contains(expected.c_str()), ng::Error);
  };
  throws(
      [&] {
        ng::conv2d(ng::zeros({4, 5, 5}), w);
      },
      "conv2d: input [4, 5, 5], weight [6, 4, 3, 3]: expected a 4-D input");
  throws([&] { ng::conv2d(x, ng::zeros({6, 4, 3})); }, "expected a 4-D weight [C_out, C/groups, kH, kW]");
  throws(
      [&] {
        ng::conv2d(x, ng::zeros({6, 3, 3, 3}));
      },
      "the input has 4 channels; expected weight.size(1) * groups = 3");
  throws(
      [&] {
        ng::conv2d(ng::zeros({2, 5, 5, 5}), ng::zeros({6, 1, 3, 3}), {}, {1, 1}, {0, 0}, {1, 1}, 2);
      },
      "5 input channels are not divisible by groups 2");
  throws(
      [&] {
        ng::conv2d(x, ng::zeros({5, 2, 3, 3}), {}, {1, 1}, {0, 0}, {1, 1}, 2);
      },
      "5 output channels are not divisible by groups 2");
  throws([&] { ng::conv2d(x, w, {}, {1, 1}, {0, 0}, {1, 1}, 0); }, "groups 0; expected >= 1");
  throws([&] { ng::conv2d(x, ng::zeros({6, 4, 7, 3})); }, "kernel 7x3 is larger than the padded input 5x5");
  throws([&] { ng::conv2d(x, w, {}, {1, 1}, {0, 0}, {3, 1}); }, "kernel 7x3 is larger than the padded input 5x5");
  throws([&] { ng::conv2d(x, w, {}, {1, 1}, {-1, 0}); }, "padding {-1, 0}; expected every padding >= 0");
  throws([&] { ng::conv2d(x, w, {}, {0, 1}); }, "stride {0, 1}; expected every stride >= 1");
  throws([&] { ng::conv2d(x, w, {}, {1, 1}, {0, 0}, {1, -2}); }, "dilation {1, -2}; expected every dilation >= 1");
  throws([&] { ng::conv2d(x, w, ng::zeros({4})); }, "conv2d: bias [4] for weight [6, 4, 3, 3]; expected [6]");
  throws(
      [&] {
        ng::conv2d(x, ng::zeros({6, 4, 3, 3}, ng::float64));
      },
      "conv2d: weight is float64 but input is float32");
  throws([&] { ng::conv1d(x, w); }, "conv1d: input [2, 4, 5, 5], weight [6, 4, 3, 3]; expected a 3-D input");
  throws(
      [&] {
        ng::conv2d_backward_input(ng::zeros({2, 6, 4, 4}), w, {2, 4, 5, 5});
      },
      "conv2d_backward_input: gradient [2, 6, 4, 4]; expected the convolution's output shape [2, 6, 3, 3]");

  throws([&] { ng::max_pool2d(ng::zeros({4, 5, 5}), {2, 2}); }, "max_pool2d: input [4, 5, 5], kernel {2, 2}");
  throws(
      [&] {
        ng::max_pool2d(x, {2, 2}, {2, 2}, {2, 0});
      },
      "padding {2, 0}: expected padding at most half the kernel size");
  throws([&] { ng::max_pool2d(x, {2, 2}, {0, 2}); }, "expected every stride >= 1");
  throws([&] { ng::max_pool2d(x, {0, 2}); }, "expected every kernel size >= 1");
  throws([&] { ng::max_pool2d(x, {6, 2}); }, "the kernel is larger than the padded input 5x5");
  throws(
      [&] {
        ng::avg_pool2d(x, {3, 3}, {1, 1}, {0, -1});
      },
      "avg_pool2d: input [2, 4, 5, 5], kernel {3, 3}, stride {1, 1}, padding {0, -1}: expected every padding >= 0");
  throws(
      [&] {
        ng::adaptive_avg_pool2d(x, {0, 1});
      },
      "adaptive_avg_pool2d: input [2, 4, 5, 5], output size {0, 1}; expected");
  throws([&] { ng::adaptive_avg_pool2d(ng::zeros({4, 5}), {1, 1}); }, "expected a 4-D input [N, C, H, W]");
  throws([&] { ng::pad(x, {1, 2, 3}); }, "pad: padding {1, 2, 3} for input [2, 4, 5, 5]; expected an even number");
  throws([&] { ng::pad(ng::zeros({3}), {1, 1, 1, 1}); }, "at most two per dimension");
  throws([&] { ng::pad(x, {1, -1}); }, "expected sizes >= 0");
}

// ---- modules --------------------------------------------------------------------------------------

TEST_CASE("nn::Conv2d names its parameters weight and bias, with PyTorch's shapes") {
  ng::nn::Conv2d conv(6, 4, {3, 2}, {1, 1}, {0, 0}, {1, 1}, 2);
  const auto named = conv.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "weight");
  CHECK(named[0].second.shape() == ng::Shape{4, 3, 3, 2});  // [out, in/groups, kH, kW]
  CHECK(named[1].first == "bias");
  CHECK(named[1].second.shape() == ng::Shape{4});
  ng::nn::Conv2d no_bias(1, 8, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1, false);
  REQUIRE(no_bias.named_parameters().size() == 1);
  CHECK(!no_bias.bias.defined());
}

TEST_CASE("nn::Conv2d starts uniform within +-1/sqrt(fan_in), fan_in = in/groups * kH * kW, and fills that range") {
  ng::manual_seed(13);
  ng::nn::Conv2d conv(8, 64, {3, 3}, {1, 1}, {0, 0}, {1, 1}, 2);
  const double bound = 1.0 / std::sqrt(4.0 * 3 * 3);  // 1/6
  for (const ng::Tensor& p : {conv.weight, conv.bias}) {
    double lo = 1, hi = -1;
    for (double v : p.to_vector()) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    CHECK(lo >= -bound);
    CHECK(hi <= bound);
    CHECK(lo < -0.8 * bound);  // 2304 weights, 64 biases: the extremes come near the bounds
    CHECK(hi > 0.8 * bound);
  }
}

TEST_CASE("nn::Conv2d's forward is conv2d with its parameters, and it refuses bad sizes") {
  ng::manual_seed(14);
  ng::nn::Conv2d conv(3, 5, {3, 3}, {2, 2}, {1, 1});
  const ng::Tensor x = ng::randn({2, 3, 7, 7});
  check_close(conv(x), ng::detail::conv2d_reference(x, conv.weight, conv.bias, {2, 2}, {1, 1}), 1e-5, "Conv2d");
  CHECK_THROWS_WITH_AS(conv(ng::randn({2, 4, 7, 7})), "Conv2d: input of shape [2, 4, 7, 7]; expected [N, 3, H, W]",
                       ng::Error);
  CHECK_THROWS_WITH_AS(ng::nn::Conv2d(3, 4, {3, 3}, {1, 1}, {0, 0}, {1, 1}, 2),
                       doctest::Contains("expected in_channels and out_channels divisible by groups"), ng::Error);
  CHECK_THROWS_WITH_AS(ng::nn::Conv2d(3, 4, {0, 3}), doctest::Contains("expected positive channel counts"), ng::Error);
  CHECK_THROWS_WITH_AS(ng::nn::Conv2d(3, 4, {3, 3}, {0, 1}), doctest::Contains("expected strides and dilations >= 1"),
                       ng::Error);
}

TEST_CASE("the pooling modules have no parameters and call their ops (stride defaulting to the kernel)") {
  ng::manual_seed(15);
  const ng::Tensor x = ng::randn({2, 3, 7, 6});
  ng::nn::MaxPool2d max_pool({2, 2});
  ng::nn::AvgPool2d avg_pool({3, 3}, {2, 2}, {1, 1});
  ng::nn::AdaptiveAvgPool2d adaptive({1, 1});
  CHECK(max_pool.parameters().empty());
  CHECK(avg_pool.parameters().empty());
  CHECK(adaptive.parameters().empty());
  check_close(max_pool(x), ng::max_pool2d(x, {2, 2}, {2, 2}), 0, "MaxPool2d");
  CHECK(max_pool(x).shape() == ng::Shape{2, 3, 3, 3});
  check_close(avg_pool(x), ng::avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}), 0, "AvgPool2d");
  check_close(adaptive(x), ng::mean(x, {2, 3}, true), 1e-6, "AdaptiveAvgPool2d");
}

// ---- training -------------------------------------------------------------------------------------

// Reported as skipped (not passed) when the dataset is not installed (apt-get install dataset-fashion-mnist).
TEST_CASE("a small CNN with BatchNorm2d learns Fashion-MNIST: its loss falls clearly in 150 SGD steps" *
          doctest::skip(fashion_mnist_missing())) {
  ng::manual_seed(1);
  const ng::data::MNIST train(ng::data::default_fashion_mnist_dir(), true);
  auto net = std::make_shared<ng::nn::Sequential>(std::initializer_list<std::shared_ptr<ng::nn::Module>>{
      std::make_shared<ng::nn::Conv2d>(1, 8, ng::Pair{3, 3}, ng::Pair{1, 1}, ng::Pair{1, 1}, ng::Pair{1, 1}, 1, false),
      std::make_shared<ng::nn::BatchNorm2d>(8), std::make_shared<ng::nn::ReLU>(),
      std::make_shared<ng::nn::MaxPool2d>(ng::Pair{2, 2}), std::make_shared<ng::nn::Flatten>(),
      std::make_shared<ng::nn::Linear>(8 * 14 * 14, 10)});
  ng::optim::SGD sgd(net->parameters(), {.lr = 0.05, .momentum = 0.9});
  ng::data::DataLoader loader(train, {.batch_size = 32, .shuffle = true, .seed = 1, .drop_last = true});
  std::vector<double> losses;
  for (const ng::data::Batch& batch : loader) {
    ng::Tensor loss = ng::nn::cross_entropy((*net)(batch.inputs), batch.labels);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    losses.push_back(loss.item());
    if (losses.size() == 150) break;
  }
  REQUIRE(losses.size() == 150);
  double first = 0, last = 0;
  for (std::size_t i = 0; i < 10; ++i) first += losses[i] / 10;
  for (std::size_t i = 130; i < 150; ++i) last += losses[i] / 20;
  MESSAGE("cross-entropy: mean of the first 10 steps " << first << ", of the last 20 " << last);
  CHECK(losses[0] > 1.8);  // about ln(10) = 2.3 at the start
  CHECK(last < 0.8);       // a linear model on pixels needs several hundred steps to get there
  CHECK(last < 0.5 * first);
}
