// test_inplace.cpp: the in-place ops (Tensor::add_, mul_, zero_, fill_, copy_, clamp_) and the op clamp.
//
// What is specified here: each in-place op gives the numbers of its out-of-place counterpart, returns
// the tensor it wrote, and counts as one write (one version bump); on a leaf that requires grad it is
// refused while grad mode is on and works under NoGradGuard (an optimizer's update); on a tensor made
// by ops it is recorded, so that gradients equal those of the out-of-place expression; it is refused on
// a tensor in a graph whose buffer another tensor shares; bad arguments throw ng::Error. clamp's values
// and gradient (1 inside [min, max], 0 outside) are checked against hand-computed ones.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <string>

#include "normgrad.h"
#include "test_helpers.h"

// ---- values, returned reference, version --------------------------------------------------------------

TEST_CASE("add_ with a broadcast operand gives a + b, returns the same tensor and counts as one write") {
  ng::Tensor a = ng::tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  ng::Tensor b = ng::tensor({10, 20, 30});
  const uint64_t v = a.version();
  ng::Tensor& result = a.add_(b);
  CHECK(&result == &a);
  CHECK(a.to_vector() == std::vector<double>{11, 22, 33, 14, 25, 36});
  CHECK(a.shape() == ng::Shape{2, 3});
  CHECK(a.version() == v + 1);
  CHECK(b.to_vector() == std::vector<double>{10, 20, 30});  // the operand is only read
}

TEST_CASE("scalar add_ and mul_ give x + c and x * c, one write each") {
  ng::Tensor x = ng::tensor({1, -2, 0.5}, ng::float64);
  const uint64_t v = x.version();
  CHECK(&x.add_(1.5) == &x);
  CHECK(x.to_vector() == std::vector<double>{2.5, -0.5, 2});
  CHECK(&x.mul_(-2) == &x);
  CHECK(x.to_vector() == std::vector<double>{-5, 1, -4});
  CHECK(x.version() == v + 2);
}

TEST_CASE("mul_ with a broadcast column multiplies each row by its entry") {
  ng::Tensor a = ng::tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  a.mul_(ng::tensor({2, -1}, {2, 1}));
  CHECK(a.to_vector() == std::vector<double>{2, 4, 6, -4, -5, -6});
}

TEST_CASE("zero_ and fill_ set every element, return the same tensor and count as one write") {
  ng::Tensor t = ng::tensor({1, 2, 3, 4}, {2, 2}, ng::float64);
  uint64_t v = t.version();
  CHECK(&t.fill_(2.5) == &t);
  CHECK(t.to_vector() == std::vector<double>{2.5, 2.5, 2.5, 2.5});
  CHECK(t.version() == v + 1);
  v = t.version();
  CHECK(&t.zero_() == &t);
  CHECK(t.to_vector() == std::vector<double>{0, 0, 0, 0});
  CHECK(t.version() == v + 1);
  ng::Tensor i = ng::tensor({1, 2}, ng::int64);
  i.fill_(7);
  CHECK(i.to_vector() == std::vector<double>{7, 7});
}

TEST_CASE("copy_ converts the dtype and broadcasts the source, as an out-of-place broadcast_to(source.to(dtype))") {
  ng::Tensor dst = ng::zeros({2, 3}, ng::float32);
  ng::Tensor src = ng::tensor({0.1, 0.2, 0.3}, ng::float64);
  const uint64_t v = dst.version();
  CHECK(&dst.copy_(src) == &dst);
  CHECK(dst.dtype() == ng::float32);
  const float expected[] = {0.1f, 0.2f, 0.3f, 0.1f, 0.2f, 0.3f};
  for (int i = 0; i < 6; ++i) CHECK(dst.data<float>()[i] == expected[i]);
  CHECK(dst.version() == v + 1);
  CHECK(src.dtype() == ng::float64);
}

TEST_CASE("copy_ of a same-shaped tensor copies it exactly, and later writes to the source do not show") {
  ng::Tensor dst = ng::zeros({3}, ng::float64);
  ng::Tensor src = ng::tensor({1, 2, 3}, ng::float64);
  dst.copy_(src);
  src.set({0}, 100);
  CHECK(dst.to_vector() == std::vector<double>{1, 2, 3});
}

TEST_CASE("clamp_ gives min(max(x, lo), hi), returns the same tensor and counts as one write") {
  ng::Tensor x = ng::tensor({-3, -1, 0, 0.5, 2, 9}, ng::float64);
  const uint64_t v = x.version();
  CHECK(&x.clamp_(-1, 1) == &x);
  CHECK(x.to_vector() == std::vector<double>{-1, -1, 0, 0.5, 1, 1});
  CHECK(x.version() == v + 1);
}

// ---- leaves that require grad --------------------------------------------------------------------------

TEST_CASE(
    "every in-place op on a leaf that requires grad throws while grad mode is on, naming the op and NoGradGuard") {
  ng::Tensor p = leaf({1, 2, 3}, {3});
  p.set_name("fc.weight");
  const ng::Tensor other = ng::tensor({1, 1, 1}, ng::float64);
  const std::pair<const char*, std::function<void()>> writes[] = {
      {"add_", [&] { p.add_(other); }},   {"add_", [&] { p.add_(1.0); }},      {"mul_", [&] { p.mul_(other); }},
      {"mul_", [&] { p.mul_(2.0); }},     {"zero_", [&] { p.zero_(); }},       {"fill_", [&] { p.fill_(1.0); }},
      {"copy_", [&] { p.copy_(other); }}, {"clamp_", [&] { p.clamp_(0, 1); }},
  };
  for (const auto& entry : writes) {  // not a structured binding: CAPTURE captures it in a lambda (clang 14)
    const char* op = entry.first;
    const std::function<void()>& write = entry.second;
    CAPTURE(op);
    const uint64_t v = p.version();
    const std::string message = error_message(write);
    CHECK_MENTIONS(message, std::string(op) + ":");
    CHECK_MENTIONS(message, "NoGradGuard");
    CHECK_MENTIONS(message, "'fc.weight'");
    CHECK(p.version() == v);  // refused before writing
  }
  CHECK(p.to_vector() == std::vector<double>{1, 2, 3});
}

TEST_CASE("under NoGradGuard an in-place update of a leaf that requires grad works (p -= lr * grad)") {
  ng::Tensor p = leaf({1, 2, 3}, {3});
  (p * p).sum().backward();  // grad = 2p
  {
    ng::NoGradGuard no_grad;
    p.add_(p.grad() * -0.25);
    p.clamp_(0, 1.2);
  }
  CHECK(p.to_vector() == std::vector<double>{0.5, 1, 1.2});
  CHECK(p.requires_grad());
  CHECK(p.is_leaf());
}

// ---- recorded on tensors in a graph --------------------------------------------------------------------

TEST_CASE("y = x * 2; y.add_(w); y.mul_(z) gives the gradients of the out-of-place (x * 2 + w) * z") {
  const std::vector<double> xs{1, -2, 3, 0.5, 4, -1}, ws{0.25, -3, 2}, zs{1.5, -0.5};
  ng::Tensor x = leaf(xs, {2, 3}), w = leaf(ws, {3}), z = leaf(zs, {2, 1});
  ng::Tensor y = x * 2;
  y.add_(w);
  y.mul_(z);
  CHECK(y.grad_fn() != nullptr);
  CHECK(std::string(y.grad_fn()->op) == "mul");
  ng::Tensor loss = (y * y).sum();
  loss.backward();

  ng::Tensor x2 = leaf(xs, {2, 3}), w2 = leaf(ws, {3}), z2 = leaf(zs, {2, 1});
  ng::Tensor y2 = (x2 * 2 + w2) * z2;
  (y2 * y2).sum().backward();
  CHECK(y.to_vector() == y2.to_vector());
  CHECK(x.grad().to_vector() == x2.grad().to_vector());
  CHECK(w.grad().to_vector() == w2.grad().to_vector());
  CHECK(z.grad().to_vector() == z2.grad().to_vector());
  // And by hand for one element: dL/dx[0][0] = 2 y * z * 2 with y = (1*2 + 0.25) * 1.5.
  CHECK(x.grad().at({0, 0}) == doctest::Approx(2 * (2.25 * 1.5) * 1.5 * 2));
}

TEST_CASE("copy_, fill_ and clamp_ on tensors in a graph are recorded: gradients flow through copy_, not fill_") {
  ng::Tensor row = leaf({1, 2, 3}, {3});
  ng::Tensor t = ng::zeros({2, 3}, ng::float64);
  t.copy_(row);  // t = broadcast of row: dL/drow sums over the two rows
  CHECK(t.requires_grad());
  (t * t).sum().backward();
  CHECK(row.grad().to_vector() == std::vector<double>{4, 8, 12});

  ng::Tensor x = leaf({1, 2}, {2});
  ng::Tensor y = x * 3;
  y.fill_(5);  // the old history is overwritten: no gradient reaches x
  CHECK(y.to_vector() == std::vector<double>{5, 5});
  CHECK_FALSE(y.requires_grad());

  ng::Tensor c = x * 3;  // [3, 6]
  c.clamp_(0, 4);        // [3, 4]: the second is clamped
  c.sum().backward();
  CHECK(x.grad().to_vector() == std::vector<double>{3, 0});
}

TEST_CASE("gradcheck passes for a function that writes in place into its intermediate tensors") {
  auto f = [](const std::vector<ng::Tensor>& in) {
    const ng::Tensor &x = in[0], &w = in[1];
    ng::Tensor t = x * w;  // [2, 3] * [3]
    t.add_(x);
    t.mul_(w);
    t.add_(0.5);
    t.mul_(1.5);
    t.clamp_(-100, 100);  // no element reaches a bound: the identity there
    ng::Tensor u = ng::zeros({2, 3}, ng::float64);
    u.copy_(t.exp());
    u.mul_(t);
    return u;
  };
  ng::Tensor x = leaf({0.1, -0.2, 0.3, 0.4, -0.5, 0.6}, {2, 3});
  ng::Tensor w = leaf({0.7, -0.8, 0.9}, {3});
  const ng::GradcheckResult result = ng::gradcheck(f, {x, w});
  CHECK_MESSAGE(result.ok, result.message);
}

TEST_CASE("an in-place op on a tensor in a graph whose buffer a reshape shares is refused with a clear error") {
  ng::Tensor x = leaf({1, 2, 3, 4}, {4});
  ng::Tensor y = x * 2;
  ng::Tensor y_view = y.reshape({2, 2});
  const uint64_t v = y.version();
  const std::string message = error_message([&] { y.add_(1.0); });
  CHECK_MENTIONS(message, "add_:");
  CHECK_MENTIONS(message, "shares its buffer");
  CHECK_MENTIONS(message, "[4] float64");
  CHECK(y.version() == v);
  // Once the view is gone, the write is allowed.
  y_view = ng::Tensor();
  y.add_(1.0);
  CHECK(y.to_vector() == std::vector<double>{3, 5, 7, 9});
}

TEST_CASE("an in-place op on the output of exp (saved for exp's backward) is refused while grad mode is on") {
  ng::Tensor x = leaf({0, 1}, {2});
  ng::Tensor y = x.exp();
  const std::string message = error_message([&] { y.mul_(2.0); });
  CHECK_MENTIONS(message, "mul_:");
  CHECK_MENTIONS(message, "shares its buffer");
}

// ---- bad arguments -------------------------------------------------------------------------------------

TEST_CASE("an in-place op refuses an operand that does not broadcast to the tensor's own shape") {
  ng::Tensor a = ng::zeros({3}, ng::float64);
  // [2, 3] broadcasts with [3], but to [2, 3]: the result would not fit into a.
  std::string message = error_message([&] { a.add_(ng::zeros({2, 3}, ng::float64)); });
  CHECK_MENTIONS(message, "add_");
  CHECK_MENTIONS(message, "[2, 3]");
  CHECK_MENTIONS(message, "[3]");
  message = error_message([&] { a.mul_(ng::zeros({2}, ng::float64)); });
  CHECK_MENTIONS(message, "mul_");
  message = error_message([&] { a.copy_(ng::zeros({4}, ng::float64)); });
  CHECK_MENTIONS(message, "copy_");
  // The same on the recorded path.
  ng::Tensor y = leaf({1, 2, 3}, {3}) * 2;
  message = error_message([&] { y.add_(ng::zeros({2, 3}, ng::float64)); });
  CHECK_MENTIONS(message, "add_");
  CHECK(a.to_vector() == std::vector<double>{0, 0, 0});
}

TEST_CASE("add_ and mul_ refuse an operand of another dtype, naming both") {
  ng::Tensor a = ng::zeros({3}, ng::float32);
  std::string message = error_message([&] { a.add_(ng::ones({3}, ng::float64)); });
  CHECK_MENTIONS(message, "add_");
  CHECK_MENTIONS(message, "float32");
  CHECK_MENTIONS(message, "float64");
  message = error_message([&] { a.mul_(ng::ones({3}, ng::float64)); });
  CHECK_MENTIONS(message, "mul_");
  // Recorded path: the operand requires grad.
  ng::Tensor y = ng::zeros({3}, ng::float32) + ng::ones({3}, ng::float32);
  ng::Tensor w = leaf({1, 2, 3}, {3});
  CHECK_THROWS_AS(y.add_(w), ng::Error);
}

TEST_CASE("clamp_ and clamp refuse min > max") {
  ng::Tensor a = ng::tensor({1, 2}, ng::float64);
  CHECK_MENTIONS(error_message([&] { a.clamp_(2, 1); }), "clamp_");
  CHECK_MENTIONS(error_message([&] { ng::clamp(a, 2, 1); }), "clamp");
  ng::Tensor y = leaf({1, 2}, {2}) * 1.0;
  CHECK_MENTIONS(error_message([&] { y.clamp_(2, 1); }), "larger than max");
  CHECK(a.to_vector() == std::vector<double>{1, 2});
}

// ---- clamp (out of place) ------------------------------------------------------------------------------

TEST_CASE("clamp gives min(max(x, lo), hi) in a new tensor and leaves x unchanged") {
  const std::vector<double> xs{-5, -1, -0.25, 0, 0.75, 3};
  ng::Tensor x = ng::tensor(xs, ng::float32);
  ng::Tensor y = ng::clamp(x, -0.5, 1);
  for (std::size_t i = 0; i < xs.size(); ++i) CHECK(y.to_vector()[i] == std::min(std::max(xs[i], -0.5), 1.0));
  CHECK(x.to_vector() == xs);
  CHECK(y.dtype() == ng::float32);
}

TEST_CASE("clamp's gradient is 1 inside [min, max] and 0 outside") {
  ng::Tensor x = leaf({-5, -1, 0.25, 0.5, 3, 7}, {6});
  ng::clamp(x, -2, 4).sum().backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 1, 1, 1, 1, 0});
}

TEST_CASE("gradcheck passes for clamp away from its bounds") {
  ng::Tensor x = leaf({-3, -0.4, 0.1, 0.35, 0.9, 2.5}, {2, 3});
  const ng::GradcheckResult result =
      ng::gradcheck([](const std::vector<ng::Tensor>& in) { return ng::clamp(in[0] * in[0], 0.05, 1.0) * in[0]; }, {x});
  CHECK_MESSAGE(result.ok, result.message);
}

TEST_CASE("clamp's backward can be differentiated again (create_graph): d2/dx2 of clamp(x)^2 is 2 inside, 0 outside") {
  ng::Tensor x = leaf({-3, 0.5, 3}, {3});
  ng::Tensor c = ng::clamp(x, -1, 1);
  ng::Tensor g = ng::grad({(c * c).sum()}, {x}, {.create_graph = true})[0];  // 2 c where inside
  CHECK(g.to_vector() == std::vector<double>{0, 1, 0});
  g.sum().backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 2, 0});
}
