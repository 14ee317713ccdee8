// test_core_kernels.cpp: the shared loops of autograd/ (broadcasting, reductions, permute, the
// copy-based shape ops) against naive references written here, on many random shapes up to 4-D.
//
// The kernels take fast paths (flat loops when shapes agree, row-at-a-time walks with strides of 0
// where an operand is broadcast); the references below compute every output element on its own from
// its multi-index, the slow obvious way. Values are small integers, so results compare exactly.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>

#include "normgrad.h"

namespace {

using Index = std::vector<int64_t>;

// The multi-index of row-major position `flat` in `shape`.
Index unravel(int64_t flat, const ng::Shape& shape) {
  Index index(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return index;
}

// The row-major position in `shape` of the element that `index` (into a shape of equal or higher rank,
// right-aligned) reads when `shape` is broadcast: a size-1 or missing dimension always reads 0.
int64_t broadcast_position(const Index& index, const ng::Shape& shape) {
  const std::size_t skip = index.size() - shape.size();
  int64_t flat = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + (shape[d] == 1 ? 0 : index[skip + d]);
  return flat;
}

int64_t random_int(int64_t lo, int64_t hi) {  // uniform in [lo, hi]
  return lo + static_cast<int64_t>(ng::random_u64() % static_cast<uint64_t>(hi - lo + 1));
}

ng::Shape random_shape(int64_t max_rank) {
  ng::Shape shape(static_cast<std::size_t>(random_int(0, max_rank)));
  for (int64_t& s : shape) s = random_int(1, 4);
  return shape;
}

// A shape that broadcasts to `target`: some leading dims dropped, some others set to 1.
ng::Shape broadcastable_to(const ng::Shape& target) {
  ng::Shape shape(target.begin() + random_int(0, static_cast<int64_t>(target.size())), target.end());
  for (int64_t& s : shape)
    if (random_int(0, 2) == 0) s = 1;
  return shape;
}

// 1, 2, 3, ... (or a scaled variant) in `shape`: distinct values that show where each element went.
ng::Tensor counting(const ng::Shape& shape, double scale, ng::Dtype dtype) {
  ng::Tensor t = ng::empty(shape, dtype);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<double>()[i] = scale * static_cast<double>(i + 1);
  return t;
}

}  // namespace

TEST_CASE("broadcast add, sub and mul agree with a per-element reference on 300 random shape pairs") {
  ng::manual_seed(100);
  for (int trial = 0; trial < 300; ++trial) {
    const ng::Shape out_shape = random_shape(4);
    ng::Shape shape_a = broadcastable_to(out_shape), shape_b = broadcastable_to(out_shape);
    if (trial % 2) std::swap(shape_a, shape_b);
    ng::Tensor a = counting(shape_a, 1, ng::float64), b = counting(shape_b, 100, ng::float64);
    const ng::Tensor sum = a + b, difference = b - a, product = a * b;
    const ng::Shape expected_shape = ng::broadcast_shapes("test", shape_a, shape_b);
    INFO(ng::shape_str(shape_a) << " op " << ng::shape_str(shape_b));
    REQUIRE(sum.shape() == expected_shape);
    int64_t mismatches = 0;
    for (int64_t i = 0; i < sum.numel(); ++i) {
      const Index index = unravel(i, expected_shape);
      const double va = a.data<double>()[broadcast_position(index, shape_a)];
      const double vb = b.data<double>()[broadcast_position(index, shape_b)];
      mismatches += sum.data<double>()[i] != va + vb;
      mismatches += difference.data<double>()[i] != vb - va;
      mismatches += product.data<double>()[i] != va * vb;
    }
    CHECK(mismatches == 0);
  }
}

TEST_CASE("broadcast_to agrees with a per-element reference on 200 random shapes, in float32 too") {
  ng::manual_seed(101);
  for (int trial = 0; trial < 200; ++trial) {
    const ng::Shape target = random_shape(4);
    const ng::Shape shape = broadcastable_to(target);
    const ng::Dtype dtype = trial % 2 ? ng::float32 : ng::float64;
    ng::Tensor x = counting(shape, 1, ng::float64).to(dtype);
    const ng::Tensor out = ng::broadcast_to(x, target);
    INFO(ng::shape_str(shape) << " -> " << ng::shape_str(target));
    REQUIRE(out.shape() == target);
    const std::vector<double> xs = x.to_vector(), outs = out.to_vector();
    int64_t mismatches = 0;
    for (int64_t i = 0; i < out.numel(); ++i)
      mismatches += outs[i] != xs[broadcast_position(unravel(i, target), shape)];
    CHECK(mismatches == 0);
  }
}

TEST_CASE("sum over any set of dims, with and without keepdim, agrees with a reference on 300 random cases") {
  ng::manual_seed(102);
  for (int trial = 0; trial < 300; ++trial) {
    const ng::Shape shape = random_shape(4);
    if (shape.empty()) continue;
    std::vector<int64_t> dims;
    std::vector<bool> reduced(shape.size(), false);
    for (std::size_t d = 0; d < shape.size(); ++d)
      if (random_int(0, 1)) {
        const auto rank = static_cast<int64_t>(shape.size());
        dims.push_back(static_cast<int64_t>(d) - (random_int(0, 1) ? rank : 0));  // dim d, or its negative form
        reduced[d] = true;
      }
    if (dims.empty()) continue;  // an empty list means "all dims", tested elsewhere
    const bool keepdim = random_int(0, 1);
    const ng::Dtype dtype = trial % 3 ? ng::float64 : ng::float32;
    ng::Tensor x = counting(shape, 1, ng::float64).to(dtype);
    const ng::Tensor out = x.sum(dims, keepdim);
    // Reference: each input element adds into the output position with its reduced dims set to 0.
    ng::Shape kept_shape = shape;
    for (std::size_t d = 0; d < shape.size(); ++d)
      if (reduced[d]) kept_shape[d] = 1;
    std::vector<double> expected(static_cast<std::size_t>(ng::shape_numel(kept_shape)), 0.0);
    for (int64_t i = 0; i < x.numel(); ++i) expected[broadcast_position(unravel(i, shape), kept_shape)] += i + 1;
    ng::Shape expected_shape;
    for (std::size_t d = 0; d < shape.size(); ++d)
      if (!reduced[d] || keepdim) expected_shape.push_back(kept_shape[d]);
    INFO(ng::shape_str(shape) << " over " << ng::shape_str(dims) << (keepdim ? " keepdim" : ""));
    CHECK(out.shape() == expected_shape);
    CHECK(out.to_vector() == expected);
  }
}

TEST_CASE("permute agrees with a per-element reference for random permutations of up to 4 dims") {
  ng::manual_seed(103);
  for (int trial = 0; trial < 200; ++trial) {
    const ng::Shape shape = random_shape(4);
    std::vector<int64_t> order(shape.size());
    std::iota(order.begin(), order.end(), 0);
    for (std::size_t i = order.size(); i > 1; --i)  // Fisher-Yates shuffle
      std::swap(order[i - 1], order[random_int(0, static_cast<int64_t>(i) - 1)]);
    const ng::Dtype dtype = trial % 2 ? ng::float32 : ng::float64;
    ng::Tensor x = counting(shape, 1, ng::float64).to(dtype);
    const ng::Tensor out = x.permute(order);
    // out[j_0, ..., j_{n-1}] = x[i] with i_{order[d]} = j_d
    ng::Shape expected_shape(shape.size());
    for (std::size_t d = 0; d < shape.size(); ++d) expected_shape[d] = shape[order[d]];
    INFO(ng::shape_str(shape) << " permuted by " << ng::shape_str(order));
    REQUIRE(out.shape() == expected_shape);
    const std::vector<double> xs = x.to_vector(), outs = out.to_vector();
    int64_t mismatches = 0;
    for (int64_t flat = 0; flat < out.numel(); ++flat) {
      const Index j = unravel(flat, expected_shape);
      Index i(shape.size());
      for (std::size_t d = 0; d < shape.size(); ++d) i[order[d]] = j[d];
      mismatches += outs[flat] != xs[broadcast_position(i, shape)];
    }
    CHECK(mismatches == 0);
  }
}

TEST_CASE("max, cat, slice and index_select along a random dim agree with per-element references") {
  ng::manual_seed(104);
  for (int trial = 0; trial < 200; ++trial) {
    ng::Shape shape = random_shape(4);
    if (shape.empty()) shape = {3};
    const auto rank = static_cast<int64_t>(shape.size());
    const int64_t dim = random_int(0, rank - 1), n = shape[dim];
    // Values that are not monotone along dim, so that the maximum is not always the last element.
    ng::Tensor x = ng::empty(shape, ng::float64);
    for (int64_t i = 0; i < x.numel(); ++i) x.mutable_data<double>()[i] = static_cast<double>((i * 7919) % 101);
    const int64_t start = random_int(0, n - 1), end = random_int(start, n);
    const ng::Tensor index = ng::from_vector<int64_t>({n - 1, 0, n - 1}, {3});
    const ng::Tensor maxima = ng::max(x, dim, true).values, sliced = ng::slice(x, dim, start, end);
    const ng::Tensor joined = ng::cat({x, sliced}, dim), picked = ng::index_select(x, dim, index);
    INFO(ng::shape_str(shape) << " along dim " << dim);
    int64_t mismatches = 0;
    auto x_at = [&](Index i) { return x.data<double>()[broadcast_position(i, shape)]; };
    for (int64_t flat = 0; flat < maxima.numel(); ++flat) {
      Index i = unravel(flat, maxima.shape());
      double best = x_at(i);
      for (i[dim] = 1; i[dim] < n; ++i[dim]) best = std::max(best, x_at(i));
      mismatches += maxima.data<double>()[flat] != best;
    }
    for (int64_t flat = 0; flat < sliced.numel(); ++flat) {
      Index i = unravel(flat, sliced.shape());
      i[dim] += start;
      mismatches += sliced.data<double>()[flat] != x_at(i);
    }
    for (int64_t flat = 0; flat < joined.numel(); ++flat) {
      Index i = unravel(flat, joined.shape());
      if (i[dim] >= n) i[dim] = i[dim] - n + start;  // the second part is the slice
      mismatches += joined.data<double>()[flat] != x_at(i);
    }
    for (int64_t flat = 0; flat < picked.numel(); ++flat) {
      Index i = unravel(flat, picked.shape());
      i[dim] = index.data<int64_t>()[i[dim]];
      mismatches += picked.data<double>()[flat] != x_at(i);
    }
    CHECK(mismatches == 0);
  }
}
