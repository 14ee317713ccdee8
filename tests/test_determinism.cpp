// test_determinism.cpp: the kernels give bit-identical results whatever the number of threads (parallel.h).
//
// Each case computes the same thing twice from the same seed, once with 1 thread and once with 2, and
// compares every output, gradient and updated parameter bit for bit. The sizes are chosen above the
// kernels' thresholds, so that the 2-thread run really splits the loops: the gemm of a Linear layer on a
// batch of 60, conv's im2col and gemm, BatchNorm2d's per-channel sums, max pooling, sums of long rows,
// long elementwise ops and the optimizers' updates of a large parameter. A kernel whose result depended on
// how the work was split (a sum cut into one piece per thread, say) would fail here, by a last bit.
// Without OpenMP (or with -Dreference_kernels=true) there is only one thread and the cases are skipped.
#include <doctest/doctest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "normgrad.h"
#include "optim/adam.h"
#include "optim/sgd.h"
#include "test_helpers.h"

namespace {

using Results = NamedResults;

// A trained module's state: its parameters, their gradients and its buffers (BatchNorm's running stats).
void add_module_state(Results& results, ng::nn::Module& net) {
  for (auto& [name, p] : net.named_parameters()) {
    results.emplace_back(name, p.detach().clone());
    results.emplace_back(name + ".grad", p.grad().clone());
  }
  for (auto& [name, b] : net.named_buffers())
    if (b.dtype() != ng::int64) results.emplace_back(name, b.clone());
}

// Two SGD steps (momentum 0.9) of `net` on random images and labels; the losses, logits and net's state.
Results train_two_steps(ng::nn::Module& net, const ng::Shape& input_shape, int64_t classes) {
  ng::optim::SGD sgd(net.parameters(), {.lr = 0.05, .momentum = 0.9});
  Results results;
  for (int step = 0; step < 2; ++step) {
    const ng::Tensor x = ng::randn(input_shape);
    std::vector<int64_t> labels(static_cast<std::size_t>(input_shape[0]));
    for (auto& l : labels) l = static_cast<int64_t>(ng::random_u64() % static_cast<uint64_t>(classes));
    const ng::Tensor logits = net(x);
    const ng::Tensor loss = ng::nn::cross_entropy(logits, ng::from_vector(labels, {input_shape[0]}));
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    results.emplace_back("logits, step " + std::to_string(step), logits.detach());
    results.emplace_back("loss, step " + std::to_string(step), loss.detach());
  }
  add_module_state(results, net);
  return results;
}

}  // namespace

TEST_CASE("the BN-MLP training step gives the same bits on 1 and 2 threads" *
          doctest::skip(two_threads_unavailable())) {
  // The BN paper's MLP on a batch of 60: Linear (no bias) -> BatchNorm1d -> sigmoid, three times, then
  // Linear 100 -> 10; its first gemm ([60, 784] @ [784, 100]) is large enough to be split.
  check_same_bits_on_1_and_2_threads([] {
    ng::manual_seed(11);
    ng::nn::Sequential net;
    const int64_t sizes[] = {784, 100, 100, 100};
    for (int i = 0; i < 3; ++i) {
      net.push_back(std::make_shared<ng::nn::Linear>(sizes[i], sizes[i + 1], false));
      net.push_back(std::make_shared<ng::nn::BatchNorm1d>(sizes[i + 1]));
      net.push_back(std::make_shared<ng::nn::Sigmoid>());
    }
    net.push_back(std::make_shared<ng::nn::Linear>(100, 10));
    net.train();
    return train_two_steps(net, {60, 784}, 10);
  });
}

TEST_CASE(
    "the small CNN's training step (conv, BatchNorm2d, relu, max pool, linear) gives the same bits on 1 and 2 threads" *
    doctest::skip(two_threads_unavailable())) {
  check_same_bits_on_1_and_2_threads([] {
    ng::manual_seed(12);
    ng::nn::Sequential net;
    const int64_t channels[] = {1, 16, 32};
    for (int i = 0; i < 2; ++i) {
      net.push_back(std::make_shared<ng::nn::Conv2d>(channels[i], channels[i + 1], ng::Pair{3, 3}, ng::Pair{1, 1},
                                                     ng::Pair{1, 1}, ng::Pair{1, 1}, 1, false));
      net.push_back(std::make_shared<ng::nn::BatchNorm2d>(channels[i + 1]));
      net.push_back(std::make_shared<ng::nn::ReLU>());
      net.push_back(std::make_shared<ng::nn::MaxPool2d>(ng::Pair{2, 2}));
    }
    net.push_back(std::make_shared<ng::nn::Flatten>());
    net.push_back(std::make_shared<ng::nn::Linear>(32 * 7 * 7, 10));
    net.train();
    return train_two_steps(net, {32, 1, 28, 28}, 10);
  });
}

TEST_CASE("large sums, means and elementwise ops give the same bits on 1 and 2 threads, float32 and float64" *
          doctest::skip(two_threads_unavailable())) {
  for (ng::Dtype dtype : {ng::float32, ng::float64}) {
    check_same_bits_on_1_and_2_threads([dtype] {
      ng::manual_seed(13);
      const ng::Tensor flat = ng::randn({(int64_t{1} << 20) + 7}, dtype) + 0.1;  // 65 pieces of kSumChunk
      const ng::Tensor rows = ng::randn({6, 70001}, dtype);
      const ng::Tensor cube = ng::randn({3, 4, 50000}, dtype);  // long reduced rows, several per output
      // A convolution's bias gradient: dims 2 and 3 merge into rows of 784, 1,024 of them shared out
      const ng::Tensor images = ng::randn({64, 16, 28, 28}, dtype);
      const ng::Tensor other = ng::randn({(int64_t{1} << 20) + 7}, dtype);
      return Results{{"sum of all", ng::sum(flat)},
                     {"mean of all", ng::mean(flat)},
                     {"sum over the last dim", ng::sum(rows, {1})},
                     {"sum over the first dim", ng::sum(rows, {0})},
                     {"sum of a matrix", ng::sum(rows)},
                     {"sum over dims 0 and 2", ng::sum(cube, {0, 2})},
                     {"mean over dims 0 and 1", ng::mean(cube, {0, 1})},
                     {"sum over dims 0, 2 and 3", ng::sum(images, {0, 2, 3})},
                     {"sum over dims 1 and 3", ng::sum(images, {1, 3}, true)},
                     {"add", flat + other},
                     {"mul by a scalar", flat * 1.7},
                     {"div", flat / other},
                     {"sigmoid", ng::sigmoid(flat)},
                     {"exp", ng::exp(flat)},
                     {"tanh", ng::tanh(flat)}};
    });
  }
}

TEST_CASE("matmul and its gradients give the same bits on 1 and 2 threads, on shapes with ragged tiles" *
          doctest::skip(two_threads_unavailable())) {
  check_same_bits_on_1_and_2_threads([] {
    ng::manual_seed(14);
    const ng::Tensor a = ng::randn({203, 517}).requires_grad_(), b = ng::randn({517, 301}).requires_grad_();
    const ng::Tensor c = ng::matmul(a, b);
    const ng::Tensor g = ng::randn({203, 301});
    const auto grads = ng::grad({c}, {a, b}, {g});
    // Few panels of columns in the product x @ w^T (N = 100: with the AVX-512 tiles three of 32 columns
    // and one of 4, with AVX2's seven), so gemm cuts its rows among the threads too (61 rows: 32 + 29, or
    // 36 + 25 with AVX2's 6-row tiles); w^T is a transposed B, which each thread packs itself.
    const ng::Tensor x = ng::randn({61, 300}).requires_grad_(), w = ng::randn({100, 300}).requires_grad_();
    const ng::Tensor y = ng::linear(x, w, ng::Tensor());
    const auto linear_grads = ng::grad({y}, {x, w}, {ng::randn({61, 100})});
    return Results{{"a @ b", c.detach()},   {"d/da", grads[0]},        {"d/db", grads[1]},
                   {"x @ w^T", y.detach()}, {"d/dx", linear_grads[0]}, {"d/dw", linear_grads[1]}};
  });
}

TEST_CASE("SGD and Adam update a large parameter to the same bits on 1 and 2 threads" *
          doctest::skip(two_threads_unavailable())) {
  check_same_bits_on_1_and_2_threads([] {
    ng::manual_seed(15);
    Results results;
    const ng::Tensor target = ng::randn({300001});
    ng::Tensor p_sgd = ng::randn({300001}).requires_grad_(), p_adam = p_sgd.detach().clone().requires_grad_();
    ng::optim::SGD sgd({p_sgd}, {.lr = 0.1, .momentum = 0.9, .nesterov = true, .weight_decay = 1e-3});
    ng::optim::Adam adam({p_adam}, {.lr = 0.01, .weight_decay = 1e-3});
    for (int step = 0; step < 3; ++step) {
      sgd.zero_grad();
      adam.zero_grad();
      ng::sum(ng::pow(p_sgd - target, 2.0)).backward();
      ng::sum(ng::pow(p_adam - target, 2.0)).backward();
      sgd.step();
      adam.step();
    }
    return Results{{"SGD's parameter", p_sgd.detach()}, {"Adam's parameter", p_adam.detach()}};
  });
}

TEST_CASE("set_num_threads refuses fewer than one thread, naming the count") {
  const int before = ng::get_num_threads();
  CHECK_THROWS_WITH_AS(ng::set_num_threads(0), doctest::Contains("set_num_threads: 0 threads"), ng::Error);
  CHECK_THROWS_WITH_AS(ng::set_num_threads(-3), doctest::Contains("expected at least 1"), ng::Error);
  CHECK(ng::get_num_threads() == before);
  ng::set_num_threads(1);
  CHECK(ng::get_num_threads() == 1);
  ng::set_num_threads(before);
}
