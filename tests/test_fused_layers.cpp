// test_fused_layers.cpp: the ops that run a transformer's layers as one node each, held to the composed forms
// they replace: gelu (autograd/ops_activation.cpp) to x * 0.5 * (1 + erf(x / sqrt 2)), layer_norm
// (nn/layer_norm_fused.cpp) to layer_norm_composed, and the softmax inside scaled_dot_product_attention
// (scale, causal mask and softmax in one op) to masked_fill and softmax.
//
// Each is compared in value and gradient, in float64 and float32; gradcheck and gradgradcheck run in
// float64. A backward without create_graph runs the fused kernel, one with it runs the same formula in ops:
// the first is checked by gradcheck, the second by gradgradcheck, and the two against each other. Last, the
// tiny GPT's training step gives the same bits on 1 and 2 threads at the benchmark's size, where every one of
// these kernels splits its rows among the threads.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "examples/common/gpt.h"
#include "normgrad.h"
#include "test_helpers.h"

namespace {

// The largest |b_i| (max_abs_difference is in test_helpers.h).
double max_abs(const ng::Tensor& t) {
  double largest = 0;
  for (double v : t.to_vector()) largest = std::max(largest, std::abs(v));
  return largest;
}

// The outputs of f(inputs) and the gradients of <f(inputs), weights> with respect to every input, with
// create_graph off (the fused kernels) or on (the backward in ops).
std::vector<ng::Tensor> value_and_gradients(const Fn& f, const Inputs& inputs, const ng::Tensor& weights,
                                            bool create_graph = false) {
  const ng::Tensor y = f(inputs);
  std::vector<ng::Tensor> results{y.detach()};
  for (const ng::Tensor& g : ng::grad({y}, inputs, {weights}, {.create_graph = create_graph}))
    results.push_back(g.detach());
  return results;
}

// f and reference agree in value and gradients, and f's gradients with and without create_graph agree.
void check_same_function(const std::string& what, const Fn& f, const Fn& reference, const Inputs& inputs,
                         double tolerance) {
  CAPTURE(what);
  const ng::Tensor weights = ng::randn(f(inputs).shape(), inputs[0].dtype());
  const std::vector<ng::Tensor> fused = value_and_gradients(f, inputs, weights),
                                composed = value_and_gradients(reference, inputs, weights),
                                with_graph = value_and_gradients(f, inputs, weights, true);
  for (std::size_t i = 0; i < fused.size(); ++i) {
    CAPTURE(i);  // 0: the value, then the gradient of each input
    const double scale = std::max(1.0, max_abs(composed[i]));
    CHECK(max_abs_difference(fused[i], composed[i]) <= tolerance * scale);
    // create_graph changes only the backward: the values (i = 0) are the same computation
    if (i > 0) CHECK(max_abs_difference(fused[i], with_graph[i]) <= tolerance * scale);
  }
}

ng::Tensor normal_leaf(const ng::Shape& shape, ng::Dtype dtype, double spread = 1, double offset = 0) {
  return (ng::randn(shape, dtype) * spread + offset).detach().requires_grad_();
}

}  // namespace

// ---- GELU ---------------------------------------------------------------------------------------------

TEST_CASE("gelu as one op equals the composed x Phi(x) in value and gradient, float64 and float32") {
  ng::manual_seed(40);
  const Fn fused = [](const Inputs& in) { return ng::gelu(in[0]); };
  const Fn composed = [](const Inputs& in) { return ng::nn::functional::gelu_composed(in[0]); };
  // [64, 700]: above the size from which elementwise ops use two threads; values out to +-9 reach erf's tails
  check_same_function("gelu float64", fused, composed, {normal_leaf({64, 700}, ng::float64, 3)}, 1e-14);
  check_same_function("gelu float32", fused, composed, {normal_leaf({64, 700}, ng::float32, 3)}, 1e-6);
  // tabulated: gelu(1) = Phi(1) = 0.8413447460685429, gelu(-1) = -0.15865525393145707, gelu'(0) = 1/2
  const ng::Tensor x = leaf({0, 1, -1, 2}, {4});
  const std::vector<double> y = ng::gelu(x).to_vector();
  CHECK(y[0] == 0);
  CHECK(y[1] == doctest::Approx(0.8413447460685429).epsilon(1e-14));
  CHECK(y[2] == doctest::Approx(-0.15865525393145707).epsilon(1e-14));
  CHECK(y[3] == doctest::Approx(1.9544997361036416).epsilon(1e-14));
  ng::gelu(x).sum().backward();
  CHECK(x.grad().to_vector()[0] == 0.5);
  // the module and the functional are this op
  CHECK(ng::nn::GELU()(x).grad_fn()->op == std::string("gelu"));
}

TEST_CASE("gelu passes gradcheck and gradgradcheck; gelu_backward does too, in the gradient and in x") {
  ng::manual_seed(41);
  check_first_and_second_derivatives("gelu", [](const Inputs& in) { return ng::gelu(in[0]); },
                                     {uniform_leaf({3, 5}, -4, 4)});
  // gelu_backward's own derivatives are gelu's second (d/dx) and the identity in the gradient (d/dg); its
  // gradgradcheck reaches gelu's third derivative.
  check_first_and_second_derivatives("gelu_backward", [](const Inputs& in) { return ng::gelu_backward(in[0], in[1]); },
                                     {uniform_leaf({2, 3}, -1, 1), uniform_leaf({2, 3}, -4, 4)});
}

TEST_CASE("gelu refuses an int64 input and gelu_backward a gradient of another shape, naming the op") {
  CHECK_ERROR_MENTIONS(ng::gelu(ng::arange(3, ng::int64)), "gelu", "int64");
  CHECK_ERROR_MENTIONS(ng::gelu_backward(ng::zeros({2, 3}), ng::zeros({3, 2})), "gelu_backward", "[2, 3]", "[3, 2]");
  CHECK_ERROR_MENTIONS(ng::gelu_backward(ng::zeros({2}), ng::zeros({2}, ng::float64)), "gelu_backward", "float64");
}

// ---- LayerNorm ----------------------------------------------------------------------------------------

TEST_CASE("layer_norm as one op equals layer_norm_composed in value and in the gradients of x, weight and bias") {
  ng::manual_seed(42);
  using ng::nn::functional::layer_norm;
  using ng::nn::functional::layer_norm_composed;
  for (const ng::Dtype dtype : {ng::float64, ng::float32}) {
    CAPTURE(ng::dtype_name(dtype));
    const double tolerance = dtype == ng::float64 ? 1e-12 : 2e-5;
    // [512, 64] over [64]: the GPT's rows, above the size from which the rows are shared among threads
    const Inputs affine{normal_leaf({8, 64, 64}, dtype, 2, 1), normal_leaf({64}, dtype, 1, 1),
                        normal_leaf({64}, dtype)};
    check_same_function(
        "[8, 64, 64] over [64]", [](const Inputs& in) { return layer_norm(in[0], {64}, in[1], in[2]); },
        [](const Inputs& in) { return layer_norm_composed(in[0], {64}, in[1], in[2]); }, affine, tolerance);
    const Inputs two_dims{normal_leaf({2, 3, 4}, dtype), normal_leaf({3, 4}, dtype), normal_leaf({3, 4}, dtype)};
    check_same_function(
        "[2, 3, 4] over [3, 4]",
        [](const Inputs& in) {
          return layer_norm(in[0], {3, 4}, in[1], in[2], 1e-3);
        },
        [](const Inputs& in) {
          return layer_norm_composed(in[0], {3, 4}, in[1], in[2], 1e-3);
        },
        two_dims, tolerance);
    check_same_function(
        "no weight, no bias", [](const Inputs& in) { return layer_norm(in[0], {5}); },
        [](const Inputs& in) { return layer_norm_composed(in[0], {5}); }, {normal_leaf({7, 5}, dtype)}, tolerance);
    check_same_function(
        "weight only, one row", [](const Inputs& in) { return layer_norm(in[0], {6}, in[1]); },
        [](const Inputs& in) { return layer_norm_composed(in[0], {6}, in[1]); },
        {normal_leaf({6}, dtype), normal_leaf({6}, dtype)}, tolerance);
  }
}

TEST_CASE("layer_norm passes gradcheck and gradgradcheck in x, weight and bias") {
  ng::manual_seed(43);
  using ng::nn::functional::layer_norm;
  check_first_and_second_derivatives(
      "layer_norm [3, 4] over [4]", [](const Inputs& in) { return layer_norm(in[0], {4}, in[1], in[2]); },
      {uniform_leaf({3, 4}, -2, 2), uniform_leaf({4}, 0.5, 1.5), uniform_leaf({4}, -1, 1)});
  check_first_and_second_derivatives(
      "layer_norm [2, 2, 3] over [2, 3]",
      [](const Inputs& in) {
        return layer_norm(in[0], {2, 3}, in[1], in[2]);
      },
      {uniform_leaf({2, 2, 3}, -2, 2), uniform_leaf({2, 3}, 0.5, 1.5), uniform_leaf({2, 3}, -1, 1)});
  check_first_and_second_derivatives("layer_norm without weight and bias",
                                     [](const Inputs& in) { return layer_norm(in[0], {5}); },
                                     {uniform_leaf({2, 5}, -2, 2)});
  // only weight requires grad: x's and bias's gradients are not asked for
  const ng::Tensor x = ng::rand({3, 4}, ng::float64), bias = ng::rand({4}, ng::float64);
  check_first_and_second_derivatives("layer_norm in weight only",
                                     [x, bias](const Inputs& in) { return layer_norm(x, {4}, in[0], bias); },
                                     {uniform_leaf({4}, 0.5, 1.5)});
}

TEST_CASE("layer_norm in float32 keeps the digits of an input whose mean is far larger than its spread") {
  // mean 1000, spread 0.01: the statistics are taken in double, so x_hat keeps about 4 digits
  ng::manual_seed(44);
  const ng::Tensor x64 = ng::randn({4, 256}, ng::float64) * 0.01 + 1000;
  const ng::Tensor y32 = ng::nn::functional::layer_norm(x64.to(ng::float32), {256});
  const ng::Tensor y64 = ng::nn::functional::layer_norm(x64.to(ng::float32).to(ng::float64), {256});
  CHECK(max_abs_difference(y32.to(ng::float64), y64) < 1e-3);
}

TEST_CASE("LayerNorm runs the one-op layer_norm") {
  ng::nn::LayerNorm ln({4});
  CHECK(ln(ng::ones({2, 4})).grad_fn()->op == std::string("layer_norm"));
}

// ---- attention's softmax ------------------------------------------------------------------------------

TEST_CASE("scaled_dot_product_attention's one-op softmax equals masked_fill and softmax, values and gradients") {
  ng::manual_seed(45);
  const double minus_inf = -std::numeric_limits<double>::infinity();
  for (const ng::Dtype dtype : {ng::float64, ng::float32}) {
    CAPTURE(ng::dtype_name(dtype));
    const double tolerance = dtype == ng::float64 ? 1e-12 : 1e-5;
    // L = S (the GPT's case, above the size from which rows are shared among threads), L > S and L < S
    // (not a structured binding: clang before 16 cannot capture those in CAPTURE's lambda)
    for (const std::pair<int64_t, int64_t>& sizes :
         std::vector<std::pair<int64_t, int64_t>>{{32, 32}, {5, 3}, {3, 5}}) {
      const int64_t L = sizes.first, S = sizes.second;
      CAPTURE(L);
      CAPTURE(S);
      for (const bool causal : {true, false}) {
        CAPTURE(causal);
        const ng::Tensor future = ng::triu(ng::ones({L, S}, ng::int64), 1);  // key j > query i
        check_same_function(
            "sdpa",
            [causal](const Inputs& in) { return ng::scaled_dot_product_attention(in[0], in[1], in[2], {}, 0, causal); },
            [causal, future, minus_inf](const Inputs& in) {
              ng::Tensor scores = ng::matmul(in[0], ng::transpose(in[1], -2, -1)) * (1 / std::sqrt(8.0));
              if (causal) scores = ng::masked_fill(scores, future, minus_inf);
              return ng::matmul(ng::softmax(scores, -1), in[2]);
            },
            {normal_leaf({8, 4, L, 8}, dtype), normal_leaf({8, 4, S, 8}, dtype), normal_leaf({8, 4, S, 3}, dtype)},
            tolerance);
      }
    }
  }
}

// ---- threads ------------------------------------------------------------------------------------------

namespace {

// Two AdamW steps of the benchmark's tiny GPT (bench.cpp, train_step_gpt_tiny): batch 16 x 32 tokens, 2
// blocks of 4 heads, 64 features, LayerNorm, gradient clipping. Its logits, losses, parameters and gradients.
NamedResults gpt_two_steps() {
  ng::manual_seed(46);
  examples::Gpt model({.vocab = 65, .block = 32, .n_layer = 2, .n_head = 4, .n_embd = 64, .norm = "layer"});
  model.train();
  ng::optim::AdamW optimizer(model.parameters(), {.lr = 3e-3, .weight_decay = 0.1});
  NamedResults results;
  for (int step = 0; step < 2; ++step) {
    std::vector<int64_t> ids(16 * 32 * 2);
    for (auto& id : ids) id = static_cast<int64_t>(ng::random_u64() % 65);
    const ng::Tensor tokens = ng::from_vector(ids, {2, 16, 32});
    const ng::Tensor logits = model(ng::select(tokens, 0, 0));
    const ng::Tensor loss = ng::nn::cross_entropy(logits.reshape({-1, 65}), ng::select(tokens, 0, 1).reshape({-1}));
    optimizer.zero_grad();
    loss.backward();
    ng::nn::clip_grad_norm_(model.parameters(), 1.0);
    optimizer.step();
    results.emplace_back("step " + std::to_string(step) + " logits", logits.detach());
    results.emplace_back("step " + std::to_string(step) + " loss", loss.detach());
  }
  for (const auto& [name, p] : model.named_parameters()) {
    results.emplace_back(name, p.detach().clone());
    results.emplace_back(name + ".grad", p.grad().clone());
  }
  return results;
}

}  // namespace

TEST_CASE("the tiny GPT's training step (LayerNorm, GELU, causal attention) gives the same bits on 1 and 2 threads" *
          doctest::skip(two_threads_unavailable())) {
  check_same_bits_on_1_and_2_threads(gpt_two_steps);
}
