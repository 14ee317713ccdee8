// ops_shape.cpp: ops that move elements without arithmetic, each with its backward.
//
// Storage is always contiguous, so reshape (and view, squeeze, unsqueeze) share the input's buffer,
// while permute, cat, slice and index_select copy. Every backward here routes the gradient back to
// where each element came from.
#include <algorithm>
#include <cstring>

#include "checked_size.h"
#include "graph.h"
#include "kernels.h"
#include "ops.h"

namespace ng {

using Grads = std::vector<Tensor>;

// Same numbers, new shape (one size may be -1 and is inferred).   d reshape(x)/dx: reshape g back.
Tensor reshape(const Tensor& x, Shape shape) {
  int64_t infer_at = -1;
  Shape known_sizes;  // every size but the -1
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      if (infer_at >= 0) throw Error("reshape: more than one -1 in " + shape_str(shape));
      infer_at = static_cast<int64_t>(d);
    } else if (shape[d] < 0) {
      throw Error("reshape: negative size in " + shape_str(shape));
    } else {
      known_sizes.push_back(shape[d]);
    }
  }
  int64_t known = 0;
  try {
    known = shape_numel(known_sizes, "reshape");
  } catch (const Error&) {  // said again with the shape as the caller wrote it, -1 included
    throw Error("reshape: shape " + shape_str(shape) + " has too many elements (more than 2^63 - 1)");
  }
  if (infer_at >= 0 && known != 0 && x.numel() % known == 0) shape[infer_at] = x.numel() / known;
  if ((infer_at >= 0 && shape[infer_at] < 0) || shape_numel(shape, "reshape") != x.numel())
    throw Error("reshape: cannot view " + shape_str(x.shape()) + " (" + std::to_string(x.numel()) + " elements) as " +
                shape_str(shape));
  // The element count matches; an empty tensor's other sizes must still be within the per-tensor limit,
  // as they are for empty().
  checked_size::check_fits(shape, x.dtype(), "reshape: " + shape_str(x.shape()) + " as " + shape_str(shape));
  if (shape == x.shape() && !any_requires_grad({&x})) return x;
  Tensor out = x.detach();
  out.impl()->shape = shape;
  if (any_requires_grad({&x}))
    record(out, "reshape", {&x},
           [in_shape = x.shape()](const Tensor& g, const Node&) { return Grads{reshape(g, in_shape)}; });
  return out;
}
Tensor view(const Tensor& x, Shape shape) { return reshape(x, std::move(shape)); }

// out[i_dims[0], ..., i_dims[n-1]] = x[i_0, ..., i_{n-1}]   backward: permute g by the inverse order.
Tensor permute(const Tensor& x, std::vector<int64_t> dims) {
  const int64_t n = x.dim();
  if (static_cast<int64_t>(dims.size()) != n)
    throw Error("permute: " + std::to_string(dims.size()) + " dims given for a tensor of shape " +
                shape_str(x.shape()));
  std::vector<bool> seen(static_cast<std::size_t>(n), false);
  Shape out_shape(static_cast<std::size_t>(n));
  const auto in_strides = kernel::strides_of(x.shape());
  std::vector<int64_t> read_strides(static_cast<std::size_t>(n));  // input stride along each output dim
  for (int64_t d = 0; d < n; ++d) {
    dims[d] = normalize_dim("permute", dims[d], n);
    if (seen[dims[d]]) throw Error("permute: dim " + std::to_string(dims[d]) + " repeated; expected a permutation");
    seen[dims[d]] = true;
    out_shape[d] = x.shape()[dims[d]];
    read_strides[d] = in_strides[dims[d]];
  }
  Tensor out = empty(out_shape, x.dtype());
  // Elements are moved as 4- or 8-byte words whatever their dtype (a copy needs no arithmetic).
  auto copy = [&](auto word) {
    using W = decltype(word);
    const W* src = static_cast<const W*>(x.raw_data());
    W* dst = static_cast<W*>(out.mutable_raw_data());
    if (n == 0) {
      dst[0] = src[0];
      return;
    }
    if (n >= 2 && dims[n - 1] == n - 2 && dims[n - 2] == n - 1 && out.numel() > 0) {
      bool batch_in_order = true;
      for (int64_t d = 0; d + 2 < n; ++d) batch_in_order = batch_in_order && dims[d] == d;
      if (batch_in_order) {  // a batch of matrix transposes: out[b] = x[b]^T, done in cache-sized tiles
        const int64_t rows = x.shape()[n - 2], cols = x.shape()[n - 1], batch = out.numel() / (rows * cols);
        constexpr int64_t kTile = 32;
        for (int64_t b = 0; b < batch; ++b, src += rows * cols, dst += rows * cols)
          for (int64_t i0 = 0; i0 < rows; i0 += kTile)
            for (int64_t j0 = 0; j0 < cols; j0 += kTile)
              for (int64_t i = i0; i < std::min(rows, i0 + kTile); ++i)
                for (int64_t j = j0; j < std::min(cols, j0 + kTile); ++j) dst[j * rows + i] = src[i * cols + j];
        return;
      }
    }
    const int64_t step = read_strides[n - 1];
    kernel::for_each_row<1>(out_shape, {read_strides.data()}, [&](const std::array<int64_t, 1>& off, int64_t len) {
      const W* from = src + off[0];
      for (int64_t j = 0; j < len; ++j) dst[j] = from[j * step];
      dst += len;
    });
  };
  if (dtype_size(x.dtype()) == 4)
    copy(uint32_t{});
  else
    copy(uint64_t{});
  if (any_requires_grad({&x})) {
    std::vector<int64_t> inverse(static_cast<std::size_t>(n));
    for (int64_t d = 0; d < n; ++d) inverse[dims[d]] = d;
    record(out, "permute", {&x}, [inverse](const Tensor& g, const Node&) { return Grads{permute(g, inverse)}; });
  }
  return out;
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  std::vector<int64_t> dims(static_cast<std::size_t>(x.dim()));
  for (int64_t d = 0; d < x.dim(); ++d) dims[d] = d;
  std::swap(dims[normalize_dim("transpose", dim0, x.dim())], dims[normalize_dim("transpose", dim1, x.dim())]);
  return permute(x, dims);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  Shape shape = x.shape();
  shape.insert(shape.begin() + normalize_dim("unsqueeze", dim, x.dim() + 1), 1);
  return reshape(x, shape);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  Shape shape = x.shape();
  const int64_t d = normalize_dim("squeeze", dim, x.dim());
  if (shape[d] != 1) return x;  // as PyTorch: squeezing a dim that is not 1 leaves the tensor alone
  shape.erase(shape.begin() + d);
  return reshape(x, shape);
}

Tensor squeeze(const Tensor& x) {
  Shape shape;
  for (int64_t s : x.shape())
    if (s != 1) shape.push_back(s);
  return reshape(x, shape);
}

// Copies a block [outer, size, inner] of `src` into `dst` at position `at` along the middle dim of
// `dst`, whose middle size is dst_size.  Used by cat (forward) and slice (backward), and in reverse
// (dst -> src) by slice (forward) and cat (backward).
static void copy_block(const Tensor& from, int64_t from_size, int64_t from_at, Tensor& to, int64_t to_size,
                       int64_t to_at, int64_t outer, int64_t count, int64_t inner) {
  const std::size_t elem = dtype_size(from.dtype());
  const auto* src = static_cast<const unsigned char*>(from.raw_data());
  auto* dst = static_cast<unsigned char*>(to.mutable_raw_data());
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + ((o * to_size + to_at) * inner) * elem, src + ((o * from_size + from_at) * inner) * elem,
                static_cast<std::size_t>(count * inner) * elem);
}

// out = [x_0, x_1, ...] along dim.   The gradient of x_i is the slice of g where x_i was placed.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) throw Error("cat: expected at least one tensor, got none");
  const Tensor& first = tensors[0];
  const int64_t d = normalize_dim("cat", dim, first.dim());
  Shape out_shape = first.shape();
  out_shape[d] = 0;
  const std::string args = "cat: " + std::to_string(tensors.size()) + " tensors along dim " + std::to_string(d);
  for (const Tensor& t : tensors) {
    Shape a = t.shape(), b = first.shape();
    if (t.dtype() != first.dtype() || t.dim() != first.dim() || (a[d] = 0, b[d] = 0, a != b))
      throw Error("cat: tensor of shape " + shape_str(t.shape()) + " " + dtype_name(t.dtype()) +
                  " does not match the first, " + shape_str(first.shape()) + " " + dtype_name(first.dtype()) +
                  ", outside dim " + std::to_string(d));
    out_shape[d] = checked_size::add(out_shape[d], t.shape()[d], args, "the sum of their sizes");
  }
  checked_size::check_fits(out_shape, first.dtype(), args);
  Tensor out = empty(out_shape, first.dtype());
  const kernel::AroundDim around = kernel::around_dim(out_shape, d);
  const int64_t outer = around.outer, total = around.size, inner = around.inner;
  std::vector<int64_t> starts;
  int64_t at = 0;
  for (const Tensor& t : tensors) {
    starts.push_back(at);
    copy_block(t, t.shape()[d], 0, out, total, at, outer, t.shape()[d], inner);
    at += t.shape()[d];
  }
  std::vector<const Tensor*> inputs;
  bool needs = false;
  for (const Tensor& t : tensors) {
    inputs.push_back(&t);
    needs = needs || any_requires_grad({&t});
  }
  if (needs) {
    std::vector<int64_t> sizes;
    for (const Tensor& t : tensors) sizes.push_back(t.shape()[d]);
    record(out, "cat", inputs, [d, starts, sizes](const Tensor& g, const Node& n) {
      Grads grads(sizes.size());
      for (std::size_t i = 0; i < sizes.size(); ++i)
        if (n.needs_grad(i)) grads[i] = slice(g, d, starts[i], starts[i] + sizes[i]);
      return grads;
    });
  }
  return out;
}

// out = x[..., start:end, ...] along dim.   The gradient is g placed back at [start, end), zero elsewhere
// (slice_backward below).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end) {
  const int64_t d = normalize_dim("slice", dim, x.dim());
  const int64_t n = x.shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  if (start < 0 || end > n || start > end)
    throw Error("slice: range [" + std::to_string(start) + ", " + std::to_string(end) + ") is outside dim " +
                std::to_string(d) + " of shape " + shape_str(x.shape()) + " (size " + std::to_string(n) + ")");
  Shape out_shape = x.shape();
  out_shape[d] = end - start;
  Tensor out = empty(out_shape, x.dtype());
  const kernel::AroundDim around = kernel::around_dim(x.shape(), d);
  const int64_t outer = around.outer, size = around.size, inner = around.inner;
  copy_block(x, size, start, out, end - start, 0, outer, end - start, inner);
  if (any_requires_grad({&x}))
    record(out, "slice", {&x}, [shape = x.shape(), d, start](const Tensor& g, const Node&) {
      return Grads{slice_backward(g, shape, d, start)};
    });
  return out;
}

// out = zeros(shape) with g at [start, start + g.size(dim)) along dim: slice's backward, as an op.
// It is linear in g, and its own backward is the slice it undoes.
Tensor slice_backward(const Tensor& g, const Shape& shape, int64_t dim, int64_t start) {
  const int64_t d = normalize_dim("slice_backward", dim, static_cast<int64_t>(shape.size()));
  const int64_t count = g.shape()[d];
  Tensor out = zeros(shape, g.dtype());
  const kernel::AroundDim around = kernel::around_dim(shape, d);
  const int64_t outer = around.outer, size = around.size, inner = around.inner;
  copy_block(g, count, 0, out, size, start, outer, count, inner);
  if (any_requires_grad({&g}))
    record(out, "slice_backward", {&g},
           [d, start, count](const Tensor& gg, const Node&) { return Grads{slice(gg, d, start, start + count)}; });
  return out;
}

namespace {
// Checks that every entry of `index` is a position in [0, x.size(d)).
void check_in_range(const char* op, const Tensor& x, int64_t d, const Tensor& index) {
  const int64_t size = x.shape()[d];
  const int64_t* idx = index.data<int64_t>();
  for (int64_t i = 0; i < index.numel(); ++i)
    if (idx[i] < 0 || idx[i] >= size)
      throw Error(std::string(op) + ": index " + std::to_string(idx[i]) + " is out of range for dim " +
                  std::to_string(d) + " of shape " + shape_str(x.shape()) + " (size " + std::to_string(size) + ")");
}

// Checks that `index` is a 1-D int64 tensor of positions in [0, size) along dim d of x.
void check_index_1d(const char* op, const Tensor& x, int64_t d, const Tensor& index) {
  if (index.dtype() != int64 || index.dim() != 1)
    throw Error(std::string(op) + ": index must be a 1-D int64 tensor; got " + shape_str(index.shape()) + " " +
                dtype_name(index.dtype()));
  check_in_range(op, x, d, index);
}
}  // namespace

// out[.., i, ..] = x[.., index[i], ..] along dim.   backward: dx = index_add(zeros, dim, index, g)
// (an index that repeats receives the sum of its gradients).
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  const int64_t d = normalize_dim("index_select", dim, x.dim());
  check_index_1d("index_select", x, d, index);
  const kernel::AroundDim around = kernel::around_dim(x.shape(), d);
  const int64_t outer = around.outer, size = around.size, inner = around.inner;
  const int64_t count = index.numel();
  const int64_t* idx = index.data<int64_t>();
  Shape out_shape = x.shape();
  out_shape[d] = count;
  Tensor out = empty(out_shape, x.dtype());
  for (int64_t i = 0; i < count; ++i) copy_block(x, size, idx[i], out, count, i, outer, 1, inner);
  if (any_requires_grad({&x}))
    record(out, "index_select", {&x},
           [shape = x.shape(), d, index = SavedTensor(index)](const Tensor& g, const Node& n) {
             return Grads{index_add(zeros(shape, g.dtype()), d, index.unpack(n), g)};
           });
  return out;
}

// out = x, then out[.., index[i], ..] += source[.., i, ..] along dim.
//   d/dx = 1 (g itself),   d/dsource = index_select(g, dim, index)
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source) {
  const int64_t d = normalize_dim("index_add", dim, x.dim());
  check_index_1d("index_add", x, d, index);
  Shape expected = x.shape();
  expected[d] = index.numel();
  if (source.shape() != expected || source.dtype() != x.dtype())
    throw Error("index_add: source " + shape_str(source.shape()) + " " + dtype_name(source.dtype()) + " for x " +
                shape_str(x.shape()) + " " + dtype_name(x.dtype()) + " and " + std::to_string(index.numel()) +
                " indices along dim " + std::to_string(d) + "; expected source " + shape_str(expected) +
                " of x's dtype");
  Tensor out = x.detach().clone();
  const kernel::AroundDim around = kernel::around_dim(x.shape(), d);
  const int64_t outer = around.outer, size = around.size, inner = around.inner;
  dispatch_float("index_add", x.dtype(), [&]<class T>() {
    const T* src = source.data<T>();
    const int64_t* ids = index.data<int64_t>();
    T* dst = out.mutable_data<T>();
    const int64_t count = index.numel();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < count; ++i)
        for (int64_t j = 0; j < inner; ++j) dst[(o * size + ids[i]) * inner + j] += src[(o * count + i) * inner + j];
  });
  if (any_requires_grad({&x, &source}))
    record(out, "index_add", {&x, &source}, [d, index = SavedTensor(index)](const Tensor& g, const Node& n) {
      return Grads{n.needs_grad(0) ? g : Tensor(), n.needs_grad(1) ? index_select(g, d, index.unpack(n)) : Tensor()};
    });
  return out;
}

namespace {
// Checks gather/scatter_add's index: int64, the rank of x, no larger than x outside dim (PyTorch's rule),
// every entry in [0, x.size(dim)).
void check_gather_index(const char* op, const Tensor& x, int64_t d, const Tensor& index) {
  if (index.dtype() != int64 || index.dim() != x.dim())
    throw Error(std::string(op) + ": index " + shape_str(index.shape()) + " " + dtype_name(index.dtype()) +
                " for a tensor of shape " + shape_str(x.shape()) + "; expected an int64 index with " +
                std::to_string(x.dim()) + " dimensions");
  for (int64_t k = 0; k < x.dim(); ++k)
    if (k != d && index.shape()[k] > x.shape()[k])
      throw Error(std::string(op) + ": index " + shape_str(index.shape()) + " is larger than " + shape_str(x.shape()) +
                  " in dim " + std::to_string(k) + "; expected index.size(k) <= size(k) for every k != dim");
  check_in_range(op, x, d, index);
}

// Calls f(at_index, at_x) for every element of index: at_x is the flat offset in x of the element it
// selects (the same position as in index, but with index's value along dim d).
template <class F> void for_each_gathered(const Tensor& x, int64_t d, const Tensor& index, F&& f) {
  const auto x_strides = kernel::strides_of(x.shape());
  const Shape& shape = index.shape();
  const int64_t* idx = index.data<int64_t>();
  std::vector<int64_t> pos(shape.size(), 0);
  for (int64_t i = 0, n = index.numel(); i < n; ++i) {
    int64_t at = 0;
    for (std::size_t k = 0; k < shape.size(); ++k)
      at += (static_cast<int64_t>(k) == d ? idx[i] : pos[k]) * x_strides[k];
    f(i, at);
    for (int64_t k = static_cast<int64_t>(shape.size()) - 1; k >= 0; --k) {  // odometer over index's shape
      if (++pos[k] < shape[k]) break;
      pos[k] = 0;
    }
  }
}
}  // namespace

// out[i][j][k] = x[i][index[i][j][k]][k] (for dim = 1; likewise for any dim). out has index's shape.
//   backward: dx = scatter_add(zeros(x.shape), dim, index, g)
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  const int64_t d = normalize_dim("gather", dim, x.dim());
  check_gather_index("gather", x, d, index);
  Tensor out = empty(index.shape(), x.dtype());
  dispatch_float("gather", x.dtype(), [&]<class T>() {
    const T* src = x.data<T>();
    T* dst = out.mutable_data<T>();
    for_each_gathered(x, d, index, [&](int64_t i, int64_t at) { dst[i] = src[at]; });
  });
  if (any_requires_grad({&x}))
    record(out, "gather", {&x}, [shape = x.shape(), d, index = SavedTensor(index)](const Tensor& g, const Node& n) {
      return Grads{scatter_add(zeros(shape, g.dtype()), d, index.unpack(n), g)};
    });
  return out;
}

// out = x, then out[i][index[i][j][k]][k] += source[i][j][k] (for dim = 1). source has index's shape.
//   d/dx = 1 (g itself),   d/dsource = gather(g, dim, index)
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source) {
  const int64_t d = normalize_dim("scatter_add", dim, x.dim());
  check_gather_index("scatter_add", x, d, index);
  if (source.shape() != index.shape() || source.dtype() != x.dtype())
    throw Error("scatter_add: source " + shape_str(source.shape()) + " " + dtype_name(source.dtype()) + " for index " +
                shape_str(index.shape()) + " into " + dtype_name(x.dtype()) + "; expected index's shape and x's dtype");
  Tensor out = x.detach().clone();
  dispatch_float("scatter_add", x.dtype(), [&]<class T>() {
    const T* src = source.data<T>();
    T* dst = out.mutable_data<T>();
    for_each_gathered(x, d, index, [&](int64_t i, int64_t at) { dst[at] += src[i]; });
  });
  if (any_requires_grad({&x, &source}))
    record(out, "scatter_add", {&x, &source}, [d, index = SavedTensor(index)](const Tensor& g, const Node& n) {
      return Grads{n.needs_grad(0) ? g : Tensor(), n.needs_grad(1) ? gather(g, d, index.unpack(n)) : Tensor()};
    });
  return out;
}

// Copies x into the larger `shape` it broadcasts to.   backward: sum_to(g, x.shape).
Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  if (broadcast_shapes("broadcast_to", x.shape(), shape) != shape)
    throw Error("broadcast_to: " + shape_str(x.shape()) + " cannot be broadcast to " + shape_str(shape));
  if (x.shape() == shape) return x;
  Tensor out = empty(shape, x.dtype());
  dispatch_float("broadcast_to", x.dtype(), [&]<class T>() {
    const T* src = x.data<T>();
    T* dst = out.mutable_data<T>();
    // Read x with stride 0 along the dims it is broadcast in: each output row copies (or repeats) one of x's.
    const auto strides = kernel::broadcast_strides(x.shape(), shape);
    const int64_t step = strides.back();
    kernel::for_each_row<1>(shape, {strides.data()}, [&](const std::array<int64_t, 1>& off, int64_t len) {
      for (int64_t j = 0; j < len; ++j) dst[j] = src[off[0] + j * step];
      dst += len;
    });
  });
  if (any_requires_grad({&x}))
    record(out, "broadcast_to", {&x},
           [in_shape = x.shape()](const Tensor& g, const Node&) { return Grads{sum_to(g, in_shape)}; });
  return out;
}

Tensor Tensor::reshape(Shape shape) const { return ng::reshape(*this, std::move(shape)); }
Tensor Tensor::view(Shape shape) const { return ng::view(*this, std::move(shape)); }
Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const { return ng::transpose(*this, dim0, dim1); }
Tensor Tensor::t() const {
  if (dim() != 2) throw Error("t: expected a 2-D tensor, got shape " + shape_str(shape()));
  return ng::transpose(*this, 0, 1);
}
Tensor Tensor::permute(std::vector<int64_t> dims) const { return ng::permute(*this, std::move(dims)); }
Tensor Tensor::unsqueeze(int64_t dim) const { return ng::unsqueeze(*this, dim); }
Tensor Tensor::squeeze(int64_t dim) const { return ng::squeeze(*this, dim); }

}  // namespace ng
