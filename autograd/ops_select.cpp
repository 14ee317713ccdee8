// ops_select.cpp: comparisons, where, maximum/minimum, max/min/argmax/argmin, topk and stack;
// masked_fill, tril/triu, select, split and chunk.
//
// Comparisons return a 0/1 mask. normgrad has no bool dtype, so the mask has the inputs' dtype
// (float32, float64 or int64): `(argmax(logits, 1) == y)` on int64 labels is an int64 mask, and
// `.mean()` of it is the accuracy (mean of int64 returns float32, ops_reduce.cpp). A comparison is
// piecewise constant, so its derivative is 0 wherever it exists: it records no gradient.
//
// The ops that pick between values (where, maximum, minimum, max, min, topk) send the gradient to the
// value they picked. Their backward multiplies g by a constant 0/1 (or 1/2 on ties) mask, or scatters
// it (max and topk along a dim), which is itself an op on g, so the gradient can be differentiated again.
//
// masked_fill, tril and triu are where() with a constant mask; select, split and chunk are slices.
// Being composed, their gradients come from those ops and can be differentiated again too.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "graph.h"
#include "kernels.h"
#include "ops.h"

namespace ng {

using Grads = std::vector<Tensor>;

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);  // ops_elementwise.cpp

namespace {

// Calls f.operator()<T>() with the C++ type T behind any dtype (float, double or int64_t): f is a template
// lambda, [&]<class T>() { ... }.
template <class F> decltype(auto) dispatch_all(Dtype dtype, F&& f) {
  switch (dtype) {
    case float32:
      return f.template operator()<float>();
    case float64:
      return f.template operator()<double>();
    default:
      return f.template operator()<int64_t>();
  }
}

template <class T> bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(v);
  else
    return false;
}

// a, b: broadcastable, same dtype -> out: broadcast shape, that dtype; out = f(a, b) for any dtype.
template <class F> Tensor binary_any_dtype(const char* op, const Tensor& a, const Tensor& b, F f) {
  check_same_dtype(op, a, b);
  Tensor out = empty(broadcast_shapes(op, a.shape(), b.shape()), a.dtype());
  dispatch_all(a.dtype(), [&]<class T>() { kernel::binary<T>(a, b, out, f); });
  return out;
}

// 1 where pred(a, b) holds, else 0, in the inputs' dtype. No node: the derivative is 0.
template <class Pred> Tensor compare(const char* op, const Tensor& a, const Tensor& b, Pred pred) {
  return binary_any_dtype(op, a, b, [pred](auto x, auto y) { return static_cast<decltype(x)>(pred(x, y) ? 1 : 0); });
}

// The scalar operand of `t op value` as a 0-dim tensor of t's dtype. An int64 tensor meets a value
// with a fraction (x == 2.5) by comparing in float64, as PyTorch promotes; the mask is then turned
// back into int64, so the result's dtype does not depend on the value.
template <class Pred> Tensor compare_scalar(const char* op, const Tensor& a, double value, Pred pred) {
  const bool whole = std::trunc(value) == value && std::abs(value) < 9.2e18;
  if (a.dtype() == int64 && !whole) return compare(op, a.to(float64), scalar(value, float64), pred).to(int64);
  return compare(op, a, scalar(value, a.dtype()), pred);
}

}  // namespace

// ---- comparisons ----------------------------------------------------------------------------------
// a, b: broadcastable, same dtype -> mask: broadcast shape, that dtype, 1 where the relation holds.
// NaN compares unequal to everything (itself included), so only ne is 1 for it, as in IEEE and PyTorch.
Tensor eq(const Tensor& a, const Tensor& b) {
  return compare("eq", a, b, [](auto x, auto y) { return x == y; });
}
Tensor ne(const Tensor& a, const Tensor& b) {
  return compare("ne", a, b, [](auto x, auto y) { return x != y; });
}
Tensor lt(const Tensor& a, const Tensor& b) {
  return compare("lt", a, b, [](auto x, auto y) { return x < y; });
}
Tensor le(const Tensor& a, const Tensor& b) {
  return compare("le", a, b, [](auto x, auto y) { return x <= y; });
}
Tensor gt(const Tensor& a, const Tensor& b) {
  return compare("gt", a, b, [](auto x, auto y) { return x > y; });
}
Tensor ge(const Tensor& a, const Tensor& b) {
  return compare("ge", a, b, [](auto x, auto y) { return x >= y; });
}

Tensor eq(const Tensor& a, double b) {
  return compare_scalar("eq", a, b, [](auto x, auto y) { return x == y; });
}
Tensor ne(const Tensor& a, double b) {
  return compare_scalar("ne", a, b, [](auto x, auto y) { return x != y; });
}
Tensor lt(const Tensor& a, double b) {
  return compare_scalar("lt", a, b, [](auto x, auto y) { return x < y; });
}
Tensor le(const Tensor& a, double b) {
  return compare_scalar("le", a, b, [](auto x, auto y) { return x <= y; });
}
Tensor gt(const Tensor& a, double b) {
  return compare_scalar("gt", a, b, [](auto x, auto y) { return x > y; });
}
Tensor ge(const Tensor& a, double b) {
  return compare_scalar("ge", a, b, [](auto x, auto y) { return x >= y; });
}

Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, double b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, double b) { return ne(a, b); }
Tensor operator<(const Tensor& a, double b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, double b) { return le(a, b); }
Tensor operator>(const Tensor& a, double b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, double b) { return ge(a, b); }
// A scalar on the left is the mirrored relation with the scalar on the right: 2 < x is x > 2.
Tensor operator==(double a, const Tensor& b) { return eq(b, a); }
Tensor operator!=(double a, const Tensor& b) { return ne(b, a); }
Tensor operator<(double a, const Tensor& b) { return gt(b, a); }
Tensor operator<=(double a, const Tensor& b) { return ge(b, a); }
Tensor operator>(double a, const Tensor& b) { return lt(b, a); }
Tensor operator>=(double a, const Tensor& b) { return le(b, a); }

// ---- where ----------------------------------------------------------------------------------------
// cond (any dtype), a, b (same dtype), all broadcastable -> out: their broadcast shape, a's dtype;
// out = a where cond != 0, else b.
//   d out/da = [cond], d out/db = 1 - [cond]:  da = sum_to(where(cond, g, 0)), db = sum_to(where(cond, 0, g))
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same_dtype("where", a, b);
  Shape shape;
  try {
    shape = broadcast_shapes("where", broadcast_shapes("where", cond.shape(), a.shape()), b.shape());
  } catch (const Error&) {
    throw Error("where: shapes " + shape_str(cond.shape()) + " (cond), " + shape_str(a.shape()) + " (a) and " +
                shape_str(b.shape()) + " (b) cannot be broadcast together; sizes must match or be 1 in each dim");
  }
  Tensor out = empty(shape, a.dtype());
  // Each operand is read with stride 0 along the dims it is broadcast in.
  const auto sc = kernel::broadcast_strides(cond.shape(), shape), sa = kernel::broadcast_strides(a.shape(), shape),
             sb = kernel::broadcast_strides(b.shape(), shape);
  // Steps along the last dim (none for a 0-dim output, whose one row has one element).
  const auto last_step = [&](const std::vector<int64_t>& strides) {
    return shape.empty() ? int64_t{0} : strides.back();
  };
  const int64_t ic = last_step(sc), ia = last_step(sa), ib = last_step(sb);
  dispatch_all(cond.dtype(), [&]<class C>() {
    dispatch_all(a.dtype(), [&]<class T>() {
      const C* pc = cond.data<C>();
      const T *pa = a.data<T>(), *pb = b.data<T>();
      T* po = out.mutable_data<T>();
      kernel::for_each_row<3>(shape, {sc.data(), sa.data(), sb.data()},
                              [&](const std::array<int64_t, 3>& off, int64_t len) {
                                for (int64_t j = 0; j < len; ++j)
                                  *po++ = pc[off[0] + j * ic] != C(0) ? pa[off[1] + j * ia] : pb[off[2] + j * ib];
                              });
    });
  });
  if (any_requires_grad({&a, &b}))
    record(out, "where", {&a, &b},
           [cond = SavedTensor(cond), shape_a = a.shape(), shape_b = b.shape()](const Tensor& g, const Node& n) {
             const Tensor c = cond.unpack(n), zero = scalar(0, g.dtype());
             return Grads{n.needs_grad(0) ? sum_to(where(c, g, zero), shape_a) : Tensor(),
                          n.needs_grad(1) ? sum_to(where(c, zero, g), shape_b) : Tensor()};
           });
  return out;
}

// ---- maximum, minimum -----------------------------------------------------------------------------
// a, b: broadcastable, same dtype -> out: broadcast shape; out = max(a, b) elementwise (NaN if either is).
//   d out/da = [a > b] + 1/2 [a = b],  d out/db = [b > a] + 1/2 [a = b]
// On a tie the gradient is split half and half, as PyTorch does; NaN pairs get none.
Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_any_dtype("maximum", a, b, [](auto x, auto y) {
    if (is_nan(x)) return x;
    if (is_nan(y)) return y;
    return x < y ? y : x;
  });
  if (any_requires_grad({&a, &b}))
    record(out, "maximum", {&a, &b}, [a = SavedTensor(a), b = SavedTensor(b)](const Tensor& g, const Node& n) {
      const Tensor av = a.unpack(n), bv = b.unpack(n), half_on_ties = eq(av, bv) * 0.5;
      return Grads{n.needs_grad(0) ? sum_to(g * (gt(av, bv) + half_on_ties), av.shape()) : Tensor(),
                   n.needs_grad(1) ? sum_to(g * (gt(bv, av) + half_on_ties), bv.shape()) : Tensor()};
    });
  return out;
}

// out = min(a, b) elementwise.   d out/da = [a < b] + 1/2 [a = b],  d out/db = [b < a] + 1/2 [a = b]
Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_any_dtype("minimum", a, b, [](auto x, auto y) {
    if (is_nan(x)) return x;
    if (is_nan(y)) return y;
    return y < x ? y : x;
  });
  if (any_requires_grad({&a, &b}))
    record(out, "minimum", {&a, &b}, [a = SavedTensor(a), b = SavedTensor(b)](const Tensor& g, const Node& n) {
      const Tensor av = a.unpack(n), bv = b.unpack(n), half_on_ties = eq(av, bv) * 0.5;
      return Grads{n.needs_grad(0) ? sum_to(g * (lt(av, bv) + half_on_ties), av.shape()) : Tensor(),
                   n.needs_grad(1) ? sum_to(g * (lt(bv, av) + half_on_ties), bv.shape()) : Tensor()};
    });
  return out;
}

// ---- max, min over all elements -------------------------------------------------------------------
namespace {
// x: any non-empty shape -> out: [] (0-dim), the largest (largest = true) or smallest element; NaN if
// any element is NaN, as in PyTorch.
//   d out/dx_i = [x_i = out] / (number of elements equal to out): when several elements tie for the
//   extreme, the gradient is shared evenly among them (PyTorch's evenly_distribute_backward).
Tensor extreme(const char* op, const Tensor& x, bool largest) {
  if (x.numel() == 0)
    throw Error(std::string(op) + ": the tensor of shape " + shape_str(x.shape()) +
                " is empty; expected at least one element (or give a dim)");
  Tensor out = empty({}, x.dtype());
  dispatch_float(op, x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T best = px[0];
    for (int64_t i = 1; i < x.numel() && !std::isnan(best); ++i)
      if (std::isnan(px[i]) || (largest ? px[i] > best : px[i] < best)) best = px[i];
    out.mutable_data<T>()[0] = best;
  });
  if (any_requires_grad({&x}))
    record(out, op, {&x}, [x = SavedTensor(x), out = SavedTensor::output(out)](const Tensor& g, const Node& n) {
      const Tensor xv = x.unpack(n), ov = out.unpack(n).detach();
      // Where the extreme sits (for a NaN result: the NaNs, which are the only elements unequal to themselves).
      const Tensor at_extreme = std::isnan(ov.item()) ? ne(xv, xv) : eq(xv, ov);
      return Grads{at_extreme * (g / sum(at_extreme))};
    });
  return out;
}
}  // namespace

Tensor max(const Tensor& x) { return extreme("max", x, true); }
Tensor min(const Tensor& x) { return extreme("min", x, false); }

// min along a dim is max of -x along it, negated: the same first-of-ties index (and first NaN), and
// the gradient flows back through the two negations and max's scatter.
MinResult min(const Tensor& x, int64_t dim, bool keepdim) {
  if (x.dim() == 0) throw Error("min: needs a tensor with at least one dimension; got a 0-dim tensor");
  if (x.dtype() == int64) throw Error("min: dtype int64 is not supported; expected float32 or float64");
  normalize_dim("min", dim, x.dim());  // so that a bad dim is reported as min's, not max's
  MaxResult of_negated = max(-x, dim, keepdim);
  return {-of_negated.values, of_negated.indices};
}

Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  NoGradGuard no_grad;
  return min(x, dim, keepdim).indices;
}

// The index of the largest (smallest) element of x flattened to 1-D, as a 0-dim int64 tensor.
Tensor argmax(const Tensor& x) {
  if (x.numel() == 0)
    throw Error("argmax: the tensor of shape " + shape_str(x.shape()) + " is empty; expected at least one element");
  return argmax(reshape(x.detach(), {-1}), 0);
}
Tensor argmin(const Tensor& x) {
  if (x.numel() == 0)
    throw Error("argmin: the tensor of shape " + shape_str(x.shape()) + " is empty; expected at least one element");
  return argmin(reshape(x.detach(), {-1}), 0);
}

// ---- topk -----------------------------------------------------------------------------------------
// x: [.., n, ..] (n at dim) -> values, indices: [.., k, ..]; values[.., j, ..] = x[.., indices[.., j, ..], ..],
// the k largest (largest = true) or smallest elements along dim, from the most extreme on.
//   d values[j] / d x[i] = [i = indices[j]]: each value's gradient goes back to where it was taken
//   from, a scatter of g at the indices (scatter_add, whose own backward is a gather).
// The order is a strict one, as PyTorch's CPU kernel gives it: NaN counts as larger than any number
// (as in max), and equal values keep their order along dim, the lower index first. With that order
// the result is always sorted; sorted = false (PyTorch: any order) gives the same.
TopKResult topk(const Tensor& x, int64_t k, int64_t dim, bool largest, [[maybe_unused]] bool sorted) {
  if (x.dim() == 0) {  // a 0-dim tensor is one element along dim 0 (or -1), as in PyTorch
    normalize_dim("topk", dim, 1);
    TopKResult of_one = topk(reshape(x, {1}), k, 0, largest, sorted);
    if (k == 1) return {reshape(of_one.values, {}), reshape(of_one.indices, {})};
    return of_one;
  }
  const int64_t d = normalize_dim("topk", dim, x.dim());
  const kernel::AroundDim around = kernel::around_dim(x.shape(), d);
  const int64_t outer = around.outer, size = around.size, inner = around.inner;
  if (k < 0 || k > size)
    throw Error("topk: k = " + std::to_string(k) + " for dim " + std::to_string(dim) + " of shape " +
                shape_str(x.shape()) + " (size " + std::to_string(size) +
                "); expected 0 <= k <= " + std::to_string(size));
  Shape out_shape = x.shape();
  out_shape[d] = k;
  Tensor values = empty(out_shape, x.dtype()), indices = empty(out_shape, int64);
  int64_t* pi = indices.mutable_data<int64_t>();
  dispatch_all(x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* pv = values.mutable_data<T>();
    std::vector<int64_t> order(static_cast<std::size_t>(size));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* column = px + o * size * inner + i;
        // Whether element a comes before element b: more extreme, or as extreme and earlier.
        const auto before = [&](int64_t a, int64_t b) {
          const T va = column[a * inner], vb = column[b * inner];
          const bool nan_a = is_nan(va), nan_b = is_nan(vb);
          if (nan_a != nan_b) return largest ? nan_a : nan_b;  // NaN counts as larger than any number
          if (!nan_a && va != vb) return largest ? va > vb : va < vb;
          return a < b;  // equal (or both NaN): the lower index first
        };
        for (int64_t j = 0; j < size; ++j) order[j] = j;
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
        for (int64_t j = 0; j < k; ++j) {
          pv[(o * k + j) * inner + i] = column[order[j] * inner];
          pi[(o * k + j) * inner + i] = order[j];
        }
      }
  });
  if (any_requires_grad({&x}))
    record(values, "topk", {&x},
           [shape = x.shape(), d, indices = SavedTensor(indices)](const Tensor& g, const Node& n) {
             return Grads{scatter_add(zeros(shape, g.dtype()), d, indices.unpack(n), g)};
           });
  return {values, indices};
}

// ---- stack ----------------------------------------------------------------------------------------
// n tensors of shape S -> out: S with a new dim of size n inserted at `dim`, out[.., i, ..] = tensors[i].
// It is cat of the tensors each unsqueezed at dim, so its backward is theirs (slice, reshape).
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) throw Error("stack: expected a non-empty list of tensors, got none");
  const Tensor& first = tensors[0];
  const int64_t d = normalize_dim("stack", dim, first.dim() + 1);
  std::vector<Tensor> unsqueezed;
  unsqueezed.reserve(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (t.shape() != first.shape() || t.dtype() != first.dtype())
      throw Error("stack: tensor " + std::to_string(i) + " has shape " + shape_str(t.shape()) + " " +
                  dtype_name(t.dtype()) + " but tensor 0 has " + shape_str(first.shape()) + " " +
                  dtype_name(first.dtype()) + "; expected every tensor to have the same shape and dtype");
    unsqueezed.push_back(unsqueeze(t, d));
  }
  return cat(unsqueezed, d);
}

// ---- masked_fill, tril, triu ----------------------------------------------------------------------
// x: any shape, mask: any dtype, broadcastable to x -> out: x's shape; out = value where mask != 0, else x.
//   d out/dx = 1 - [mask]: the filled positions get no gradient (where's backward).
// PyTorch's out-of-place masked_fill would also broadcast x up to the mask's shape; here the result
// always has x's shape, as the in-place form does.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  const bool fits = broadcast_shapes("masked_fill", mask.shape(), x.shape()) == x.shape();
  if (!fits)
    throw Error("masked_fill: mask of shape " + shape_str(mask.shape()) + " cannot be broadcast to the input's shape " +
                shape_str(x.shape()) + "; expected a mask broadcastable to the input");
  if (x.dtype() == int64 && !(std::abs(value) < 9.2e18 && std::trunc(value) == value))
    throw Error("masked_fill: value " + std::to_string(value) + " for an int64 input of shape " + shape_str(x.shape()) +
                "; expected a whole number in int64's range");
  return where(mask, scalar(value, x.dtype()), x);
}

namespace {

// [rows, cols] int64: 1 where column j - row i lies on the side of `diagonal` that `tril`/`triu` zeroes.
Tensor outside_triangle(int64_t rows, int64_t cols, int64_t diagonal, bool lower) {
  Tensor outside = empty({rows, cols}, int64);
  int64_t* p = outside.mutable_data<int64_t>();
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) p[i * cols + j] = lower ? j - i > diagonal : j - i < diagonal;
  return outside;
}

Tensor triangle(const char* op, const Tensor& x, int64_t diagonal, bool lower) {
  if (x.dim() < 2)
    throw Error(std::string(op) + ": input of shape " + shape_str(x.shape()) +
                " has fewer than 2 dims; expected [*, rows, cols]");
  return masked_fill(x, outside_triangle(x.size(-2), x.size(-1), diagonal, lower), 0);
}

}  // namespace

// out[.., i, j] = x[.., i, j] if j - i <= diagonal, else 0.     d out/dx = [j - i <= diagonal]
Tensor tril(const Tensor& x, int64_t diagonal) { return triangle("tril", x, diagonal, true); }
// out[.., i, j] = x[.., i, j] if j - i >= diagonal, else 0.     d out/dx = [j - i >= diagonal]
Tensor triu(const Tensor& x, int64_t diagonal) { return triangle("triu", x, diagonal, false); }

// ---- select, split, chunk -------------------------------------------------------------------------
// x: [.., n, ..] (n at dim) -> out: x's shape without dim; out = x[.., index, ..].
// The slice [index, index + 1) with the size-1 dim reshaped away; backward: g put back into zeros at
// `index` (slice_backward).
Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  if (x.dim() == 0) throw Error("select: cannot select from a 0-dim tensor; expected at least one dimension");
  const int64_t d = normalize_dim("select", dim, x.dim()), n = x.size(d);
  const int64_t i = index < 0 ? index + n : index;
  if (i < 0 || i >= n)
    throw Error("select: index " + std::to_string(index) + " is out of range for dim " + std::to_string(dim) +
                " of shape " + shape_str(x.shape()) + " (size " + std::to_string(n) + "); expected -" +
                std::to_string(n) + " <= index < " + std::to_string(n));
  Shape out_shape = x.shape();
  out_shape.erase(out_shape.begin() + d);
  return reshape(slice(x, d, i, i + 1), out_shape);
}

// x: [.., n, ..] -> pieces [.., size_k, ..] with sum_k size_k = n, each a slice (a copy).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& split_sizes, int64_t dim) {
  if (x.dim() == 0) throw Error("split: cannot split a 0-dim tensor; expected at least one dimension");
  const int64_t d = normalize_dim("split", dim, x.dim()), n = x.size(d);
  bool fits = true;  // every size non-negative and within what is left (checked before adding: no overflow)
  int64_t total = 0;
  for (int64_t size : split_sizes) {
    fits = fits && size >= 0 && size <= n - total;
    if (fits) total += size;
  }
  if (!fits || total != n)
    throw Error("split: sizes " + shape_str(split_sizes) + " for dim " + std::to_string(dim) + " of shape " +
                shape_str(x.shape()) + "; expected non-negative sizes that add up to " + std::to_string(n));
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t size : split_sizes) {
    pieces.push_back(slice(x, d, start, start + size));
    start += size;
  }
  return pieces;
}

// Pieces of split_size along dim, the last one smaller when split_size does not divide the size.
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  if (x.dim() == 0) throw Error("split: cannot split a 0-dim tensor; expected at least one dimension");
  const int64_t d = normalize_dim("split", dim, x.dim()), n = x.size(d);
  // As PyTorch, a size-0 dim splits (into one empty piece) with any split_size >= 0.
  if (split_size < 0 || (split_size == 0 && n > 0))
    throw Error("split: split_size " + std::to_string(split_size) + " for dim " + std::to_string(dim) + " of shape " +
                shape_str(x.shape()) + "; expected split_size > 0");
  if (n == 0) return {slice(x, d, 0, 0)};
  std::vector<int64_t> sizes;
  for (int64_t left = n; left > 0; left -= sizes.back()) sizes.push_back(std::min(split_size, left));
  return split(x, sizes, d);
}

// split with split_size = ceil(n / chunks): at most `chunks` pieces.
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  if (x.dim() == 0) throw Error("chunk: cannot chunk a 0-dim tensor; expected at least one dimension");
  const int64_t d = normalize_dim("chunk", dim, x.dim()), n = x.size(d);
  if (chunks <= 0)
    throw Error("chunk: chunks = " + std::to_string(chunks) + " for shape " + shape_str(x.shape()) +
                "; expected chunks > 0");
  // A size-0 dim gives `chunks` empty pieces, as PyTorch (split would give one).
  if (n == 0) return split(x, std::vector<int64_t>(static_cast<std::size_t>(chunks), 0), d);
  return split(x, n / chunks + (n % chunks != 0), d);
}

// ---- method forms ---------------------------------------------------------------------------------
Tensor Tensor::max() const { return ng::max(*this); }
MaxResult Tensor::max(int64_t dim, bool keepdim) const { return ng::max(*this, dim, keepdim); }
Tensor Tensor::min() const { return ng::min(*this); }
MinResult Tensor::min(int64_t dim, bool keepdim) const { return ng::min(*this, dim, keepdim); }
Tensor Tensor::argmax() const { return ng::argmax(*this); }
Tensor Tensor::argmax(int64_t dim, bool keepdim) const { return ng::argmax(*this, dim, keepdim); }
Tensor Tensor::argmin() const { return ng::argmin(*this); }
Tensor Tensor::argmin(int64_t dim, bool keepdim) const { return ng::argmin(*this, dim, keepdim); }
TopKResult Tensor::topk(int64_t k, int64_t dim, bool largest, bool sorted) const {
  return ng::topk(*this, k, dim, largest, sorted);
}
Tensor Tensor::masked_fill(const Tensor& mask, double value) const { return ng::masked_fill(*this, mask, value); }
Tensor Tensor::tril(int64_t diagonal) const { return ng::tril(*this, diagonal); }
Tensor Tensor::triu(int64_t diagonal) const { return ng::triu(*this, diagonal); }
Tensor Tensor::select(int64_t dim, int64_t index) const { return ng::select(*this, dim, index); }
std::vector<Tensor> Tensor::split(int64_t split_size, int64_t dim) const { return ng::split(*this, split_size, dim); }
std::vector<Tensor> Tensor::chunk(int64_t chunks, int64_t dim) const { return ng::chunk(*this, chunks, dim); }

}  // namespace ng
