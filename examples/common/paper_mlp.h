// paper_mlp.h: the network of the BN paper's MNIST experiment (Ioffe & Szegedy 2015, section 4.1),
// and the quantity its Figure 1(b, c) follows: the input of one sigmoid.
//
// 784-100-100-100-10, sigmoid hidden units, weights drawn from N(0, 0.1^2), biases zero:
//   without BN:  Linear(bias) -> Sigmoid                    (three times), then Linear(100, 10)
//   with BN:     Linear(no bias) -> BatchNorm1d -> Sigmoid  (three times), then Linear(100, 10)
// With BN the Linear needs no bias: BN subtracts the batch mean, which would cancel it, and BN's beta
// takes over its role. examples/bn_paper trains both; tests/test_training.cpp trains them briefly.
#pragma once

#include <cstdint>
#include <memory>

#include "nn/sequential.h"

namespace examples {

struct PaperMlp {
  std::shared_ptr<ng::nn::Sequential> net;  // images [N, 1, 28, 28] -> logits [N, 10]
  int64_t last_sigmoid = 0;                 // index in `net` of the last hidden layer's Sigmoid
};

// Both variants built with the same seed start from the same weight matrices, so a comparison of the
// two sees only the effect of BN. Reseeds the global generator (ng::manual_seed) with `seed`.
PaperMlp make_paper_mlp(bool batch_norm, uint64_t seed);

// The input of the last hidden layer's sigmoid (the output of its BatchNorm1d, or of its Linear
// without BN), computed in eval mode under NoGradGuard: images [N, 1, 28, 28] -> [N, 100].
ng::Tensor last_sigmoid_input(const PaperMlp& mlp, const ng::Tensor& inputs);

}  // namespace examples
