// libtorch_reference.cpp: the yardstick for normgrad's benchmark. The same cases as bench.cpp, with the
// same names, timing method and CSV columns (timing.h), written against PyTorch's C++ library, so that
// run_bench.sh can print normgrad / libtorch per case from one command.
//
// Built only where Debian's libtorch-dev is installed (tests/bench/meson.build); normgrad itself never
// links libtorch. Debian's libtorch calls whatever libblas.so.3 the loader finds, which is the slow
// reference BLAS unless OpenBLAS is loaded: run_bench.sh loads it for this process (see the README).
//
// Usage: libtorch_reference OUT.csv [--threads=1,2] [--only=TEXT]
// Every case runs once per thread count (at::set_num_threads), in the order normgrad's benchmark runs them.
#include <torch/torch.h>

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "timing.h"

namespace {

using bench_timing::Stats;
using bench_timing::time_calls;

// The BN paper's MLP 784-100-100-100-10 with sigmoid units; with BN each hidden layer is
// Linear (no bias) -> BatchNorm1d -> sigmoid. Linear weights N(0, 0.1^2), Linear biases 0.
torch::nn::Sequential make_mlp(bool bn) {
  torch::nn::Sequential net;
  const int64_t sizes[] = {784, 100, 100, 100};
  for (int i = 0; i < 3; ++i) {
    net->push_back(torch::nn::Linear(torch::nn::LinearOptions(sizes[i], sizes[i + 1]).bias(!bn)));
    if (bn) net->push_back(torch::nn::BatchNorm1d(sizes[i + 1]));
    net->push_back(torch::nn::Sigmoid());
  }
  net->push_back(torch::nn::Linear(100, 10));
  torch::NoGradGuard no_grad;
  for (auto& module : net->modules(/*include_self=*/false))
    if (auto* linear = module->as<torch::nn::Linear>()) {
      linear->weight.normal_(0.0, 0.1);
      if (linear->bias.defined()) linear->bias.zero_();
    }
  return net;
}

// The small CNN, batch 64: conv 1->16 3x3 pad 1 [-> BatchNorm2d(16)] -> relu -> max pool 2; conv 16->32
// 3x3 pad 1 [-> BatchNorm2d(32)] -> relu -> max pool 2; flatten; linear 1568 -> 10. PyTorch's default
// initialization; the convs have no bias when BN follows.
torch::nn::Sequential make_cnn(bool bn) {
  torch::nn::Sequential net;
  const int64_t channels[] = {1, 16, 32};
  for (int i = 0; i < 2; ++i) {
    net->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(channels[i], channels[i + 1], 3).padding(1).bias(!bn)));
    if (bn) net->push_back(torch::nn::BatchNorm2d(channels[i + 1]));
    net->push_back(torch::nn::ReLU());
    net->push_back(torch::nn::MaxPool2d(2));
  }
  net->push_back(torch::nn::Flatten());
  net->push_back(torch::nn::Linear(32 * 7 * 7, 10));
  return net;
}

// Times one SGD step (forward, cross entropy, zero_grad, backward, update) on the mini-batches
// (inputs[k], labels[k]), taken in turn and cycled.
Stats time_train_step(torch::nn::Sequential& net, torch::optim::SGD& sgd, const std::vector<torch::Tensor>& inputs,
                      const std::vector<torch::Tensor>& labels) {
  std::size_t k = 0;
  return time_calls(
      [&] {
        const auto& x = inputs[k % inputs.size()];
        const auto& y = labels[k % labels.size()];
        ++k;
        torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(x), y);
        sgd.zero_grad();
        loss.backward();
        sgd.step();
      },
      4.0);
}

// BatchNorm in training mode written with primitives (biased variance), as normgrad's composed BN:
//   mu = mean(x), var = mean((x - mu)^2), x_hat = (x - mu) / sqrt(var + eps), y = gamma x_hat + beta
torch::Tensor composed_bn(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& beta) {
  const torch::Tensor batch_mean = x.mean({0}, /*keepdim=*/true);
  const torch::Tensor centered = x - batch_mean;
  const torch::Tensor batch_var = centered.pow(2).mean({0}, /*keepdim=*/true);
  const torch::Tensor x_hat = centered / (batch_var + 1e-5).sqrt();
  return x_hat * gamma + beta;
}

// Random mini-batches: pixels uniform in [0, 1), labels uniform in 0..9 (timing only; the same for any data).
void make_batches(int count, std::vector<int64_t> image_shape, std::vector<torch::Tensor>& images,
                  std::vector<torch::Tensor>& labels) {
  for (int i = 0; i < count; ++i) {
    images.push_back(torch::rand(image_shape));
    labels.push_back(torch::randint(10, {image_shape[0]}, torch::kInt64));
  }
}

}  // namespace

// Which kernels the BLAS under libtorch chose: OpenBLAS picks them for the CPU at start-up unless
// OPENBLAS_CORETYPE forces a core (run_bench.sh unsets it for this process). Other BLAS libraries lack the call.
void print_blas_kernels() {
  using Corename = char* (*)();
  const auto corename = reinterpret_cast<Corename>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  std::printf("libtorch reference: BLAS kernels %s%s%s\n", corename ? corename() : "unknown (not OpenBLAS)",
              forced ? ", forced by OPENBLAS_CORETYPE=" : "", forced ? forced : "");
}

int main(int argc, char** argv) {
  const auto options = bench_timing::parse_options(argc, argv, "libtorch_bench.csv");
  print_blas_kernels();
  bench_timing::Report report(options.out_path);
  auto wanted = [&](const std::string& name) { return options.wanted(name); };

  torch::manual_seed(99);
  std::vector<torch::Tensor> mlp_x, mlp_y, cnn_x, cnn_y;
  make_batches(100, {60, 784}, mlp_x, mlp_y);
  make_batches(20, {64, 1, 28, 28}, cnn_x, cnn_y);

  for (const int threads : options.threads) {
    at::set_num_threads(threads);
    for (bool bn : {false, true}) {
      const std::string name = std::string("train_step_") + (bn ? "BN" : "noBN");
      if (!wanted(name)) continue;
      torch::manual_seed(1234);
      auto net = make_mlp(bn);
      net->train();
      torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.1));
      report(name, threads, time_train_step(net, sgd, mlp_x, mlp_y));
    }
    if (wanted("bn1d_fwd_bwd_60x100")) {
      torch::manual_seed(5);
      torch::nn::BatchNorm1d bn(100);
      bn->train();
      torch::Tensor x = torch::randn({60, 100}).requires_grad_();
      torch::Tensor g = torch::randn({60, 100});
      report("bn1d_fwd_bwd_60x100", threads,
             time_calls([&] { torch::autograd::grad({bn(x)}, {x, bn->weight, bn->bias}, {g}); }));
    }
    if (wanted("composed_bn_fwd_bwd_60x100")) {
      torch::manual_seed(5);
      torch::Tensor x = torch::randn({60, 100}).requires_grad_();
      torch::Tensor g = torch::randn({60, 100});
      torch::Tensor gamma = torch::ones({100}).requires_grad_(), beta = torch::zeros({100}).requires_grad_();
      report("composed_bn_fwd_bwd_60x100", threads,
             time_calls([&] { torch::autograd::grad({composed_bn(x, gamma, beta)}, {x, gamma, beta}, {g}); }));
    }
    if (wanted("matmul_512")) {
      const double flop = 2.0 * 512 * 512 * 512;
      torch::Tensor a = torch::randn({512, 512}), b = torch::randn({512, 512}), c = torch::empty({512, 512});
      Stats s = time_calls([&] { torch::mm_out(c, a, b); }, 3.0);
      report("matmul_512_mm_out", threads, s, bench_timing::gflops(flop, s));
      s = time_calls([&] { torch::matmul(a, b); }, 3.0);
      report("matmul_512_alloc", threads, s, bench_timing::gflops(flop, s));
    }
    if (wanted("add_1M_f32")) {
      const int64_t n = 1 << 20;
      torch::Tensor a = torch::randn({n}), b = torch::randn({n}), c = torch::empty({n});
      auto bandwidth = [&](const Stats& s) {  // two operands read, one result written
        char text[64];
        std::snprintf(text, sizeof text, "GB/s=%.2f (3 x 4 MiB moved)", 3.0 * n * 4 / s.median / 1e9);
        return std::string(text);
      };
      Stats s = time_calls([&] { torch::add_out(c, a, b); });
      report("add_1M_f32_out", threads, s, bandwidth(s));
      s = time_calls([&] { torch::add(a, b); });
      report("add_1M_f32_alloc", threads, s, bandwidth(s));
    }
    if (wanted("add_1elem")) {  // per-op overhead: the arithmetic is one addition
      torch::Tensor a = torch::randn({1}), b = torch::randn({1}), c = torch::empty({1});
      report("add_1elem_nograd", threads, time_calls([&] { torch::add(a, b); }));
      torch::Tensor ag = torch::randn({1}).requires_grad_(), bg = torch::randn({1}).requires_grad_();
      report("add_1elem_requires_grad", threads, time_calls([&] { torch::add(ag, bg); }),
             "graph node recorded, no backward");
      report("add_1elem_fwd_bwd", threads,
             time_calls([&] { torch::autograd::grad({torch::add(ag, bg)}, {ag, bg}, {torch::ones({1})}); }),
             "autograd::grad incl. ones() seed");
      report("add_1elem_out_nograd", threads, time_calls([&] { torch::add_out(c, a, b); }));
    }
    for (bool bn : {false, true}) {
      const std::string name = std::string("train_step_cnn_") + (bn ? "BN" : "noBN");
      if (!wanted(name)) continue;
      torch::manual_seed(1234);
      auto net = make_cnn(bn);
      net->train();
      torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
      report(name, threads, time_train_step(net, sgd, cnn_x, cnn_y), "batch 64");
    }
    if (wanted("conv2d_fwd_bwd_64x16x14x14_k32")) {  // x [64,16,14,14], 32 filters 3x3, padding 1, no bias
      torch::manual_seed(6);
      torch::Tensor x = torch::randn({64, 16, 14, 14}).requires_grad_();
      torch::Tensor w = (torch::randn({32, 16, 3, 3}) * 0.1).requires_grad_();
      torch::Tensor g = torch::randn({64, 32, 14, 14});
      Stats s = time_calls([&] { torch::autograd::grad({torch::conv2d(x, w, {}, 1, 1)}, {x, w}, {g}); });
      // The forward and the two backward products each cost one gemm of 2 * N*Cout*H*W * Cin*3*3 flop.
      report("conv2d_fwd_bwd_64x16x14x14_k32", threads, s,
             bench_timing::gflops(3 * 2.0 * 64 * 32 * 14 * 14 * 16 * 9, s) + " (fwd+2 bwd gemms)");
    }
    if (wanted("maxpool2d_fwd_bwd_64x16x28x28")) {
      torch::manual_seed(7);
      torch::Tensor x = torch::randn({64, 16, 28, 28}).requires_grad_();
      torch::Tensor g = torch::randn({64, 16, 14, 14});
      report("maxpool2d_fwd_bwd_64x16x28x28", threads,
             time_calls([&] { torch::autograd::grad({torch::max_pool2d(x, 2)}, {x}, {g}); }));
    }
    if (wanted("cat_100k_fwd_bwd")) {  // a node with 100,000 inputs: the backward pass must stay linear
      std::vector<torch::Tensor> parts;
      for (int i = 0; i < 100000; ++i) parts.push_back(torch::randn({1}).requires_grad_());
      report("cat_100k_fwd_bwd", threads,
             time_calls([&] { torch::autograd::grad({torch::cat(parts, 0).sum()}, parts); }, 5.0),
             "100,000 tensors of one element");
    }
    if (wanted("bn2d_fwd_bwd_64x16x28x28")) {
      torch::manual_seed(8);
      torch::nn::BatchNorm2d bn(16);
      bn->train();
      torch::Tensor x = torch::randn({64, 16, 28, 28}).requires_grad_();
      torch::Tensor g = torch::randn({64, 16, 28, 28});
      report("bn2d_fwd_bwd_64x16x28x28", threads,
             time_calls([&] { torch::autograd::grad({bn(x)}, {x, bn->weight, bn->bias}, {g}); }));
    }
  }
  return 0;
}
