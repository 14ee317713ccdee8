// attention.h: nn::CausalSelfAttention, the attention layer of a GPT, as nanoGPT's (Karpathy's
// model.py) writes it, with the same parameter names so that its checkpoints map one to one.
//
// Every position t of a sequence x [B, T, C] makes a query, a key and a value (one Linear, c_attn,
// C -> 3C), each cut into n_head heads of C / n_head features. Each head lets position t take a
// weighted mean of the values of positions 0..t (causal: never later ones, so a model trained to
// predict token t + 1 cannot look at it), weighted by softmax(q . k / sqrt(head_size)); the heads'
// results are put side by side again and mixed by c_proj (C -> C).
#pragma once

#include <memory>

#include "linear.h"
#include "module.h"

namespace ng::nn {

class CausalSelfAttention : public Module {
 public:
  // c_attn and c_proj are Linear layers with PyTorch's default initialization (nanoGPT's GPT re-initializes
  // them as a whole model; that belongs to the model, not to this layer). dropout is nanoGPT's: in training
  // mode the attention weights (scaled_dot_product_attention's dropout_p) and the output (after c_proj) each
  // go through dropout with this probability; in eval mode neither. The default 0 is nanoGPT's too.
  CausalSelfAttention(int64_t n_embd, int64_t n_head, bool bias = true, Dtype dtype = float32, double dropout = 0);

  // x: [B, T, C] -> y: [B, T, C], C = n_embd; y at position t depends on x at positions 0..t only.
  Tensor forward(const Tensor& x) override;

  int64_t n_embd, n_head;
  double dropout;                  // in [0, 1)
  std::shared_ptr<Linear> c_attn;  // weight [3C, C], bias [3C]: q, k and v of every head, side by side
  std::shared_ptr<Linear> c_proj;  // weight [C, C], bias [C]
};

}  // namespace ng::nn
