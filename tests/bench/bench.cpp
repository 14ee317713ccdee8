// bench.cpp: normgrad's timings, with the case names, timing method and CSV columns (timing.h) of the
// libtorch reference (libtorch_reference.cpp), so that compare.py can print normgrad / libtorch per case.
// Run through `meson test -C build --benchmark` (run_bench.sh), or alone:
//   bench OUT.csv [--threads=1,2] [--only=TEXT]
// Every case runs once per thread count, set with ng::set_num_threads.
#include <cstdio>
#include <string>
#include <vector>

#include "examples/common/gpt.h"
#include "normgrad.h"
#include "optim/sgd.h"
#include "timing.h"
#if __has_include("autograd/parallel.h")
#include "autograd/parallel.h"
#include "autograd/thread_pool.h"
#define NORMGRAD_BENCH_HAS_THREADS 1
#endif

namespace {

using bench_timing::Stats;
using bench_timing::time_calls;
using bench_timing::time_cycled;

// Until the library has ng::set_num_threads (autograd/parallel.h), it runs on one thread whatever is asked.
void use_threads(int threads) {
#ifdef NORMGRAD_BENCH_HAS_THREADS
  ng::set_num_threads(threads);
#else
  (void)threads;
#endif
}

// The pool's own last measurement of how far apart the cores are (thread_pool.h), from which gemm decides
// which products to share out; -1 where the library has no pool.
long long pool_round_trip_ns() {
#ifdef NORMGRAD_BENCH_HAS_THREADS
  return static_cast<long long>(ng::kernel::cores_round_trip_ns());
#else
  return -1;
#endif
}

// The BN paper's MLP 784-100-100-100-10 with sigmoid units; with BN each hidden layer is
// Linear (no bias) -> BatchNorm1d -> sigmoid. Linear weights N(0, 0.1^2), Linear biases 0.
std::shared_ptr<ng::nn::Sequential> make_mlp(bool bn) {
  auto net = std::make_shared<ng::nn::Sequential>();
  const int64_t sizes[] = {784, 100, 100, 100};
  std::vector<std::shared_ptr<ng::nn::Linear>> linears;
  for (int i = 0; i < 3; ++i) {
    linears.push_back(std::make_shared<ng::nn::Linear>(sizes[i], sizes[i + 1], !bn));
    net->push_back(linears.back());
    if (bn) net->push_back(std::make_shared<ng::nn::BatchNorm1d>(sizes[i + 1]));
    net->push_back(std::make_shared<ng::nn::Sigmoid>());
  }
  linears.push_back(std::make_shared<ng::nn::Linear>(100, 10));
  net->push_back(linears.back());
  for (auto& linear : linears) {
    ng::nn::init::normal_(linear->weight, 0.0, 0.1);
    if (linear->bias.defined()) ng::nn::init::zeros_(linear->bias);
  }
  return net;
}

// The small CNN, batch 64: conv 1->16 3x3 pad 1 [-> BatchNorm2d(16)] -> relu
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

// Times one SGD step (forward, cross entropy, zero_grad, backward, update) on the mini-batches
// (inputs[k], labels[k]), taken in turn and cycled.
Stats time_train_step(ng::nn::Module& net, ng::optim::SGD& sgd, const std::vector<ng::Tensor>& inputs,
                      const std::vector<ng::Tensor>& labels) {
  return time_cycled(inputs, labels, [&](const ng::Tensor& x, const ng::Tensor& y) {
    ng::Tensor loss = ng::nn::cross_entropy(net(x), y);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
  });
}

// The tiny GPT of examples/char_gpt.cpp (examples/common/gpt.h) at the size of the benchmark case:
// 65 characters, 32 positions, 2 blocks of 4 heads, 64 features, LayerNorm.
const examples::GptConfig gpt_tiny{.vocab = 65, .block = 32, .n_layer = 2, .n_head = 4, .n_embd = 64, .norm = "layer"};
const int64_t gpt_batch = 16;

// Random token ids in 0..vocab-1, [gpt_batch, block]: inputs and targets alike (timing only).
ng::Tensor random_tokens() {
  std::vector<int64_t> ids(static_cast<std::size_t>(gpt_batch * gpt_tiny.block));
  for (auto& id : ids) id = static_cast<int64_t>(ng::random_u64() % static_cast<uint64_t>(gpt_tiny.vocab));
  return ng::from_vector(ids, {gpt_batch, gpt_tiny.block});
}

// Times one training step of char_gpt: forward, cross entropy over the B*T positions, zero_grad,
// backward, gradient clipping to norm 1, AdamW step (weight decay 0.1 on the parameters of 2 or more
// dimensions, 0 on the others: two parameter groups). Counts the model's parameters into parameter_count,
// for the report (the reference's model must have as many).
Stats time_gpt_train_step(const std::vector<ng::Tensor>& inputs, const std::vector<ng::Tensor>& targets,
                          int64_t& parameter_count) {
  ng::manual_seed(1234);
  examples::Gpt model(gpt_tiny);
  model.train();
  std::vector<ng::Tensor> decayed, plain;
  for (const auto& [name, p] : model.named_parameters()) {
    (p.dim() >= 2 ? decayed : plain).push_back(p);
    parameter_count += p.numel();
  }
  ng::optim::AdamW optimizer({{.params = decayed, .weight_decay = 0.1}, {.params = plain, .weight_decay = 0.0}},
                             {.lr = 3e-3});
  return time_cycled(inputs, targets, [&](const ng::Tensor& idx, const ng::Tensor& y) {
    const ng::Tensor logits = model(idx);  // [B, T, V]
    const ng::Tensor loss = ng::nn::cross_entropy(logits.reshape({-1, logits.size(-1)}), y.reshape({-1}));
    optimizer.zero_grad();
    loss.backward();
    ng::nn::clip_grad_norm_(model.parameters(), 1.0);
    optimizer.step();
  });
}

// BatchNorm in training mode composed of primitives (mean, sub, pow, mean, add, sqrt, div, mul, add), as
// the reference's composed case.
ng::Tensor composed_bn(const ng::Tensor& x, const ng::Tensor& gamma, const ng::Tensor& beta) {
  return ng::nn::functional::batch_norm_composed(x, gamma, beta, 1e-5);
}

// Random mini-batches: pixels uniform in [0, 1), labels uniform in 0..9 (timing only; the same for any data).
void make_batches(int count, const ng::Shape& image_shape, std::vector<ng::Tensor>& images,
                  std::vector<ng::Tensor>& labels) {
  for (int i = 0; i < count; ++i) {
    images.push_back(ng::rand(image_shape));
    std::vector<int64_t> batch_labels(static_cast<std::size_t>(image_shape[0]));
    for (auto& label : batch_labels) label = static_cast<int64_t>(ng::random_u64() % 10);
    labels.push_back(ng::from_vector(batch_labels, {image_shape[0]}));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = bench_timing::parse_options(argc, argv, "normgrad_bench.csv");
  bench_timing::Report report(options.out_path);
  auto wanted = [&](const std::string& name) { return options.wanted(name); };

  ng::manual_seed(99);
  std::vector<ng::Tensor> mlp_x, mlp_y, cnn_x, cnn_y;
  make_batches(100, {60, 784}, mlp_x, mlp_y);
  make_batches(20, {64, 1, 28, 28}, cnn_x, cnn_y);
  std::vector<ng::Tensor> gpt_x, gpt_y;
  for (int i = 0; i < 8; ++i) {
    gpt_x.push_back(random_tokens());
    gpt_y.push_back(random_tokens());
  }

  // Before and after the cases at 2 or more threads: where the machine put the cores (timing.h).
  auto print_cores = [](const char* when) {
    std::printf("cores %s: a cache line's round trip between two threads %.0f ns (the pool's last: %lld ns)\n", when,
                bench_timing::core_round_trip_ns(), pool_round_trip_ns());
  };
  for (const int threads : options.threads) {
    use_threads(threads);
    if (threads > 1) print_cores("before");
    for (bool bn : {false, true}) {
      const std::string name = std::string("train_step_") + (bn ? "BN" : "noBN");
      if (!wanted(name)) continue;
      ng::manual_seed(1234);
      auto net = make_mlp(bn);
      net->train();
      ng::optim::SGD sgd(net->parameters(), {.lr = 0.1});
      report(name, threads, time_train_step(*net, sgd, mlp_x, mlp_y));
    }
    if (wanted("bn1d_fwd_bwd_60x100")) {
      ng::manual_seed(5);
      ng::nn::BatchNorm1d bn(100);
      bn.train();
      ng::Tensor x = ng::randn({60, 100}).requires_grad_();
      ng::Tensor g = ng::randn({60, 100});
      report("bn1d_fwd_bwd_60x100", threads, time_calls([&] { ng::grad({bn(x)}, {x, bn.weight, bn.bias}, {g}); }));
    }
    if (wanted("composed_bn_fwd_bwd_60x100")) {
      ng::manual_seed(5);
      ng::Tensor x = ng::randn({60, 100}).requires_grad_();
      ng::Tensor g = ng::randn({60, 100});
      ng::Tensor gamma = ng::ones({100}).requires_grad_(), beta = ng::zeros({100}).requires_grad_();
      report("composed_bn_fwd_bwd_60x100", threads, time_calls([&] {
               ng::grad({composed_bn(x, gamma, beta)}, {x, gamma, beta}, {g});
             }));
    }
    if (wanted("matmul_512")) {
      ng::Tensor a = ng::randn({512, 512}), b = ng::randn({512, 512});
      const Stats s = time_calls([&] { ng::matmul(a, b); }, 3.0);
      report("matmul_512_alloc", threads, s, bench_timing::gflops(2.0 * 512 * 512 * 512, s));
    }
    if (wanted("add_1M_f32")) {
      const int64_t n = 1 << 20;
      ng::Tensor a = ng::randn({n}), b = ng::randn({n});
      const Stats s = time_calls([&] { ng::add(a, b); });
      char bandwidth[64];  // two operands read, one result written
      std::snprintf(bandwidth, sizeof bandwidth, "GB/s=%.2f (3 x 4 MiB moved)", 3.0 * n * 4 / s.median / 1e9);
      report("add_1M_f32_alloc", threads, s, bandwidth);
    }
    if (wanted("add_1elem")) {  // per-op overhead: the arithmetic is one addition
      ng::Tensor a = ng::randn({1}), b = ng::randn({1});
      report("add_1elem_nograd", threads, time_calls([&] { ng::add(a, b); }));
      ng::Tensor ag = ng::randn({1}).requires_grad_(), bg = ng::randn({1}).requires_grad_();
      report("add_1elem_requires_grad", threads, time_calls([&] { ng::add(ag, bg); }),
             "graph node recorded, no backward");
      report("add_1elem_fwd_bwd", threads, time_calls([&] {
               ng::grad({ng::add(ag, bg)}, {ag, bg}, {ng::ones({1})});
             }),
             "ng::grad incl. ones() seed");
      // The same with anomaly mode on (normgrad only): the cost of checking every output and gradient.
      ng::DetectAnomalyGuard anomaly;
      report("add_1elem_fwd_bwd_anomaly", threads, time_calls([&] {
               ng::grad({ng::add(ag, bg)}, {ag, bg}, {ng::ones({1})});
             }),
             "anomaly mode on");
    }
    for (bool bn : {false, true}) {
      const std::string name = std::string("train_step_cnn_") + (bn ? "BN" : "noBN");
      if (!wanted(name)) continue;
      ng::manual_seed(1234);
      auto net = make_cnn(bn);
      net->train();
      ng::optim::SGD sgd(net->parameters(), {.lr = 0.05, .momentum = 0.9});
      report(name, threads, time_train_step(*net, sgd, cnn_x, cnn_y), "batch 64");
    }
    if (wanted("conv2d_fwd_bwd_64x16x14x14_k32")) {  // x [64,16,14,14], 32 filters 3x3, padding 1, no bias
      ng::manual_seed(6);
      ng::Tensor x = ng::randn({64, 16, 14, 14}).requires_grad_();
      ng::Tensor w = (ng::randn({32, 16, 3, 3}) * 0.1).detach().requires_grad_();
      ng::Tensor g = ng::randn({64, 32, 14, 14});
      const Stats s = time_calls([&] { ng::grad({ng::conv2d(x, w, {}, {1, 1}, {1, 1})}, {x, w}, {g}); });
      // The forward and the two backward products each cost one gemm of 2 * N*Cout*H*W * Cin*3*3 flop.
      report("conv2d_fwd_bwd_64x16x14x14_k32", threads, s,
             bench_timing::gflops(3 * 2.0 * 64 * 32 * 14 * 14 * 16 * 9, s) + " (fwd+2 bwd gemms)");
    }
    if (wanted("maxpool2d_fwd_bwd_64x16x28x28")) {
      ng::manual_seed(7);
      ng::Tensor x = ng::randn({64, 16, 28, 28}).requires_grad_();
      ng::Tensor g = ng::randn({64, 16, 14, 14});
      report("maxpool2d_fwd_bwd_64x16x28x28", threads, time_calls([&] {
               ng::grad({ng::max_pool2d(x, {2, 2})}, {x}, {g});
             }));
    }
    if (wanted("cat_100k_fwd_bwd")) {  // a node with 100,000 inputs: the backward pass must stay linear
      std::vector<ng::Tensor> parts;
      for (int i = 0; i < 100000; ++i) parts.push_back(ng::randn({1}).requires_grad_());
      report("cat_100k_fwd_bwd", threads, time_calls([&] { ng::grad({ng::cat(parts, 0).sum()}, parts); }, 5.0),
             "100,000 tensors of one element");
    }
    if (wanted("bn2d_fwd_bwd_64x16x28x28")) {
      ng::manual_seed(8);
      ng::nn::BatchNorm2d bn(16);
      bn.train();
      ng::Tensor x = ng::randn({64, 16, 28, 28}).requires_grad_();
      ng::Tensor g = ng::randn({64, 16, 28, 28});
      report("bn2d_fwd_bwd_64x16x28x28", threads, time_calls([&] { ng::grad({bn(x)}, {x, bn.weight, bn.bias}, {g}); }));
    }
    if (wanted("train_step_gpt_tiny")) {
      int64_t parameter_count = 0;
      const Stats s = time_gpt_train_step(gpt_x, gpt_y, parameter_count);
      report("train_step_gpt_tiny", threads, s, "batch 16x32, " + std::to_string(parameter_count) + " params");
    }
    if (threads > 1) print_cores("after");
  }
  return 0;
}
