// test_select.cpp: comparisons, where, maximum/minimum, max/min/argmax/argmin, stack, sin and cos
// (autograd/ops_select.cpp, autograd/ops_trig.cpp), and sum/mean of int64 tensors.
//
// Forward values are compared with plain loops over the elements or with hand-computed numbers;
// gradients with ng::gradcheck in float64, on broadcast shapes, 0-dim tensors, size-1 dims and ties.
// At a tie of two values, a central difference sees half the slope (one side moves the result, the
// other does not), which is exactly the half-and-half split these ops use, so gradcheck covers ties
// of two; ties of three are checked against the hand-computed 1/3.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "normgrad.h"
#include "test_helpers.h"

using doctest::Approx;

namespace {

// Small whole numbers 0, 1, 2 (so that comparisons meet many ties).
ng::Tensor small_ints(const ng::Shape& shape, ng::Dtype dtype) {
  ng::Tensor t = ng::empty(shape, dtype);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = std::floor(ng::random_uniform() * 3);
    switch (dtype) {
      case ng::float32:
        t.mutable_data<float>()[i] = static_cast<float>(v);
        break;
      case ng::float64:
        t.mutable_data<double>()[i] = v;
        break;
      case ng::int64:
        t.mutable_data<int64_t>()[i] = static_cast<int64_t>(v);
        break;
    }
  }
  return t;
}

}  // namespace

// ---- comparisons -------------------------------------------------------------------------------------

TEST_CASE("each comparison of two broadcast tensors is 1 exactly where the relation holds, in the inputs' dtype") {
  ng::manual_seed(1);
  for (ng::Dtype dtype : {ng::float32, ng::float64, ng::int64}) {
    const ng::Tensor a = small_ints({3, 1}, dtype), b = small_ints({1, 4}, dtype);
    struct Case {
      const char* name;
      ng::Tensor mask;
      std::function<bool(double, double)> holds;
    };
    const std::vector<Case> cases = {
        {"eq", ng::eq(a, b), [](double x, double y) { return x == y; }},
        {"ne", ng::ne(a, b), [](double x, double y) { return x != y; }},
        {"lt", ng::lt(a, b), [](double x, double y) { return x < y; }},
        {"le", ng::le(a, b), [](double x, double y) { return x <= y; }},
        {"gt", ng::gt(a, b), [](double x, double y) { return x > y; }},
        {"ge", ng::ge(a, b), [](double x, double y) { return x >= y; }},
    };
    for (const Case& c : cases) {
      CAPTURE(c.name);
      CAPTURE(ng::dtype_name(dtype));
      REQUIRE(c.mask.shape() == ng::Shape{3, 4});
      CHECK(c.mask.dtype() == dtype);
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 4; ++j) CHECK(c.mask.at({i, j}) == (c.holds(a.at({i, 0}), b.at({0, j})) ? 1.0 : 0.0));
    }
  }
}

TEST_CASE("the comparison operators give the same masks as the named ops, with a scalar on either side") {
  const ng::Tensor a = ng::tensor({1, 2, 3, 4}), b = ng::tensor({4, 2, 1, 4});
  CHECK((a == b).to_vector() == std::vector<double>{0, 1, 0, 1});
  CHECK((a != b).to_vector() == std::vector<double>{1, 0, 1, 0});
  CHECK((a < b).to_vector() == std::vector<double>{1, 0, 0, 0});
  CHECK((a <= b).to_vector() == std::vector<double>{1, 1, 0, 1});
  CHECK((a > b).to_vector() == std::vector<double>{0, 0, 1, 0});
  CHECK((a >= b).to_vector() == std::vector<double>{0, 1, 1, 1});
  CHECK((a == 2).to_vector() == std::vector<double>{0, 1, 0, 0});
  CHECK((a != 2).to_vector() == std::vector<double>{1, 0, 1, 1});
  CHECK((a < 2.5).to_vector() == std::vector<double>{1, 1, 0, 0});
  CHECK((a <= 2).to_vector() == std::vector<double>{1, 1, 0, 0});
  CHECK((a > 2).to_vector() == std::vector<double>{0, 0, 1, 1});
  CHECK((a >= 3).to_vector() == std::vector<double>{0, 0, 1, 1});
  // Scalar on the left: 2 < a means a > 2.
  CHECK((2 < a).to_vector() == std::vector<double>{0, 0, 1, 1});
  CHECK((2 >= a).to_vector() == std::vector<double>{1, 1, 0, 0});
  CHECK((3 == a).to_vector() == std::vector<double>{0, 0, 1, 0});
  CHECK((3 != a).to_vector() == std::vector<double>{1, 1, 0, 1});
  CHECK((3 <= a).to_vector() == std::vector<double>{0, 0, 1, 1});
  CHECK((3 > a).to_vector() == std::vector<double>{1, 1, 0, 0});
}

TEST_CASE("an int64 tensor compared with a fractional scalar compares the true values and stays int64") {
  const ng::Tensor i = ng::arange(5, ng::int64);  // 0 1 2 3 4
  const ng::Tensor equal = i == 2.5, below = i < 2.5, two = i == 2;
  CHECK(equal.dtype() == ng::int64);
  CHECK(equal.to_vector() == std::vector<double>{0, 0, 0, 0, 0});
  CHECK(below.to_vector() == std::vector<double>{1, 1, 1, 0, 0});
  CHECK(two.to_vector() == std::vector<double>{0, 0, 1, 0, 0});
}

TEST_CASE("NaN is unequal to everything: only ne is 1 for it") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const ng::Tensor a = ng::tensor({nan, nan}, ng::float64), b = ng::tensor({1, nan}, ng::float64);
  CHECK((a == b).to_vector() == std::vector<double>{0, 0});
  CHECK((a != b).to_vector() == std::vector<double>{1, 1});
  CHECK((a < b).to_vector() == std::vector<double>{0, 0});
  CHECK((a >= b).to_vector() == std::vector<double>{0, 0});
}

TEST_CASE("comparisons record no gradient even when an input requires grad") {
  ng::Tensor a = uniform_leaf({3}, -2, 2);
  const ng::Tensor mask = a > 0.0;
  CHECK_FALSE(mask.requires_grad());
  CHECK(mask.grad_fn() == nullptr);
  // A mask times a tensor that requires grad is still differentiable in that tensor.
  ng::Tensor masked = (mask * a).sum();
  masked.backward();
  CHECK(a.grad().to_vector() == mask.to_vector());
}

// ---- sum and mean of int64, accuracy -----------------------------------------------------------------

TEST_CASE("sum of an int64 tensor is int64 and mean of it is float32") {
  const ng::Tensor i = ng::tensor({1, 0, 3, 4, 0, 1}, {2, 3}, ng::int64);
  const ng::Tensor total = i.sum(), per_row = i.sum({1}), mean = i.mean(), row_mean = i.mean({1}, true);
  CHECK(total.dtype() == ng::int64);
  CHECK(total.item() == 9);
  CHECK(per_row.to_vector() == std::vector<double>{4, 5});
  CHECK(mean.dtype() == ng::float32);
  CHECK(mean.item() == Approx(1.5));
  CHECK(row_mean.shape() == ng::Shape{2, 1});
  CHECK(row_mean.at({0, 0}) == Approx(4.0 / 3));
  CHECK(row_mean.at({1, 0}) == Approx(5.0 / 3));
}

TEST_CASE("accuracy is one line: (argmax(logits, 1) == y).mean().item() is the fraction of right answers") {
  // Rows' largest logits are at 2, 0, 1, 1, 3; the labels agree in rows 0, 2 and 4: 3 of 5.
  const ng::Tensor logits = ng::tensor({0.1, 0.2, 0.9, 0.0,  //
                                        2.0, 1.0, 0.5, 0.3,  //
                                        0.0, 3.0, -1., 0.2,  //
                                        0.4, 0.8, 0.1, 0.2,  //
                                        0.0, 0.1, 0.2, 0.3},
                                       {5, 4});
  const ng::Tensor y = ng::tensor({2, 1, 1, 0, 3}, ng::int64);
  CHECK((ng::argmax(logits, 1) == y).mean().item() == Approx(3.0 / 5));
  CHECK((logits.argmax(1) == y).mean().item() == Approx(3.0 / 5));
}

// ---- where -------------------------------------------------------------------------------------------

TEST_CASE("where picks a where cond is nonzero and b elsewhere, broadcasting all three") {
  ng::manual_seed(2);
  // cond is float32 with negative and fractional values (nonzero = true), a and b are float64.
  const ng::Tensor cond = ng::tensor({0, -0.5, 2}, {3, 1});
  const ng::Tensor a = ng::rand({1, 4}, ng::float64), b = ng::rand({3, 4}, ng::float64);
  const ng::Tensor out = ng::where(cond, a, b);
  REQUIRE(out.shape() == ng::Shape{3, 4});
  CHECK(out.dtype() == ng::float64);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) CHECK(out.at({i, j}) == (cond.at({i, 0}) != 0 ? a.at({0, j}) : b.at({i, j})));
}

TEST_CASE("where works with an int64 cond and int64 values, and on 0-dim tensors") {
  const ng::Tensor cond = ng::tensor({1, 0, 1}, ng::int64);
  CHECK(ng::where(cond, ng::tensor({1, 2, 3}, ng::int64), ng::tensor({7}, ng::int64)).to_vector() ==
        std::vector<double>{1, 7, 3});
  CHECK(ng::where(ng::scalar(0, ng::int64), ng::scalar(1), ng::scalar(2)).item() == 2);
  CHECK(ng::where(ng::scalar(1), ng::scalar(1), ng::scalar(2)).shape().empty());
}

TEST_CASE("where's gradient matches finite differences on broadcast and 0-dim shapes") {
  ng::manual_seed(3);
  const ng::Tensor cond = ng::tensor({1, 0, 1}, {3, 1}, ng::int64);
  const std::vector<std::pair<ng::Shape, ng::Shape>> shapes = {
      {{3, 4}, {3, 4}}, {{1, 4}, {3, 1}}, {{}, {4}}, {{3, 1}, {}}, {{2, 3, 4}, {1, 1}}};
  for (const auto& [sa, sb] : shapes)
    check_gradients("where " + ng::shape_str(sa) + " " + ng::shape_str(sb),
                    [&](const Inputs& in) { return ng::where(cond, in[0], in[1]); },
                    {uniform_leaf(sa, -2, 2), uniform_leaf(sb, -2, 2)});
  check_gradients("where all 0-dim", [](const Inputs& in) { return ng::where(ng::scalar(0), in[0], in[1]); },
                  {uniform_leaf({}, -2, 2), uniform_leaf({}, -2, 2)});
}

TEST_CASE("where's gradient sends g to a where cond holds and to b elsewhere, summed over broadcasting") {
  ng::Tensor a = leaf({1, 2}, {2, 1}), b = leaf({5}, {});
  const ng::Tensor cond = ng::tensor({1, 0, 0, 1, 1, 1}, {2, 3});
  ng::where(cond, a, b).sum().backward();
  CHECK(a.grad().to_vector() == std::vector<double>{1, 3});  // row 0 picks a once, row 1 three times
  CHECK(b.grad().item() == 2);                               // the two zeros of cond
}

// ---- maximum, minimum --------------------------------------------------------------------------------

TEST_CASE("maximum and minimum match a loop over broadcast pairs and propagate NaN") {
  ng::manual_seed(4);
  const ng::Tensor a = ng::randn({3, 1}, ng::float64), b = ng::randn({1, 4}, ng::float64);
  const ng::Tensor hi = ng::maximum(a, b), lo = ng::minimum(a, b);
  REQUIRE(hi.shape() == ng::Shape{3, 4});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) {
      CHECK(hi.at({i, j}) == std::max(a.at({i, 0}), b.at({0, j})));
      CHECK(lo.at({i, j}) == std::min(a.at({i, 0}), b.at({0, j})));
    }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const ng::Tensor x = ng::tensor({nan, 1, 2}, ng::float64), y = ng::tensor({0, nan, 1}, ng::float64);
  const auto hv = ng::maximum(x, y).to_vector(), lv = ng::minimum(x, y).to_vector();
  CHECK(std::isnan(hv[0]));
  CHECK(std::isnan(hv[1]));
  CHECK(hv[2] == 2);
  CHECK(std::isnan(lv[0]));
  CHECK(std::isnan(lv[1]));
  CHECK(lv[2] == 1);
  CHECK(ng::maximum(ng::tensor({1, 5}, ng::int64), ng::tensor({3}, ng::int64)).to_vector() ==
        std::vector<double>{3, 5});
}

TEST_CASE("maximum's and minimum's gradients match finite differences, ties included") {
  ng::manual_seed(5);
  const std::vector<std::pair<ng::Shape, ng::Shape>> shapes = {{{2, 3}, {2, 3}}, {{3, 1}, {1, 4}}, {{}, {2, 3}},
                                                               {{2, 3}, {}},     {{}, {}},         {{2, 1, 4}, {3, 1}}};
  for (const auto& [sa, sb] : shapes) {
    const std::string shapes_str = ng::shape_str(sa) + " " + ng::shape_str(sb);
    check_gradients("maximum " + shapes_str, [](const Inputs& in) { return ng::maximum(in[0], in[1]); },
                    {uniform_leaf(sa, -2, 2), uniform_leaf(sb, -2, 2)});
    check_gradients("minimum " + shapes_str, [](const Inputs& in) { return ng::minimum(in[0], in[1]); },
                    {uniform_leaf(sa, -2, 2), uniform_leaf(sb, -2, 2)});
  }
  // Ties in two of three places, and a broadcast side whose one value ties with one element.
  const Inputs tied = {leaf({1, 2, 3}, {3}), leaf({1, 0, 3}, {3})};
  check_gradients(
      "maximum with ties", [](const Inputs& in) { return ng::maximum(in[0], in[1]); }, tied);
  check_gradients(
      "minimum with ties", [](const Inputs& in) { return ng::minimum(in[0], in[1]); }, tied);
  const Inputs broadcast_tie = {leaf({0.5, 2, -1}, {3}), leaf({2}, {})};
  check_gradients(
      "maximum with a broadcast tie", [](const Inputs& in) { return ng::maximum(in[0], in[1]); }, broadcast_tie);
}

TEST_CASE("on a tie, maximum and minimum give each side half of the gradient") {
  ng::Tensor a = leaf({1, 2, 3}, {3}), b = leaf({1, 0, 4}, {3});
  ng::maximum(a, b).sum().backward();
  CHECK(a.grad().to_vector() == std::vector<double>{0.5, 1, 0});
  CHECK(b.grad().to_vector() == std::vector<double>{0.5, 0, 1});
  a.zero_grad();
  b.zero_grad();
  ng::minimum(a, b).sum().backward();
  CHECK(a.grad().to_vector() == std::vector<double>{0.5, 0, 1});
  CHECK(b.grad().to_vector() == std::vector<double>{0.5, 1, 0});
}

// ---- sin, cos ----------------------------------------------------------------------------------------

TEST_CASE("sin and cos match std::sin and std::cos in float32 and float64") {
  const std::vector<double> xs = {-3.5, -1, 0, 0.25, 1.5707963267948966, 10};
  for (ng::Dtype dtype : {ng::float32, ng::float64}) {
    const ng::Tensor x = ng::tensor(xs, dtype);
    const auto s = ng::sin(x).to_vector(), c = ng::cos(x).to_vector();
    CHECK(ng::sin(x).dtype() == dtype);
    const double tol = dtype == ng::float32 ? 1e-6 : 1e-15;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const double x_rounded = x.to_vector()[i];
      CHECK(std::abs(s[i] - std::sin(x_rounded)) <= tol);
      CHECK(std::abs(c[i] - std::cos(x_rounded)) <= tol);
    }
  }
}

TEST_CASE("sin's and cos's gradients match finite differences, including a 0-dim input") {
  ng::manual_seed(6);
  for (const ng::Shape& shape : {ng::Shape{2, 3}, ng::Shape{}, ng::Shape{1, 4, 1}}) {
    check_gradients("sin " + ng::shape_str(shape), [](const Inputs& in) { return ng::sin(in[0]); },
                    {uniform_leaf(shape, -2, 2)});
    check_gradients("cos " + ng::shape_str(shape), [](const Inputs& in) { return ng::cos(in[0]); },
                    {uniform_leaf(shape, -2, 2)});
  }
}

TEST_CASE("the second and third derivatives of sin are -sin and -cos") {
  const std::vector<double> xs = {-1.2, 0.3, 2.0};
  ng::Tensor x = leaf(xs, {3});
  const ng::Tensor first = ng::grad({ng::sin(x).sum()}, {x}, {.create_graph = true})[0];
  const ng::Tensor second = ng::grad({first.sum()}, {x}, {.create_graph = true})[0];
  const ng::Tensor third = ng::grad({second.sum()}, {x})[0];
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const auto k = static_cast<int64_t>(i);
    CHECK(first.at({k}) == Approx(std::cos(xs[i])));
    CHECK(second.at({k}) == Approx(-std::sin(xs[i])));
    CHECK(third.at({k}) == Approx(-std::cos(xs[i])));
  }
}

TEST_CASE("the gradients of where, maximum and max can be differentiated again") {
  ng::manual_seed(7);
  // f(a, b) = the gradient of sum(w * op(a, b)^2) with respect to a; its own gradient is checked.
  const ng::Tensor cond = ng::tensor({1, 0, 1}, ng::int64);
  const std::vector<std::pair<std::string, std::function<ng::Tensor(const ng::Tensor&, const ng::Tensor&)>>> ops = {
      {"where", [cond](const ng::Tensor& a, const ng::Tensor& b) { return ng::where(cond, a, b); }},
      {"maximum", [](const ng::Tensor& a, const ng::Tensor& b) { return ng::maximum(a, b); }},
      {"minimum", [](const ng::Tensor& a, const ng::Tensor& b) { return ng::minimum(a, b); }},
      {"max", [](const ng::Tensor& a, const ng::Tensor& b) { return ng::max(a * b); }},
      {"min", [](const ng::Tensor& a, const ng::Tensor& b) { return ng::min(a * b); }},
  };
  const ng::Tensor w = ng::tensor({0.5, -1, 2}, ng::float64);
  for (const auto& [name, op] : ops) {
    check_gradients("gradient of " + name,
                    [&op = op, w](const Inputs& in) {
                      // gradcheck's finite differences run without grad mode, on inputs that do not
                      // require grad: turn both back on, since this function itself takes a gradient.
                      ng::GradModeGuard grad_mode(true);
                      const ng::Tensor a = in[0].requires_grad() ? in[0] : in[0].detach().requires_grad_();
                      const ng::Tensor y = op(a, in[1]);
                      const ng::Tensor loss = ng::sum(y * y * (y.dim() == 0 ? w.sum() : w));
                      return ng::grad({loss}, {a}, {.create_graph = true})[0];
                    },
                    {leaf({0.3, -1.1, 0.8}, {3}), leaf({0.7, -0.4, 1.5}, {3})});
  }
}

// ---- stack -------------------------------------------------------------------------------------------

TEST_CASE("stack puts the tensors along a new dim, at the front, in the middle or at the end") {
  const ng::Tensor a = ng::tensor({1, 2, 3, 4, 5, 6}, {2, 3}), b = ng::tensor({7, 8, 9, 10, 11, 12}, {2, 3});
  const ng::Tensor s0 = ng::stack({a, b}, 0), s1 = ng::stack({a, b}, 1), s2 = ng::stack({a, b}, -1);
  CHECK(s0.shape() == ng::Shape{2, 2, 3});
  CHECK(s1.shape() == ng::Shape{2, 2, 3});
  CHECK(s2.shape() == ng::Shape{2, 3, 2});
  CHECK(s0.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  CHECK(s1.to_vector() == std::vector<double>{1, 2, 3, 7, 8, 9, 4, 5, 6, 10, 11, 12});
  CHECK(s2.to_vector() == std::vector<double>{1, 7, 2, 8, 3, 9, 4, 10, 5, 11, 6, 12});
  // 0-dim tensors stack into a vector; int64 works too.
  const ng::Tensor v = ng::stack({ng::scalar(3, ng::int64), ng::scalar(4, ng::int64), ng::scalar(5, ng::int64)});
  CHECK(v.shape() == ng::Shape{3});
  CHECK(v.dtype() == ng::int64);
  CHECK(v.to_vector() == std::vector<double>{3, 4, 5});
}

TEST_CASE("stack's gradient matches finite differences") {
  ng::manual_seed(8);
  for (int64_t dim : {0, 1, 2, -1}) {
    check_gradients("stack dim " + std::to_string(dim), [dim](const Inputs& in) { return ng::stack(in, dim); },
                    {uniform_leaf({2, 1}, -2, 2), uniform_leaf({2, 1}, -2, 2), uniform_leaf({2, 1}, -2, 2)});
  }
  check_gradients("stack of 0-dim", [](const Inputs& in) { return ng::stack(in); },
                  {uniform_leaf({}, -2, 2), uniform_leaf({}, -2, 2)});
}

// ---- max, min over all elements ------------------------------------------------------------------------

TEST_CASE("max and min of all elements match a loop, and NaN wins") {
  ng::manual_seed(9);
  const ng::Tensor x = ng::randn({3, 4, 2});
  const auto values = x.to_vector();
  double hi = values[0], lo = values[0];
  for (double v : values) {
    hi = std::max(hi, v);
    lo = std::min(lo, v);
  }
  CHECK(ng::max(x).shape().empty());
  CHECK(ng::max(x).item() == hi);
  CHECK(ng::min(x).item() == lo);
  CHECK(x.max().item() == hi);
  CHECK(x.min().item() == lo);
  CHECK(ng::max(ng::scalar(-2.5)).item() == -2.5);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(std::isnan(ng::max(ng::tensor({1, nan, 3}, ng::float64)).item()));
  CHECK(std::isnan(ng::min(ng::tensor({1, nan, 3}, ng::float64)).item()));
}

TEST_CASE("max's and min's gradients over all elements match finite differences, two-way ties included") {
  ng::manual_seed(10);
  for (const ng::Shape& shape : {ng::Shape{2, 3}, ng::Shape{}, ng::Shape{1, 5, 1}}) {
    check_gradients("max " + ng::shape_str(shape), [](const Inputs& in) { return ng::max(in[0]); },
                    {uniform_leaf(shape, -2, 2)});
    check_gradients("min " + ng::shape_str(shape), [](const Inputs& in) { return ng::min(in[0]); },
                    {uniform_leaf(shape, -2, 2)});
  }
  check_gradients("max with a tie", [](const Inputs& in) { return ng::max(in[0]); }, {leaf({1, 3, 0, 3}, {2, 2})});
  check_gradients("min with a tie", [](const Inputs& in) { return ng::min(in[0]); }, {leaf({-1, 3, -1, 2}, {2, 2})});
}

TEST_CASE("max and min over all elements share the gradient evenly among three tied elements") {
  ng::Tensor x = leaf({2, 5, 5, 1, 5, 1}, {2, 3});
  (ng::max(x) * 6.0).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 2, 2, 0, 2, 0});
  x.zero_grad();
  ng::min(x).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 0, 0.5, 0, 0.5});
}

// ---- min along a dim, argmin, argmax of all ------------------------------------------------------------

TEST_CASE("min along a dim gives the values and the first index of each minimum, like a loop") {
  const ng::Tensor x = ng::tensor({3, 1, 2,  //
                                   1, 1, 0,  //
                                   5, 4, 4,  //
                                   0, 9, 0},
                                  {2, 2, 3});
  for (int64_t dim : {0, 1, 2}) {
    CAPTURE(dim);
    const ng::MinResult r = ng::min(x, dim, true);
    ng::Shape expected_shape = {2, 2, 3};
    expected_shape[dim] = 1;
    REQUIRE(r.values.shape() == expected_shape);
    CHECK(r.indices.dtype() == ng::int64);
    for (int64_t i = 0; i < expected_shape[0]; ++i)
      for (int64_t j = 0; j < expected_shape[1]; ++j)
        for (int64_t k = 0; k < expected_shape[2]; ++k) {
          double best = std::numeric_limits<double>::infinity();
          int64_t best_at = -1;
          for (int64_t m = 0; m < x.size(dim); ++m) {
            const double v = x.at({dim == 0 ? m : i, dim == 1 ? m : j, dim == 2 ? m : k});
            if (v < best) best = v, best_at = m;
          }
          CHECK(r.values.at({i, j, k}) == best);
          CHECK(r.indices.at({i, j, k}) == best_at);
        }
    const ng::Tensor flat = ng::argmin(x, dim);
    CHECK(flat.dim() == 2);
    CHECK(flat.to_vector() == r.indices.to_vector());
    CHECK(x.argmin(dim, true).to_vector() == r.indices.to_vector());
    CHECK(x.min(dim).values.to_vector() == r.values.to_vector());
  }
}

TEST_CASE("min along a dim passes the gradient to the minimum, matching finite differences") {
  ng::manual_seed(11);
  for (int64_t dim : {0, 1, -1})
    for (bool keepdim : {false, true})
      check_gradients("min dim " + std::to_string(dim) + (keepdim ? " keepdim" : ""),
                      [dim, keepdim](const Inputs& in) { return ng::min(in[0], dim, keepdim).values; },
                      {uniform_leaf({3, 1, 4}, -2, 2)});
}

TEST_CASE("argmax and argmin of all elements are the first flat index of the extreme, 0-dim int64") {
  const ng::Tensor x = ng::tensor({3, 7, 7, -2, 5, -2}, {2, 3});
  CHECK(ng::argmax(x).shape().empty());
  CHECK(ng::argmax(x).dtype() == ng::int64);
  CHECK(ng::argmax(x).item() == 1);
  CHECK(ng::argmin(x).item() == 3);
  CHECK(x.argmax().item() == 1);
  CHECK(x.argmin().item() == 3);
  CHECK(ng::argmax(ng::scalar(4)).item() == 0);
  // The method form along a dim agrees with the function form.
  CHECK(x.argmax(1).to_vector() == std::vector<double>{1, 1});
  CHECK(x.max(0, true).values.to_vector() == std::vector<double>{3, 7, 7});
}

// ---- errors ------------------------------------------------------------------------------------------

TEST_CASE("comparisons, where, maximum and minimum on shapes that do not broadcast name the op and the shapes") {
  const ng::Tensor a = ng::zeros({2, 3}), b = ng::zeros({4});
  CHECK_ERROR_MENTIONS(ng::eq(a, b), "eq", "[2, 3]", "[4]");
  CHECK_ERROR_MENTIONS(ng::lt(a, b), "lt", "[2, 3]", "[4]");
  CHECK_ERROR_MENTIONS(ng::ge(a, b), "ge", "[2, 3]", "[4]");
  CHECK_ERROR_MENTIONS(ng::maximum(a, b), "maximum", "[2, 3]", "[4]");
  CHECK_ERROR_MENTIONS(ng::minimum(b, a), "minimum", "[4]", "[2, 3]");
  CHECK_ERROR_MENTIONS(ng::where(b, a, a), "where", "[4]", "[2, 3]");
  CHECK_ERROR_MENTIONS(ng::where(ng::zeros({2, 1}), a, ng::zeros({5})), "where", "[2, 1]", "[2, 3]", "[5]");
}

TEST_CASE("comparisons, where, maximum and minimum on different dtypes name the op and both dtypes") {
  const ng::Tensor f = ng::zeros({2}), d = ng::zeros({2}, ng::float64), i = ng::zeros({2}, ng::int64);
  CHECK_ERROR_MENTIONS(ng::eq(f, d), "eq", "float32", "float64");
  CHECK_ERROR_MENTIONS(ng::gt(i, f), "gt", "int64", "float32");
  CHECK_ERROR_MENTIONS(ng::maximum(f, d), "maximum", "float32", "float64");
  CHECK_ERROR_MENTIONS(ng::where(i, f, d), "where", "float32", "float64");
  CHECK_ERROR_MENTIONS(ng::sin(i), "sin", "int64");
  CHECK_ERROR_MENTIONS(ng::cos(i), "cos", "int64");
}

TEST_CASE("stack of an empty list, of different shapes or dtypes, or with a dim out of range throws") {
  CHECK_ERROR_MENTIONS(ng::stack({}), "stack", "none");
  CHECK_ERROR_MENTIONS(ng::stack({ng::zeros({2, 3}), ng::zeros({2, 4})}), "stack", "[2, 3]", "[2, 4]", "tensor 1");
  CHECK_ERROR_MENTIONS(ng::stack({ng::zeros({2}), ng::zeros({2}, ng::float64)}), "stack", "float32", "float64");
  CHECK_ERROR_MENTIONS(ng::stack({ng::zeros({2}), ng::zeros({2})}, 2), "stack", "dim 2", "out of range");
  CHECK_ERROR_MENTIONS(ng::stack({ng::zeros({2}), ng::zeros({2})}, -3), "stack", "dim -3");
}

TEST_CASE("max, min, argmax and argmin of an empty tensor or along a bad dim throw naming the op") {
  const ng::Tensor empty = ng::zeros({0, 3});
  CHECK_ERROR_MENTIONS(ng::max(empty), "max", "[0, 3]", "empty");
  CHECK_ERROR_MENTIONS(ng::min(empty), "min", "[0, 3]", "empty");
  CHECK_ERROR_MENTIONS(ng::argmax(empty), "argmax", "[0, 3]");
  CHECK_ERROR_MENTIONS(ng::argmin(empty), "argmin", "[0, 3]");
  const ng::Tensor x = ng::zeros({2, 3});
  CHECK_ERROR_MENTIONS(ng::min(x, 2), "dim 2", "out of range");
  CHECK_ERROR_MENTIONS(ng::argmin(x, -3), "dim -3", "out of range");
  CHECK_ERROR_MENTIONS(ng::min(ng::scalar(1), 0), "min", "0-dim");
  CHECK_ERROR_MENTIONS(ng::min(ng::zeros({2}, ng::int64), 0), "min", "int64");
  CHECK_ERROR_MENTIONS(ng::max(ng::zeros({2}, ng::int64)), "max", "int64");
}
