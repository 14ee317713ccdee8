// op_cases.h: the table of op cases that the gradient tests loop over, in the spirit of PyTorch's OpInfo.
//
// A row (OpCase) per op of autograd/ops.h, or a few when fixed arguments are worth checking apart (sum
// over each list of dims, pow for each exponent): the op's name as ops.h writes it in its index (or, for
// the ops the index leaves out, in its declaration), a function of float64 tensors that calls it (integer
// and index arguments fixed inside), the sets of input shapes it is checked on (broadcast, 0-dim and
// size-1 wherever the op accepts them) and where each input is drawn from (positive for log and sqrt,
// away from the kinks of abs, relu and clamp, distinct values for max and the pools).
// tests/test_gradcheck_ops.cpp runs ng::gradcheck on every row and shape set, tests/test_higher_order.cpp
// ng::gradgradcheck; a test in test_gradcheck_ops.cpp fails for an op of ops.h (in its index or
// declared) that has neither a row nor a line in not_differentiable_ops(), the ops with nothing to
// differentiate (int64 indices, a random mask made from a shape).
//
// A new op is one row in op_cases(), under its group: name, fixed arguments ("" when none), function,
// shape sets, input ranges:
//   {"erf", "", unary(ng::erf), kUnaryShapes, {any}},
//   {"leaky_relu", "slope 0.2", [](const Inputs& in) { return ng::leaky_relu(in[0], 0.2); }, kUnaryShapes,
//    {not_near_zero}},
// Header-only; a test file includes it after <doctest/doctest.h> and "normgrad.h".
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "normgrad.h"
#include "test_helpers.h"

// Where an input's values come from: uniform in [low, high), re-drawn when within `margin` of a kink
// (a point where the op has no derivative); or, `distinct`, evenly spaced values in a random order, so
// that no two are within gradcheck's eps of each other (no ties for max, topk and the pools).
struct InputRange {
  double low = -1, high = 1;
  std::vector<double> kinks = {};
  double margin = 0;
  bool distinct = false;
};

inline InputRange uniform_in(double low, double high) { return {low, high}; }
inline InputRange away_from(std::vector<double> kinks, double margin) { return {-1, 1, std::move(kinks), margin}; }
inline InputRange distinct_in(double low, double high) { return {low, high, {}, 0, true}; }

// Sets of input shapes: each holds one shape per input.
using ShapeSets = std::vector<std::vector<ng::Shape>>;

struct OpCase {
  std::string name;     // as ops.h writes it: in its index, or in its declaration
  std::string variant;  // the fixed arguments, "" when there are none
  Fn f;
  ShapeSets shape_sets;
  std::vector<InputRange> ranges;  // one per input; the last one also serves the inputs after it
};

// An op of ops.h that has no row, and why.
struct NotDifferentiable {
  const char* name;
  const char* reason;
};

inline const std::vector<NotDifferentiable>& not_differentiable_ops() {
  static const std::vector<NotDifferentiable> ops = {
      {"argmax", "returns int64 indices, which have no derivative"},
      {"argmin", "returns int64 indices, which have no derivative"},
      {"multinomial", "draws random int64 category indices; it records no gradient"},
      {"dropout_mask", "takes a shape, not a tensor: a random constant with no gradient (x * mask is mul's row)"},
  };
  return ops;
}

// A float64 leaf of `shape` drawn from `range` by the seeded generator.
inline ng::Tensor draw(const ng::Shape& shape, const InputRange& range) {
  ng::Tensor t = ng::empty(shape, ng::float64);
  double* values = t.mutable_data<double>();
  const int64_t n = t.numel();
  const double width = range.high - range.low;
  if (range.distinct) {
    for (int64_t i = 0; i < n; ++i)
      values[i] = range.low + width * (static_cast<double>(i) + 0.5) / static_cast<double>(n);
    for (int64_t i = n - 1; i > 0; --i)  // Fisher-Yates
      std::swap(values[i], values[static_cast<int64_t>(ng::random_u64() % static_cast<uint64_t>(i + 1))]);
  } else {
    auto near_a_kink = [&range](double v) {
      for (double kink : range.kinks)
        if (std::abs(v - kink) < range.margin) return true;
      return false;
    };
    auto uniform_value = [&range, width] { return range.low + width * ng::random_uniform(); };
    for (int64_t i = 0; i < n; ++i) {
      double v = uniform_value();
      while (near_a_kink(v)) v = uniform_value();
      values[i] = v;
    }
  }
  t.requires_grad_();
  return t;
}

// The inputs of one shape set, drawn from a seed of the case's name, so that every case draws the same
// values however the table around it changes.
inline Inputs draw_inputs(const OpCase& c, const std::vector<ng::Shape>& shapes, const std::string& case_name) {
  uint64_t seed = 14695981039346656037ULL;  // FNV-1a
  for (char ch : case_name) seed = (seed ^ static_cast<unsigned char>(ch)) * 1099511628211ULL;
  ng::manual_seed(seed);
  Inputs inputs;
  for (std::size_t k = 0; k < shapes.size(); ++k)
    inputs.push_back(draw(shapes[k], c.ranges[std::min(k, c.ranges.size() - 1)]));
  return inputs;
}

// "sum (dims [0, 2], keepdim) on [2, 3, 4]"
inline std::string case_name(const OpCase& c, const std::vector<ng::Shape>& shapes) {
  std::string name = c.name + (c.variant.empty() ? "" : " (" + c.variant + ")") + " on";
  for (std::size_t k = 0; k < shapes.size(); ++k) name += (k == 0 ? " " : ", ") + ng::shape_str(shapes[k]);
  return name;
}

inline std::string number_str(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

inline Fn unary(ng::Tensor (*op)(const ng::Tensor&)) {
  return [op](const Inputs& in) { return op(in[0]); };
}
inline Fn binary(ng::Tensor (*op)(const ng::Tensor&, const ng::Tensor&)) {
  return [op](const Inputs& in) { return op(in[0], in[1]); };
}

inline ng::Tensor int64_tensor(const std::vector<int64_t>& values, const ng::Shape& shape) {
  return ng::from_vector<int64_t>(values, shape);
}

// Shape sets shared by many rows: a matrix, a 0-dim scalar and size-1 dims; and for binary ops equal
// shapes, broadcasting both ways and across missing dims, and 0-dim on either side.
inline const ShapeSets kUnaryShapes = {{{2, 3}}, {{}}, {{1, 3, 1}}};
inline const ShapeSets kBinaryShapes = {
    {{2, 3}, {2, 3}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {4}},    {{4}, {2, 3, 4}}, {{4}, {2, 1, 4}},
    {{}, {2, 3}},     {{2, 3}, {}},     {{2, 1, 4}, {3, 1}}, {{}, {}},
};

// The rows keep their table layout (clang-format would give each field of a row its own line).
// clang-format off
inline std::vector<OpCase> op_cases() {
  const InputRange any = uniform_in(-2, 2), unit = uniform_in(-1, 1), positive = uniform_in(0.5, 2);
  const InputRange not_near_zero = away_from({0}, 0.2);  // |x| in [0.2, 1)
  std::vector<OpCase> cases;
  auto add = [&cases](std::initializer_list<OpCase> rows) { cases.insert(cases.end(), rows); };

  // ---- elementwise ---------------------------------------------------------------------------------
  add({
      {"add", "", binary(ng::add), kBinaryShapes, {any}},
      {"sub", "", binary(ng::sub), kBinaryShapes, {any}},
      {"mul", "", binary(ng::mul), kBinaryShapes, {any}},
      {"div", "", binary(ng::div), kBinaryShapes, {any, positive}},
      {"pow", "tensor exponent", [](const Inputs& in) { return ng::pow(in[0], in[1]); }, kBinaryShapes,
       {positive, uniform_in(-1.5, 1.5)}},
      {"pow", "p = 3, negative base", [](const Inputs& in) { return ng::pow(in[0], 3.0); }, {{{4}}, {{2, 3}}},
       {uniform_in(-2, -0.5)}},
      {"neg", "", unary(ng::neg), kUnaryShapes, {any}},
      {"sqrt", "", unary(ng::sqrt), kUnaryShapes, {uniform_in(0.5, 3)}},
      {"exp", "", unary(ng::exp), kUnaryShapes, {any}},
      {"log", "", unary(ng::log), kUnaryShapes, {uniform_in(0.5, 3)}},
      {"abs", "", unary(ng::abs), kUnaryShapes, {not_near_zero}},
      {"relu", "", unary(ng::relu), kUnaryShapes, {not_near_zero}},
      {"sigmoid", "", unary(ng::sigmoid), kUnaryShapes, {uniform_in(-3, 3)}},
      {"tanh", "", unary(ng::tanh), kUnaryShapes, {any}},
      // piecewise constant: the check is that its gradient is 0 (it records none)
      {"sign", "", unary(ng::sign), kUnaryShapes, {not_near_zero}},
      {"clamp", "[-0.5, 0.5]", [](const Inputs& in) { return ng::clamp(in[0], -0.5, 0.5); }, kUnaryShapes,
       {away_from({-0.5, 0.5}, 0.1)}},
      {"sigmoid_backward", "", binary(ng::sigmoid_backward), kBinaryShapes, {unit, uniform_in(0.1, 0.9)}},
      {"tanh_backward", "", binary(ng::tanh_backward), kBinaryShapes, {unit, uniform_in(-0.9, 0.9)}},
      {"threshold_backward", "", binary(ng::threshold_backward), kBinaryShapes, {unit, not_near_zero}},
  });
  for (double p : {2.0, 3.0, 0.5, -1.0, -1.5, 1.0, 0.0})
    add({{"pow", "p = " + number_str(p), [p](const Inputs& in) { return ng::pow(in[0], p); }, kUnaryShapes,
          {positive}}});
  for (double p : {2.0, 3.0, 0.5, -1.0, 1.0})
    add({{"pow_backward", "p = " + number_str(p), [p](const Inputs& in) { return ng::pow_backward(in[0], in[1], p); },
          kBinaryShapes, {unit, positive}}});

  // ---- reductions ----------------------------------------------------------------------------------
  const ShapeSets rank3 = {{{2, 3, 4}}, {{3, 1, 2}}, {{2, 1, 3}}};
  // dims [] reduces every dim, as PyTorch's dim=[]
  add({
      {"sum", "all elements", [](const Inputs& in) { return ng::sum(in[0]); }, {{{2, 3, 4}}, {{}}, {{2, 1, 3}}},
       {unit}},
      {"mean", "all elements", [](const Inputs& in) { return ng::mean(in[0]); }, {{{2, 3, 4}}, {{}}, {{2, 1, 3}}},
       {unit}},
  });
  const std::vector<std::vector<int64_t>> dim_lists = {{0},    {1},    {2},    {-1},      {0, 1},
                                                       {0, 2}, {1, 2}, {2, 0}, {0, 1, 2}, {}};
  for (const std::vector<int64_t>& dims : dim_lists)
    for (bool keepdim : {false, true}) {
      const std::string variant = "dims " + ng::shape_str(dims) + (keepdim ? ", keepdim" : "");
      add({
          {"sum", variant, [dims, keepdim](const Inputs& in) { return ng::sum(in[0], dims, keepdim); }, rank3, {unit}},
          {"mean", variant, [dims, keepdim](const Inputs& in) { return ng::mean(in[0], dims, keepdim); }, rank3,
           {unit}},
      });
    }
  for (const ng::Shape& target : std::vector<ng::Shape>{{3, 1}, {4}, {}, {2, 1, 4}, {1, 3, 4}, {1, 1, 4}, {2, 3, 4}})
    add({{"sum_to", "to " + ng::shape_str(target), [target](const Inputs& in) { return ng::sum_to(in[0], target); },
          {{{2, 3, 4}}}, {unit}}});
  // max and min: over all elements, and over each dim (dim 2 only where there is one)
  add({
      {"max", "all elements", [](const Inputs& in) { return ng::max(in[0]); }, {{{2, 3}}, {{}}, {{1, 5, 1}}},
       {distinct_in(-2, 2)}},
      {"min", "all elements", [](const Inputs& in) { return ng::min(in[0]); }, {{{2, 3}}, {{}}, {{1, 5, 1}}},
       {distinct_in(-2, 2)}},
  });
  const std::vector<std::pair<int64_t, ShapeSets>> max_dims = {
      {0, {{{3, 4, 5}}, {{3, 4}}, {{3, 1, 4}}, {{1, 4}}}}, {1, {{{3, 4, 5}}, {{3, 4}}, {{3, 1, 4}}, {{1, 4}}}},
      {2, {{{3, 4, 5}}, {{3, 4, 1}}}},                      {-1, {{{3, 4, 5}}, {{3, 4}}, {{3, 1, 4}}, {{1, 4}}}}};
  for (const auto& dim_shapes : max_dims)
    for (bool keepdim : {false, true}) {
      const int64_t dim = dim_shapes.first;
      const std::string variant = "dim " + std::to_string(dim) + (keepdim ? ", keepdim" : "");
      add({
          {"max", variant, [dim, keepdim](const Inputs& in) { return ng::max(in[0], dim, keepdim).values; },
           dim_shapes.second, {distinct_in(-2, 2)}},
          {"min", variant, [dim, keepdim](const Inputs& in) { return ng::min(in[0], dim, keepdim).values; },
           dim_shapes.second, {distinct_in(-2, 2)}},
      });
    }
  // log_softmax, softmax and logsumexp along each dim, of 3-D, 2-D, 1-D and size-1 inputs where the dim exists
  const std::vector<std::pair<int64_t, ShapeSets>> softmax_dims = {
      {0, {{{2, 3, 4}}, {{3, 4}}, {{5}}}}, {1, {{{2, 3, 4}}, {{3, 4}}, {{1, 3, 1}}}},
      {2, {{{2, 3, 4}}, {{1, 3, 1}}}},     {-1, {{{2, 3, 4}}, {{3, 4}}, {{5}}}}};
  for (const auto& dim_shapes : softmax_dims) {
    const int64_t dim = dim_shapes.first;
    add({
        {"log_softmax", "dim " + std::to_string(dim), [dim](const Inputs& in) { return ng::log_softmax(in[0], dim); },
         dim_shapes.second, {any}},
        {"softmax", "dim " + std::to_string(dim), [dim](const Inputs& in) { return ng::softmax(in[0], dim); },
         dim_shapes.second, {any}},
        {"logsumexp", "dim " + std::to_string(dim), [dim](const Inputs& in) { return ng::logsumexp(in[0], dim); },
         dim_shapes.second, {any}},
        {"logsumexp", "dim " + std::to_string(dim) + ", keepdim",
         [dim](const Inputs& in) { return ng::logsumexp(in[0], dim, true); }, dim_shapes.second, {any}},
    });
  }
  add({{"logsumexp", "0-dim, dim -1", [](const Inputs& in) { return ng::logsumexp(in[0], -1); }, {{{}}}, {any}}});

  // ---- shape ---------------------------------------------------------------------------------------
  add({
      {"reshape", "to [-1]", [](const Inputs& in) { return ng::reshape(in[0], {-1}); },
       {{{2, 3, 4}}, {{2, 1, 3}}, {{}}}, {unit}},
      {"reshape", "to [6, 4]", [](const Inputs& in) { return ng::reshape(in[0], {6, 4}); }, {{{2, 3, 4}}}, {unit}},
      {"reshape", "to [4, -1, 2]", [](const Inputs& in) { return ng::reshape(in[0], {4, -1, 2}); }, {{{2, 3, 4}}},
       {unit}},
      {"reshape", "to []", [](const Inputs& in) { return ng::reshape(in[0], {}); }, {{{1, 1}}, {{}}}, {unit}},
      {"view", "to [3, 8]", [](const Inputs& in) { return ng::view(in[0], {3, 8}); }, {{{2, 3, 4}}}, {unit}},
      {"transpose", "0, 2", [](const Inputs& in) { return ng::transpose(in[0], 0, 2); }, {{{2, 3, 4}}, {{2, 1, 3}}},
       {unit}},
      {"transpose", "-1, -2", [](const Inputs& in) { return ng::transpose(in[0], -1, -2); }, {{{2, 3, 4}}, {{3, 5}}},
       {unit}},
      {"transpose", "Tensor::t", [](const Inputs& in) { return in[0].t(); }, {{{3, 5}}}, {unit}},
      {"unsqueeze", "dim 0", [](const Inputs& in) { return ng::unsqueeze(in[0], 0); }, {{{2, 3}}, {{2, 1, 3}}, {{}}},
       {unit}},
      {"unsqueeze", "dim -1", [](const Inputs& in) { return ng::unsqueeze(in[0], -1); }, {{{2, 3}}, {{}}}, {unit}},
      {"squeeze", "dim 1", [](const Inputs& in) { return ng::squeeze(in[0], 1); }, {{{2, 1, 3}}}, {unit}},
      {"squeeze", "all size-1 dims", [](const Inputs& in) { return ng::squeeze(in[0]); }, {{{1, 2, 1, 3}}, {{2, 1, 3}}},
       {unit}},
      {"cat", "dim 0", [](const Inputs& in) { return ng::cat(in, 0); }, {{{1, 3}, {2, 3}, {3, 3}}, {{2, 3}, {1, 3}}},
       {unit}},
      {"cat", "dim 1", [](const Inputs& in) { return ng::cat(in, 1); }, {{{2, 2, 3}, {2, 4, 3}}, {{2, 3}, {2, 1}}},
       {unit}},
      {"cat", "dim -1", [](const Inputs& in) { return ng::cat(in, -1); }, {{{2, 2, 1}, {2, 2, 3}}, {{2, 3}, {2, 1}}},
       {unit}},
      {"cat", "with a constant [2, 3] either side",
       [](const Inputs& in) {
         const ng::Tensor constant = ng::tensor({0.5, -1, 2, 0.25, 1, -0.75}, {2, 3}, ng::float64);
         return ng::cat({constant, in[0], constant}, 0);
       },
       {{{1, 3}}}, {unit}},
      {"slice_backward", "into [2, 5, 3] along dim 1 from 2",
       [](const Inputs& in) { return ng::slice_backward(in[0], {2, 5, 3}, 1, 2); }, {{{2, 2, 3}}}, {unit}},
      {"slice_backward", "into [1, 4] along dim -1 from 1",
       [](const Inputs& in) { return ng::slice_backward(in[0], {1, 4}, -1, 1); }, {{{1, 3}}}, {unit}},
      {"broadcast_to", "to [2, 3, 4]", [](const Inputs& in) { return ng::broadcast_to(in[0], {2, 3, 4}); },
       {{{3, 1}}, {{4}}, {{}}}, {unit}},
      {"broadcast_to", "to [2, 3]", [](const Inputs& in) { return ng::broadcast_to(in[0], {2, 3}); }, {{{}}, {{1, 3}}},
       {unit}},
      {"broadcast_to", "to [2, 4]", [](const Inputs& in) { return ng::broadcast_to(in[0], {2, 4}); }, {{{4}}}, {unit}},
  });
  for (const std::vector<int64_t>& order : std::vector<std::vector<int64_t>>{
           {0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}})
    add({{"permute", ng::shape_str(order), [order](const Inputs& in) { return ng::permute(in[0], order); },
          {{{2, 3, 4}}, {{2, 1, 3}}}, {unit}}});
  // slice [start, end) along a dim, negative bounds counting from the end; both shapes have every range
  for (const std::vector<int64_t>& bounds : std::vector<std::vector<int64_t>>{
           {0, 1, 3}, {1, 0, 2}, {1, 1, 3}, {-1, -2, 3}, {1, 2, -1}, {0, -2, 3}}) {
    const int64_t dim = bounds[0], start = bounds[1], end = bounds[2];
    add({{"slice", "dim " + std::to_string(dim) + " [" + std::to_string(start) + ", " + std::to_string(end) + ")",
          [dim, start, end](const Inputs& in) { return ng::slice(in[0], dim, start, end); }, {{{4, 5, 3}}, {{3, 4}}},
          {unit}}});
  }
  add({{"slice", "dim 1 [2, 2), empty, summed", [](const Inputs& in) { return ng::sum(ng::slice(in[0], 1, 2, 2)); },
        {{{4, 5, 3}}}, {unit}}});
  // index ops, with repeated indices (their gradients add up)
  const ng::Tensor repeated = int64_tensor({2, 0, 2, 1}, {4}), three = int64_tensor({2, 0, 2}, {3});
  const ng::Tensor gather_rows = int64_tensor({0, 0, 3, 1, 2, 2}, {3, 2});
  const ng::Tensor gather_columns = int64_tensor({2, 0, 2, 1}, {1, 4});
  add({
      {"index_select", "dim 0, index [2, 0, 2, 1]",
       [repeated](const Inputs& in) { return ng::index_select(in[0], 0, repeated); }, {{{3, 4, 2}}, {{3, 4}}}, {unit}},
      {"index_select", "dim 1, index [2, 0, 2]",
       [three](const Inputs& in) { return ng::index_select(in[0], 1, three); }, {{{3, 4, 2}}, {{3, 4}}}, {unit}},
      {"index_select", "dim 1, index [3, 1]",
       [](const Inputs& in) { return ng::index_select(in[0], 1, int64_tensor({3, 1}, {2})); }, {{{3, 4, 2}}}, {unit}},
      {"index_select", "dim -1, index [0, 1, 0]",
       [](const Inputs& in) { return ng::index_select(in[0], -1, int64_tensor({0, 1, 0}, {3})); }, {{{3, 4, 2}}},
       {unit}},
      {"index_add", "dim 1, index [2, 0, 2]",
       [three](const Inputs& in) { return ng::index_add(in[0], 1, three, in[1]); }, {{{3, 4}, {3, 3}}}, {unit}},
      {"index_add", "dim 0, index [2, 0, 2]",
       [three](const Inputs& in) { return ng::index_add(in[0], 0, three, in[1]); },
       {{{3, 3}, {3, 3}}, {{4, 2}, {3, 2}}}, {unit}},
      {"gather", "dim 1, index [[0, 0], [3, 1], [2, 2]]",
       [gather_rows](const Inputs& in) { return ng::gather(in[0], 1, gather_rows); }, {{{3, 4}}}, {unit}},
      {"gather", "dim 0, index [[2, 0, 2, 1]]",
       [gather_columns](const Inputs& in) { return ng::gather(in[0], 0, gather_columns); }, {{{3, 4}}}, {unit}},
      {"scatter_add", "dim 1, index [[0, 0], [3, 1], [2, 2]]",
       [gather_rows](const Inputs& in) { return ng::scatter_add(in[0], 1, gather_rows, in[1]); }, {{{3, 4}, {3, 2}}},
       {unit}},
  });

  // ---- in place (on a copy, since a leaf that requires grad cannot be written) ------------------------
  const ShapeSets into_first = {
      {{2, 3}, {2, 3}}, {{2, 3}, {3}}, {{2, 3}, {}}, {{2, 3, 4}, {3, 1}}};  // the second broadcast to the first
  add({
      {"add_", "a tensor", [](const Inputs& in) { return in[0].clone().add_(in[1]); }, into_first, {any}},
      {"add_", "0.5", [](const Inputs& in) { return in[0].clone().add_(0.5); }, kUnaryShapes, {any}},
      {"mul_", "a tensor", [](const Inputs& in) { return in[0].clone().mul_(in[1]); }, into_first, {any}},
      {"mul_", "-1.5", [](const Inputs& in) { return in[0].clone().mul_(-1.5); }, kUnaryShapes, {any}},
      // the output is a constant, its history cut: the check is that no gradient reaches x
      {"zero_", "", [](const Inputs& in) { return (in[0] * 2.0).zero_(); }, kUnaryShapes, {any}},
      {"fill_", "5", [](const Inputs& in) { return (in[0] * 2.0).fill_(5); }, kUnaryShapes, {any}},
      {"copy_", "", [](const Inputs& in) { return in[0].clone().copy_(in[1]); }, into_first, {any}},
      {"clamp_", "[-0.5, 0.5]", [](const Inputs& in) { return in[0].clone().clamp_(-0.5, 0.5); }, kUnaryShapes,
       {away_from({-0.5, 0.5}, 0.1)}},
  });

  // ---- matmul --------------------------------------------------------------------------------------
  const ng::Tensor allowed = int64_tensor({1, 1, 0, 0, 1, 1}, {2, 3});  // PyTorch's bool mask: 1 may attend
  add({
      {"matmul", "", binary(ng::matmul),
       {
           {{3, 4}, {4, 5}}, {{2, 3}, {3, 4}}, {{1, 1}, {1, 1}},                                 // [n,k]@[k,m]
           {{2, 3, 4}, {2, 4, 5}}, {{2, 2, 3}, {2, 3, 4}},                                       // batched
           {{2, 3, 4}, {4, 5}}, {{3, 4}, {2, 4, 5}}, {{2, 2, 3}, {3, 4}}, {{2, 3}, {2, 3, 4}},   // one side shared
           {{1, 3, 4}, {2, 4, 5}}, {{2, 3, 4}, {1, 4, 5}},                                       // a batch of 1
           {{4}, {4}}, {{3}, {3}},                                                               // dot product
           {{3, 4}, {4}}, {{4}, {4, 5}}, {{2, 3}, {3}}, {{3}, {3, 4}},                           // a vector side
           {{2, 3, 4}, {4}}, {{4}, {2, 4, 5}}, {{3}, {2, 3, 4}}, {{2, 2, 3}, {3}},
       },
       {unit}},
      {"linear", "with bias", [](const Inputs& in) { return ng::linear(in[0], in[1], in[2]); },
       {{{1, 4}, {2, 4}, {2}}, {{3, 4}, {2, 4}, {2}}}, {unit}},
      {"linear", "without bias", [](const Inputs& in) { return ng::linear(in[0], in[1]); },
       {{{1, 4}, {2, 4}}, {{3, 4}, {2, 4}}}, {unit}},
      {"scaled_dot_product_attention", "",
       [](const Inputs& in) { return ng::scaled_dot_product_attention(in[0], in[1], in[2]); },
       {{{2, 3}, {4, 3}, {4, 2}}}, {unit}},
      {"scaled_dot_product_attention", "causal",
       [](const Inputs& in) { return ng::scaled_dot_product_attention(in[0], in[1], in[2], {}, 0, true); },
       {{{1, 2, 3, 2}, {1, 2, 3, 2}, {1, 2, 3, 2}}}, {unit}},
      {"scaled_dot_product_attention", "int64 mask [2, 3]",
       [allowed](const Inputs& in) { return ng::scaled_dot_product_attention(in[0], in[1], in[2], allowed); },
       {{{2, 1, 2, 3}, {1, 3, 3}, {3, 1}}}, {unit}},
  });

  // ---- selection -----------------------------------------------------------------------------------
  const ng::Tensor cond = int64_tensor({1, 0, 1}, {3, 1});
  const ng::Tensor fill_mask = int64_tensor({0, 1, 0}, {3});
  add({
      // comparisons are piecewise constant: the check is that their gradient is 0 (they record none)
      {"eq", "", binary(ng::eq), kBinaryShapes, {any}},
      {"ne", "", binary(ng::ne), kBinaryShapes, {any}},
      {"lt", "", binary(ng::lt), kBinaryShapes, {any}},
      {"le", "", binary(ng::le), kBinaryShapes, {any}},
      {"gt", "", binary(ng::gt), kBinaryShapes, {any}},
      {"ge", "", binary(ng::ge), kBinaryShapes, {any}},
      {"where", "cond [3, 1] = [1, 0, 1]", [cond](const Inputs& in) { return ng::where(cond, in[0], in[1]); },
       {{{3, 4}, {3, 4}}, {{1, 4}, {3, 1}}, {{}, {4}}, {{3, 1}, {}}, {{2, 3, 4}, {1, 1}}}, {any}},
      {"where", "0-dim cond 0", [](const Inputs& in) { return ng::where(ng::scalar(0), in[0], in[1]); },
       {{{}, {}}, {{2, 3}, {}}}, {any}},
      {"maximum", "", binary(ng::maximum), kBinaryShapes, {any}},
      {"minimum", "", binary(ng::minimum), kBinaryShapes, {any}},
      {"topk", "k = 2, dim -1, largest", [](const Inputs& in) { return ng::topk(in[0], 2, -1).values; },
       {{{3, 4}}, {{2, 3, 4}}, {{1, 5}}}, {distinct_in(-2, 2)}},
      {"topk", "k = 1, dim 0, smallest", [](const Inputs& in) { return ng::topk(in[0], 1, 0, false).values; },
       {{{3, 4}}, {{3, 1, 2}}}, {distinct_in(-2, 2)}},
      {"stack", "dim 0 of 0-dim", [](const Inputs& in) { return ng::stack(in, 0); }, {{{}, {}}}, {any}},
      {"masked_fill", "mask [3] = [0, 1, 0], value 0.5",
       [fill_mask](const Inputs& in) { return ng::masked_fill(in[0], fill_mask, 0.5); }, {{{2, 1, 3}}, {{2, 3}}, {{3}}},
       {unit}},
      {"masked_fill", "0-dim mask 0", [](const Inputs& in) { return ng::masked_fill(in[0], ng::scalar(0), 0.5); },
       {{{}}, {{2, 3}}}, {unit}},
      {"select", "dim -1, index -1", [](const Inputs& in) { return ng::select(in[0], -1, -1); }, {{{2, 1, 3}}, {{3}}},
       {unit}},
      {"select", "dim 1, index 0", [](const Inputs& in) { return ng::select(in[0], 1, 0); }, {{{2, 1, 3}}, {{2, 3}}},
       {unit}},
      // the first and the last piece, scaled apart (a piece in its wrong place shows); the middle ones unused
      {"split", "size 2 along dim -1",
       [](const Inputs& in) {
         const std::vector<ng::Tensor> pieces = ng::split(in[0], 2, -1);
         return ng::cat({pieces.front(), pieces.back() * 3.0}, -1);
       },
       {{{2, 3, 5}}, {{2}}}, {unit}},
      {"split", "sizes [1, 0, 4] along dim 1",
       [](const Inputs& in) {
         const std::vector<ng::Tensor> pieces = ng::split(in[0], std::vector<int64_t>{1, 0, 4}, 1);
         return ng::cat({pieces[0], pieces[1] * 2.0, pieces[2] * 3.0}, 1);
       },
       {{{2, 5}}}, {unit}},
      {"chunk", "3 along dim 0",
       [](const Inputs& in) {
         const std::vector<ng::Tensor> pieces = ng::chunk(in[0], 3, 0);
         return ng::cat({pieces.front(), pieces.back() * 3.0}, 0);
       },
       {{{3, 4}}, {{4, 2}}}, {unit}},
      {"chunk", "4 along dim -1",
       [](const Inputs& in) {
         const std::vector<ng::Tensor> pieces = ng::chunk(in[0], 4, -1);
         return ng::cat({pieces.front(), pieces.back() * 3.0}, -1);
       },
       {{{2, 5}}}, {unit}},
  });
  for (int64_t dim : {0, 1, 2, -1})
    add({{"stack", "dim " + std::to_string(dim), [dim](const Inputs& in) { return ng::stack(in, dim); },
          {{{2, 1}, {2, 1}, {2, 1}}, {{2, 3}, {2, 3}}}, {any}}});
  for (int64_t diagonal : {-1, 0, 2}) {
    const std::string variant = "diagonal " + std::to_string(diagonal);
    add({
        {"tril", variant, [diagonal](const Inputs& in) { return ng::tril(in[0], diagonal); },
         {{{2, 3, 4}}, {{1, 4, 3}}, {{3, 3}}}, {unit}},
        {"triu", variant, [diagonal](const Inputs& in) { return ng::triu(in[0], diagonal); },
         {{{2, 3, 4}}, {{1, 4, 3}}, {{3, 3}}}, {unit}},
    });
  }

  // ---- trigonometry and activations ----------------------------------------------------------------
  add({
      {"sin", "", unary(ng::sin), {{{2, 3}}, {{}}, {{1, 4, 1}}}, {any}},
      {"cos", "", unary(ng::cos), {{{2, 3}}, {{}}, {{1, 4, 1}}}, {any}},
      {"erf", "", unary(ng::erf), kUnaryShapes, {any}},
      {"gelu", "", unary(ng::gelu), kUnaryShapes, {uniform_in(-3, 3)}},
      {"gelu_backward", "", binary(ng::gelu_backward), {{{2, 3}, {2, 3}}, {{}, {}}, {{1, 3, 1}, {1, 3, 1}}},
       {unit, uniform_in(-3, 3)}},
      {"leaky_relu", "slope 0.01", [](const Inputs& in) { return ng::leaky_relu(in[0]); }, kUnaryShapes,
       {not_near_zero}},
      {"leaky_relu", "slope 0.2", [](const Inputs& in) { return ng::leaky_relu(in[0], 0.2); }, kUnaryShapes,
       {not_near_zero}},
  });

  // ---- convolution and pooling (small: tests/test_conv.cpp has the awkward configurations) ----------
  // max_pool2d_backward's indices: positions in each 4x4 plane, one shared by two windows
  const ng::Tensor pool_indices = int64_tensor({0, 2, 8, 10, 5, 5, 13, 15}, {1, 2, 2, 2});
  add({
      {"conv2d", "padding 1, bias",
       [](const Inputs& in) { return ng::conv2d(in[0], in[1], in[2], {1, 1}, {1, 1}); },
       {{{1, 2, 4, 4}, {3, 2, 3, 3}, {3}}}, {unit}},
      {"conv2d", "stride 2, dilation 2, groups 2, no bias",
       [](const Inputs& in) { return ng::conv2d(in[0], in[1], ng::Tensor(), {2, 2}, {0, 0}, {2, 2}, 2); },
       {{{1, 4, 5, 6}, {4, 2, 2, 2}}}, {unit}},
      {"conv2d", "1x1 image and kernel", [](const Inputs& in) { return ng::conv2d(in[0], in[1], in[2]); },
       {{{1, 1, 1, 1}, {2, 1, 1, 1}, {2}}}, {unit}},
      {"conv1d", "stride 2, padding 1, dilation 2, groups 2",
       [](const Inputs& in) { return ng::conv1d(in[0], in[1], in[2], 2, 1, 2, 2); }, {{{2, 4, 7}, {4, 2, 3}, {4}}},
       {unit}},
      // x [1, 2, 5, 4], weight [3, 2, 3, 2], stride (2, 1), padding (1, 0) -> out [1, 3, 3, 3]
      {"conv2d_backward_input", "x [1, 2, 5, 4], stride (2, 1), padding (1, 0)",
       [](const Inputs& in) { return ng::conv2d_backward_input(in[0], in[1], {1, 2, 5, 4}, {2, 1}, {1, 0}); },
       {{{1, 3, 3, 3}, {3, 2, 3, 2}}}, {unit}},
      {"conv2d_backward_weight", "weight [3, 2, 3, 2], stride (2, 1), padding (1, 0)",
       [](const Inputs& in) { return ng::conv2d_backward_weight(in[0], in[1], {3, 2, 3, 2}, {2, 1}, {1, 0}); },
       {{{1, 2, 5, 4}, {1, 3, 3, 3}}}, {unit}},
      {"max_pool2d", "kernel 2", [](const Inputs& in) { return ng::max_pool2d(in[0], {2, 2}); },
       {{{1, 2, 4, 4}}, {{2, 1, 5, 3}}}, {distinct_in(-2, 2)}},
      {"max_pool2d", "kernel 3, stride 2, padding 1",
       [](const Inputs& in) { return ng::max_pool2d(in[0], {3, 3}, {2, 2}, {1, 1}); }, {{{1, 2, 5, 5}}},
       {distinct_in(-2, 2)}},
      {"max_pool2d_with_indices", "kernel 2, stride 1",
       [](const Inputs& in) { return ng::max_pool2d_with_indices(in[0], {2, 2}, {1, 1}).values; }, {{{1, 2, 3, 3}}},
       {distinct_in(-2, 2)}},
      {"max_pool2d_backward", "into [1, 2, 4, 4]",
       [pool_indices](const Inputs& in) { return ng::max_pool2d_backward(in[0], pool_indices, {1, 2, 4, 4}); },
       {{{1, 2, 2, 2}}}, {unit}},
      {"avg_pool2d", "kernel 2", [](const Inputs& in) { return ng::avg_pool2d(in[0], {2, 2}); },
       {{{1, 2, 4, 4}}, {{2, 1, 5, 3}}}, {unit}},
      {"avg_pool2d", "kernel 3, stride 2, padding 1",
       [](const Inputs& in) { return ng::avg_pool2d(in[0], {3, 3}, {2, 2}, {1, 1}); }, {{{1, 2, 5, 5}}}, {unit}},
      {"adaptive_avg_pool2d", "to 1x1", [](const Inputs& in) { return ng::adaptive_avg_pool2d(in[0], {1, 1}); },
       {{{2, 2, 5, 4}}}, {unit}},
      {"adaptive_avg_pool2d", "to 3x2", [](const Inputs& in) { return ng::adaptive_avg_pool2d(in[0], {3, 2}); },
       {{{1, 2, 5, 4}}}, {unit}},
      {"adaptive_avg_pool2d", "to 4x6", [](const Inputs& in) { return ng::adaptive_avg_pool2d(in[0], {4, 6}); },
       {{{1, 2, 5, 4}}}, {unit}},
      {"pad", "{2, 1, 0, 3} with 0.5", [](const Inputs& in) { return ng::pad(in[0], {2, 1, 0, 3}, 0.5); },
       {{{2, 3, 2}}, {{1, 2}}}, {unit}},
      {"pad", "{1, 1}", [](const Inputs& in) { return ng::pad(in[0], {1, 1}); }, {{{3}}, {{2, 1, 3}}}, {unit}},
  });
  return cases;
}
// clang-format on
