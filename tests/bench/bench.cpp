// bench.cpp: normgrad's timings, with case names, a timing method and CSV columns that a reference
// program (one written against libtorch, say) can share, so that tests/bench/compare.py can print the
// ratio per case (run_bench.sh). Run through `meson test -C build --benchmark`.
//
// Timing method (as the reference): warm up 0.2 s; batch calls so one block lasts at least 0.2 ms;
// time blocks for 2 to 4 s; report the median, 10th and 90th percentile time per call.
// normgrad runs on one thread, so every row has threads = 1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "normgrad.h"
#include "optim/sgd.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct Stats {
  double median, p10, p90;
  long inner, blocks;
};

// Linear-interpolation percentile of a sample (as numpy's default).
double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double at = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(at);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (at - static_cast<double>(lo));
}

Stats bench(const std::function<void()>& f, double total_s = 2.0, double min_block_s = 2e-4, long min_blocks = 20) {
  const auto warm = Clock::now();
  long calls = 0;
  while (seconds(warm, Clock::now()) < 0.2) {
    f();
    ++calls;
  }
  const double per_call = 0.2 / static_cast<double>(calls);
  const long inner = std::max(1L, static_cast<long>(min_block_s / per_call) + 1);
  std::vector<double> per;
  const long max_blocks = 100000;
  const auto start = Clock::now();
  while (static_cast<long>(per.size()) < max_blocks &&
         (static_cast<long>(per.size()) < min_blocks || seconds(start, Clock::now()) < total_s)) {
    const auto t0 = Clock::now();
    for (long i = 0; i < inner; ++i) f();
    per.push_back(seconds(t0, Clock::now()) / static_cast<double>(inner));
  }
  return {percentile(per, 50), percentile(per, 10), percentile(per, 90), inner, static_cast<long>(per.size())};
}

// The BN paper's MLP 784-100-100-100-10 with sigmoid units; with BN: Linear (no bias) -> BatchNorm1d -> sigmoid.
std::shared_ptr<ng::nn::Sequential> make_mlp(bool bn) {
  auto net = std::make_shared<ng::nn::Sequential>();
  const int64_t sizes[] = {784, 100, 100, 100};
  for (int i = 0; i < 3; ++i) {
    net->push_back(std::make_shared<ng::nn::Linear>(sizes[i], sizes[i + 1], !bn));
    if (bn) net->push_back(std::make_shared<ng::nn::BatchNorm1d>(sizes[i + 1]));
    net->push_back(std::make_shared<ng::nn::Sigmoid>());
  }
  net->push_back(std::make_shared<ng::nn::Linear>(100, 10));
  ng::NoGradGuard no_grad;
  for (auto& [name, p] : net->named_parameters()) {  // weights N(0, 0.1^2), biases 0
    const bool is_weight = name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0 && p.dim() == 2;
    float* data = p.mutable_data<float>();
    for (int64_t i = 0; i < p.numel(); ++i) data[i] = is_weight ? static_cast<float>(0.1 * ng::random_normal()) : 0.0f;
  }
  return net;
}

// The small CNN of the reference (CNNImpl in anchors.cpp): conv 1->16 3x3 pad 1 [-> BatchNorm2d(16)] -> relu
// -> max pool 2; conv 16->32 3x3 pad 1 [-> BatchNorm2d(32)] -> relu -> max pool 2; flatten; linear 1568 -> 10.
// PyTorch's default initialization; the convs have no bias when BN follows.
std::shared_ptr<ng::nn::Sequential> make_cnn(bool bn) {
  auto net = std::make_shared<ng::nn::Sequential>();
  const int64_t channels[] = {1, 16, 32};
  for (int i = 0; i < 2; ++i) {
    net->push_back(std::make_shared<ng::nn::Conv2d>(channels[i], channels[i + 1], ng::Pair{3, 3}, ng::Pair{1, 1},
                                                    ng::Pair{1, 1}, ng::Pair{1, 1}, 1, !bn));
    if (bn) net->push_back(std::make_shared<ng::nn::BatchNorm2d>(channels[i + 1]));
    net->push_back(std::make_shared<ng::nn::ReLU>());
    net->push_back(std::make_shared<ng::nn::MaxPool2d>(ng::Pair{2, 2}));
  }
  net->push_back(std::make_shared<ng::nn::Flatten>());
  net->push_back(std::make_shared<ng::nn::Linear>(32 * 7 * 7, 10));
  return net;
}

// Times one SGD step of `net` (forward, cross entropy, backward, update) on the mini-batches
// (inputs[k], labels[k]), taken in turn and cycled.
Stats bench_train_step(ng::nn::Module& net, ng::optim::SGD& sgd, const std::vector<ng::Tensor>& inputs,
                       const std::vector<ng::Tensor>& labels) {
  std::size_t k = 0;
  return bench(
      [&] {
        const auto& x = inputs[k % inputs.size()];
        const auto& y = labels[k % labels.size()];
        ++k;
        ng::Tensor loss = ng::nn::cross_entropy(net(x), y);
        sgd.zero_grad();
        loss.backward();
        sgd.step();
      },
      4.0);
}

// BatchNorm written with primitives, as libtorch's composed case: mean, sub, pow, mean, add, sqrt, div, mul, add.
ng::Tensor composed_bn(const ng::Tensor& x, const ng::Tensor& gamma, const ng::Tensor& beta) {
  return ng::nn::functional::batch_norm_composed(x, gamma, beta, 1e-5);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string out_path = argc > 1 ? argv[1] : "normgrad_bench.csv";
  // An optional second argument runs only the cases whose name contains it (e.g. "cnn").
  const std::string only = argc > 2 ? argv[2] : "";
  auto wanted = [&](const std::string& name) { return name.find(only) != std::string::npos; };
  std::ofstream out(out_path);
  out << "bench,threads,median_us,p10_us,p90_us,inner,blocks,derived\n";
  auto report = [&](const std::string& name, const Stats& s, const std::string& derived) {
    char line[512];
    std::snprintf(line, sizeof line, "%s,1,%.4f,%.4f,%.4f,%ld,%ld,%s", name.c_str(), s.median * 1e6, s.p10 * 1e6,
                  s.p90 * 1e6, s.inner, s.blocks, derived.c_str());
    out << line << "\n";
    out.flush();
    std::printf("%-30s median %10.3f us  [p10 %10.3f, p90 %10.3f]  %s\n", name.c_str(), s.median * 1e6, s.p10 * 1e6,
                s.p90 * 1e6, derived.c_str());
    std::fflush(stdout);
  };

  ng::manual_seed(99);
  std::vector<ng::Tensor> batch_x, batch_y;  // 100 batches of 60, cycled (random pixels and labels: timing only)
  for (int i = 0; i < 100; ++i) {
    batch_x.push_back(ng::rand({60, 784}));
    std::vector<int64_t> labels(60);
    for (auto& l : labels) l = static_cast<int64_t>(ng::random_u64() % 10);
    batch_y.push_back(ng::from_vector(labels, {60}));
  }

  for (bool bn : {false, true}) {
    if (!wanted(std::string("train_step_") + (bn ? "BN" : "noBN"))) continue;
    ng::manual_seed(1234);
    auto net = make_mlp(bn);
    net->train();
    ng::optim::SGD sgd(net->parameters(), {.lr = 0.1});
    auto s = bench_train_step(*net, sgd, batch_x, batch_y);
    report(std::string("train_step_") + (bn ? "BN" : "noBN"), s, "");
  }
  if (wanted("bn1d_fwd_bwd_60x100")) {
    ng::manual_seed(5);
    ng::nn::BatchNorm1d bn(100);
    bn.train();
    ng::Tensor x = ng::randn({60, 100}).requires_grad_();
    ng::Tensor g = ng::randn({60, 100});
    report("bn1d_fwd_bwd_60x100", bench([&] { ng::grad({bn(x)}, {x, bn.weight, bn.bias}, {g}); }), "");
    ng::Tensor gamma = ng::ones({100}).requires_grad_(), beta = ng::zeros({100}).requires_grad_();
    report("composed_bn_fwd_bwd_60x100", bench([&] { ng::grad({composed_bn(x, gamma, beta)}, {x, gamma, beta}, {g}); }), "");
  }
  if (wanted("matmul_512_alloc")) {
    ng::Tensor a = ng::randn({512, 512}), b = ng::randn({512, 512});
    auto s = bench([&] { ng::matmul(a, b); }, 3.0);
    char derived[64];
    std::snprintf(derived, sizeof derived, "GFLOP/s=%.2f", 2.0 * 512 * 512 * 512 / s.median / 1e9);
    report("matmul_512_alloc", s, derived);
  }
  if (wanted("add_1M_f32_alloc")) {
    const int64_t n = 1 << 20;
    ng::Tensor a = ng::randn({n}), b = ng::randn({n});
    auto s = bench([&] { ng::add(a, b); });
    char derived[64];
    std::snprintf(derived, sizeof derived, "GB/s=%.2f (3 x 4 MiB moved)", 3.0 * n * 4 / s.median / 1e9);
    report("add_1M_f32_alloc", s, derived);
  }
  if (wanted("add_1elem")) {
    ng::Tensor a = ng::randn({1}), b = ng::randn({1});
    report("add_1elem_nograd", bench([&] { ng::add(a, b); }), "");
    ng::Tensor ag = ng::randn({1}).requires_grad_(), bg = ng::randn({1}).requires_grad_();
    report("add_1elem_requires_grad", bench([&] { ng::add(ag, bg); }), "graph node recorded, no backward");
    report("add_1elem_fwd_bwd", bench([&] { ng::grad({ng::add(ag, bg)}, {ag, bg}, {ng::ones({1})}); }),
           "ng::grad incl. ones() seed");
    // The same with anomaly mode on (normgrad only): the cost of checking every output and gradient.
    ng::DetectAnomalyGuard anomaly;
    report("add_1elem_fwd_bwd_anomaly", bench([&] { ng::grad({ng::add(ag, bg)}, {ag, bg}, {ng::ones({1})}); }),
           "anomaly mode on");
  }

  // The small CNN, batch 64: 20 batches of random pixels and labels, cycled (timing only).
  std::vector<ng::Tensor> images, image_labels;
  for (int i = 0; i < 20; ++i) {
    images.push_back(ng::rand({64, 1, 28, 28}));
    std::vector<int64_t> labels(64);
    for (auto& l : labels) l = static_cast<int64_t>(ng::random_u64() % 10);
    image_labels.push_back(ng::from_vector(labels, {64}));
  }
  for (bool bn : {false, true}) {
    const std::string name = std::string("train_step_cnn_") + (bn ? "BN" : "noBN");
    if (!wanted(name)) continue;
    ng::manual_seed(1234);
    auto net = make_cnn(bn);
    net->train();
    ng::optim::SGD sgd(net->parameters(), {.lr = 0.05, .momentum = 0.9});
    auto s = bench_train_step(*net, sgd, images, image_labels);
    report(name, s, "batch 64");
  }
  if (wanted("conv2d_fwd_bwd_64x16x14x14_k32")) {  // x [64,16,14,14], 32 filters 3x3, padding 1, no bias
    ng::manual_seed(6);
    ng::Tensor x = ng::randn({64, 16, 14, 14}).requires_grad_();
    ng::Tensor w = (ng::randn({32, 16, 3, 3}) * 0.1).detach().requires_grad_();
    ng::Tensor g = ng::randn({64, 32, 14, 14});
    auto s = bench([&] { ng::grad({ng::conv2d(x, w, {}, {1, 1}, {1, 1})}, {x, w}, {g}); });
    char derived[128];
    std::snprintf(derived, sizeof derived, "GFLOP/s=%.2f (fwd+2 bwd gemms)",
                  3 * 2.0 * 64 * 32 * 14 * 14 * 16 * 9 / s.median / 1e9);
    report("conv2d_fwd_bwd_64x16x14x14_k32", s, derived);
  }
  if (wanted("maxpool2d_fwd_bwd_64x16x28x28")) {
    ng::manual_seed(7);
    ng::Tensor x = ng::randn({64, 16, 28, 28}).requires_grad_();
    ng::Tensor g = ng::randn({64, 16, 14, 14});
    report("maxpool2d_fwd_bwd_64x16x28x28", bench([&] { ng::grad({ng::max_pool2d(x, {2, 2})}, {x}, {g}); }), "");
  }
  if (wanted("bn2d_fwd_bwd_64x16x28x28")) {
    ng::manual_seed(8);
    ng::nn::BatchNorm2d bn(16);
    bn.train();
    ng::Tensor x = ng::randn({64, 16, 28, 28}).requires_grad_();
    ng::Tensor g = ng::randn({64, 16, 28, 28});
    report("bn2d_fwd_bwd_64x16x28x28", bench([&] { ng::grad({bn(x)}, {x, bn.weight, bn.bias}, {g}); }), "");
  }
  return 0;
}
