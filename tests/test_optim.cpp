// test_optim.cpp: SGD, Adam and AdamW against updates worked out by hand (the arithmetic is in the
// comments), and the learning-rate schedules against their formulas.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "normgrad.h"

using namespace ng;

namespace {

// A float64 parameter holding `values`, ready for an optimizer.
Tensor parameter(const std::vector<double>& values, Dtype dtype = float64) {
  return tensor(values, dtype).requires_grad_();
}

// Gives `p` the gradient `values` (as a backward pass would), then runs one step.
void step_with_grad(optim::Optimizer& optimizer, Tensor& p, const std::vector<double>& values) {
  p.set_grad(tensor(values, p.dtype()));
  optimizer.step();
}

doctest::Approx exactly(double value) { return doctest::Approx(value).epsilon(1e-12); }

}  // namespace

TEST_CASE("SGD without momentum moves each parameter by -lr * grad") {
  Tensor p = parameter({1, -2});
  optim::SGD sgd({p}, {.lr = 0.1});
  step_with_grad(sgd, p, {0.5, 1});
  // p = p - lr * g = [1 - 0.1 * 0.5, -2 - 0.1 * 1] = [0.95, -2.1]
  CHECK(p.at({0}) == exactly(0.95));
  CHECK(p.at({1}) == exactly(-2.1));
}

TEST_CASE("SGD uses the gradient that backward computed") {
  Tensor p = parameter({3});
  optim::SGD sgd({p}, {.lr = 0.25});
  (p * p).sum().backward();  // d(p^2)/dp = 2p = 6
  sgd.step();
  CHECK(p.at({0}) == exactly(1.5));  // 3 - 0.25 * 6
}

TEST_CASE("SGD momentum: the buffer starts as the first gradient, then b = momentum * b + g") {
  Tensor p = parameter({1});
  optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9});
  step_with_grad(sgd, p, {1});
  CHECK(p.at({0}) == exactly(0.9));  // b = 1, p = 1 - 0.1 * 1
  step_with_grad(sgd, p, {1});
  CHECK(p.at({0}) == exactly(0.71));  // b = 0.9 * 1 + 1 = 1.9, p = 0.9 - 0.19
  step_with_grad(sgd, p, {0.5});
  CHECK(p.at({0}) == exactly(0.489));  // b = 0.9 * 1.9 + 0.5 = 2.21, p = 0.71 - 0.221
}

TEST_CASE("SGD dampening scales new gradients but not the first one") {
  Tensor p = parameter({1});
  optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
  step_with_grad(sgd, p, {1});
  CHECK(p.at({0}) == exactly(0.9));  // b = g = 1 (no dampening on the first step), p = 1 - 0.1
  step_with_grad(sgd, p, {1});
  CHECK(p.at({0}) == exactly(0.76));  // b = 0.9 * 1 + (1 - 0.5) * 1 = 1.4, p = 0.9 - 0.14
}

TEST_CASE("SGD Nesterov steps along g + momentum * b") {
  Tensor p = parameter({1});
  optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  step_with_grad(sgd, p, {1});
  CHECK(p.at({0}) == exactly(0.81));  // b = 1, g' = 1 + 0.9 * 1 = 1.9, p = 1 - 0.19
  step_with_grad(sgd, p, {1});
  CHECK(p.at({0}) == exactly(0.539));  // b = 0.9 + 1 = 1.9, g' = 1 + 0.9 * 1.9 = 2.71, p = 0.81 - 0.271
}

TEST_CASE("SGD weight decay adds weight_decay * p to the gradient") {
  Tensor p = parameter({2});
  optim::SGD sgd({p}, {.lr = 0.1, .weight_decay = 0.1});
  step_with_grad(sgd, p, {1});
  CHECK(p.at({0}) == exactly(1.88));  // g = 1 + 0.1 * 2 = 1.2, p = 2 - 0.12
}

TEST_CASE("SGD on float32 parameters gives the float64 result to float precision") {
  Tensor p32 = parameter({1, -2}, float32), p64 = parameter({1, -2});
  optim::SGD sgd32({p32}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  optim::SGD sgd64({p64}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  for (int i = 0; i < 5; ++i) {
    step_with_grad(sgd32, p32, {0.3, -0.7});
    step_with_grad(sgd64, p64, {0.3, -0.7});
  }
  CHECK(p32.dtype() == float32);
  CHECK(p32.at({0}) == doctest::Approx(p64.at({0})).epsilon(1e-6));
  CHECK(p32.at({1}) == doctest::Approx(p64.at({1})).epsilon(1e-6));
}

TEST_CASE("a parameter without a gradient is skipped and gets no state") {
  Tensor with_grad = parameter({1}), without_grad = parameter({5});
  optim::SGD sgd({with_grad, without_grad}, {.lr = 0.1, .momentum = 0.9});
  step_with_grad(sgd, with_grad, {1});
  CHECK(with_grad.at({0}) == exactly(0.9));
  CHECK(without_grad.at({0}) == 5);
  optim::NamedTensors state = sgd.state_dict();
  REQUIRE(state.size() == 1 + 3);  // parameter 0's momentum_buffer, then param_groups.0.lr, .weight_decay, .params
  CHECK(state[0].first == "state.0.momentum_buffer");

  optim::Adam adam({without_grad});
  adam.step();
  CHECK(without_grad.at({0}) == 5);
  CHECK(adam.state_dict().size() == 3);  // only param_groups.0.lr, .weight_decay, .params
}

TEST_CASE("zero_grad drops every parameter's gradient") {
  Tensor a = parameter({1}), b = parameter({2});
  optim::SGD sgd({a, b}, {.lr = 0.1});
  (a * b).sum().backward();
  REQUIRE(a.grad().defined());
  sgd.zero_grad();
  CHECK_FALSE(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
}

TEST_CASE("optimizers refuse invalid options and parameters") {
  Tensor p = parameter({1});
  CHECK_THROWS_WITH_AS(optim::SGD({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                       doctest::Contains("Nesterov momentum requires"), Error);
  CHECK_THROWS_WITH_AS(optim::SGD({p}, {.lr = 0.1, .nesterov = true}), doctest::Contains("momentum > 0"), Error);
  CHECK_THROWS_WITH_AS(optim::SGD({p}, {.lr = -1}), doctest::Contains("invalid learning rate"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam({p}, {.beta1 = 1.0}), doctest::Contains("beta1"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam({p}, {.eps = -1}), doctest::Contains("eps"), Error);
  CHECK_THROWS_WITH_AS(optim::SGD({}, {}), doctest::Contains("empty parameter list"), Error);
  CHECK_THROWS_WITH_AS(optim::SGD({p, p}, {}), doctest::Contains("more than once"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam({p * 2.0}), doctest::Contains("not a leaf"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam({arange(3, int64)}), doctest::Contains("int64"), Error);
}

TEST_CASE("Adam's bias correction makes the first step lr * sign(g)") {
  Tensor p = parameter({1});
  optim::Adam adam({p}, {.lr = 0.1});
  step_with_grad(adam, p, {0.5});
  // m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25 = 0.00025
  // p = 1 - 0.1 / (1 - 0.9) * 0.05 / (sqrt(0.00025) / sqrt(1 - 0.999) + 1e-8)
  //   = 1 - 1 * 0.05 / (0.5 + 1e-8) = 1 - 0.1 * (1 - 2e-8) = 0.900000002
  // (without the correction it would be 1 - 0.1 * 0.05 / 0.0158 = 0.68)
  CHECK(p.at({0}) == exactly(0.900000002));
  step_with_grad(adam, p, {0.25});
  // m = 0.9 * 0.05 + 0.1 * 0.25 = 0.07, v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225
  // 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999
  // p = 0.900000002 - 0.1 / 0.19 * 0.07 / (sqrt(0.00031225) / sqrt(0.001999) + 1e-8)
  //   = 0.900000002 - 0.526315789 * 0.07 / 0.395225391 = 0.900000002 - 0.093217962 = 0.806782040
  CHECK(p.at({0}) == doctest::Approx(0.806782040).epsilon(1e-9));
  optim::NamedTensors state = adam.state_dict();
  REQUIRE(state.size() == 3 + 3);  // step, exp_avg, exp_avg_sq, then param_groups.0.*
  CHECK(state[0].first == "state.0.step");
  CHECK(state[0].second.item() == 2);
  CHECK(state[1].second.item() == doctest::Approx(0.07));
  CHECK(state[2].second.item() == doctest::Approx(0.00031225));
}

TEST_CASE("Adam's weight decay is an L2 gradient that the step normalizes; AdamW shrinks p by lr * weight_decay") {
  // With a zero gradient only the decay acts.
  Tensor p_adam = parameter({1}), p_adamw = parameter({1});
  optim::Adam adam({p_adam}, {.lr = 0.1, .weight_decay = 0.1});
  optim::AdamW adamw({p_adamw}, {.lr = 0.1, .weight_decay = 0.1});
  step_with_grad(adam, p_adam, {0});
  step_with_grad(adamw, p_adamw, {0});
  // Adam:  g = 0 + 0.1 * 1 = 0.1, m = 0.01, v = 1e-5; m / (1 - 0.9) = 0.1, sqrt(v / (1 - 0.999)) = 0.1
  //        p = 1 - 0.1 * 0.1 / (0.1 + 1e-8) = 0.9 + 1e-8 (a full lr-sized step, whatever weight_decay is)
  CHECK(p_adam.at({0}) == doctest::Approx(0.90000001).epsilon(1e-10));
  // AdamW: p = 1 * (1 - 0.1 * 0.1) = 0.99; then g = 0 gives m = v = 0 and no further change
  CHECK(p_adamw.at({0}) == exactly(0.99));
}

TEST_CASE("AdamW defaults to PyTorch's weight_decay 0.01 even when other options are given") {
  Tensor p = parameter({1});
  CHECK(optim::AdamW({p}).options().weight_decay == 0.01);
  CHECK(optim::AdamW({p}, {.lr = 0.5}).options().weight_decay == 0.01);
  CHECK(optim::Adam({p}).options().weight_decay == 0);
  CHECK(optim::AdamW({p}).name() == std::string("AdamW"));
}

TEST_CASE("Adam on float32 parameters gives the float64 result to float precision") {
  Tensor p32 = parameter({1, -2}, float32), p64 = parameter({1, -2});
  optim::AdamW adam32({p32}, {.lr = 0.01});
  optim::AdamW adam64({p64}, {.lr = 0.01});
  for (int i = 0; i < 10; ++i) {
    step_with_grad(adam32, p32, {0.3 * i, -0.7});
    step_with_grad(adam64, p64, {0.3 * i, -0.7});
  }
  CHECK(p32.at({0}) == doctest::Approx(p64.at({0})).epsilon(1e-5));
  CHECK(p32.at({1}) == doctest::Approx(p64.at({1})).epsilon(1e-5));
}

TEST_CASE("Adam minimizes a quadratic through backward") {
  Tensor p = parameter({0, 0});
  Tensor target = tensor({3, -1}, float64);
  optim::Adam adam({p}, {.lr = 0.1});
  for (int i = 0; i < 500; ++i) {
    adam.zero_grad();
    ((p - target) * (p - target)).sum().backward();
    adam.step();
  }
  CHECK(p.at({0}) == doctest::Approx(3).epsilon(1e-3));
  CHECK(p.at({1}) == doctest::Approx(-1).epsilon(1e-3));
}

TEST_CASE("StepLR multiplies lr by gamma every step_size epochs") {
  Tensor p = parameter({0});
  optim::SGD sgd({p}, {.lr = 1});
  optim::StepLR schedule(sgd, 3, 0.5);
  // lr = 1 * 0.5^floor(epoch / 3)
  std::vector<double> expected{1, 1, 1, 0.5, 0.5, 0.5, 0.25};
  for (std::size_t epoch = 0; epoch < expected.size(); ++epoch) {
    CAPTURE(epoch);
    CHECK(schedule.last_lr() == exactly(expected[epoch]));
    CHECK(sgd.lr() == exactly(expected[epoch]));
    schedule.step();
  }
}

TEST_CASE("the optimizer steps with the lr the scheduler set") {
  Tensor p = parameter({0});
  optim::SGD sgd({p}, {.lr = 1});
  optim::StepLR schedule(sgd, 1, 0.5);
  schedule.step();  // epoch 1: lr = 0.5
  step_with_grad(sgd, p, {1});
  CHECK(p.at({0}) == exactly(-0.5));
}

TEST_CASE("CosineAnnealingLR follows eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2") {
  Tensor p = parameter({0});
  optim::Adam adam({p}, {.lr = 1});
  optim::CosineAnnealingLR schedule(adam, 10, 0.1);
  std::vector<double> lrs{schedule.last_lr()};
  for (int epoch = 1; epoch <= 15; ++epoch) {
    schedule.step();
    lrs.push_back(adam.lr());
  }
  CHECK(lrs[0] == exactly(1));                                                  // cos(0) = 1: base_lr
  CHECK(lrs[2] == exactly(0.1 + 0.45 * (1 + std::cos(std::numbers::pi / 5))));  // 0.914057647
  CHECK(lrs[2] == doctest::Approx(0.914057647));
  CHECK(lrs[5] == exactly(0.55));   // cos(pi/2) = 0: halfway
  CHECK(lrs[10] == exactly(0.1));   // cos(pi) = -1: eta_min
  CHECK(lrs[15] == exactly(0.55));  // and back up: cos(3pi/2) = 0
  for (int epoch = 1; epoch <= 10; ++epoch) CHECK(lrs[epoch] < lrs[epoch - 1]);
}

TEST_CASE("schedulers refuse a non-positive period and factors that would make the learning rate negative") {
  Tensor p = parameter({0});
  optim::SGD sgd({p}, {.lr = 1});
  CHECK_THROWS_WITH_AS(optim::StepLR(sgd, 0), doctest::Contains("step_size"), Error);
  CHECK_THROWS_WITH_AS(optim::CosineAnnealingLR(sgd, 0), doctest::Contains("t_max"), Error);
  CHECK_THROWS_WITH_AS(optim::StepLR(sgd, 2, -0.5), doctest::Contains("StepLR: gamma -0.5"), Error);
  CHECK_THROWS_WITH_AS(optim::CosineAnnealingLR(sgd, 5, -0.1), doctest::Contains("CosineAnnealingLR: eta_min -0.1"),
                       Error);
  CHECK(sgd.lr() == 1);  // a refused scheduler leaves the learning rate alone
}

TEST_CASE("SGD accepts a tied model (one Linear used twice) and moves W by -lr * the sum of both uses' gradients") {
  // y = sum(lin(tanh(lin(x)))), W = [[0.5, -0.3], [0.2, 0.4]], b = [0.1, -0.2]; the untied twin (two
  // Linears holding the same values) gives each use's gradient, and the tied W's gradient is their sum.
  auto make_linear = [] {
    auto lin = std::make_shared<nn::Linear>(2, 2, true, float64);
    NoGradGuard no_grad;
    lin->weight.copy_(tensor({0.5, -0.3, 0.2, 0.4}, {2, 2}, float64));
    lin->bias.copy_(tensor({0.1, -0.2}, float64));
    return lin;
  };
  const Tensor x = tensor({1, 2, -1, 0.5}, {2, 2}, float64);
  auto first = make_linear(), second = make_linear();
  nn::Sequential twin{first, std::make_shared<nn::Tanh>(), second};
  sum(twin(x)).backward();
  const std::vector<double> use_1 = first->weight.grad().to_vector(), use_2 = second->weight.grad().to_vector();

  auto lin = make_linear();
  nn::Sequential tied{lin, std::make_shared<nn::Tanh>(), lin};
  const std::vector<double> before = lin->weight.to_vector();
  optim::SGD sgd(tied.parameters(), {.lr = 0.1});  // each parameter once: not "appears more than once"
  sum(tied(x)).backward();
  sgd.step();
  const std::vector<double> after = lin->weight.to_vector();
  for (std::size_t i = 0; i < before.size(); ++i) CHECK(after[i] == exactly(before[i] - 0.1 * (use_1[i] + use_2[i])));
}
