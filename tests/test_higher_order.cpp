// test_higher_order.cpp: gradients of gradients.
//
// Every differentiable primitive's backward is itself recorded under create_graph, so its second
// derivatives are checked here with ng::gradgradcheck (gradcheck.h) in float64, on every op case of
// tests/op_cases.h: the awkward shapes (broadcast, 0-dim, size-1 dims) and input ranges (abs, relu and
// clamp away from their corners, log, sqrt and pow positive) that test_gradcheck_ops.cpp uses for first
// derivatives. Then the uses that need them: a third derivative, the fused BatchNorm's double backward
// against the composed one, a Hessian-vector product, a gradient-penalty training step, and .grad
// carrying a graph.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>

#include "normgrad.h"
#include "op_cases.h"
#include "test_helpers.h"

namespace {

using ng::Tensor;

// Elementwise |a - b| <= tol * (1 + |b|), with the first failure named.
void check_close(const std::string& what, const Tensor& actual, const Tensor& expected, double tol) {
  REQUIRE_MESSAGE(actual.shape() == expected.shape(),
                  what << ": shape " << ng::shape_str(actual.shape()) << " vs " << ng::shape_str(expected.shape()));
  const auto a = actual.to_vector(), b = expected.to_vector();
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(std::abs(a[i] - b[i]) <= tol * (1 + std::abs(b[i])))) {
      FAIL_CHECK(what << ": element " << i << " is " << a[i] << ", expected " << b[i]);
      return;
    }
}

}  // namespace

// ---- gradgradcheck itself ----------------------------------------------------------------------------

namespace {
// x^2 whose backward 2 x g is computed with a raw loop: correct first derivative, but not recorded, so
// nothing can be differentiated through it.
Tensor square_unrecorded_backward(const Tensor& x) {
  Tensor out = ng::mul(x.detach(), x.detach());
  if (ng::any_requires_grad({&x}))
    ng::record(out, "square_unrecorded", {&x}, [x = ng::SavedTensor(x)](const Tensor& g, const ng::Node& n) {
      const Tensor xv = x.unpack(n);
      Tensor dx = ng::empty(xv.shape(), ng::float64);
      for (int64_t i = 0; i < xv.numel(); ++i)
        dx.mutable_data<double>()[i] = 2 * xv.data<double>()[i] * g.data<double>()[i];
      return std::vector<Tensor>{dx};
    });
  return out;
}
// x^2 whose backward 2 x.detach() g is recorded but cut from x: wrong second derivative in x only.
Tensor square_detached_backward(const Tensor& x) {
  Tensor out = ng::mul(x.detach(), x.detach());
  if (ng::any_requires_grad({&x}))
    ng::record(out, "square_detached", {&x}, [x = ng::SavedTensor(x)](const Tensor& g, const ng::Node& n) {
      return std::vector<Tensor>{g * x.unpack(n).detach() * 2.0};
    });
  return out;
}
}  // namespace

TEST_CASE("gradgradcheck fails for a backward written with raw loops, naming the input and element") {
  ng::manual_seed(1);
  Tensor x = uniform_leaf({3}, 0.5, 1.5);
  // The first derivative is right, so gradcheck alone passes.
  CHECK(ng::gradcheck([](const Inputs& in) { return square_unrecorded_backward(in[0]); }, {x}).ok);
  const auto result = ng::gradgradcheck([](const Inputs& in) { return square_unrecorded_backward(in[0]); }, {x});
  CHECK_FALSE(result.ok);
  CHECK(result.message.find("gradgradcheck") != std::string::npos);
  CHECK(result.message.find("d input 0 [3]") != std::string::npos);
  CHECK(result.message.find("element") != std::string::npos);
}

TEST_CASE("gradgradcheck fails for a backward whose gradient is cut from x, and passes for the true square") {
  ng::manual_seed(2);
  Tensor x = uniform_leaf({2, 2}, 0.5, 1.5);
  const auto wrong = ng::gradgradcheck([](const Inputs& in) { return square_detached_backward(in[0]); }, {x});
  CHECK_FALSE(wrong.ok);
  // d(2 x v)/dx = 2 v is missing while d(2 x v)/dv = 2 x is right: the failure is the x derivative.
  CHECK(wrong.message.find("/ d input 0 [2, 2]") != std::string::npos);
  CHECK(ng::gradgradcheck([](const Inputs& in) { return in[0] * in[0]; }, {x}).ok);
}

TEST_CASE("gradgradcheck accepts a given grad_output and refuses one of the wrong shape or dtype") {
  ng::manual_seed(3);
  Tensor x = uniform_leaf({2, 3}, 0.5, 1.5);
  auto cube = [](const Inputs& in) { return ng::pow(in[0], 3.0); };
  CHECK(ng::gradgradcheck(cube, {x}, {}, ng::rand({2, 3}, ng::float64)).ok);
  CHECK_THROWS_AS(ng::gradgradcheck(cube, {x}, {}, ng::rand({3, 2}, ng::float64)), ng::Error);
  CHECK_THROWS_AS(ng::gradgradcheck(cube, {x}, {}, ng::rand({2, 3}, ng::float32)), ng::Error);
  CHECK_THROWS_AS(ng::gradgradcheck(cube, {x.detach().to(ng::float32).detach().requires_grad_()}), ng::Error);
}

TEST_CASE("gradgradcheck draws its grad_output without touching ng's random generator") {
  Tensor x = ng::tensor({0.5, 1.5}, ng::float64).requires_grad_();
  ng::manual_seed(5);
  const double expected = ng::random_uniform();
  ng::manual_seed(5);
  CHECK(ng::gradgradcheck([](const Inputs& in) { return ng::exp(in[0]); }, {x}, {}, Tensor(), /*seed=*/9).ok);
  CHECK(ng::random_uniform() == expected);
}

TEST_CASE("gradgradcheck passes for an input f does not use and for f linear in its input") {
  ng::manual_seed(4);
  Tensor x = uniform_leaf({3}, -1, 1), unused = uniform_leaf({2}, -1, 1);
  check_second_derivatives("x * 3 with an unused input", [](const Inputs& in) { return in[0] * 3.0; }, {x, unused});
  check_second_derivatives("sum(x)", [](const Inputs& in) { return ng::sum(in[0]); }, {x});
}

// ---- the op cases ------------------------------------------------------------------------------------

// Alone, f checks its backward's own derivatives: in the incoming gradient (the backward is linear in it,
// and recorded) and in x. Squared, f * f gives the linear and piecewise-linear ops (reshape, sum, relu,
// max, ...) a second derivative that is not zero, so that their backward is also differentiated with an
// incoming gradient that depends on x.
TEST_CASE("every op case has correct second derivatives on each of its shape sets, alone and squared") {
  for (const OpCase& c : op_cases()) {
    const Fn f = c.f;
    const Fn squared = [f](const Inputs& in) {
      const Tensor y = f(in);
      return y * y;
    };
    for (const std::vector<ng::Shape>& shapes : c.shape_sets) {
      const std::string name = case_name(c, shapes);
      INFO(name);
      const Inputs inputs = draw_inputs(c, shapes, name);
      ng::GradcheckResult alone, times_itself;
      CHECK_NOTHROW(alone = ng::gradgradcheck(f, inputs));
      CHECK_MESSAGE(alone.ok, alone.message);
      CHECK_NOTHROW(times_itself = ng::gradgradcheck(squared, inputs));
      CHECK_MESSAGE(times_itself.ok, "squared: " << times_itself.message);
    }
  }
}

TEST_CASE("to(float64) and clone have correct second derivatives") {
  ng::manual_seed(13);
  Tensor x = uniform_leaf({2, 6}, -1, 1);
  check_second_derivatives("to(float64)", [](const Inputs& in) { return in[0].to(ng::float64) * in[0]; }, {x});
  check_second_derivatives("clone", [](const Inputs& in) { return in[0].clone() * in[0].clone(); }, {x});
  check_second_derivatives("clone alone", [](const Inputs& in) { return in[0].clone(); }, {uniform_leaf({}, -1, 1)});
}

TEST_CASE("to(float32) and back sends a recorded float64 gradient: d^2 (x^2) / dx^2 = 2 through float32") {
  Tensor x = ng::tensor({0.75, -1.5}, ng::float64).requires_grad_();
  Tensor y = ng::sum(ng::pow(x.to(ng::float32), 2.0));
  Tensor dx = ng::grad({y}, {x}, {.retain_graph = true, .create_graph = true})[0];
  CHECK(dx.dtype() == ng::float64);
  CHECK(dx.requires_grad());
  Tensor d2x = ng::grad({ng::sum(dx)}, {x})[0];
  CHECK(d2x.to_vector() == std::vector<double>{2.0, 2.0});  // exact: 2 g x' with g = 1 is exact in float32
}

// ---- BatchNorm ---------------------------------------------------------------------------------------

TEST_CASE("batch_norm_composed and batch_norm_fused have correct second derivatives on [N, C] and [N, C, H, W]") {
  namespace F = ng::nn::functional;
  ng::manual_seed(24);
  const std::vector<std::pair<const char*, Tensor (*)(const Tensor&, const Tensor&, const Tensor&, double)>> impls = {
      {"composed", F::batch_norm_composed}, {"fused", F::batch_norm_fused}};
  for (const auto& impl : impls)
    for (const ng::Shape& shape : std::vector<ng::Shape>{{4, 3}, {3, 2, 2, 2}}) {
      const auto bn = impl.second;  // not a structured binding: clang 14 cannot capture those
      const int64_t C = shape[1];
      const std::string what = std::string(impl.first) + " " + ng::shape_str(shape);
      Tensor x = uniform_leaf(shape, -1, 1), gamma = uniform_leaf({C}, 0.5, 1.5), beta = uniform_leaf({C}, -0.5, 0.5);
      check_second_derivatives(what, [bn](const Inputs& in) { return bn(in[0], in[1], in[2], 1e-5); },
                               {x, gamma, beta});
      check_second_derivatives(what + " without gamma and beta",
                               [bn](const Inputs& in) { return bn(in[0], Tensor(), Tensor(), 1e-5); }, {x});
    }
}

TEST_CASE("the fused BatchNorm's double backward equals the composed one's to 1e-10") {
  namespace F = ng::nn::functional;
  ng::manual_seed(25);
  for (const ng::Shape& shape : std::vector<ng::Shape>{{6, 3}, {3, 2, 2, 2}}) {
    const int64_t C = shape[1];
    Tensor x = uniform_leaf(shape, -2, 2), gamma = uniform_leaf({C}, 0.5, 1.5), beta = uniform_leaf({C}, -0.5, 0.5);
    const Tensor v = ng::randn(shape, ng::float64), w = ng::randn(shape, ng::float64);
    // d <grad(<BN(x), v>, x), w> / d (x, gamma)
    auto second = [&](auto bn) {
      Tensor dx = ng::grad({bn(x, gamma, beta, 1e-5)}, {x}, {v}, {.create_graph = true})[0];
      return ng::grad({ng::sum(dx * w)}, {x, gamma});
    };
    const auto fused = second(F::batch_norm_fused), composed = second(F::batch_norm_composed);
    check_close("d/dx " + ng::shape_str(shape), fused[0], composed[0], 1e-10);
    check_close("d/dgamma " + ng::shape_str(shape), fused[1], composed[1], 1e-10);
    CHECK(std::abs(composed[0].to_vector()[0]) > 1e-3);  // not trivially zero
  }
}

// ---- derivatives of derivatives in use ---------------------------------------------------------------

TEST_CASE("three nested grads of x^4 give 24 x") {
  Tensor x = ng::tensor({-1.5, 0.5, 2.0}, ng::float64).requires_grad_();
  Tensor y = ng::sum(ng::pow(x, 4.0));
  Tensor d1 = ng::grad({y}, {x}, {.create_graph = true})[0];
  Tensor d2 = ng::grad({ng::sum(d1)}, {x}, {.create_graph = true})[0];
  Tensor d3 = ng::grad({ng::sum(d2)}, {x})[0];
  const std::vector<double> xs = x.to_vector();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    CHECK(d1.to_vector()[i] == doctest::Approx(4 * xs[i] * xs[i] * xs[i]).epsilon(1e-14));
    CHECK(d2.to_vector()[i] == doctest::Approx(12 * xs[i] * xs[i]).epsilon(1e-14));
    CHECK(d3.to_vector()[i] == doctest::Approx(24 * xs[i]).epsilon(1e-14));
  }
}

namespace {
// A 5-4-3 tanh MLP's mean squared error, from ops: params = {W1 [4,5], b1 [4], W2 [3,4], b2 [3]}.
Tensor mlp_loss(const std::vector<Tensor>& p, const Tensor& x, const Tensor& target) {
  Tensor hidden = ng::tanh(ng::linear(x, p[0], p[1]));
  return ng::mean(ng::pow(ng::linear(hidden, p[2], p[3]) - target, 2.0));
}
}  // namespace

TEST_CASE("a Hessian-vector product on a small MLP matches central differences of the gradient") {
  ng::manual_seed(26);
  const Tensor x = ng::randn({6, 5}, ng::float64), target = ng::randn({6, 3}, ng::float64);
  std::vector<Tensor> params = {uniform_leaf({4, 5}, -0.8, 0.8), uniform_leaf({4}, -0.5, 0.5),
                                uniform_leaf({3, 4}, -0.8, 0.8), uniform_leaf({3}, -0.5, 0.5)};
  std::vector<Tensor> v;
  for (const Tensor& p : params) v.push_back(ng::randn(p.shape(), ng::float64));

  // Hv = d <dL/dp, v> / dp
  const auto grads = ng::grad({mlp_loss(params, x, target)}, params, {.create_graph = true});
  Tensor dot = ng::scalar(0.0, ng::float64);
  for (std::size_t i = 0; i < params.size(); ++i) dot = dot + ng::sum(grads[i] * v[i]);
  const auto hv = ng::grad({dot}, params);

  // (grad L(p + eps v) - grad L(p - eps v)) / (2 eps)
  const double eps = 1e-5;
  auto gradient_at = [&](double step) {
    std::vector<Tensor> moved;
    for (std::size_t i = 0; i < params.size(); ++i)
      moved.push_back((params[i].detach() + v[i] * step).requires_grad_());
    return ng::grad({mlp_loss(moved, x, target)}, moved);
  };
  const auto plus = gradient_at(eps), minus = gradient_at(-eps);
  double largest = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Tensor numeric = (plus[i] - minus[i]) / (2 * eps);
    check_close("Hv for parameter " + std::to_string(i), hv[i], numeric, 1e-6);
    for (double h : hv[i].to_vector()) largest = std::max(largest, std::abs(h));
  }
  CHECK(largest > 1e-2);  // the check above compared something
}

namespace {
// Linear(4, 5) -> BatchNorm1d(5) -> tanh -> Linear(5, 2) -> sigmoid, all float64.
struct PenaltyModel {
  std::shared_ptr<ng::nn::Linear> first = std::make_shared<ng::nn::Linear>(4, 5, true, ng::float64);
  std::shared_ptr<ng::nn::BatchNorm1d> norm;
  std::shared_ptr<ng::nn::Linear> second = std::make_shared<ng::nn::Linear>(5, 2, true, ng::float64);
  explicit PenaltyModel(ng::nn::BatchNormImpl impl) {
    ng::nn::BatchNormOptions options;
    options.dtype = ng::float64;
    options.impl = impl;
    norm = std::make_shared<ng::nn::BatchNorm1d>(5, options);
  }
  Tensor forward(const Tensor& x) { return ng::sigmoid((*second)(ng::tanh((*norm)((*first)(x))))); }
  std::vector<Tensor> parameters() const {
    std::vector<Tensor> all;
    for (const auto* m : std::initializer_list<const ng::nn::Module*>{first.get(), norm.get(), second.get()})
      for (const Tensor& p : m->parameters()) all.push_back(p);
    return all;
  }
};

// task + lambda ||d task / d input||^2, with the input gradient recorded so the penalty is differentiable.
Tensor penalized_loss(PenaltyModel& model, const Tensor& input, const Tensor& target, double lambda) {
  ng::GradModeGuard grad_mode(true);
  Tensor x = input.detach().requires_grad_();
  Tensor task = ng::mean(ng::pow(model.forward(x) - target, 2.0));
  Tensor dx = ng::grad({task}, {x}, {.create_graph = true})[0];
  return task + lambda * ng::sum(dx * dx);
}
}  // namespace

TEST_CASE(
    "a gradient-penalty step through Linear and BatchNorm1d gives parameter gradients that match finite "
    "differences, and SGD lowers the penalized loss") {
  for (auto impl : {ng::nn::BatchNormImpl::fused, ng::nn::BatchNormImpl::composed}) {
    const char* name = impl == ng::nn::BatchNormImpl::fused ? "fused BN" : "composed BN";
    ng::manual_seed(27);
    PenaltyModel model(impl);
    // gamma and beta away from their initial 1 and 0, so that their gradients are generic.
    {
      ng::NoGradGuard no_grad;
      model.norm->weight.copy_(ng::rand({5}, ng::float64) + 0.5);
      model.norm->bias.copy_(ng::rand({5}, ng::float64) - 0.5);
    }
    const Tensor input = ng::randn({8, 4}, ng::float64), target = ng::rand({8, 2}, ng::float64);
    const double lambda = 10.0;

    const Tensor loss = penalized_loss(model, input, target, lambda);
    for (Tensor p : model.parameters()) p.zero_grad();
    loss.backward();

    // Central differences of the whole penalized loss, one parameter element at a time.
    const double eps = 1e-6;
    for (Tensor p : model.parameters()) {
      REQUIRE(p.grad().defined());
      const std::vector<double> analytic = p.grad().to_vector();
      for (int64_t i = 0; i < p.numel(); ++i) {
        const double original = p.data<double>()[i];
        p.mutable_data<double>()[i] = original + eps;
        const double plus = penalized_loss(model, input, target, lambda).item();
        p.mutable_data<double>()[i] = original - eps;
        const double minus = penalized_loss(model, input, target, lambda).item();
        p.mutable_data<double>()[i] = original;
        const double numeric = (plus - minus) / (2 * eps);
        CHECK_MESSAGE(std::abs(analytic[i] - numeric) <= 1e-6 + 1e-5 * std::abs(numeric),
                      name << " " << p.name() << "[" << i << "]: analytic " << analytic[i] << ", numeric " << numeric);
      }
    }
    // The penalty matters: without it the parameters' gradients differ.
    const auto task_grads = ng::grad({penalized_loss(model, input, target, 0.0)}, model.parameters());
    double largest_difference = 0;
    for (std::size_t k = 0; k < task_grads.size(); ++k) {
      const auto with = model.parameters()[k].grad().to_vector(), without = task_grads[k].to_vector();
      for (std::size_t i = 0; i < with.size(); ++i)
        largest_difference = std::max(largest_difference, std::abs(with[i] - without[i]));
    }
    CHECK(largest_difference > 1e-4);

    ng::optim::SGD sgd(model.parameters(), {.lr = 0.05});
    const double before = penalized_loss(model, input, target, lambda).item();
    for (int step = 0; step < 20; ++step) {
      sgd.zero_grad();
      penalized_loss(model, input, target, lambda).backward();
      sgd.step();
    }
    const double after = penalized_loss(model, input, target, lambda).item();
    CHECK_MESSAGE(after < before, name << ": penalized loss " << before << " -> " << after);
  }
}

// ---- what create_graph leaves behind -------------------------------------------------------------------

TEST_CASE("backward with create_graph leaves in .grad a tensor with a graph, and a backward through it works") {
  Tensor x = ng::tensor({0.5, -1.0, 2.0}, ng::float64).requires_grad_();
  const Tensor w = ng::tensor({1.0, 2.0, -3.0}, ng::float64);
  ng::sum(ng::pow(x, 3.0)).backward({.create_graph = true});
  const Tensor dx = x.grad();  // 3 x^2
  REQUIRE(dx.defined());
  CHECK(dx.grad_fn() != nullptr);
  CHECK(dx.requires_grad());
  x.zero_grad();
  ng::sum(dx * w).backward();  // d <3 x^2, w> / dx = 6 x w
  const auto xs = x.to_vector(), ws = w.to_vector(), first = dx.to_vector(), second = x.grad().to_vector();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    CHECK(first[i] == doctest::Approx(3 * xs[i] * xs[i]).epsilon(1e-15));
    CHECK(second[i] == doctest::Approx(6 * xs[i] * ws[i]).epsilon(1e-15));
  }
}

TEST_CASE("a second backward with create_graph adds to .grad with a recorded sum") {
  Tensor x = ng::tensor({0.5, -1.0}, ng::float64).requires_grad_();
  ng::sum(x * x).backward({.create_graph = true});
  ng::sum(x * x * x).backward({.create_graph = true});
  const Tensor dx = x.grad();  // 2x + 3x^2
  CHECK(dx.grad_fn() != nullptr);
  const Tensor d2x = ng::grad({ng::sum(dx)}, {x})[0];  // 2 + 6x
  CHECK(dx.to_vector()[0] == doctest::Approx(2 * 0.5 + 3 * 0.25));
  CHECK(d2x.to_vector() == std::vector<double>{2 + 6 * 0.5, 2 + 6 * -1.0});
}

TEST_CASE("without create_graph the gradients have no grad_fn and do not require grad") {
  Tensor x = ng::tensor({0.5, -1.0, 2.0}, ng::float64).requires_grad_();
  Tensor w = ng::tensor({1.0, 2.0, -3.0}, ng::float64).requires_grad_();
  const auto grads = ng::grad({ng::sum(ng::tanh(x * w))}, {x, w});
  for (const Tensor& g : grads) {
    CHECK(g.grad_fn() == nullptr);
    CHECK_FALSE(g.requires_grad());
  }
  ng::sum(ng::sigmoid(x) * w).backward({.retain_graph = true});
  CHECK(x.grad().grad_fn() == nullptr);
  CHECK_FALSE(x.grad().requires_grad());
  CHECK(w.grad().grad_fn() == nullptr);
  CHECK_FALSE(w.grad().requires_grad());
}

TEST_CASE("a create_graph backward into a leaf frees every node and buffer once the leaf is gone") {
  // leaf -> .grad -> the graph of .grad -> (saved leaf, AccumulateGrad) -> leaf would be a reference cycle
  // if the graph held the leaf strongly; PyTorch documents that leak, normgrad holds leaves weakly.
  const int64_t nodes_before = ng::live_nodes(), storages_before = ng::live_storages();
  {
    ng::Tensor x = ng::tensor({0.5, -1.5}, ng::float64).requires_grad_();
    ng::Tensor y = (x * x * x).sum();
    y.backward({.create_graph = true});
    REQUIRE(x.grad().grad_fn() != nullptr);
    ng::Tensor second = ng::grad({x.grad().sum()}, {x})[0];  // d/dx sum(3x^2) = 6x
    CHECK(second.at({0}) == doctest::Approx(3.0));
    CHECK(second.at({1}) == doctest::Approx(-9.0));
  }
  CHECK(ng::live_nodes() == nodes_before);
  CHECK(ng::live_storages() == storages_before);
}
