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

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "timing.h"

namespace {

using bench_timing::Stats;
using bench_timing::time_calls;
using bench_timing::time_cycled;

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
  return time_cycled(inputs, labels, [&](const torch::Tensor& x, const torch::Tensor& y) {
    torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
  });
}

// The tiny GPT of normgrad's examples/common/gpt.h (nanoGPT's model.py) with LayerNorm, module for module:
//   idx [B, T] -> wte(idx) + wpe(0..T-1) -> n_layer x { x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)) }
//              -> ln_f -> lm_head (no bias) -> logits [B, T, vocab]
struct GptTinyConfig {
  int64_t vocab = 65, block = 32, n_layer = 2, n_head = 4, n_embd = 64;
};

// x: [B, T, C] -> [B, T, C]: softmax(q k^T / sqrt(head_size)) v per head, position t seeing 0..t only.
struct CausalSelfAttentionImpl : torch::nn::Module {
  CausalSelfAttentionImpl(int64_t n_embd, int64_t n_head, int64_t block) : n_head(n_head) {
    c_attn = register_module("c_attn", torch::nn::Linear(n_embd, 3 * n_embd));
    c_proj = register_module("c_proj", torch::nn::Linear(n_embd, n_embd));
    causal_mask = torch::tril(torch::ones({block, block}, torch::kBool));  // not a parameter
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t B = x.size(0), T = x.size(1), C = x.size(2), head_size = C / n_head;
    const auto qkv = c_attn(x).split(C, 2);
    // each [B, T, C] -> [B, n_head, T, head_size]
    const auto q = qkv[0].view({B, T, n_head, head_size}).transpose(1, 2);
    const auto k = qkv[1].view({B, T, n_head, head_size}).transpose(1, 2);
    const auto v = qkv[2].view({B, T, n_head, head_size}).transpose(1, 2);
    auto att = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(head_size)));
    att = att.masked_fill(causal_mask.slice(0, 0, T).slice(1, 0, T).logical_not(), -INFINITY);
    att = torch::softmax(att, -1);
    const auto y = torch::matmul(att, v).transpose(1, 2).contiguous().view({B, T, C});
    return c_proj(y);
  }
  int64_t n_head;
  torch::nn::Linear c_attn{nullptr}, c_proj{nullptr};
  torch::Tensor causal_mask;
};
TORCH_MODULE(CausalSelfAttention);

struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(int64_t n_embd) {
    c_fc = register_module("c_fc", torch::nn::Linear(n_embd, 4 * n_embd));
    c_proj = register_module("c_proj", torch::nn::Linear(4 * n_embd, n_embd));
  }
  torch::Tensor forward(const torch::Tensor& x) { return c_proj(torch::gelu(c_fc(x))); }  // the erf GELU
  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(Mlp);

struct BlockImpl : torch::nn::Module {
  explicit BlockImpl(const GptTinyConfig& c) {
    ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.n_embd})));
    attn = register_module("attn", CausalSelfAttention(c.n_embd, c.n_head, c.block));
    ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.n_embd})));
    mlp = register_module("mlp", Mlp(c.n_embd));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto h = x + attn(ln_1(x));
    return h + mlp(ln_2(h));
  }
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  CausalSelfAttention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

struct GptImpl : torch::nn::Module {
  explicit GptImpl(const GptTinyConfig& c) {
    wte = register_module("wte", torch::nn::Embedding(c.vocab, c.n_embd));
    wpe = register_module("wpe", torch::nn::Embedding(c.block, c.n_embd));
    h = register_module("h", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.n_layer; ++i) h->push_back(Block(c));
    ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.n_embd})));
    lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(c.n_embd, c.vocab).bias(false)));
  }
  // idx: int64 [B, T] -> logits [B, T, vocab]
  torch::Tensor forward(const torch::Tensor& idx) {
    auto x = wte(idx) + wpe(torch::arange(idx.size(1), torch::kInt64));
    for (const auto& block : *h) x = block->as<Block>()->forward(x);
    return lm_head(ln_f(x));
  }
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear lm_head{nullptr};
};
TORCH_MODULE(Gpt);

// Times one training step of normgrad's char_gpt, as bench.cpp's time_gpt_train_step: forward, cross
// entropy over the B*T positions, zero_grad, backward, gradient clipping to norm 1, AdamW step (weight
// decay 0.1 on the parameters of 2 or more dimensions, 0 on the others: two parameter groups).
Stats time_gpt_train_step(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& targets,
                          int64_t& parameter_count) {
  torch::manual_seed(1234);
  Gpt model{GptTinyConfig{}};
  model->train();
  std::vector<torch::Tensor> decayed, plain;
  for (const auto& p : model->parameters()) {
    (p.dim() >= 2 ? decayed : plain).push_back(p);
    parameter_count += p.numel();
  }
  using torch::optim::AdamWOptions;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decayed, std::make_unique<AdamWOptions>(AdamWOptions(3e-3).weight_decay(0.1)));
  groups.emplace_back(plain, std::make_unique<AdamWOptions>(AdamWOptions(3e-3).weight_decay(0.0)));
  torch::optim::AdamW optimizer(groups, AdamWOptions(3e-3));
  return time_cycled(inputs, targets, [&](const torch::Tensor& idx, const torch::Tensor& y) {
    const torch::Tensor logits = model->forward(idx);  // [B, T, V]
    const torch::Tensor loss =
        torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), y.reshape({-1}));
    optimizer.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    optimizer.step();
  });
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
  // The GPT's batches: 16 sequences of 32 random token ids in 0..64, inputs and targets alike.
  std::vector<torch::Tensor> gpt_x, gpt_y;
  for (int i = 0; i < 8; ++i) {
    gpt_x.push_back(torch::randint(65, {16, 32}, torch::kInt64));
    gpt_y.push_back(torch::randint(65, {16, 32}, torch::kInt64));
  }

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
      report("bn1d_fwd_bwd_60x100", threads, time_calls([&] {
               torch::autograd::grad({bn(x)}, {x, bn->weight, bn->bias}, {g});
             }));
    }
    if (wanted("composed_bn_fwd_bwd_60x100")) {
      torch::manual_seed(5);
      torch::Tensor x = torch::randn({60, 100}).requires_grad_();
      torch::Tensor g = torch::randn({60, 100});
      torch::Tensor gamma = torch::ones({100}).requires_grad_(), beta = torch::zeros({100}).requires_grad_();
      report("composed_bn_fwd_bwd_60x100", threads, time_calls([&] {
               torch::autograd::grad({composed_bn(x, gamma, beta)}, {x, gamma, beta}, {g});
             }));
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
      report("add_1elem_fwd_bwd", threads, time_calls([&] {
               torch::autograd::grad({torch::add(ag, bg)}, {ag, bg}, {torch::ones({1})});
             }),
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
      report("bn2d_fwd_bwd_64x16x28x28", threads, time_calls([&] {
               torch::autograd::grad({bn(x)}, {x, bn->weight, bn->bias}, {g});
             }));
    }
    if (wanted("train_step_gpt_tiny")) {
      int64_t parameter_count = 0;
      const Stats s = time_gpt_train_step(gpt_x, gpt_y, parameter_count);
      report("train_step_gpt_tiny", threads, s, "batch 16x32, " + std::to_string(parameter_count) + " params");
    }
  }
  return 0;
}
