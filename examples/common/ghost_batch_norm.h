// ghost_batch_norm.h: "ghost" Batch Normalization (Hoffer et al. 2017): a large batch normalized in
// sub-batches, each with its own statistics.
//
// BN's statistics over a batch of N carry a noise of about 1/sqrt(N) (examples/batch_noise), which
// regularizes; a large batch has little of it. Ghost BN keeps the large batch for the gradient step
// but normalizes each consecutive group of `ghost_size` examples alone, so every example sees the noise
// of a batch of ghost_size. One BatchNorm1d does the work: gamma and beta are shared, and its running
// averages take one update per sub-batch. In eval mode it is that BatchNorm1d, with the running averages.
#pragma once

#include <cstdint>
#include <memory>

#include "nn/batchnorm.h"

namespace examples {

class GhostBatchNorm1d : public ng::nn::Module {
 public:
  // ghost_size >= 2 (else std::invalid_argument): BN needs two values to take a variance.
  GhostBatchNorm1d(int64_t num_features, int64_t ghost_size);

  // x: [N, C] -> y: [N, C]; in training N must be a multiple of ghost_size (else ng::Error).
  ng::Tensor forward(const ng::Tensor& x) override;

  int64_t ghost_size;
  std::shared_ptr<ng::nn::BatchNorm1d> bn;
};

}  // namespace examples
