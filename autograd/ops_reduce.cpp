// ops_reduce.cpp: reductions (sum, mean, max, argmax), each with its backward; sum_to, which undoes
// broadcasting. (log_softmax, a normalization rather than a reduction, is in ops_softmax.cpp.)
//
// Sums accumulate in double whatever the dtype, so that float32 batch statistics (BatchNorm's mean
// and variance) lose as little as possible. A long row is summed in pieces of kernel::kSumChunk elements
// whose sums are added in order, so that threads can share the pieces and the result is the same for
// any thread count (parallel.h).
#include <algorithm>
#include <cmath>

#include "graph.h"
#include "kernels.h"
#include "ops.h"

namespace ng {

using Grads = std::vector<Tensor>;

namespace {

// Which dims are reduced (all of them when `dims` is empty), checked and normalized.
std::vector<bool> reduced_dims(const char* op, const Tensor& x, const std::vector<int64_t>& dims) {
  std::vector<bool> reduced(static_cast<std::size_t>(x.dim()), dims.empty());
  for (int64_t d : dims) {
    int64_t nd = normalize_dim(op, d, x.dim());
    if (reduced[nd]) throw Error(std::string(op) + ": dim " + std::to_string(d) + " appears twice in the list of dims");
    reduced[nd] = true;
  }
  return reduced;
}

// The output shape with reduced dims kept as 1 (keepdim) or dropped.
Shape reduced_shape(const Shape& shape, const std::vector<bool>& reduced, bool keepdim) {
  Shape out;
  for (std::size_t d = 0; d < shape.size(); ++d)
    if (!reduced[d])
      out.push_back(shape[d]);
    else if (keepdim)
      out.push_back(1);
  return out;
}

// sum_j row[j] for j < len, in double: left to right within each piece of kSumChunk elements, the
// pieces' sums then added in order. With share_pieces, threads share the pieces of a long row (each
// writes its own piece's sum); without it (a caller already running on threads) the pieces are summed
// one after another into the total, which gives the same bits and allocates nothing.
template <class T> double piece_sum(const T* row, int64_t begin, int64_t end) {
  double s = 0;
  for (int64_t j = begin; j < end; ++j) s += row[j];
  return s;
}

template <class T> double row_sum(const T* row, int64_t len, bool share_pieces) {
  const int64_t pieces = (len + kernel::kSumChunk - 1) / kernel::kSumChunk;
  double total = 0;
  if (pieces < 2 || !share_pieces) {
    for (int64_t begin = 0; begin < len; begin += kernel::kSumChunk)
      total += piece_sum(row, begin, std::min(len, begin + kernel::kSumChunk));
    return total;
  }
  std::vector<double> piece_sums(static_cast<std::size_t>(pieces), 0.0);
  kernel::parallel_for(pieces, kernel::share_elements(len), [&](int64_t p) {  // (len >= 2 pieces = 2^15 here)
    const int64_t begin = p * kernel::kSumChunk;
    piece_sums[p] = piece_sum(row, begin, std::min(len, begin + kernel::kSumChunk));
  });
  for (double s : piece_sums) total += s;
  return total;
}

// x: any shape -> out: reduced_shape(x, reduced, keepdim), out = scale * (sum over the reduced dims).
// Threads: when only the last dim is reduced, each row is its own output, so the rows are shared out;
// otherwise rows are walked in order, a long reduced row is split by row_sum, and a long kept row (a sum
// over leading dims) is shared out by columns. In every case each output element receives the same
// additions in the same order whatever the thread count.
Tensor sum_kernel(const char* op, const Tensor& x, const std::vector<bool>& reduced, bool keepdim, double scale) {
  const Shape kept = reduced_shape(x.shape(), reduced, true);
  Tensor out = empty(reduced_shape(x.shape(), reduced, keepdim), x.dtype());
  std::vector<double> acc(static_cast<std::size_t>(out.numel()), 0.0);
  dispatch_float(op, x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    const bool only_last_reduced = x.dim() > 0 && out.numel() * x.shape().back() == x.numel() && reduced.back();
    if (x.dim() == 0) {
      acc[0] = px[0];
    } else if (only_last_reduced && out.numel() > 1) {
      const int64_t rows = out.numel(), len = x.shape().back();
      kernel::parallel_for(rows, kernel::share_elements(x.numel()),
                           [&](int64_t r) { acc[r] = row_sum(px + r * len, len, false); });
    } else {
      const auto out_strides = kernel::broadcast_strides(kept, x.shape());
      const bool row_reduced = reduced.back();
      int64_t row_start = 0;
      kernel::for_each_row<1>(x.shape(), {out_strides.data()}, [&](const std::array<int64_t, 1>& off, int64_t len) {
        const T* row = px + row_start;
        double* dst = acc.data() + off[0];
        if (row_reduced) {
          *dst += row_sum(row, len, true);
        } else {
          kernel::parallel_for(len, kernel::share_elements(len), [&](int64_t j) { dst[j] += row[j]; });
        }
        row_start += len;
      });
    }
    T* po = out.mutable_data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) po[i] = static_cast<T>(acc[i] * scale);
  });
  return out;
}

int64_t reduced_count(const Shape& shape, const std::vector<bool>& reduced) {
  int64_t count = 1;
  for (std::size_t d = 0; d < shape.size(); ++d)
    if (reduced[d]) count *= shape[d];
  return count;
}

// Spreads g (the gradient of a reduction) back over the input's shape: every input element that was
// summed receives the gradient of the sum it went into.
Tensor expand_back(const Tensor& g, const Shape& input_shape, const std::vector<bool>& reduced) {
  return broadcast_to(reshape(g, reduced_shape(input_shape, reduced, true)), input_shape);
}

}  // namespace

// out = sum_i x_i over the reduced dims      d out / d x_i = 1
// int64 input (counts, labels, comparison masks): the sum is int64, as in PyTorch, counted in double
// (exact below 2^53).
Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  if (x.dtype() == int64) return sum(x.to(float64), std::move(dims), keepdim).to(int64);
  auto reduced = reduced_dims("sum", x, dims);
  Tensor out = sum_kernel("sum", x, reduced, keepdim, 1.0);
  if (any_requires_grad({&x}))
    record(out, "sum", {&x}, [shape = x.shape(), reduced](const Tensor& g, const Node&) {
      return Grads{expand_back(g, shape, reduced)};
    });
  return out;
}
Tensor sum(const Tensor& x) { return sum(x, {}, false); }

// out = (1/m) sum_i x_i over the m reduced elements      d out / d x_i = 1/m
// int64 input: the mean is float32. PyTorch refuses the mean of an int64 tensor; we allow it so that
// accuracy is one line, (argmax(logits, 1) == labels).mean().item().
Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  if (x.dtype() == int64) return mean(x.to(float64), std::move(dims), keepdim).to(float32);
  auto reduced = reduced_dims("mean", x, dims);
  const int64_t m = reduced_count(x.shape(), reduced);
  if (m == 0)
    throw Error("mean: reducing " + shape_str(x.shape()) + " over zero elements; expected a non-empty tensor");
  Tensor out = sum_kernel("mean", x, reduced, keepdim, 1.0 / static_cast<double>(m));
  if (any_requires_grad({&x}))
    record(out, "mean", {&x}, [shape = x.shape(), reduced, m](const Tensor& g, const Node&) {
      return Grads{expand_back(g / static_cast<double>(m), shape, reduced)};
    });
  return out;
}
Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const auto lead = static_cast<int64_t>(x.shape().size()) - static_cast<int64_t>(shape.size());
  if (lead < 0)
    throw Error("sum_to: cannot sum " + shape_str(x.shape()) + " to the larger rank of " + shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
    } else if (shape[d - lead] != x.shape()[d]) {
      if (shape[d - lead] != 1)
        throw Error("sum_to: " + shape_str(x.shape()) + " does not broadcast from " + shape_str(shape));
      dims.push_back(d);
    }
  }
  if (dims.empty()) return reshape(x, shape);
  return reshape(sum(x, dims, true), shape);
}

// values = max_k x[.., k, ..]; d values / d x = 1 at the (first) argmax, 0 elsewhere.
MaxResult max(const Tensor& x, int64_t dim, bool keepdim) {
  if (x.dim() == 0) throw Error("max: needs a tensor with at least one dimension; got a 0-dim tensor");
  const int64_t d = normalize_dim("max", dim, x.dim());
  const kernel::AroundDim around = kernel::around_dim(x.shape(), d);
  const int64_t outer = around.outer, size = around.size, inner = around.inner;
  if (size == 0) throw Error("max: dim " + std::to_string(dim) + " of shape " + shape_str(x.shape()) + " is empty");
  std::vector<bool> reduced(static_cast<std::size_t>(x.dim()), false);
  reduced[d] = true;
  const Shape out_shape = reduced_shape(x.shape(), reduced, keepdim);
  Tensor values = empty(out_shape, x.dtype()), indices = empty(out_shape, int64);
  int64_t* pi = indices.mutable_data<int64_t>();
  dispatch_float("max", x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* pv = values.mutable_data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* column = px + o * size * inner + i;
        int64_t best = 0;
        for (int64_t k = 1; k < size; ++k) {
          const T candidate = column[k * inner], top = column[best * inner];
          // A NaN is the maximum, and the first one wins, as in PyTorch.
          if (candidate > top || (std::isnan(candidate) && !std::isnan(top))) best = k;
        }
        pv[o * inner + i] = column[best * inner];
        pi[o * inner + i] = best;
      }
  });
  if (any_requires_grad({&x})) {
    // The gradient goes back to where each maximum was: a scatter of g at the indices along d.
    Shape kept = x.shape();
    kept[d] = 1;
    record(values, "max", {&x},
           [shape = x.shape(), kept, d, indices = SavedTensor(reshape(indices, kept))](const Tensor& g, const Node& n) {
             return Grads{scatter_add(zeros(shape, g.dtype()), d, indices.unpack(n), reshape(g, kept))};
           });
  }
  return {values, indices};
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  NoGradGuard no_grad;
  return max(x, dim, keepdim).indices;
}

Tensor Tensor::sum() const { return ng::sum(*this); }
Tensor Tensor::sum(std::vector<int64_t> dims, bool keepdim) const { return ng::sum(*this, std::move(dims), keepdim); }
Tensor Tensor::mean() const { return ng::mean(*this); }
Tensor Tensor::mean(std::vector<int64_t> dims, bool keepdim) const { return ng::mean(*this, std::move(dims), keepdim); }

}  // namespace ng
