// attention.cpp: nn::CausalSelfAttention, composed from Linear, split, view, transpose,
// scaled_dot_product_attention and dropout; its backward is theirs.
#include "attention.h"

#include "activation.h"
#include "autograd/ops.h"

namespace ng::nn {

CausalSelfAttention::CausalSelfAttention(int64_t embd, int64_t heads, bool bias, Dtype dtype, double dropout_p)
    : n_embd(embd), n_head(heads), dropout(dropout_p) {
  if (embd <= 0 || heads <= 0 || embd % heads != 0)
    throw Error("CausalSelfAttention: n_embd = " + std::to_string(embd) + ", n_head = " + std::to_string(heads) +
                "; expected positive sizes with n_head dividing n_embd");
  if (!(dropout_p >= 0 && dropout_p < 1))
    throw Error("CausalSelfAttention: dropout = " + std::to_string(dropout_p) + "; expected a probability in [0, 1)");
  c_attn = register_module("c_attn", std::make_shared<Linear>(embd, 3 * embd, bias, dtype));
  c_proj = register_module("c_proj", std::make_shared<Linear>(embd, embd, bias, dtype));
}

// x: [B, T, C] -> y: [B, T, C]
Tensor CausalSelfAttention::forward(const Tensor& x) {
  if (x.dim() != 3 || x.size(2) != n_embd)
    throw Error("CausalSelfAttention: input of shape " + shape_str(x.shape()) + "; expected [B, T, " +
                std::to_string(n_embd) + "]");
  const int64_t B = x.size(0), T = x.size(1), C = n_embd, head_size = C / n_head;
  // [B, T, C] -> [B, n_head, T, head_size]: head h holds features h * head_size .. (h + 1) * head_size - 1
  const auto to_heads = [&](const Tensor& t) { return t.view({B, T, n_head, head_size}).transpose(1, 2); };

  std::vector<Tensor> qkv = split((*c_attn)(x), n_embd, 2);                 // q, k, v: [B, T, C] each
  Tensor q = to_heads(qkv[0]), k = to_heads(qkv[1]), v = to_heads(qkv[2]);  // [B, n_head, T, head_size]
  // causal; dropout on the attention weights in training only (the functional applies whatever it is given)
  const double attn_dropout = is_training() ? dropout : 0.0;
  Tensor y = scaled_dot_product_attention(q, k, v, Tensor(), attn_dropout, true);  // [B, n_head, T, head_size]
  y = y.transpose(1, 2).reshape({B, T, C});                          // heads side by side again: [B, T, C]
  return functional::dropout((*c_proj)(y), dropout, is_training());  // mix the heads: [B, T, C]
}

}  // namespace ng::nn
