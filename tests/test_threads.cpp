// test_threads.cpp: what the engine lets threads share (run it under ThreadSanitizer too: .ci/run does).
//
// What is specified here: threads may run forward and backward (or ng::grad) at the same time over
// the same parameters, and the gradients accumulated into them are those of the same passes run one
// after the other; recording ops on one leaf from several threads at once gives it one AccumulateGrad
// node; the global random generator hands each draw, and each whole tensor of draws, to one thread as
// one uninterrupted stretch of its sequence; grad mode and anomaly mode are per thread; and a backward
// closure may itself run a backward (re-entrancy).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <latch>
#include <map>
#include <thread>
#include <unordered_map>

#include "normgrad.h"

namespace {

ng::Tensor leaf(const std::vector<double>& values, const ng::Shape& shape) {
  return ng::tensor(values, shape, ng::float64).requires_grad_();
}

// A two-layer MLP, float64, whose weights, biases and inputs are all small integers. Then every
// gradient of one pass is an integer (relu's derivative is 0 or 1), and so is any sum of them: below
// 2^53 such sums are exact whatever order the additions happen in. That is what lets the test compare
// the gradients accumulated by two interleaved threads EXACTLY with those of a sequential run, although
// the threads add into .grad in an order no one controls (with non-integer gradients, float addition
// is not associative and the last bits could differ between interleavings).
struct Mlp {
  ng::Tensor w1 = leaf({1, -2, 0, 2, 1, -1, -1, 0, 2, 0, 1, 1}, {4, 3});
  ng::Tensor b1 = leaf({1, 0, -1, 2}, {4});
  ng::Tensor w2 = leaf({2, -1, 1, 0, -2, 1, 0, 1}, {2, 4});
  ng::Tensor b2 = leaf({0, 1}, {2});
  std::vector<ng::Tensor> parameters() const { return {w1, b1, w2, b2}; }

  ng::Tensor loss(const ng::Tensor& x) const {
    ng::Tensor h = ng::linear(x, w1, b1).relu();  // x: [3, 3] -> h: [3, 4]
    ng::Tensor out = ng::linear(h, w2, b2);       // -> out: [3, 2]
    return (out * out).sum();
  }
};

// The input of thread k's i-th pass: integers in [-2, 2], different for every (k, i).
ng::Tensor input(int k, int i) {
  std::vector<double> values(9);
  for (int j = 0; j < 9; ++j)
    values[static_cast<std::size_t>(j)] = static_cast<double>((k * 7 + i * 3 + j * (k + 2)) % 5 - 2);
  return ng::tensor(values, {3, 3}, ng::float64);
}

constexpr int kPasses = 500;  // per thread

}  // namespace

// ---- backward over shared parameters --------------------------------------------------------------------------------

TEST_CASE("two threads running forward+backward over the same parameters accumulate what a sequential run does") {
  Mlp shared;
  std::latch start(2);
  auto train = [&](int k) {
    start.arrive_and_wait();  // both threads begin together, so that their passes interleave
    for (int i = 0; i < kPasses; ++i) shared.loss(input(k, i)).backward();
  };
  std::thread first(train, 0), second(train, 1);
  first.join();
  second.join();

  Mlp sequential;
  for (int k = 0; k < 2; ++k)
    for (int i = 0; i < kPasses; ++i) sequential.loss(input(k, i)).backward();

  const auto got = shared.parameters(), expected = sequential.parameters();
  for (std::size_t p = 0; p < got.size(); ++p) {
    CAPTURE(p);
    REQUIRE(got[p].grad().defined());
    CHECK(got[p].grad().to_vector() == expected[p].grad().to_vector());  // exact: integer gradients (see Mlp)
  }
  // The gradients are not trivially zero.
  const std::vector<double> g = got[2].grad().to_vector();
  CHECK(std::any_of(g.begin(), g.end(), [](double v) { return v != 0; }));
}

TEST_CASE("two threads running ng::grad on graphs that share leaves each get their own pass's gradients") {
  Mlp shared;
  // The expected gradients of each pass, computed first in this thread alone.
  std::vector<std::vector<std::vector<double>>> expected(2 * kPasses);
  for (int k = 0; k < 2; ++k)
    for (int i = 0; i < kPasses; ++i)
      for (const ng::Tensor& g : ng::grad({shared.loss(input(k, i))}, shared.parameters()))
        expected[static_cast<std::size_t>(k * kPasses + i)].push_back(g.to_vector());

  std::atomic<int> mismatches{0};
  std::latch start(2);
  auto run = [&](int k) {
    start.arrive_and_wait();
    for (int i = 0; i < kPasses; ++i) {
      const std::vector<ng::Tensor> grads = ng::grad({shared.loss(input(k, i))}, shared.parameters());
      for (std::size_t p = 0; p < grads.size(); ++p)
        if (grads[p].to_vector() != expected[static_cast<std::size_t>(k * kPasses + i)][p]) ++mismatches;
    }
  };
  std::thread first(run, 0), second(run, 1);
  first.join();
  second.join();
  CHECK(mismatches.load() == 0);
  for (const ng::Tensor& p : shared.parameters()) CHECK_FALSE(p.grad().defined());  // ng::grad leaves .grad alone
}

TEST_CASE("ops recorded on one leaf from four threads at once share one AccumulateGrad, and its gradient is right") {
  constexpr int kThreads = 4;
  for (int round = 0; round < 50; ++round) {
    ng::Tensor x = leaf({1, 2, 3, 4, 5, 6, 7, 8}, {8});  // a fresh leaf: its accumulator is made by the race
    std::vector<ng::Tensor> products(kThreads);
    std::latch start(kThreads), recorded(kThreads);
    auto work = [&](int k) {
      start.arrive_and_wait();
      products[static_cast<std::size_t>(k)] = x * static_cast<double>(k + 1);  // 'mul', whose edge 0 is x's accumulator
      recorded.arrive_and_wait();  // all graphs exist before any backward runs
      products[static_cast<std::size_t>(k)].sum().backward();
    };
    std::vector<std::thread> threads;
    for (int k = 0; k < kThreads; ++k) threads.emplace_back(work, k);
    for (std::thread& t : threads) t.join();

    CAPTURE(round);
    const ng::Node* accumulator = products[0].grad_fn()->next[0].get();
    REQUIRE(accumulator != nullptr);
    CHECK(std::string(accumulator->op) == "AccumulateGrad");
    for (int k = 1; k < kThreads; ++k)
      CHECK(products[static_cast<std::size_t>(k)].grad_fn()->next[0].get() == accumulator);
    // d/dx of sum_k (k + 1) sum(x) = 1 + 2 + 3 + 4 = 10 per element.
    CHECK(x.grad().to_vector() == std::vector<double>(8, 10.0));
  }
}

// ---- the random generator -------------------------------------------------------------------------------------------

TEST_CASE("two threads drawing from one seed get, together, exactly the numbers one thread draws, each in order") {
  constexpr int kDraws = 20000;  // per thread
  ng::manual_seed(1234);
  std::vector<uint64_t> reference(2 * kDraws);
  for (uint64_t& r : reference) r = ng::random_u64();
  std::unordered_map<uint64_t, std::size_t> position;
  for (std::size_t i = 0; i < reference.size(); ++i) position[reference[i]] = i;
  REQUIRE(position.size() == reference.size());  // 64-bit draws: no repeats

  ng::manual_seed(1234);
  std::vector<std::vector<uint64_t>> drawn(2, std::vector<uint64_t>(kDraws));
  std::latch start(2);
  auto draw = [&](std::size_t k) {
    start.arrive_and_wait();
    for (uint64_t& d : drawn[k]) d = ng::random_u64();
  };
  std::thread first(draw, 0), second(draw, 1);
  first.join();
  second.join();

  std::vector<uint64_t> together = drawn[0];
  together.insert(together.end(), drawn[1].begin(), drawn[1].end());
  std::sort(together.begin(), together.end());
  std::vector<uint64_t> sorted_reference = reference;
  std::sort(sorted_reference.begin(), sorted_reference.end());
  CHECK(together == sorted_reference);
  // Each thread's draws are a subsequence of the one sequence: their positions in it increase.
  for (const auto& mine : drawn) {
    bool increasing = true;
    for (std::size_t i = 1; i < mine.size(); ++i) increasing = increasing && position[mine[i]] > position[mine[i - 1]];
    CHECK(increasing);
  }
}

TEST_CASE(
    "rand and randn of a whole tensor are one uninterrupted stretch of the sequence, even with two threads drawing") {
  constexpr int kTensors = 40;     // per thread
  constexpr int64_t kSize = 1001;  // draws per tensor
  const std::pair<const char*, std::function<ng::Tensor()>> samplers[] = {
      {"rand", [] { return ng::rand({kSize}, ng::float64); }},
      {"randn",
       [] {
         return ng::randn({7, 143}, ng::float32);
       }},
  };
  for (const auto& entry : samplers) {  // not a structured binding: lambdas below capture it (clang 14)
    const char* name = entry.first;
    const std::function<ng::Tensor()>& sample = entry.second;
    CAPTURE(name);
    // The reference: the same 2 * kTensors tensors drawn by one thread from the same seed.
    ng::manual_seed(99);
    std::map<std::vector<double>, int> reference;  // tensor -> how many times it was drawn
    for (int i = 0; i < 2 * kTensors; ++i) ++reference[sample().to_vector()];
    REQUIRE(reference.size() == 2 * kTensors);

    ng::manual_seed(99);
    std::vector<std::vector<std::vector<double>>> drawn(2);
    std::latch start(2);
    auto draw = [&](std::size_t k) {
      start.arrive_and_wait();
      for (int i = 0; i < kTensors; ++i) drawn[k].push_back(sample().to_vector());
    };
    std::thread first(draw, 0), second(draw, 1);
    first.join();
    second.join();
    // A tensor interleaved with the other thread's draws would match no reference tensor.
    std::map<std::vector<double>, int> together;
    for (const auto& mine : drawn)
      for (const auto& t : mine) ++together[t];
    CHECK(together == reference);
  }
}

// ---- per-thread modes -----------------------------------------------------------------------------------------------

TEST_CASE("grad mode and anomaly mode are per thread: one thread's guards do not affect another running meanwhile") {
  std::latch guards_set(2), main_checked(2);
  bool other_grad = true, other_anomaly = false, other_recorded = true;
  std::thread other([&] {
    ng::NoGradGuard no_grad;
    ng::DetectAnomalyGuard anomaly;
    guards_set.arrive_and_wait();
    main_checked.arrive_and_wait();  // the main thread has recorded with its own modes meanwhile
    other_grad = ng::is_grad_enabled();
    other_anomaly = ng::is_anomaly_enabled();
    ng::Tensor x = leaf({1, -1}, {2});
    other_recorded = (x * x).requires_grad();
  });
  guards_set.arrive_and_wait();
  CHECK(ng::is_grad_enabled());
  CHECK_FALSE(ng::is_anomaly_enabled());
  ng::Tensor x = leaf({0}, {1});
  ng::Tensor y = x.log();  // -Inf: no error, since anomaly mode is off in this thread
  CHECK(y.requires_grad());
  main_checked.arrive_and_wait();
  other.join();
  CHECK_FALSE(other_grad);
  CHECK(other_anomaly);
  CHECK_FALSE(other_recorded);
}

TEST_CASE("a new thread starts with grad mode on and anomaly mode off, whatever its parent holds") {
  ng::NoGradGuard no_grad;
  ng::DetectAnomalyGuard anomaly;
  bool grad = false, anomaly_on = true;
  std::thread child([&] {
    grad = ng::is_grad_enabled();
    anomaly_on = ng::is_anomaly_enabled();
  });
  child.join();
  CHECK(grad);
  CHECK_FALSE(anomaly_on);
}

// ---- re-entrant backward --------------------------------------------------------------------------------------------

namespace {

// x^3, whose backward finds d(x^3)/dx = 3x^2 by running ng::grad on a small graph of its own: a backward
// inside a backward. (The backward pass runs with grad mode off unless create_graph, so the inner graph
// must switch it on to be recorded, as torch.enable_grad() would.)
ng::Tensor cube_by_inner_grad(const ng::Tensor& x) {
  ng::Tensor out = x.detach() * x.detach() * x.detach();
  if (ng::any_requires_grad({&x}))
    ng::record(out, "cube_by_inner_grad", {&x}, [x = ng::SavedTensor(x)](const ng::Tensor& g, const ng::Node& n) {
      ng::Tensor derivative;
      {
        ng::GradModeGuard enable(true);
        ng::Tensor t = x.unpack(n).detach().requires_grad_();
        derivative = ng::grad({(t * t * t).sum()}, {t})[0];  // 3 t^2
      }
      return std::vector<ng::Tensor>{g * derivative};
    });
  return out;
}

}  // namespace

TEST_CASE(
    "a backward closure that runs ng::grad on a graph of its own (re-entrant backward) gives the right gradient") {
  ng::Tensor x = leaf({1, 2, -3}, {3});
  ng::Tensor loss = (cube_by_inner_grad(x) * ng::tensor({1, 0.5, 2}, ng::float64)).sum();
  loss.backward();
  // d/dx of sum(c * x^3) = 3 c x^2
  CHECK(x.grad().to_vector() == std::vector<double>{3, 6, 54});
}

TEST_CASE("re-entrant backwards in two threads at once, over a shared leaf, accumulate what a sequential run does") {
  ng::Tensor x = leaf({1, -2}, {2});
  std::latch start(2);
  auto run = [&] {
    start.arrive_and_wait();
    for (int i = 0; i < 100; ++i) cube_by_inner_grad(x).sum().backward();
  };
  std::thread first(run), second(run);
  first.join();
  second.join();
  CHECK(x.grad().to_vector() == std::vector<double>{200 * 3, 200 * 12});
}

// ---- backward through a shared subgraph from two threads ------------------------------------------------------------

namespace {

// max_i |got_i - factor * expected_i| / (|factor * expected_i| + 1e-300)
double largest_relative_difference(const std::vector<double>& got, const std::vector<double>& expected, double factor) {
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::abs(got[i] - factor * expected[i]) / (std::abs(factor * expected[i]) + 1e-300));
  return worst;
}

// h = tanh(x w) is shared; thread k runs backward on loss_k = (h * (k + 2)).sum(). Returns how many of the
// two backward calls succeeded; a call that fails must fail with the Error saying the graph was freed.
int shared_subgraph_backwards(const ng::Tensor& x, const ng::Tensor& w, bool retain_graph) {
  const ng::Tensor h = ng::tanh(ng::matmul(x, w));
  const ng::Tensor losses[2] = {(h * 2.0).sum(), (h * 3.0).sum()};
  std::atomic<int> succeeded{0}, wrong_errors{0};
  std::latch start(2);
  std::vector<std::thread> threads;
  for (int k = 0; k < 2; ++k)
    threads.emplace_back([&, k] {
      start.arrive_and_wait();
      try {
        losses[k].backward({.retain_graph = retain_graph});
        ++succeeded;
      } catch (const ng::Error& e) {
        if (std::string(e.what()).find("freed") == std::string::npos) ++wrong_errors;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(wrong_errors == 0);
  return succeeded;
}

}  // namespace

TEST_CASE(
    "two threads backward through one shared subgraph: with retain_graph both gradients arrive, without it a "
    "thread that finds the graph freed gets an Error") {
  // Large enough that one thread is still inside tanh's backward (reading the output tanh saved) when the
  // other, done with it, frees what tanh saved: a use-after-free before the engine counted its references.
  ng::manual_seed(7);
  ng::Tensor x = ng::randn({128, 32}, ng::float64).requires_grad_();
  const ng::Tensor w = (ng::randn({32, 256}, ng::float64) * 0.2).requires_grad_();
  // Each loss alone, for the expected sums: d loss_k / dx = (k + 2) * d sum(h) / dx.
  const ng::Tensor dsum_h = ng::grad({ng::tanh(ng::matmul(x, w)).sum()}, {x})[0];
  const std::vector<double> alone = dsum_h.to_vector();
  for (int round = 0; round < 100; ++round) {
    x.zero_grad();
    REQUIRE(shared_subgraph_backwards(x, w, true) == 2);
    REQUIRE(largest_relative_difference(x.grad().to_vector(), alone, 5) < 1e-9);
  }
  for (int round = 0; round < 100; ++round) {
    x.zero_grad();
    const int succeeded = shared_subgraph_backwards(x, w, false);
    REQUIRE(succeeded >= 1);
    // What arrived is the sum of the passes that got through: 2, 3 or 5 times the gradient of sum(h).
    const std::vector<double> got = x.grad().to_vector();
    const double factor = got[0] / alone[0];
    CHECK((factor == doctest::Approx(2) || factor == doctest::Approx(3) || factor == doctest::Approx(5)));
    if (succeeded == 2) CHECK(factor == doctest::Approx(5));
    REQUIRE(largest_relative_difference(got, alone, factor) < 1e-9);
  }
}
