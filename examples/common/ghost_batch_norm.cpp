// ghost_batch_norm.cpp: BatchNorm over sub-batches (see ghost_batch_norm.h).
#include "ghost_batch_norm.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/ops.h"

namespace examples {

GhostBatchNorm1d::GhostBatchNorm1d(int64_t num_features, int64_t ghost)
    : ghost_size(ghost), bn(register_module("bn", std::make_shared<ng::nn::BatchNorm1d>(num_features))) {
  if (ghost < 2)
    throw std::invalid_argument("GhostBatchNorm1d: ghost_size " + std::to_string(ghost) + "; expected >= 2");
}

// x: [N, C] -> y: [N, C], rows [k g, (k + 1) g) normalized together
ng::Tensor GhostBatchNorm1d::forward(const ng::Tensor& x) {
  if (!is_training()) return (*bn)(x);
  const int64_t n = x.dim() > 0 ? x.size(0) : 0;
  if (n % ghost_size != 0)
    throw ng::Error("GhostBatchNorm1d: batch of " + std::to_string(n) +
                    " examples; expected a multiple of the ghost size " + std::to_string(ghost_size));
  std::vector<ng::Tensor> parts;
  for (int64_t start = 0; start < n; start += ghost_size)
    parts.push_back((*bn)(ng::slice(x, 0, start, start + ghost_size)));
  return ng::cat(parts, 0);
}

}  // namespace examples
