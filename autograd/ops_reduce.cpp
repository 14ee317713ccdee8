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

// sum_j row[j] for j < len, in double: each piece of kSumChunk elements by kernel::lane_sum (eight partial
// sums in vector registers, in a fixed order), the pieces' sums then added in order. With share_pieces,
// threads share the pieces of a long row (each writes its own piece's sum); without it (a caller already
// running on threads) the pieces are summed one after another into the total, which gives the same bits
// and allocates nothing.
// (A plain left-to-right loop waits for each addition before the next, about 4 cycles per element: a
// convolution's bias gradient, the sum of G [64, 16, 28, 28] over all but the channels, took 0.8 ms of the
// small CNN's 4 ms training step that way.)
// (Rows shorter than kLaneSumFrom are added one by one, without lane_sum's fixed cost of eight partial sums:
// the order still depends on the length only.)
constexpr int64_t kLaneSumFrom = 32;
template <class T> double piece_sum(const T* row, int64_t begin, int64_t end) {
  if (end - begin < kLaneSumFrom) {
    double s = 0;
    for (int64_t j = begin; j < end; ++j) s += row[j];
    return s;
  }
  return kernel::lane_sum(end - begin, [&](int64_t j) { return static_cast<double>(row[begin + j]); });
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

// The reduction on the fewest dims: neighbouring dims that are both reduced or both kept become one (x and
// the output are contiguous, so their elements keep their order). A convolution's bias gradient, G
// [64, 16, 28, 28] summed over {0, 2, 3}, is [64, 16, 784] summed over {0, 2}: rows of 784 to sum instead
// of rows of 28.
struct MergedDims {
  Shape shape;
  std::vector<bool> reduced;
};
MergedDims merge_dims(const Shape& shape, const std::vector<bool>& reduced) {
  MergedDims m;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (!m.shape.empty() && m.reduced.back() == reduced[d]) {
      m.shape.back() *= shape[d];
    } else {
      m.shape.push_back(shape[d]);
      m.reduced.push_back(reduced[d]);
    }
  }
  return m;
}

// The last dim kept: threads share out the columns in pieces of this many (16 doubles of the sums are two
// cache lines, so two threads seldom write into one line).
constexpr int64_t kColumnsPerPiece = 16;

// x: any shape -> out: reduced_shape(x, reduced, keepdim), out = scale * (sum over the reduced dims).
// On the merged dims (merge_dims), x is rows along its last dim. Threads:
//   - the last dim reduced: each row is summed on its own (the rows shared out, or the pieces of a single
//     long row, row_sum): into its output element when it is the only reduced dim, else into an array of
//     the rows' sums, which are then added into their output elements in row order;
//   - the last dim kept (a sum over leading dims, as a linear layer's bias gradient): each row is added
//     onto its output row; threads share out the columns, each walking every row for its own.
// In every case each output element receives the same additions in the same order whatever the thread count.
Tensor sum_kernel(const char* op, const Tensor& x, const std::vector<bool>& reduced, bool keepdim, double scale) {
  Tensor out = empty(reduced_shape(x.shape(), reduced, keepdim), x.dtype());
  std::vector<double> acc(static_cast<std::size_t>(out.numel()), 0.0);
  dispatch_float(op, x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    if (x.dim() == 0) {
      acc[0] = px[0];
    } else if (x.numel() > 0) {
      const MergedDims m = merge_dims(x.shape(), reduced);
      const int64_t len = m.shape.back(), rows = x.numel() / len;
      // Where each row goes: the output's offset for every row, walked by for_each_row.
      const auto out_strides = [&] {
        return kernel::broadcast_strides(reduced_shape(m.shape, m.reduced, true), m.shape);
      };
      if (m.reduced.back()) {
        // Each row's sum: into its output element when the last dim is the only reduced one (one row per
        // output), else into row_sums, which are then added into their outputs in row order.
        const bool own_output = rows == out.numel();
        std::vector<double> row_sums(static_cast<std::size_t>(own_output ? 0 : rows));
        double* sums = own_output ? acc.data() : row_sums.data();
        const bool one_row = rows == 1;  // (then row_sum may share out the pieces of that row)
        kernel::parallel_for(rows, kernel::share_elements(x.numel()),
                             [&](int64_t r) { sums[r] = row_sum(px + r * len, len, one_row); });
        if (!own_output) {
          const auto strides = out_strides();
          int64_t r = 0;
          kernel::for_each_row<1>(m.shape, {strides.data()},
                                  [&](const std::array<int64_t, 1>& off, int64_t) { acc[off[0]] += row_sums[r++]; });
        }
      } else {
        // Columns [j0, j1) of every row added onto their output row, the rows in order.
        const auto strides = out_strides();
        const auto add_columns = [&](int64_t j0, int64_t j1) {
          int64_t row_start = 0;
          kernel::for_each_row<1>(m.shape, {strides.data()}, [&](const std::array<int64_t, 1>& off, int64_t) {
            const T* row = px + row_start;
            double* dst = acc.data() + off[0];
            for (int64_t j = j0; j < j1; ++j) dst[j] += row[j];
            row_start += len;
          });
        };
        const int64_t pieces = (len + kColumnsPerPiece - 1) / kColumnsPerPiece;
        if (kernel::threads_for(pieces, kernel::share_elements(x.numel())) > 1) {  // (on one thread: whole rows)
          kernel::parallel_for(pieces, true, [&](int64_t piece) {
            add_columns(piece * kColumnsPerPiece, std::min(len, (piece + 1) * kColumnsPerPiece));
          });
        } else {
          add_columns(0, len);
        }
      }
    }
    T* po = out.mutable_data<T>();
    const int64_t outputs = out.numel();  // (a call into tensor.cpp: not once per element)
    for (int64_t i = 0; i < outputs; ++i) po[i] = static_cast<T>(acc[i] * scale);
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
