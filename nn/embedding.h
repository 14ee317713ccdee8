// embedding.h: nn::Embedding, a lookup table of learned vectors, one per token id (PyTorch's nn.Embedding).
//
// Row i of `weight` is the vector of token i. Looking a row up is the same as multiplying a one-hot
// vector by weight (Bengio et al. 2003's matrix C), without building the one-hot: an index_select.
// Its gradient adds each output row's gradient into the row it came from, so a token used twice in a
// batch receives the sum of both gradients.
#pragma once

#include "module.h"

namespace ng::nn {

class Embedding : public Module {
 public:
  // weight starts N(0, 1), as PyTorch's.
  Embedding(int64_t num_embeddings, int64_t embedding_dim, Dtype dtype = float32);

  // indices: int64 of any shape [*] with values in 0..num_embeddings-1 -> y: [*, embedding_dim]
  Tensor forward(const Tensor& indices) override;

  int64_t num_embeddings, embedding_dim;
  Tensor weight;  // [num_embeddings, embedding_dim]
};

}  // namespace ng::nn
