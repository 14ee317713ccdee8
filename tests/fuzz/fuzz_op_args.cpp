// fuzz_op_args.cpp: libFuzzer target for the sizes ops compute from their arguments.
//
// The input chooses an op (its first byte) and then its int64 arguments, 8 bytes each, little-endian
// (missing bytes read as 0): sizes, strides, paddings, dilations, kernel sizes, groups, dims, sample
// counts, passed to conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d, pad, gather and multinomial
// exactly as read, anywhere from -2^63 to 2^63 - 1. Only the tensors are kept small: an input shape
// whose element count is over kMaxInput has its sizes folded into 1..3 (a shape with a 0 keeps its
// other sizes as they are: an empty batch of huge images costs nothing to make).
// Each call must throw an ng::Error, or return the shape PyTorch's output-size formula gives, worked
// out here in 128-bit integers (no overflow); never crash, hang or throw anything else. A call whose
// output is legal but large (over kMaxOutput elements and within the per-tensor limit) is skipped:
// it would only measure the machine's memory.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "normgrad.h"

namespace {

using ng::Shape;
using ng::Tensor;
using Int = __int128;

constexpr int64_t kMaxInput = 64;             // elements of a tensor the target makes
constexpr int64_t kMaxOutput = 1 << 12;       // elements of an output it lets an op make
constexpr Int kLimitElements = Int{1} << 46;  // 2^48 bytes of float32

// Reads the input front to back.
struct Reader {
  const uint8_t* data;
  std::size_t size;
  uint8_t byte() {
    if (size == 0) return 0;
    --size;
    return *data++;
  }
  int64_t int64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{byte()} << (8 * i);
    int64_t out;
    std::memcpy(&out, &v, sizeof out);
    return out;
  }
  ng::Pair pair() {
    const int64_t a = int64();
    return {a, int64()};
  }
};

// The product of the sizes, zeros counted as 1 (how far a tensor of this shape would reach), or -1
// for a negative size. Capped at 2^62 after each step (it only has to say "too many"), so that the
// next product, at most 2^62 * 2^63, fits in 128 bits.
Int reach(const Shape& shape) {
  constexpr Int cap = Int{1} << 62;
  Int r = 1;
  for (int64_t s : shape) {
    if (s < 0) return -1;
    r = std::min(r * (s == 0 ? 1 : s), cap);
  }
  return r;
}
Int numel(const Shape& shape) {
  for (int64_t s : shape)
    if (s == 0) return 0;
  return reach(shape);
}

// A tensor of ones for `sizes` read raw (see the top): kept as is when empty or small, else folded.
std::optional<Tensor> make(Shape shape, ng::Dtype dtype = ng::float32) {
  const Int n = numel(shape);
  if (n < 0) return std::nullopt;
  if (n > kMaxInput)
    for (int64_t& s : shape) s = 1 + static_cast<int64_t>(static_cast<uint64_t>(s) % 3);
  try {
    return ng::ones(shape, dtype);
  } catch (const ng::Error&) {  // an empty shape past the per-tensor limit
    return std::nullopt;
  }
}

Shape read_shape(Reader& in, int ndim) {
  Shape shape(static_cast<std::size_t>(ndim));
  for (int64_t& s : shape) s = in.int64();
  return shape;
}

// The op's expected output shape, or nullopt when PyTorch would refuse the arguments.
using Expected = std::optional<Shape>;

// out = floor((in + 2*pad - dilation*(k - 1) - 1) / stride) + 1, at least 1; nullopt if the window does not fit.
std::optional<int64_t> window_count(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dilation) {
  if (k < 1 || stride < 1 || pad < 0 || dilation < 1) return std::nullopt;
  const Int span = Int{dilation} * (k - 1) + 1, padded = Int{in} + 2 * Int{pad};
  if (span > padded) return std::nullopt;
  const Int out = (padded - span) / stride + 1;
  if (out > INT64_MAX) return std::nullopt;
  return static_cast<int64_t>(out);
}

Expected conv_shape(const Shape& x, const Shape& w, ng::Pair stride, ng::Pair padding, ng::Pair dilation,
                    int64_t groups) {
  if (groups < 1 || w[0] < groups || x[1] % groups != 0 || w[0] % groups != 0 || Int{w[1]} * groups != x[1])
    return std::nullopt;
  const auto h = window_count(x[2], w[2], stride[0], padding[0], dilation[0]);
  const auto v = window_count(x[3], w[3], stride[1], padding[1], dilation[1]);
  if (!h || !v) return std::nullopt;
  return Shape{x[0], w[0], *h, *v};
}

Expected pool_shape(const Shape& x, ng::Pair kernel, ng::Pair stride, ng::Pair padding) {
  if (x[2] < 1 || x[3] < 1) return std::nullopt;
  for (int a = 0; a < 2; ++a)
    if (padding[a] < 0 || padding[a] > kernel[a] / 2) return std::nullopt;  // pad at most half the kernel
  const auto h = window_count(x[2], kernel[0], stride[0], padding[0], 1);
  const auto v = window_count(x[3], kernel[1], stride[1], padding[1], 1);
  if (!h || !v) return std::nullopt;
  return Shape{x[0], x[1], *h, *v};
}

// Runs `op`. A result must have the expected shape (and arguments PyTorch refuses must not give one);
// an ng::Error is always an acceptable answer. A legal but large output is not asked for.
template <class Op> void check(const Expected& expected, Op&& op) {
  if (expected && numel(*expected) > kMaxOutput && reach(*expected) <= kLimitElements) return;
  Tensor out;
  try {
    out = op();
  } catch (const ng::Error&) {
    return;
  }
  if (!expected || out.shape() != *expected) std::abort();
}

void conv(Reader& in) {
  const Shape x_shape = read_shape(in, 4), w_shape = read_shape(in, 4);
  const ng::Pair stride = in.pair(), padding = in.pair(), dilation = in.pair();
  const int64_t groups = in.int64();
  const bool with_bias = in.byte() & 1;
  const std::optional<Tensor> x = make(x_shape), w = make(w_shape);
  if (!x || !w) return;
  Expected expected = conv_shape(x->shape(), w->shape(), stride, padding, dilation, groups);
  if (expected && x->shape()[0] > 0) {  // one image's unrolled columns: (C/groups*kH*kW) * (H_out*W_out)
    const Int columns = numel({w->shape()[1], w->shape()[2], w->shape()[3], (*expected)[2], (*expected)[3]});
    if (columns > kMaxOutput && columns <= kLimitElements) return;
  }
  const Tensor bias = with_bias && w->shape()[0] <= kMaxInput ? ng::ones({w->shape()[0]}) : Tensor();
  Tensor xg = x->detach().requires_grad_(), wg = w->detach().requires_grad_();
  check(expected, [&] {
    Tensor out = ng::conv2d(xg, wg, bias, stride, padding, dilation, groups);
    out.sum().backward();  // conv2d_backward_input and _weight, on the same sizes
    if (xg.grad().shape() != xg.shape() || wg.grad().shape() != wg.shape()) std::abort();
    return out;
  });
}

void pool(Reader& in, int which) {
  const Shape x_shape = read_shape(in, 4);
  const ng::Pair kernel = in.pair(), stride = in.pair(), padding = in.pair();
  const std::optional<Tensor> x = make(x_shape);
  if (!x) return;
  Tensor xg = x->detach().requires_grad_();
  check(pool_shape(x->shape(), kernel, stride, padding), [&] {
    Tensor out = which == 0 ? ng::max_pool2d(xg, kernel, stride, padding) : ng::avg_pool2d(xg, kernel, stride, padding);
    out.sum().backward();
    if (xg.grad().shape() != xg.shape()) std::abort();
    return out;
  });
}

void adaptive(Reader& in) {
  const Shape x_shape = read_shape(in, 4);
  const ng::Pair size = in.pair();
  const std::optional<Tensor> x = make(x_shape);
  if (!x) return;
  const Shape& s = x->shape();
  Expected expected;
  if (s[2] >= 1 && s[3] >= 1 && size[0] >= 1 && size[1] >= 1) expected = Shape{s[0], s[1], size[0], size[1]};
  check(expected, [&] { return ng::adaptive_avg_pool2d(*x, size); });
}

void pad(Reader& in) {
  const Shape x_shape = read_shape(in, in.byte() % 5);
  std::vector<int64_t> padding(in.byte() % 9);
  for (int64_t& p : padding) p = in.int64();
  const std::optional<Tensor> x = make(x_shape);
  if (!x) return;
  Expected expected;
  if (padding.size() % 2 == 0 && static_cast<int64_t>(padding.size() / 2) <= x->dim()) {
    Shape out = x->shape();
    bool ok = true;
    for (std::size_t k = 0; k < padding.size() / 2; ++k) {
      const Int size = Int{out[out.size() - 1 - k]} + padding[2 * k] + padding[2 * k + 1];
      ok = ok && padding[2 * k] >= 0 && padding[2 * k + 1] >= 0 && size <= INT64_MAX;
      if (ok) out[out.size() - 1 - k] = static_cast<int64_t>(size);
    }
    if (ok) expected = out;
  }
  check(expected, [&] { return ng::pad(*x, padding); });
}

void gather(Reader& in) {
  const int ndim = 1 + in.byte() % 3;
  const Shape x_shape = read_shape(in, ndim), index_shape = read_shape(in, ndim);
  const int64_t dim = in.int64();
  const std::optional<Tensor> x = make(x_shape), made = make(index_shape, ng::int64);
  if (!x || !made) return;
  Tensor index = *made;
  for (int64_t i = 0; i < index.numel(); ++i) index.mutable_data<int64_t>()[i] = in.int64();
  check(index.shape(), [&] { return ng::gather(*x, dim, index); });
}

void multinomial(Reader& in) {
  const int ndim = 1 + in.byte() % 2;
  const Shape probs_shape = read_shape(in, ndim);
  const int64_t samples = in.int64();
  const bool replacement = in.byte() & 1, raw_values = in.byte() & 1;
  const std::optional<Tensor> made = make(probs_shape, ng::float64);
  if (!made) return;
  Tensor probs = *made;
  for (int64_t i = 0; i < probs.numel(); ++i) {  // raw bits (NaN, inf, negatives) or small weights 0..3
    const int64_t v = in.int64();
    double weight;
    std::memcpy(&weight, &v, sizeof weight);
    probs.mutable_data<double>()[i] = raw_values ? weight : static_cast<double>(static_cast<uint64_t>(v) % 4);
  }
  Expected expected;
  if (samples >= 0) expected = ndim == 1 ? Shape{samples} : Shape{probs.shape()[0], samples};
  check(expected, [&] { return ng::multinomial(probs, samples, replacement); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  Reader in{data, size};
  switch (in.byte() % 7) {
    case 0:
      conv(in);
      break;
    case 1:
      pool(in, 0);
      break;
    case 2:
      pool(in, 1);
      break;
    case 3:
      adaptive(in);
      break;
    case 4:
      pad(in);
      break;
    case 5:
      gather(in);
      break;
    case 6:
      multinomial(in);
      break;
  }
  return 0;
}
