// gpt.h: a tiny GPT in the shape of nanoGPT's model.py (Karpathy), with a choice of normalization: the model
// of examples/char_gpt.cpp, shared with the benchmark (tests/bench) and the PyTorch interop test, which
// loads its weights into the same model written in PyTorch (nanoGPT's parameter names: wte, wpe,
// h.<i>.ln_1, h.<i>.attn.c_attn, h.<i>.attn.c_proj, h.<i>.ln_2, h.<i>.mlp.c_fc, h.<i>.mlp.c_proj, ln_f,
// lm_head).
//
//   idx [B, T] -> wte(idx) + wpe(0..T-1) -> n_layer x { x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)) }
//              -> ln_f -> lm_head -> logits [B, T, vocab]
// The norm is LayerNorm ("layer"), RMSNorm ("rms"), BatchNorm over batch and time ("batch") or none.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "normgrad.h"

namespace examples {

using ng::Tensor;

// BatchNorm over batch and time: x [B, T, C] is seen as B*T rows of C features, so each feature's mean
// and variance are taken over every position of every sequence. It also keeps the statistics of the
// last batch it saw in training mode, for the fluctuation measurement.
class BatchNormOverTokens : public ng::nn::Module {
 public:
  explicit BatchNormOverTokens(int64_t features) {
    bn = register_module("bn", std::make_shared<ng::nn::BatchNorm1d>(features));
  }
  Tensor forward(const Tensor& x) override {
    const Tensor rows = x.reshape({-1, x.size(-1)});  // [B*T, C]
    if (is_training()) {
      ng::NoGradGuard no_grad;
      const Tensor d = rows.detach();
      last_mean = d.mean({0});
      last_var = ((d - last_mean) * (d - last_mean)).mean({0});
    }
    return (*bn)(rows).reshape(x.shape());
  }
  std::shared_ptr<ng::nn::BatchNorm1d> bn;
  Tensor last_mean, last_var;  // [C], of the last training-mode batch
};

class Identity : public ng::nn::Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};

// "layer", "rms", "batch" or "none"
std::shared_ptr<ng::nn::Module> make_norm(const std::string& kind, int64_t features);

// The MLP of a block: x [B, T, C] -> c_proj(gelu(c_fc(x))), through 4C features.
class Mlp : public ng::nn::Module {
 public:
  explicit Mlp(int64_t n_embd) {
    c_fc = register_module("c_fc", std::make_shared<ng::nn::Linear>(n_embd, 4 * n_embd));
    c_proj = register_module("c_proj", std::make_shared<ng::nn::Linear>(4 * n_embd, n_embd));
  }
  Tensor forward(const Tensor& x) override { return (*c_proj)(ng::nn::functional::gelu((*c_fc)(x))); }
  std::shared_ptr<ng::nn::Linear> c_fc, c_proj;
};

// One transformer block: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)).
class Block : public ng::nn::Module {
 public:
  Block(const std::string& norm, int64_t n_embd, int64_t n_head) {
    ln_1 = register_module("ln_1", make_norm(norm, n_embd));
    attn = register_module("attn", std::make_shared<ng::nn::CausalSelfAttention>(n_embd, n_head));
    ln_2 = register_module("ln_2", make_norm(norm, n_embd));
    mlp = register_module("mlp", std::make_shared<Mlp>(n_embd));
  }
  // x: [B, T, C] -> [B, T, C]
  Tensor forward(const Tensor& x) override {
    const Tensor h = x + (*attn)((*ln_1)(x));
    return h + (*mlp)((*ln_2)(h));
  }
  std::shared_ptr<ng::nn::Module> ln_1, ln_2;
  std::shared_ptr<ng::nn::CausalSelfAttention> attn;
  std::shared_ptr<Mlp> mlp;
};

struct GptConfig {
  int64_t vocab, block, n_layer, n_head, n_embd;
  std::string norm;
};

class Gpt : public ng::nn::Module {
 public:
  explicit Gpt(const GptConfig& c) : config(c) {
    wte = register_module("wte", std::make_shared<ng::nn::Embedding>(c.vocab, c.n_embd));
    wpe = register_module("wpe", std::make_shared<ng::nn::Embedding>(c.block, c.n_embd));
    h = std::make_shared<ng::nn::ModuleList>();
    for (int64_t i = 0; i < c.n_layer; ++i) h->append(std::make_shared<Block>(c.norm, c.n_embd, c.n_head));
    register_module("h", h);
    ln_f = register_module("ln_f", make_norm(c.norm, c.n_embd));
    lm_head = register_module("lm_head", std::make_shared<ng::nn::Linear>(c.n_embd, c.vocab, /*bias=*/false));
  }
  // idx: int64 [B, T] -> logits [B, T, vocab]
  Tensor forward(const Tensor& idx) override {
    const int64_t T = idx.size(1);
    Tensor x = (*wte)(idx) + (*wpe)(ng::arange(T, ng::int64));
    for (const auto& block : *h) x = (*block)(x);
    return (*lm_head)((*ln_f)(x));
  }
  // Every BatchNormOverTokens of the model, in order (none unless norm == "batch").
  std::vector<BatchNormOverTokens*> batch_norms() const {
    std::vector<BatchNormOverTokens*> found;
    auto add = [&](const std::shared_ptr<ng::nn::Module>& m) {
      if (auto* bn = dynamic_cast<BatchNormOverTokens*>(m.get())) found.push_back(bn);
    };
    for (const auto& block : *h) {
      auto* b = static_cast<Block*>(block.get());
      add(b->ln_1);
      add(b->ln_2);
    }
    add(ln_f);
    return found;
  }
  GptConfig config;
  std::shared_ptr<ng::nn::Embedding> wte, wpe;
  std::shared_ptr<ng::nn::ModuleList> h;
  std::shared_ptr<ng::nn::Module> ln_f;
  std::shared_ptr<ng::nn::Linear> lm_head;
};

}  // namespace examples
