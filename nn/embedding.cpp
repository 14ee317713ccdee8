// embedding.cpp: nn::Embedding: the table, its N(0, 1) initialization, and the lookup.
#include "embedding.h"

#include "autograd/ops.h"
#include "checks.h"
#include "init.h"

namespace ng::nn {

Embedding::Embedding(int64_t num, int64_t dim, Dtype dtype) : num_embeddings(num), embedding_dim(dim) {
  if (num <= 0 || dim <= 0)
    throw Error("Embedding: sizes num_embeddings = " + std::to_string(num) +
                ", embedding_dim = " + std::to_string(dim) + "; expected both positive");
  detail::check_parameter_dtype("Embedding", dtype);
  weight = register_parameter("weight", empty({num, dim}, dtype));
  init::normal_(weight, 0, 1);
}

// indices: [*] int64 -> y: [*, embedding_dim]
//   y[i..., :] = weight[indices[i...], :]
// The indices are flattened to one list, the rows picked with index_select (whose backward is
// index_add: gradients of repeated indices add up), and the result given the indices' shape plus the
// embedding dim.
Tensor Embedding::forward(const Tensor& indices) {
  if (indices.dtype() != int64)
    throw Error("Embedding: indices of dtype " + std::string(dtype_name(indices.dtype())) + " and shape " +
                shape_str(indices.shape()) + "; expected int64 token ids");
  const int64_t* id = indices.data<int64_t>();
  for (int64_t i = 0; i < indices.numel(); ++i)
    if (id[i] < 0 || id[i] >= num_embeddings)
      throw Error("Embedding: index " + std::to_string(id[i]) + " (element " + std::to_string(i) + " of indices " +
                  shape_str(indices.shape()) + ") is out of range for " + std::to_string(num_embeddings) +
                  " embeddings; expected 0.." + std::to_string(num_embeddings - 1));
  Tensor rows = index_select(weight, 0, reshape(indices, {indices.numel()}));  // [numel, embedding_dim]
  Shape out_shape = indices.shape();
  out_shape.push_back(embedding_dim);
  return reshape(rows, out_shape);
}

}  // namespace ng::nn
