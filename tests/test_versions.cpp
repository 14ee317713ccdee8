// test_versions.cpp: the version counter of a tensor's buffer and the check that a backward makes with it.
//
// What is specified here: every writer of a buffer (Tensor::set, mutable_data, the in-place ops, the
// optimizers' steps, nn::init, BatchNorm's running statistics, checkpoint loading) bumps its version,
// and readers do not; tensors that share a buffer (reshape, view, detach) share the counter; a backward
// that saved a tensor and finds it written since refuses to run, with a message naming the op, the
// shape and both versions; and a write to a tensor whose value no gradient needs is not an error.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "normgrad.h"
#include "temp_dir.h"
#include "test_helpers.h"

namespace {

// The message of a backward refused because of an in-place write, checked for the op's name.
std::string refused_backward(const ng::Tensor& loss, const char* op) {
  const std::string message = error_message([&] { loss.backward(); });
  CHECK_MENTIONS(message, "modified by an in-place write");
  CHECK_MENTIONS(message, std::string("'") + op + "'");
  return message;
}

}  // namespace

// ---- the example ----------------------------------------------------------------------------

TEST_CASE("writing a saved tensor under NoGradGuard makes backward throw, naming the op, the shape and both versions") {
  ng::Tensor x = leaf({1, 2}), w = leaf({3, 4});
  ng::Tensor y = (x * w).sum();
  const uint64_t saved_at = w.version();
  {
    ng::NoGradGuard no_grad;
    w.set({0}, 5);
  }
  CHECK(w.version() == saved_at + 1);
  const std::string message = refused_backward(y, "mul");
  CHECK_MENTIONS(message, "[2] float64");
  CHECK_MENTIONS(message, "at version " + std::to_string(saved_at));
  CHECK_MENTIONS(message, "now at version " + std::to_string(saved_at + 1));
  // Nothing was accumulated: the backward stopped before reaching the leaves.
  CHECK_FALSE(x.grad().defined());
}

// ---- each writer bumps the version, and a backward saved before it refuses ---------------------------

TEST_CASE("Tensor::set bumps the version by one per call") {
  ng::Tensor t = ng::zeros({2, 2}, ng::float64);
  const uint64_t v = t.version();
  t.set({0, 1}, 3);
  CHECK(t.version() == v + 1);
  t.set({1, 1}, 4);
  CHECK(t.version() == v + 2);
  CHECK(t.at({0, 1}) == 3);
}

TEST_CASE("mutable_data and mutable_raw_data bump the version; a backward saved before either refuses") {
  ng::Tensor p = leaf({1, 2, 3});
  ng::Tensor loss = (p * p).sum();
  const uint64_t v = p.version();
  p.mutable_data<double>()[0] = 10;
  CHECK(p.version() == v + 1);
  static_cast<double*>(p.mutable_raw_data())[1] = 20;
  CHECK(p.version() == v + 2);
  const std::string message = refused_backward(loss, "mul");
  CHECK_MENTIONS(message, "now at version " + std::to_string(v + 2));
}

TEST_CASE("reading a tensor (data, raw_data, at, item, to_vector, printing) does not bump its version") {
  ng::Tensor t = ng::tensor({1.5, -2, 3}, ng::float64);
  ng::Tensor one = ng::scalar(7, ng::float64);
  const uint64_t v = t.version(), v_one = one.version();
  double total = 0;
  const double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) total += p[i];
  total += static_cast<const double*>(t.raw_data())[0];
  total += t.at({1});
  for (double value : t.to_vector()) total += value;
  total += one.item();
  std::ostringstream printed;
  printed << t;
  CHECK(total == doctest::Approx(2 * 2.5 + 1.5 - 2 + 7));
  CHECK(t.version() == v);
  CHECK(one.version() == v_one);
}

TEST_CASE("an SGD step without momentum bumps the parameter's version; a backward saved before it refuses") {
  ng::Tensor p = leaf({1, -2, 3});
  ng::optim::SGD sgd({p}, {.lr = 0.1});
  ng::Tensor loss = (p * p).sum();
  loss.backward({.retain_graph = true});  // dL/dp = 2p = [2, -4, 6]
  const uint64_t v = p.version();
  sgd.step();
  CHECK(p.version() > v);
  CHECK(p.to_vector() == std::vector<double>{1 - 0.1 * 2, -2 + 0.1 * 4, 3 - 0.1 * 6});
  refused_backward(loss, "mul");
}

TEST_CASE("an SGD step with momentum bumps the parameter's version; a backward saved before it refuses") {
  ng::Tensor p = leaf({1, -2, 3});
  ng::optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  ng::Tensor loss = (p * p).sum();
  loss.backward({.retain_graph = true});
  const uint64_t v = p.version();
  sgd.step();
  CHECK(p.version() > v);
  refused_backward(loss, "mul");
}

TEST_CASE("an Adam step bumps the parameter's version; a backward saved before it refuses") {
  ng::Tensor p = leaf({1, -2, 3});
  ng::optim::Adam adam({p}, {.lr = 0.1});
  ng::Tensor loss = (p * p).sum();
  loss.backward({.retain_graph = true});
  const uint64_t v = p.version();
  adam.step();
  CHECK(p.version() > v);
  CHECK(p.at({0}) == doctest::Approx(1 - 0.1));  // Adam's first step moves each coordinate by lr * sign(g)
  refused_backward(loss, "mul");
}

TEST_CASE("every nn::init function bumps the version; a backward saved before it refuses") {
  namespace init = ng::nn::init;
  using Writer = void (*)(ng::Tensor);
  const std::pair<const char*, Writer> writers[] = {
      {"normal_", [](ng::Tensor t) { init::normal_(t, 0, 1); }},
      {"uniform_", [](ng::Tensor t) { init::uniform_(t, -1, 1); }},
      {"constant_", [](ng::Tensor t) { init::constant_(t, 0.5); }},
      {"zeros_", [](ng::Tensor t) { init::zeros_(t); }},
      {"ones_", [](ng::Tensor t) { init::ones_(t); }},
      {"kaiming_uniform_", [](ng::Tensor t) { init::kaiming_uniform_(t); }},
      {"kaiming_normal_", [](ng::Tensor t) { init::kaiming_normal_(t); }},
      {"xavier_uniform_", [](ng::Tensor t) { init::xavier_uniform_(t); }},
      {"xavier_normal_", [](ng::Tensor t) { init::xavier_normal_(t); }},
  };
  for (const auto& entry : writers) {  // not a structured binding: CAPTURE captures it in a lambda (clang 14)
    const char* name = entry.first;
    const Writer write = entry.second;
    CAPTURE(name);
    ng::Tensor w = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
    ng::Tensor loss = (w * w).sum();
    const uint64_t v = w.version();
    write(w);
    CHECK(w.version() > v);
    refused_backward(loss, "mul");
  }
}

TEST_CASE("a BatchNorm1d training forward bumps the running statistics' versions; a backward that saved them refuses") {
  ng::nn::BatchNorm1d bn(2, {.dtype = ng::float64});
  // A backward that saved running_var: d(x * running_var)/dx = running_var.
  ng::Tensor x = leaf({1, 2, 3, 4}, {2, 2});
  ng::Tensor loss = (x * bn.running_var).sum();
  const uint64_t mean_v = bn.running_mean.version(), var_v = bn.running_var.version();
  bn.forward(ng::tensor({1, 5, 3, 9}, {2, 2}, ng::float64));
  CHECK(bn.running_mean.version() > mean_v);
  CHECK(bn.running_var.version() > var_v);
  CHECK(bn.running_mean.at({0}) == doctest::Approx(0.1 * 2));  // (1 - 0.1) * 0 + 0.1 * mean(1, 3)
  refused_backward(loss, "mul");
}

TEST_CASE("an evaluation-mode BatchNorm1d forward does not write the running statistics") {
  ng::nn::BatchNorm1d bn(2, {.dtype = ng::float64});
  bn.eval();
  const uint64_t mean_v = bn.running_mean.version(), var_v = bn.running_var.version();
  bn.forward(ng::tensor({1, 5, 3, 9}, {2, 2}, ng::float64));
  CHECK(bn.running_mean.version() == mean_v);
  CHECK(bn.running_var.version() == var_v);
}

TEST_CASE("loading a checkpoint into a module bumps its parameters' versions; a backward saved before it refuses") {
  test_files::TempDir dir;
  ng::nn::Linear saved(3, 2, true, ng::float64);
  ng::nn::save(saved, dir / "linear.safetensors");

  ng::nn::Linear model(3, 2, true, ng::float64);
  ng::Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  ng::Tensor loss = model(x).sum();  // linear saves the weight for dL/dx
  const uint64_t weight_v = model.weight.version(), bias_v = model.bias.version();
  ng::nn::load(model, dir / "linear.safetensors");
  CHECK(model.weight.version() > weight_v);
  CHECK(model.bias.version() > bias_v);
  CHECK(model.weight.to_vector() == saved.weight.to_vector());
  refused_backward(loss, "linear");
}

TEST_CASE("a refused checkpoint (wrong shape) writes nothing and bumps no version") {
  test_files::TempDir dir;
  ng::nn::Linear other(4, 2, true, ng::float64);
  ng::nn::save(other, dir / "other.safetensors");
  ng::nn::Linear model(3, 2, true, ng::float64);
  const uint64_t weight_v = model.weight.version(), bias_v = model.bias.version();
  CHECK_THROWS_AS(ng::nn::load(model, dir / "other.safetensors"), ng::Error);
  CHECK(model.weight.version() == weight_v);
  CHECK(model.bias.version() == bias_v);
}

// ---- shared buffers share the counter ----------------------------------------------------------------

TEST_CASE("a reshape shares the counter: a write through it bumps the original and breaks its saved backward") {
  ng::Tensor w = leaf({1, 2, 3, 4});
  ng::Tensor c = ng::tensor({5, 6, 7, 8}, ng::float64);
  ng::Tensor loss = (w * c).sum();  // saves c for dL/dw
  ng::Tensor c_view = c.reshape({2, 2});
  const uint64_t v = c.version();
  CHECK(c_view.version() == v);
  c_view.set({1, 0}, 70);
  CHECK(c.version() == v + 1);
  CHECK(c.at({2}) == 70);
  refused_backward(loss, "mul");
}

TEST_CASE("a view shares the counter both ways") {
  ng::Tensor a = ng::zeros({6}, ng::float64);
  ng::Tensor b = a.view({2, 3});
  a.set({4}, 1);
  CHECK(b.version() == a.version());
  b.set({0, 0}, 2);
  CHECK(a.version() == b.version());
  CHECK(a.at({0}) == 2);
  CHECK(b.at({1, 1}) == 1);
}

TEST_CASE("a detached tensor shares the counter: writing it breaks the backward that saved the original") {
  ng::Tensor p = leaf({1, 2, 3});
  ng::Tensor loss = (p * p).sum();
  ng::Tensor d = p.detach();
  const uint64_t v = p.version();
  d.mutable_data<double>()[2] = 0;
  CHECK(p.version() == v + 1);
  CHECK(p.at({2}) == 0);
  refused_backward(loss, "mul");
}

TEST_CASE("a clone has a counter of its own: writing it leaves the original's backward intact") {
  ng::Tensor p = leaf({1, 2, 3});
  ng::Tensor loss = (p * p).sum();
  ng::Tensor copy = p.detach().clone();
  const uint64_t v = p.version();
  copy.set({0}, 100);
  CHECK(p.version() == v);
  loss.backward();
  CHECK(p.grad().to_vector() == std::vector<double>{2, 4, 6});
}

TEST_CASE("fresh op outputs start consistent: a chain of ops with no writes in between runs backward") {
  // Every kernel writes its fresh output through mutable_data: that must not count against what is saved.
  ng::Tensor x = leaf({0.5, -1, 2});
  ng::Tensor y = x.exp();                       // saves its output
  ng::Tensor u = (y * y + x * x).sqrt().sum();  // sqrt saves its output too
  u.backward();
  // du/dx = (2 e^{2x} + 2x) / (2 sqrt(e^{2x} + x^2))
  const std::vector<double> xs{0.5, -1, 2}, g = x.grad().to_vector();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double e2 = std::exp(2 * xs[i]);
    CHECK(g[i] == doctest::Approx((e2 + xs[i]) / std::sqrt(e2 + xs[i] * xs[i])).epsilon(1e-12));
  }
}

// ---- only what the gradient needs is checked ---------------------------------------------------------

TEST_CASE("y = x * w with only w requiring grad: writing w is not an error, since dL/dw needs x and not w") {
  ng::Tensor x = ng::tensor({1, 2, 3}, ng::float64);
  ng::Tensor w = leaf({4, 5, 6});
  ng::Tensor loss = (x * w).sum();
  {
    ng::NoGradGuard no_grad;
    w.set({0}, 40);
  }
  loss.backward();
  CHECK(w.grad().to_vector() == std::vector<double>{1, 2, 3});
}

TEST_CASE("y = x * w with only w requiring grad: writing x is an error, since dL/dw = x") {
  ng::Tensor x = ng::tensor({1, 2, 3}, ng::float64);
  ng::Tensor w = leaf({4, 5, 6});
  ng::Tensor loss = (x * w).sum();
  x.set({1}, 20);
  const std::string message = refused_backward(loss, "mul");
  CHECK_MENTIONS(message, "[3] float64");
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE(
    "writing a tensor after the backward that saved it has run is fine, and the next forward sees the new value") {
  ng::Tensor p = leaf({1, 2});
  (p * p).sum().backward();
  {
    ng::NoGradGuard no_grad;
    p.set({0}, 10);
  }
  p.zero_grad();
  (p * p).sum().backward();
  CHECK(p.grad().to_vector() == std::vector<double>{20, 4});
}

// ---- saved outputs -----------------------------------------------------------------------------------

TEST_CASE("an op's saved output written in place makes its backward throw, naming 'exp' and 'its output'") {
  ng::Tensor x = leaf({0, 1});
  ng::Tensor y = x.exp();
  ng::Tensor loss = y.sum();
  {
    ng::NoGradGuard no_grad;
    y.add_(1.0);
  }
  const std::string message = refused_backward(loss, "exp");
  CHECK_MENTIONS(message, "its output");
  CHECK_MENTIONS(message, "[2] float64");
}

TEST_CASE("the parameter's name appears in the refused backward's message") {
  ng::Tensor w = leaf({1, 2});
  w.set_name("layer.weight");
  ng::Tensor loss = (w * w).sum();
  w.set({1}, 3);
  const std::string message = refused_backward(loss, "mul");
  CHECK_MENTIONS(message, "'layer.weight'");
}
