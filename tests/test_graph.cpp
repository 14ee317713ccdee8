// test_graph.cpp: the graph and the backward pass (autograd/graph.h) and gradcheck itself.
//
// What is specified here: gradients of a tensor used several times add up; gradients accumulate across
// backward calls until zero_grad; ng::grad returns gradients without touching .grad(); NoGradGuard
// records nothing, only on its own thread; a graph is freed by backward unless retain_graph; deep
// graphs neither overflow the stack nor leak; and gradcheck can both pass and fail.
#include <doctest/doctest.h>

#include <thread>

#include "normgrad.h"
#include "test_helpers.h"

using doctest::Approx;
using doctest::Contains;

namespace {

// x^2 with a backward that is wrong by `factor` (factor 1 is the correct 2x): proves gradcheck can fail.
ng::Tensor scaled_square(const ng::Tensor& x, double factor) {
  ng::Tensor out = x.detach() * x.detach();
  if (ng::any_requires_grad({&x}))
    ng::record(out, "scaled_square", {&x}, [x = x.detach(), factor](const ng::Tensor& g, const ng::Node&) {
      return std::vector<ng::Tensor>{g * x * (2.0 * factor)};
    });
  return out;
}

// The identity, whose backward sends no gradient (an undefined tensor, which means zero).
ng::Tensor gradient_stop(const ng::Tensor& x) {
  ng::Tensor out = x.detach().clone();
  if (ng::any_requires_grad({&x}))
    ng::record(out, "gradient_stop", {&x},
               [](const ng::Tensor&, const ng::Node&) { return std::vector<ng::Tensor>{ng::Tensor()}; });
  return out;
}

// The identity, counting how many times its backward runs.
ng::Tensor counted_identity(const ng::Tensor& x, int* calls) {
  ng::Tensor out = x.detach().clone();
  if (ng::any_requires_grad({&x}))
    ng::record(out, "counted_identity", {&x}, [calls](const ng::Tensor& g, const ng::Node&) {
      ++*calls;
      return std::vector<ng::Tensor>{g};
    });
  return out;
}

}  // namespace

// ---- gradients flow and add up --------------------------------------------------------------------------------------

TEST_CASE("a tensor used twice receives both gradients: a = x*x, b = a + a gives db/dx = 4x") {
  ng::Tensor x = leaf({1, -2, 3}, {3});
  ng::Tensor a = x * x;
  ng::Tensor b = a + a;
  b.sum().backward();
  CHECK(x.grad().to_vector() == std::vector<double>{4, -8, 12});
}

TEST_CASE("in a diamond, a node used by two consumers runs its backward once, after both sent their gradient") {
  // x -> h = id(x) -> {u = 2h, v = h^2} -> y = u + v = 2x + x^2, dy/dx = 2 + 2x
  int calls = 0;
  ng::Tensor x = leaf({0.5, 3}, {2});
  ng::Tensor h = counted_identity(x, &calls);
  ng::Tensor y = (2.0 * h + h * h).sum();
  y.backward();
  CHECK(calls == 1);
  CHECK(x.grad().to_vector() == std::vector<double>{3, 8});
}

TEST_CASE("a long diamond (one branch many ops deeper than the other) still sums both branches") {
  // y = x + (((x * 1) * 1) ... 50 times): dy/dx = 2
  ng::Tensor x = leaf({1.5}, {1});
  ng::Tensor deep = x;
  for (int i = 0; i < 50; ++i) deep = deep * 1.0;
  (x + deep).sum().backward();
  CHECK(x.grad().item() == 2);
}

TEST_CASE("gradients accumulate across two backward calls until zero_grad drops them") {
  ng::Tensor x = leaf({1, 2}, {2});
  (x * 3.0).sum().backward();
  (x * x).sum().backward();
  // 3 + 2x
  CHECK(x.grad().to_vector() == std::vector<double>{5, 7});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  (x * 3.0).sum().backward();
  CHECK(x.grad().to_vector() == std::vector<double>{3, 3});
}

TEST_CASE("the leaf's gradient does not share its buffer with the upstream gradient it came from") {
  ng::Tensor x = leaf({1, 2}, {2});
  ng::Tensor upstream = ng::tensor({10, 20}, ng::float64);
  x.backward(upstream);
  x.backward(upstream);  // accumulating into x.grad must not change `upstream`
  CHECK(x.grad().to_vector() == std::vector<double>{20, 40});
  CHECK(upstream.to_vector() == std::vector<double>{10, 20});
}

TEST_CASE("backward with an upstream gradient computes the vector-Jacobian product") {
  ng::Tensor x = leaf({1, 2, 3}, {3});
  ng::Tensor y = x * x;  // dy_i/dx_i = 2 x_i
  y.backward(ng::tensor({1, 10, 100}, ng::float64));
  CHECK(x.grad().to_vector() == std::vector<double>{2, 40, 600});
}

TEST_CASE("only leaves that require grad receive .grad(); intermediate results and constants do not") {
  ng::Tensor x = leaf({2}, {1});
  ng::Tensor c = ng::tensor({5}, ng::float64);
  ng::Tensor h = x * c;
  (h * h).sum().backward();
  CHECK(x.grad().item() == 100);  // d(25 x^2)/dx = 50 x
  CHECK_FALSE(h.grad().defined());
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("a backward that fails halfway leaves no stale gradient for the next backward") {
  ng::Tensor x = leaf({1, 2}, {2});
  ng::Tensor w = leaf({3, 4}, {2});
  ng::Tensor h = x * w;
  h.sum().backward();  // frees h's node
  x.zero_grad();
  // The add node sends a gradient towards x, then h's freed node throws before x's is applied.
  CHECK_THROWS_AS(ng::add(x, h * 2.0).sum().backward(), ng::Error);
  x.zero_grad();
  (x * 1.0).sum().backward();
  CHECK(x.grad().to_vector() == std::vector<double>{1, 1});
}

TEST_CASE("a backward that returns no gradient for an input stops the flow there, as a zero gradient") {
  ng::Tensor x = leaf({1, 2}, {2});
  ng::Tensor w = leaf({3, 4}, {2});
  ng::Tensor y = (gradient_stop(x * 2.0).exp() + w).sum();
  y.backward();
  CHECK_FALSE(x.grad().defined());
  CHECK(w.grad().to_vector() == std::vector<double>{1, 1});
}

TEST_CASE("a backward that returns a gradient of the wrong shape or dtype throws an error naming the op") {
  ng::Tensor x = leaf({1, 2}, {2});
  ng::Tensor wrong_dtype = x.detach().clone();
  ng::record(wrong_dtype, "float32_backward", {&x},
             [](const ng::Tensor& g, const ng::Node&) { return std::vector<ng::Tensor>{g.to(ng::float32)}; });
  CHECK_ERROR_MENTIONS(wrong_dtype.sum().backward(), "float32_backward", "float32", "float64");
  ng::Tensor wrong_shape = x.detach().clone();
  ng::record(wrong_shape, "sum_backward", {&x},
             [](const ng::Tensor& g, const ng::Node&) { return std::vector<ng::Tensor>{g.sum()}; });
  CHECK_ERROR_MENTIONS(wrong_shape.sum().backward(), "sum_backward", "[]", "[2]");
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("two threads can run forward and backward on their own graphs at the same time") {
  std::vector<double> results(2);
  auto train = [&](std::size_t k) {
    for (int step = 0; step < 200; ++step) {
      ng::Tensor x = leaf({1, 2, 3}, {3});
      ng::Tensor y = (x * x * static_cast<double>(k + 1)).sum();  // dy/dx = 2 (k + 1) x
      y.backward();
      results[k] += x.grad().at({2});
    }
  };
  std::thread first(train, 0), second(train, 1);
  first.join();
  second.join();
  CHECK(results[0] == 200 * 6);
  CHECK(results[1] == 200 * 12);
}

// ---- ng::grad -------------------------------------------------------------------------------------------------------

TEST_CASE("ng::grad returns the gradients and leaves .grad() untouched") {
  ng::Tensor x = leaf({1, 2}, {2});
  ng::Tensor w = leaf({3, -1}, {2});
  ng::Tensor y = (x * x * w).sum();
  auto grads = ng::grad({y}, {x, w});
  REQUIRE(grads.size() == 2);
  CHECK(grads[0].to_vector() == std::vector<double>{6, -4});  // 2 x w
  CHECK(grads[1].to_vector() == std::vector<double>{1, 4});   // x^2
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE("ng::grad with respect to a non-leaf gives the gradient of that intermediate result") {
  ng::Tensor x = leaf({1, 2}, {2});
  ng::Tensor h = x * 3.0;
  ng::Tensor y = (h * h).sum();
  auto grads = ng::grad({y}, {h});
  CHECK(grads[0].to_vector() == std::vector<double>{6, 12});  // 2h, h = [3, 6]
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("ng::grad over several outputs sums their gradients, weighted by grad_outputs") {
  ng::Tensor x = leaf({1, 2}, {2});
  ng::Tensor y1 = x * x;    // dy1/dx = 2x
  ng::Tensor y2 = x * 5.0;  // dy2/dx = 5
  auto grads = ng::grad({y1, y2}, {x}, {ng::tensor({1, 1}, ng::float64), ng::tensor({2, 0}, ng::float64)});
  CHECK(grads[0].to_vector() == std::vector<double>{2 + 10, 4 + 0});
}

TEST_CASE("ng::grad over outputs where one is computed from the other waits for both") {
  ng::Tensor x = leaf({3}, {1});
  ng::Tensor y1 = x * x;            // x^2
  ng::Tensor y2 = (y1 * y1).sum();  // x^4
  auto grads = ng::grad({y1.sum(), y2}, {x});
  CHECK(grads[0].item() == 2 * 3 + 4 * 27);  // 2x + 4x^3
}

TEST_CASE("a gradient that add passes to both inputs is not changed when one of them later receives more") {
  // s = h + k hands the same gradient buffer to h and k; h then also receives 3 from h * 3.
  ng::Tensor x = leaf({1}, {1});
  ng::Tensor w = leaf({1}, {1});
  ng::Tensor h = x * 1.0;
  ng::Tensor k = w * 1.0;
  auto grads = ng::grad({(h * 3.0 + (h + k)).sum()}, {h, k});
  CHECK(grads[0].item() == 4);
  CHECK(grads[1].item() == 1);
}

TEST_CASE("ng::grad refuses an input that the outputs do not depend on, and a mismatched grad_outputs") {
  ng::Tensor x = leaf({1}, {1});
  ng::Tensor unused = leaf({1}, {1});
  ng::Tensor y = (x * 2.0).sum();
  CHECK_THROWS_WITH_AS(ng::grad({y}, {unused}, {.retain_graph = true}), Contains("not used"), ng::Error);
  CHECK_THROWS_WITH_AS(ng::grad({y}, {x}, {ng::ones({}), ng::ones({})}), Contains("grad_outputs"), ng::Error);
}

// ---- grad mode ------------------------------------------------------------------------------------------------------

TEST_CASE("NoGradGuard records nothing and restores gradient recording when it goes out of scope") {
  ng::Tensor x = leaf({1, 2}, {2});
  const int64_t nodes_before = ng::live_nodes();
  {
    ng::NoGradGuard no_grad;
    CHECK_FALSE(ng::is_grad_enabled());
    ng::Tensor y = x * 2.0 + x.exp();
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    CHECK(ng::live_nodes() == nodes_before);
    { ng::NoGradGuard nested; }
    CHECK_FALSE(ng::is_grad_enabled());  // the nested guard restored "disabled", not "enabled"
  }
  CHECK(ng::is_grad_enabled());
  ng::Tensor z = x * 2.0;
  CHECK(z.requires_grad());
  REQUIRE(z.grad_fn() != nullptr);
  CHECK(std::string(z.grad_fn()->op) == "mul");
}

TEST_CASE("NoGradGuard is thread-local: another thread still records while one thread holds a guard") {
  ng::NoGradGuard no_grad;
  bool other_recorded = false;
  bool other_grad_correct = false;
  std::thread other([&] {
    ng::Tensor x = leaf({1, 2}, {2});
    ng::Tensor y = (x * x).sum();
    other_recorded = y.grad_fn() != nullptr;
    y.backward();
    other_grad_correct = x.grad().to_vector() == std::vector<double>{2, 4};
  });
  other.join();
  CHECK(other_recorded);
  CHECK(other_grad_correct);
  ng::Tensor here = leaf({1}, {1}) * 2.0;
  CHECK(here.grad_fn() == nullptr);
}

// ---- retain_graph ---------------------------------------------------------------------------------------------------

TEST_CASE("backward twice through the same graph without retain_graph throws an error that names retain_graph") {
  ng::Tensor x = leaf({1, 2}, {2});
  ng::Tensor y = (x * x).sum();
  y.backward();
  CHECK_THROWS_WITH_AS(y.backward(), Contains("retain_graph"), ng::Error);
}

TEST_CASE("backward with retain_graph can run again, and the gradients accumulate") {
  ng::Tensor x = leaf({1, 2}, {2});
  ng::Tensor y = (x * x).sum();
  y.backward({.retain_graph = true});
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{4, 8});  // 2 * 2x
}

TEST_CASE("backward refuses a tensor that does not require grad, and a non-scalar without an upstream gradient") {
  CHECK_ERROR_MENTIONS(ng::ones({2}, ng::float64).sum().backward(), "backward", "does not require grad");
  ng::Tensor y = leaf({1, 2, 3, 4, 5, 6}, {2, 3}) * 2.0;
  CHECK_ERROR_MENTIONS(y.backward(), "backward", "[2, 3]", "upstream");
  CHECK_ERROR_MENTIONS(y.backward(ng::ones({3, 2}, ng::float64)), "backward", "[3, 2]", "[2, 3]");
  CHECK_ERROR_MENTIONS(y.backward(ng::ones({2, 3})), "backward", "float32", "float64");
}

// ---- deep graphs and memory -----------------------------------------------------------------------------------------

TEST_CASE("a chain of a million ops runs backward and is destroyed without overflowing the stack") {
  // About 2 s in a release build and 20 s under AddressSanitizer in a debug build.
  constexpr int64_t chain_length = 1'000'000;
  const int64_t nodes_before = ng::live_nodes();
  ng::Tensor x = leaf({1.5}, {1});
  {
    ng::Tensor y = x;
    for (int64_t i = 0; i < chain_length; ++i) y = -y;           // an even number of negations: y = x
    CHECK(ng::live_nodes() - nodes_before == chain_length + 1);  // the negations and x's AccumulateGrad
    y.sum().backward();
    CHECK(x.grad().item() == 1);
  }
  CHECK(ng::live_nodes() == nodes_before);
}

TEST_CASE("after a forward, backward and dropping the loss, no graph node and no intermediate buffer is alive") {
  const int64_t nodes_before = ng::live_nodes();
  const int64_t storages_before = ng::live_storages();
  {
    ng::manual_seed(1);
    ng::Tensor w1 = ng::randn({4, 3}, ng::float64).requires_grad_();
    ng::Tensor b1 = ng::zeros({3}, ng::float64).requires_grad_();
    ng::Tensor w2 = ng::randn({3, 2}, ng::float64).requires_grad_();
    ng::Tensor input = ng::randn({5, 4}, ng::float64);
    ng::Tensor label_positions = ng::from_vector<int64_t>({0, 3, 5, 6, 9}, {5});  // labels 0 1 1 0 1 in [5, 2]
    {
      ng::Tensor hidden = (input.matmul(w1) + b1).relu();
      ng::Tensor log_p = ng::log_softmax(hidden.matmul(w2), 1);
      ng::Tensor loss = -ng::index_select(log_p.reshape({10}), 0, label_positions).mean();
      loss.backward();
    }
    CHECK(ng::live_nodes() == nodes_before);
    // What remains: w1 b1 w2 input label_positions and the three gradients.
    CHECK(ng::live_storages() - storages_before == 5 + 3);
    CHECK(w1.grad().shape() == ng::Shape{4, 3});
  }
  CHECK(ng::live_storages() == storages_before);
}

// ---- gradcheck ------------------------------------------------------------------------------------------------------

TEST_CASE("gradcheck accepts a correct backward") {
  ng::Tensor x = leaf({0.5, -2, 3}, {3});
  auto result = ng::gradcheck([](const std::vector<ng::Tensor>& in) { return scaled_square(in[0], 1.0); }, {x});
  CHECK_MESSAGE(result.ok, result.message);
  CHECK(result.max_abs_error < 1e-6);
}

TEST_CASE("gradcheck reports a backward that is wrong by a factor, naming input, element, analytic and numeric") {
  // Element 0 is x = 0, where 2x * 1.5 and 2x agree; element 1 (x = 2) is the first wrong one:
  // analytic 2 * 2 * 1.5 = 6, numeric 2 * 2 = 4.
  ng::Tensor x = leaf({0, 2, -1}, {3});
  auto result = ng::gradcheck([](const std::vector<ng::Tensor>& in) { return scaled_square(in[0], 1.5); }, {x});
  CHECK_FALSE(result.ok);
  CHECK_FALSE(static_cast<bool>(result));
  CHECK_MESSAGE(result.message.find("input 0") != std::string::npos, result.message);
  CHECK_MESSAGE(result.message.find("element 1") != std::string::npos, result.message);
  CHECK_MESSAGE(result.message.find("analytic 6") != std::string::npos, result.message);
  CHECK_MESSAGE(result.message.find("numeric 4") != std::string::npos, result.message);
  CHECK(result.max_abs_error == Approx(2).epsilon(1e-6));  // largest |analytic - numeric|: element 1
}

TEST_CASE("gradcheck names the right input when only the second of two inputs has a wrong gradient") {
  ng::Tensor a = leaf({1, 2}, {2});
  ng::Tensor b = leaf({3, 4}, {2});
  auto result =
      ng::gradcheck([](const std::vector<ng::Tensor>& in) { return in[0] * 2.0 + scaled_square(in[1], 0.5); }, {a, b});
  CHECK_FALSE(result.ok);
  CHECK_MESSAGE(result.message.find("input 1") != std::string::npos, result.message);
}

TEST_CASE("gradcheck refuses float32 inputs") {
  ng::Tensor x = ng::tensor({1, 2}).requires_grad_();
  auto square = [](const std::vector<ng::Tensor>& in) { return in[0] * in[0]; };
  CHECK_ERROR_MENTIONS(ng::gradcheck(square, {x}), "gradcheck", "float32", "float64");
}

TEST_CASE("gradcheck refuses a function that returns float32") {
  ng::Tensor x = leaf({1, 2}, {2});
  auto to_float32 = [](const std::vector<ng::Tensor>& in) { return in[0].to(ng::float32); };
  CHECK_ERROR_MENTIONS(ng::gradcheck(to_float32, {x}), "gradcheck", "float32", "expected float64");
}

TEST_CASE("gradcheck refuses when no input requires grad") {
  ng::Tensor x = ng::tensor({1, 2}, ng::float64);
  CHECK_THROWS_WITH_AS(ng::gradcheck([](const std::vector<ng::Tensor>& in) { return in[0] * in[0]; }, {x}),
                       Contains("requires grad"), ng::Error);
}

TEST_CASE("gradcheck passes an input that the output does not depend on (its gradient is zero)") {
  ng::Tensor a = leaf({1, 2}, {2});
  ng::Tensor unused = leaf({3}, {1});
  auto result = ng::gradcheck([](const std::vector<ng::Tensor>& in) { return in[0] * 2.0; }, {a, unused});
  CHECK_MESSAGE(result.ok, result.message);
}

// ---- the pass's ownership of gradient buffers -----------------------------------------------------------------------

namespace {

// out = 2 (a + b), whose backward makes one tensor d = 2 g and returns it for both inputs: the same buffer
// reaches two slots of the pass, so the pass must not sum anything into it in place.
ng::Tensor twice_sum(const ng::Tensor& a, const ng::Tensor& b) {
  ng::Tensor out = (a.detach() + b.detach()) * 2.0;
  if (ng::any_requires_grad({&a, &b}))
    ng::record(out, "twice_sum", {&a, &b}, [](const ng::Tensor& g, const ng::Node&) {
      ng::Tensor d = g * 2.0;
      return std::vector<ng::Tensor>{d, d};
    });
  return out;
}

}  // namespace

TEST_CASE("one tensor returned by a backward for two inputs is summed into neither in place: x.grad is 7, not 10") {
  // A = x*1 and B = y*1 each receive the shared d = 2; A also 5 and B also 3. Whichever slot gets d second
  // must not take it as its own buffer, or the other's sum lands in it too.
  const Fn loss = [](const Inputs& in) {
    const ng::Tensor A = in[0] * 1.0, B = in[1] * 1.0;
    return (A * 5.0).sum() + ((B * 3.0).sum() + twice_sum(A, B).sum());
  };
  ng::Tensor x = leaf({1}), y = leaf({1});
  loss({x, y}).backward();
  CHECK(x.grad().item() == 7);
  CHECK(y.grad().item() == 5);
  check_gradients("loss with twice_sum", loss, {leaf({0.5, -1}), leaf({2, 3})});
}

TEST_CASE("the backward of a cat of 100,000 tensors gives each its gradient (linear time: it used to take minutes)") {
  const int64_t n = 100000;
  std::vector<ng::Tensor> parts;
  parts.reserve(n);
  for (int64_t i = 0; i < n; ++i) parts.push_back(leaf({static_cast<double>(i)}));
  ng::Tensor joined = ng::cat(parts, 0);
  // d/dp_i of sum_i (i+1) p_i is i + 1.
  (joined * ng::arange(1.0, static_cast<double>(n) + 0.5, 1.0, ng::float64)).sum().backward();
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i)
    wrong += parts[static_cast<std::size_t>(i)].grad().item() != static_cast<double>(i + 1);
  CHECK(wrong == 0);
}

TEST_CASE("a backward that returns more or fewer gradients than its op has inputs throws an error naming the op") {
  ng::Tensor a = leaf({1, 2}), b = leaf({3, 4});
  const auto returning = [&](std::size_t count) {
    ng::Tensor out = a.detach() + b.detach();
    ng::record(out, "miscounted", {&a, &b},
               [count](const ng::Tensor& g, const ng::Node&) { return std::vector<ng::Tensor>(count, g); });
    return out.sum();
  };
  CHECK_ERROR_MENTIONS(returning(1).backward(), "miscounted", "returned 1 gradient", "for 2 input");
  CHECK_ERROR_MENTIONS(returning(3).backward(), "miscounted", "returned 3 gradient", "for 2 input");
  CHECK_FALSE(a.grad().defined());
}
