// kernels.h: the loops that the op files share (internal to normgrad, not installed; nn/ uses lane_sum).
//
// Tensors are contiguous and row-major, so element (i0, ..., i_{n-1}) of a tensor of shape
// [s0, ..., s_{n-1}] sits at offset sum_d i_d * stride_d with stride_d = s_{d+1} * ... * s_{n-1}.
// Broadcasting and reductions are both "the same walk over an output shape, with a stride of 0 along
// the dimensions where an operand does not move"; for_each_row is that walk.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "fast_erf.h"
#include "fast_exp.h"
#include "parallel_for.h"
#include "tensor.h"

namespace ng::kernel {

// Contiguous strides of `shape`.
std::vector<int64_t> strides_of(const Shape& shape);

// Strides for reading a tensor of `shape` while walking `target` (shapes right-aligned):
// 0 along dimensions that `shape` lacks or has as size 1 (where it is broadcast).
std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& target);

// Walks `shape` one row (the last dimension) at a time. For each row, f(offsets, length) gets the
// offset of the row's first element in each of the K operands, computed from their strides; the
// operands' strides along the last dimension are strides[k][ndim - 1].
template <std::size_t K, class F>
void for_each_row(const Shape& shape, const std::array<const int64_t*, K>& strides, F&& f) {
  const auto ndim = static_cast<int64_t>(shape.size());
  std::array<int64_t, K> offset{};
  if (ndim == 0) {
    f(offset, int64_t{1});
    return;
  }
  const int64_t length = shape[ndim - 1];
  if (length == 0) return;
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < ndim; ++d) rows *= shape[d];
  std::vector<int64_t> index(static_cast<std::size_t>(ndim), 0);
  for (int64_t row = 0; row < rows; ++row) {
    f(offset, length);
    for (int64_t d = ndim - 2; d >= 0; --d) {  // odometer: advance the row index
      ++index[d];
      for (std::size_t k = 0; k < K; ++k) offset[k] += strides[k][d];
      if (index[d] < shape[d]) break;
      for (std::size_t k = 0; k < K; ++k) offset[k] -= strides[k][d] * shape[d];
      index[d] = 0;
    }
  }
}

// out = f(a, b) elementwise, a and b broadcast to out's shape (same dtype T).
// Loops of at least kParallelElements elements (more when the cores are far apart: share_elements, parallel_for.h)
// run on several threads (parallel.h).
template <class T, class F> void binary(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.mutable_data<T>();
  const int64_t n = out.numel();
  if (a.numel() == n && b.numel() == n) {  // same shape: one flat loop
    parallel_for(n, share_elements(n), [&](int64_t i) { po[i] = f(pa[i], pb[i]); });
    return;
  }
  if (a.numel() == n && b.numel() == 1) {
    const T vb = pb[0];
    parallel_for(n, share_elements(n), [&](int64_t i) { po[i] = f(pa[i], vb); });
    return;
  }
  if (a.numel() == 1 && b.numel() == n) {
    const T va = pa[0];
    parallel_for(n, share_elements(n), [&](int64_t i) { po[i] = f(va, pb[i]); });
    return;
  }
  const auto sa = broadcast_strides(a.shape(), out.shape());
  const auto sb = broadcast_strides(b.shape(), out.shape());
  const int64_t last = out.dim() - 1;
  const int64_t ia = sa[last], ib = sb[last];
  int64_t row_start = 0;
  for_each_row<2>(out.shape(), {sa.data(), sb.data()}, [&](const std::array<int64_t, 2>& off, int64_t len) {
    const T* ra = pa + off[0];
    const T* rb = pb + off[1];
    T* ro = po + row_start;
    if (ia == 1 && ib == 1)
      for (int64_t j = 0; j < len; ++j) ro[j] = f(ra[j], rb[j]);
    else if (ia == 1)
      for (int64_t j = 0; j < len; ++j) ro[j] = f(ra[j], rb[0]);
    else if (ib == 1)
      for (int64_t j = 0; j < len; ++j) ro[j] = f(ra[0], rb[j]);
    else
      for (int64_t j = 0; j < len; ++j) ro[j] = f(ra[0], rb[0]);
    row_start += len;
  });
}

// out = f(x) elementwise.
template <class T, class F> void unary(const Tensor& x, Tensor& out, F f) {
  const T* px = x.data<T>();
  T* po = out.mutable_data<T>();
  const int64_t n = out.numel();
  parallel_for(n, share_elements(n), [&](int64_t i) { po[i] = f(px[i]); });
}

// "{2, 3}": a (height, width) pair as conv and pooling messages show it.
inline std::string pair_str(const std::array<int64_t, 2>& p) {
  std::string s = std::to_string(p[0]);  // appended step by step: GCC 12 warns (-Wrestrict) on "{" + to_string(..)
  s.insert(0, 1, '{');
  s.append(", ").append(std::to_string(p[1])).append("}");
  return s;
}

// For a window sliding along a row of W inputs (conv, pooling): the outputs ow whose input column
// iw = ow * stride + offset falls inside [0, W), as [lo, hi); the others read padding.
struct ValidRange {
  int64_t lo, hi;
};
inline ValidRange valid_outputs(int64_t offset, int64_t stride, int64_t W, int64_t W_out) {
  // ceil(-offset / stride), written so that it cannot overflow for any offset > INT64_MIN
  const int64_t lo = std::min(W_out, offset >= 0 ? 0 : (-offset - 1) / stride + 1);
  const int64_t hi = W - 1 - offset >= 0 ? std::min(W_out, (W - 1 - offset) / stride + 1) : 0;
  return {lo, std::max(lo, hi)};
}

// Splits a shape around `dim` into (outer, size, inner): element (o, k, i) is at (o * size + k) * inner + i.
struct AroundDim {
  int64_t outer = 1, size = 1, inner = 1;
};
AroundDim around_dim(const Shape& shape, int64_t dim);

// e^v and erf(v) as the kernels compute them: float32 with the vectorizable fast_exp and fast_erf
// (fast_exp.h, fast_erf.h), float64 and -Dreference_kernels=true with std::exp and std::erf.
template <class T> T exp_of(T v) {
  if constexpr (std::is_same_v<T, float> && !kReferenceKernels)
    return fast_exp(v);
  else
    return std::exp(v);
}
template <class T> T erf_of(T v) {
  if constexpr (std::is_same_v<T, float> && !kReferenceKernels)
    return fast_erf(v);
  else
    return std::erf(v);
}

// sum_{j < n} term(j) in double. The fast path adds into eight partial sums that the compiler keeps in
// vector registers; the last n mod 8 terms go into the total first, then the eight partials in order: a
// fixed order of additions, so the same result on every run and for any thread count. The reference loop
// (-Dreference_kernels=true) adds one term at a time. LayerNorm's and BatchNorm's statistics, attention's
// softmax and the gradient norm all sum this way.
template <class Term> double lane_sum(int64_t n, Term term) {
  double total = 0;
  if constexpr (kReferenceKernels) {
    for (int64_t j = 0; j < n; ++j) total += term(j);
  } else {
    constexpr int64_t kLanes = 8;
    double partial[kLanes] = {};
    int64_t j = 0;
    for (; j + kLanes <= n; j += kLanes)
      for (int64_t lane = 0; lane < kLanes; ++lane) partial[lane] += term(j + lane);
    for (; j < n; ++j) total += term(j);
    for (double p : partial) total += p;
  }
  return total;
}

// One distribution along a dim, the `size` values xs[0], xs[inner], ..., xs[(size - 1) * inner]: their
// largest value m and sum_k e^(x_k - m), summed in double. Shifting by m keeps every exponent <= 0 (no
// overflow), and the largest term is e^0 = 1, so the sum is >= 1 (never 0). softmax, log_softmax and
// logsumexp all start from these two numbers.
// float32 computes each e^(x_k - m) with the vectorizable fast_exp, a block at a time into a small
// buffer (that loop runs 8 lanes at a time), then adds the block to the double sum in order k = 0, 1, ...
// (an in-order sum cannot be vectorized, but it is one add per element). float64 and
// -Dreference_kernels=true use std::exp in double. When `exps` is given, the float32 path leaves each
// e^(x_k - m) in exps[k * inner] (softmax's output, which then only needs dividing by the sum).
template <class T> struct MaxSumExp {
  T max;
  double sum_exp;
};
template <class T> MaxSumExp<T> max_sum_exp(const T* xs, int64_t size, int64_t inner, T* exps_out = nullptr) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t k = 0; k < size; ++k) m = std::max(m, xs[k * inner]);
  double total = 0;
  if constexpr (std::is_same_v<T, float> && !kReferenceKernels) {
    constexpr int64_t kBlock = 64;
    float exps[kBlock];
    for (int64_t start = 0; start < size; start += kBlock) {
      const int64_t count = std::min(kBlock, size - start);
      const float* block = xs + start * inner;
      for (int64_t k = 0; k < count; ++k) exps[k] = fast_exp(block[k * inner] - m);
      for (int64_t k = 0; k < count; ++k) total += exps[k];
      if (exps_out)
        for (int64_t k = 0; k < count; ++k) exps_out[(start + k) * inner] = exps[k];
    }
  } else {
    for (int64_t k = 0; k < size; ++k) total += std::exp(static_cast<double>(xs[k * inner] - m));
  }
  return {m, total};
}

}  // namespace ng::kernel
