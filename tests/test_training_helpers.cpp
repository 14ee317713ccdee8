// test_training_helpers.cpp: the pieces a tiny GPT's training loop needs beyond the layers:
// topk (autograd/ops_select.cpp), get_rng_state / set_rng_state (autograd/tensor.cpp),
// nn::functional::dropout (nn/activation.cpp), optimizer param groups (optim/optimizer.h) and LambdaLR
// (optim/scheduler.h).
//
// Gradients are checked with gradcheck and gradgradcheck in float64. Dropout draws its mask from the
// global generator, so the function given to gradcheck reseeds it on every call: each evaluation then
// uses the same mask. Resuming is checked bit for bit against the uninterrupted run.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <numbers>
#include <vector>

#include "normgrad.h"
#include "test_helpers.h"

using namespace ng;

namespace {

void check_second_gradients(const std::string& what, const Fn& f, const Inputs& inputs) {
  const GradcheckResult result = gradgradcheck(f, inputs);
  CHECK_MESSAGE(result.ok, what << ": " << result.message);
}

std::vector<int64_t> int_values(const Tensor& t) {
  std::vector<int64_t> values;
  for (double v : t.to_vector()) values.push_back(static_cast<int64_t>(v));
  return values;
}

}  // namespace

// ---- topk -----------------------------------------------------------------------------------------

TEST_CASE("topk gives the k largest values along the last dim, largest first, and where they were") {
  Tensor x = tensor({3, 1, 4, 1.5, 9, 2, 6, 5}, {2, 4}, float64);
  TopKResult top = topk(x, 2);
  CHECK(top.values.shape() == Shape{2, 2});
  CHECK(top.indices.dtype() == int64);
  CHECK(top.values.to_vector() == std::vector<double>{4, 3, 9, 6});
  CHECK(int_values(top.indices) == std::vector<int64_t>{2, 0, 0, 2});

  TopKResult bottom = x.topk(3, 1, /*largest=*/false);
  CHECK(bottom.values.to_vector() == std::vector<double>{1, 1.5, 3, 2, 5, 6});
  CHECK(int_values(bottom.indices) == std::vector<int64_t>{1, 3, 0, 1, 3, 2});
}

TEST_CASE("topk along dim 0 of a 3-D tensor matches the sorted columns") {
  manual_seed(11);
  Tensor x = randn({5, 3, 2}, float64);
  auto [values, indices] = topk(x, 3, 0);
  CHECK(values.shape() == Shape{3, 3, 2});
  for (int64_t j = 0; j < 3; ++j)
    for (int64_t l = 0; l < 2; ++l) {
      std::vector<double> column;
      for (int64_t i = 0; i < 5; ++i) column.push_back(x.at({i, j, l}));
      std::sort(column.begin(), column.end(), std::greater<>());
      for (int64_t r = 0; r < 3; ++r) {
        CHECK(values.at({r, j, l}) == column[r]);
        CHECK(x.at({static_cast<int64_t>(indices.at({r, j, l})), j, l}) == column[r]);
      }
    }
}

TEST_CASE("topk puts equal values in index order and counts NaN as the largest value") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor ties = tensor({2, 7, 2, 7, 2}, float64);
  CHECK(int_values(topk(ties, 4).indices) == std::vector<int64_t>{1, 3, 0, 2});
  CHECK(int_values(topk(ties, 4, -1, false).indices) == std::vector<int64_t>{0, 2, 4, 1});
  Tensor with_nan = tensor({1, nan, 3, nan}, float64);
  CHECK(int_values(topk(with_nan, 3).indices) == std::vector<int64_t>{1, 3, 2});
  CHECK(int_values(topk(with_nan, 3, -1, false).indices) == std::vector<int64_t>{0, 2, 1});
  // int64 tensors work too (as token ids may need), with no gradient.
  CHECK(topk(tensor({5, 8, 1}, int64), 2).values.to_vector() == std::vector<double>{8, 5});
}

TEST_CASE("topk with k = 0 or k = n, of a 0-dim tensor, and sorted = false give PyTorch's shapes") {
  Tensor x = tensor({3, 1, 2}, float64);
  CHECK(topk(x, 0).values.shape() == Shape{0});
  CHECK(topk(x, 3, 0, true, /*sorted=*/false).values.to_vector() == std::vector<double>{3, 2, 1});
  TopKResult of_scalar = topk(scalar(4, float64), 1);
  CHECK(of_scalar.values.shape() == Shape{});
  CHECK(of_scalar.values.item() == 4);
  CHECK(of_scalar.indices.item() == 0);
}

TEST_CASE("topk refuses k below 0 or above the size, and a bad dim") {
  Tensor x = tensor({3, 1, 2, 5, 4, 6}, {2, 3});
  CHECK_ERROR_MENTIONS(topk(x, 4), "topk", "k = 4", "[2, 3]", "0 <= k <= 3");
  CHECK_ERROR_MENTIONS(topk(x, -1, 0), "topk", "k = -1", "0 <= k <= 2");
  CHECK_THROWS_WITH_AS(topk(x, 1, 2), doctest::Contains("topk"), Error);
}

TEST_CASE("topk's gradient goes to the elements it took, and nowhere else") {
  Tensor x = leaf({0.5, 3, -1, 2}, {4});
  TopKResult top = topk(x, 2);
  (top.values * tensor({10, 1}, float64)).sum().backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 10, 0, 1});
}

TEST_CASE("topk passes gradcheck and gradgradcheck (values spaced wider than gradcheck's step)") {
  Tensor x = leaf({0.3, -1.2, 2.5, 0.9, -0.4, 1.7, 0.1, -2.2, 1.1, 3.0, -0.7, 0.6}, {3, 4});
  const std::vector<std::pair<std::string, Fn>> cases{
      {"topk(x, 2)", [](const Inputs& in) { return topk(in[0], 2).values; }},
      {"topk(x, 2, dim 0, smallest)", [](const Inputs& in) { return topk(in[0], 2, 0, false).values; }},
      {"topk(x, 4) squared", [](const Inputs& in) { return topk(in[0], 4).values.pow(2); }},
  };
  for (const auto& [what, f] : cases) {
    check_gradients(what, f, {x});
    check_second_gradients(what, f, {x});
  }
}

// ---- generator state ------------------------------------------------------------------------------

TEST_CASE("restoring the generator's state repeats the draws that followed it, bit for bit") {
  manual_seed(2024);
  (void)rand({7});
  Tensor saved = get_rng_state();
  CHECK(saved.dtype() == int64);
  CHECK(saved.shape() == Shape{4});
  Tensor uniform = rand({50}, float64), normal = randn({3, 5}), drawn = multinomial(tensor({0.2, 0.5, 0.3}), 20, true);
  const uint64_t raw = random_u64();

  set_rng_state(saved);
  CHECK(rand({50}, float64).to_vector() == uniform.to_vector());
  CHECK(randn({3, 5}).to_vector() == normal.to_vector());
  CHECK(multinomial(tensor({0.2, 0.5, 0.3}), 20, true).to_vector() == drawn.to_vector());
  CHECK(random_u64() == raw);
  // The state is a copy: drawing more does not change the saved tensor.
  Tensor again = get_rng_state();
  CHECK(again.to_vector() != saved.to_vector());
}

TEST_CASE("set_rng_state refuses another dtype, another shape and the all-zero state, and keeps its state") {
  manual_seed(3);
  Tensor before = get_rng_state();
  CHECK_ERROR_MENTIONS(set_rng_state(get_rng_state().to(float64)), "set_rng_state", "float64", "int64", "[4]");
  CHECK_ERROR_MENTIONS(set_rng_state(zeros({5}, int64)), "set_rng_state", "[5]", "expected");
  CHECK_ERROR_MENTIONS(set_rng_state(Tensor()), "set_rng_state", "undefined");
  CHECK_ERROR_MENTIONS(set_rng_state(zeros({4}, int64)), "set_rng_state", "all zeros");
  CHECK(get_rng_state().to_vector() == before.to_vector());
}

// ---- dropout --------------------------------------------------------------------------------------

TEST_CASE("functional dropout zeroes elements and scales the rest by 1/(1-p) in training, and is x otherwise") {
  manual_seed(4);
  Tensor x = ones({50, 40}, float64);
  Tensor y = nn::functional::dropout(x, 0.3, true);
  int64_t dropped = 0;
  for (double v : y.to_vector()) {
    if (v == 0)
      ++dropped;
    else
      CHECK(v == doctest::Approx(1 / 0.7).epsilon(1e-15));
  }
  CHECK(std::abs(dropped / 2000.0 - 0.3) < 0.05);
  CHECK(nn::functional::dropout(x, 0.3, false).impl() == x.impl());
  CHECK(nn::functional::dropout(x, 0.0, true).impl() == x.impl());
  CHECK(nn::functional::dropout(x, 1.0, true).to_vector() == zeros({50, 40}, float64).to_vector());
  CHECK_ERROR_MENTIONS(nn::functional::dropout(x, 1.5, true), "dropout", "p = 1.5", "[0, 1]");
  CHECK_ERROR_MENTIONS(nn::functional::dropout(x, -0.1, false), "dropout", "[0, 1]");
}

TEST_CASE("nn::Dropout draws the same mask as functional dropout from the same seed") {
  Tensor x = randn({6, 7});
  nn::Dropout module(0.4);
  manual_seed(9);
  Tensor from_module = module(x);
  manual_seed(9);
  CHECK(from_module.to_vector() == nn::functional::dropout(x, 0.4).to_vector());
  module.eval();
  CHECK(module(x).impl() == x.impl());
}

TEST_CASE("dropout passes gradcheck and gradgradcheck with its mask fixed by reseeding") {
  manual_seed(5);
  Tensor x = uniform_leaf({4, 5}, -2, 2);
  const Fn f = [](const Inputs& in) {
    manual_seed(77);  // every evaluation draws the same mask
    return nn::functional::dropout(in[0], 0.35, true) * in[0];
  };
  check_gradients("dropout(x) * x", f, {x});
  check_second_gradients("dropout(x) * x", f, {x});
}

// ---- param groups ---------------------------------------------------------------------------------

TEST_CASE("an optimizer with two param groups moves each group as a separate optimizer with its settings would") {
  manual_seed(12);
  auto make = [] {
    return std::vector<Tensor>{rand({3, 2}, float64).requires_grad_(), rand({2}, float64).requires_grad_()};
  };
  auto fill_grads = [](const std::vector<Tensor>& params, int step) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      manual_seed(100 + 10 * static_cast<uint64_t>(step) + i);
      Tensor(params[i]).set_grad(randn(params[i].shape(), float64));
    }
  };
  const std::vector<Tensor> a = make(), b = make();
  std::vector<Tensor> a2, b2;
  for (const Tensor& t : a) a2.push_back(t.detach().clone().requires_grad_());
  for (const Tensor& t : b) b2.push_back(t.detach().clone().requires_grad_());
  // `steps` updates of the grouped optimizer and of the two separate ones, with the same gradients (the
  // grouped one sees a's and then b's: the same draws as a2's and b2's).
  auto run = [&](optim::Optimizer& grouped, optim::Optimizer& first, optim::Optimizer& second, int steps) {
    for (int step = 0; step < steps; ++step) {
      fill_grads(grouped.params(), step);
      fill_grads(a2, step);
      for (std::size_t i = 0; i < b2.size(); ++i) {
        manual_seed(100 + 10 * static_cast<uint64_t>(step) + a2.size() + i);
        b2[i].set_grad(randn(b2[i].shape(), float64));
      }
      grouped.step();
      first.step();
      second.step();
    }
  };

  SUBCASE("AdamW") {
    optim::AdamW grouped({{.params = a, .weight_decay = 0.1}, {.params = b, .lr = 0.02, .weight_decay = 0.0}},
                         {.lr = 3e-3});
    optim::AdamW first(a2, {.lr = 3e-3, .weight_decay = 0.1}), second(b2, {.lr = 0.02, .weight_decay = 0.0});
    CHECK(grouped.param_groups().size() == 2);
    CHECK(grouped.param_groups()[0].lr == 3e-3);
    CHECK(grouped.param_groups()[1].weight_decay == 0.0);
    run(grouped, first, second, 4);
  }
  SUBCASE("SGD with momentum") {
    optim::SGD grouped({{.params = a, .lr = 0.1, .weight_decay = 0.01}, {.params = b}}, {.lr = 0.05, .momentum = 0.9});
    optim::SGD first(a2, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01}), second(b2, {.lr = 0.05, .momentum = 0.9});
    run(grouped, first, second, 4);
  }
  SUBCASE("Adam, after changing one group's lr through param_groups()") {
    optim::Adam grouped({{.params = a}, {.params = b, .weight_decay = 0.2}}, {.lr = 0.01});
    optim::Adam first(a2, {.lr = 0.01}), second(b2, {.lr = 0.01, .weight_decay = 0.2});
    grouped.param_groups()[1].lr = 0.001;
    second.set_lr(0.001);
    run(grouped, first, second, 3);
  }
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].to_vector() == a2[i].to_vector());
  for (std::size_t i = 0; i < b.size(); ++i) CHECK(b[i].to_vector() == b2[i].to_vector());
}

TEST_CASE("set_lr sets every group's lr; lr() reads the first group's") {
  Tensor p = leaf({1}), q = leaf({2});
  optim::SGD sgd({{.params = {p}, .lr = 0.5}, {.params = {q}}}, {.lr = 0.1});
  CHECK(sgd.lr() == 0.5);
  CHECK(sgd.param_groups()[1].lr == 0.1);
  sgd.set_lr(0.2);
  CHECK(sgd.param_groups()[0].lr == 0.2);
  CHECK(sgd.param_groups()[1].lr == 0.2);
  CHECK_ERROR_MENTIONS(sgd.set_lr(1, -1), "SGD", "invalid learning rate", "param group 1");
  sgd.param_groups()[1].weight_decay = -0.5;  // unchecked until the next step
  q.set_grad(tensor({1}, float64));
  CHECK_ERROR_MENTIONS(sgd.step(), "SGD", "invalid weight_decay", "param group 1");
}

TEST_CASE("param groups refuse a parameter in two groups, invalid settings and no parameters at all") {
  Tensor p = leaf({1}), q = leaf({2});
  CHECK_ERROR_MENTIONS(optim::AdamW({{.params = {p, q}}, {.params = {q}}}), "AdamW", "parameter 2", "param group 1",
                       "more than once");
  CHECK_ERROR_MENTIONS(optim::Adam({{.params = {p}}, {.params = {q}, .lr = -0.1}}), "Adam", "invalid learning rate",
                       "param group 1");
  CHECK_ERROR_MENTIONS(optim::SGD({{.params = {p}, .weight_decay = -1}}, {}), "SGD", "invalid weight_decay");
  CHECK_ERROR_MENTIONS(optim::SGD({{.params = {}}, {.params = {}}}, {}), "SGD", "empty parameter list");
  // An empty group beside others is allowed, as in PyTorch.
  optim::SGD with_empty({{.params = {p}}, {.params = {}}}, {.lr = 0.1});
  CHECK(with_empty.params().size() == 1);
}

TEST_CASE("state_dict holds each group's lr, weight_decay and parameter indices; load_state_dict restores them") {
  Tensor p = leaf({1, 2}), q = leaf({3}), r = leaf({4});
  optim::AdamW opt({{.params = {p, q}, .weight_decay = 0.1}, {.params = {r}, .weight_decay = 0}}, {.lr = 0.01});
  opt.param_groups()[1].lr = 0.004;
  optim::NamedTensors state = opt.state_dict();
  REQUIRE(state.size() == 6);  // no step yet: only the group entries
  CHECK(state[0].first == "param_groups.0.lr");
  CHECK(state[0].second.item() == 0.01);
  CHECK(state[1].first == "param_groups.0.weight_decay");
  CHECK(state[2].first == "param_groups.0.params");
  CHECK(int_values(state[2].second) == std::vector<int64_t>{0, 1});
  CHECK(int_values(state[5].second) == std::vector<int64_t>{2});

  Tensor p2 = leaf({1, 2}), q2 = leaf({3}), r2 = leaf({4});
  optim::AdamW restored({{.params = {p2, q2}}, {.params = {r2}}}, {.lr = 0.5});
  restored.load_state_dict(state);
  CHECK(restored.param_groups()[0].lr == 0.01);
  CHECK(restored.param_groups()[0].weight_decay == 0.1);
  CHECK(restored.param_groups()[1].lr == 0.004);
  CHECK(restored.param_groups()[1].weight_decay == 0);

  // Grouped otherwise: refused, and nothing changes.
  optim::AdamW regrouped({{.params = {p2}}, {.params = {q2, r2}}}, {.lr = 0.5});
  CHECK_ERROR_MENTIONS(regrouped.load_state_dict(state), "AdamW", "param_groups.0.params", "param group 0");
  CHECK(regrouped.param_groups()[0].lr == 0.5);
  optim::AdamW one_group({p2, q2, r2}, {.lr = 0.5});
  CHECK_ERROR_MENTIONS(one_group.load_state_dict(state), "param_groups.0.params", "indices 0 to 2");
  CHECK_ERROR_MENTIONS(one_group.load_state_dict({state[3]}), "param_groups.1.lr", "param group 1", "does not have");
  // Only part of the group entries: refused.
  CHECK_ERROR_MENTIONS(restored.load_state_dict({state[0], state[1], state[2]}), "no 'param_groups.1.lr'");
  // A state dict without group entries (written before groups existed) keeps the current settings.
  optim::AdamW old_style({p2, q2, r2}, {.lr = 0.5});
  old_style.load_state_dict({});
  CHECK(old_style.lr() == 0.5);
}

TEST_CASE("optim::save and optim::load keep every group's lr and weight_decay") {
  Tensor p = leaf({1, 2}), q = leaf({3});
  optim::SGD sgd({{.params = {p}, .lr = 0.3}, {.params = {q}, .weight_decay = 0.01}}, {.lr = 0.1, .momentum = 0.9});
  p.set_grad(tensor({1, 1}, float64));
  q.set_grad(tensor({1}, float64));
  sgd.step();
  const std::string path = "/tmp/normgrad_test_training_helpers_sgd.safetensors";
  optim::save(sgd, path);
  optim::SGD loaded({{.params = {p}}, {.params = {q}}}, {.lr = 1, .momentum = 0.9});
  optim::load(loaded, path);
  std::remove(path.c_str());
  CHECK(loaded.param_groups()[0].lr == 0.3);
  CHECK(loaded.param_groups()[1].lr == 0.1);
  CHECK(loaded.param_groups()[1].weight_decay == 0.01);
}

// ---- resuming -------------------------------------------------------------------------------------

namespace {

std::shared_ptr<nn::Sequential> make_dropout_model() {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(4, 16), std::make_shared<nn::Dropout>(0.2), std::make_shared<nn::Linear>(16, 1)});
}

// GPT-style groups: matrices decay, biases do not.
std::vector<optim::ParamGroup> decay_groups(const nn::Module& model) {
  std::vector<Tensor> decay, no_decay;
  for (const Tensor& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  return {{.params = decay, .weight_decay = 0.1}, {.params = no_decay, .weight_decay = 0.0}};
}

// One step on a fresh batch drawn from the global generator (as a shuffling loader would).
void train_step(nn::Module& model, optim::Optimizer& opt) {
  Tensor x = randn({8, 4});
  Tensor target = x.sum({1}, true);
  Tensor loss = (model(x) - target).pow(2).mean();
  opt.zero_grad();
  loss.backward();
  opt.step();
}

std::vector<std::vector<double>> values(const nn::Module& model) {
  std::vector<std::vector<double>> out;
  for (const Tensor& p : model.parameters()) out.push_back(p.to_vector());
  return out;
}

}  // namespace

TEST_CASE(
    "an AdamW run with dropout resumed from parameters, optimizer state and rng state repeats the uninterrupted run") {
  manual_seed(21);
  auto model = make_dropout_model();
  optim::AdamW opt(decay_groups(*model), {.lr = 3e-3});
  for (int step = 0; step < 3; ++step) train_step(*model, opt);
  opt.param_groups()[1].lr = 1e-3;  // changed mid-run: must be restored too

  // Save mid-way: copies, since training goes on writing into the live tensors.
  std::vector<Tensor> saved_params;
  for (const Tensor& p : model->parameters()) saved_params.push_back(p.detach().clone());
  optim::NamedTensors saved_state;
  for (const auto& [name, t] : opt.state_dict()) saved_state.emplace_back(name, t.detach().clone());
  Tensor saved_rng = get_rng_state();

  for (int step = 3; step < 7; ++step) train_step(*model, opt);

  manual_seed(999);  // a different start, undone by the restore
  auto resumed = make_dropout_model();
  optim::AdamW resumed_opt(decay_groups(*resumed), {.lr = 3e-3});
  {
    NoGradGuard no_grad;
    const std::vector<Tensor> params = resumed->parameters();
    for (std::size_t i = 0; i < params.size(); ++i) Tensor(params[i]).copy_(saved_params[i]);
  }
  resumed_opt.load_state_dict(saved_state);
  set_rng_state(saved_rng);
  CHECK(resumed_opt.param_groups()[1].lr == 1e-3);
  for (int step = 3; step < 7; ++step) train_step(*resumed, resumed_opt);

  CHECK(values(*resumed) == values(*model));
  // And without the rng state the dropout masks and batches differ: the restore is what made it match.
  manual_seed(1);
  auto unseeded = make_dropout_model();
  optim::AdamW unseeded_opt(decay_groups(*unseeded), {.lr = 3e-3});
  {
    NoGradGuard no_grad;
    const std::vector<Tensor> params = unseeded->parameters();
    for (std::size_t i = 0; i < params.size(); ++i) Tensor(params[i]).copy_(saved_params[i]);
  }
  unseeded_opt.load_state_dict(saved_state);
  for (int step = 3; step < 7; ++step) train_step(*unseeded, unseeded_opt);
  CHECK(values(*unseeded) != values(*model));
}

// ---- LambdaLR -------------------------------------------------------------------------------------

TEST_CASE("LambdaLR sets each group's lr to its base_lr * factor(epoch): a linear warmup, then a cosine decay") {
  const int64_t warmup = 4, total = 12;
  // factor = (epoch + 1) / warmup during the warmup, then 0.5 (1 + cos(pi * progress)) down to 0 at `total`.
  auto warmup_cosine = [=](int64_t epoch) {
    if (epoch < warmup) return static_cast<double>(epoch + 1) / warmup;
    const double progress = static_cast<double>(epoch - warmup) / static_cast<double>(total - warmup);
    return 0.5 * (1 + std::cos(std::numbers::pi * std::min(progress, 1.0)));
  };
  Tensor p = leaf({0}), q = leaf({0});
  optim::AdamW opt({{.params = {p}, .lr = 1.0}, {.params = {q}, .lr = 0.1}});
  optim::LambdaLR schedule(opt, warmup_cosine);
  std::vector<double> first, second;
  for (int64_t epoch = 0; epoch <= total; ++epoch) {
    CHECK(schedule.last_epoch() == epoch);
    first.push_back(opt.param_groups()[0].lr);
    second.push_back(opt.param_groups()[1].lr);
    CHECK(schedule.last_lrs() == std::vector<double>{first.back(), second.back()});
    schedule.step();
  }
  using doctest::Approx;
  CHECK(first[0] == Approx(0.25));  // warmup: 1/4, 2/4, 3/4, 4/4
  CHECK(first[1] == Approx(0.5));
  CHECK(first[3] == Approx(1.0));
  CHECK(first[4] == Approx(1.0));                                         // cos(0): the peak
  CHECK(first[6] == Approx(0.5 * (1 + std::cos(std::numbers::pi / 4))));  // 0.853553
  CHECK(first[8] == Approx(0.5));                                         // halfway down
  CHECK(first[12] == Approx(0.0));                                        // cos(pi): the end
  for (std::size_t e = 0; e < first.size(); ++e) CHECK(second[e] == Approx(0.1 * first[e]));
  CHECK(schedule.last_lr() == opt.lr());
}

TEST_CASE("LambdaLR refuses an empty function and a factor that is negative or not finite, changing nothing") {
  Tensor p = leaf({0});
  optim::SGD sgd({p}, {.lr = 1});
  CHECK_ERROR_MENTIONS(optim::LambdaLR(sgd, nullptr), "LambdaLR", "empty function");
  optim::LambdaLR schedule(sgd, [](int64_t epoch) { return epoch < 2 ? 0.5 : -1.0; });
  schedule.step();
  CHECK(sgd.lr() == 0.5);
  CHECK_ERROR_MENTIONS(schedule.step(), "LambdaLR", "factor(2) = -1", ">= 0");
  CHECK(sgd.lr() == 0.5);
  CHECK(schedule.last_epoch() == 1);
}

TEST_CASE("StepLR scales every group from its own base_lr") {
  Tensor p = leaf({0}), q = leaf({0});
  optim::SGD sgd({{.params = {p}, .lr = 1}, {.params = {q}, .lr = 0.2}}, {});
  optim::StepLR schedule(sgd, 1, 0.5);
  schedule.step();
  CHECK(sgd.param_groups()[0].lr == 0.5);
  CHECK(sgd.param_groups()[1].lr == 0.1);
}
