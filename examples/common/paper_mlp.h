// paper_mlp.h: the network of the BN paper's MNIST experiment (Ioffe & Szegedy 2015, section 4.1),
// its variants for the other examples, and the quantity its Figure 1(b, c) follows: the input of one sigmoid.
//
// 784-100-100-100-10, sigmoid hidden units, weights drawn from N(0, 0.1^2), biases zero:
//   without BN:  Linear(bias) -> Sigmoid                    (three times), then Linear(100, 10)
//   with BN:     Linear(no bias) -> BatchNorm1d -> Sigmoid  (three times), then Linear(100, 10)
// With BN the Linear needs no bias: BN subtracts the batch mean, which would cancel it, and BN's beta
// takes over its role. The variants (MlpOptions) change one thing each: the normalization (ghost BN,
// IterNorm whitening), the activation (ReLU), the width, or a Dropout after each hidden activation.
// examples/bn_paper trains the first two; tests/test_training.cpp trains them briefly.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "nn/linear.h"
#include "nn/sequential.h"

namespace examples {

enum class Normalization {
  none,
  batch_norm,        // BatchNorm1d
  ghost_batch_norm,  // BatchNorm1d over sub-batches of MlpOptions::ghost_batch examples (ghost_batch_norm.h)
  whitening,         // nn::IterNorm with its default 5 iterations (nn/whitening.h)
};

enum class Activation { sigmoid, relu };

struct MlpOptions {
  Normalization normalization = Normalization::none;
  Activation activation = Activation::sigmoid;
  int64_t width = 100;      // units in each of the three hidden layers
  double dropout = 0;       // when > 0, Dropout(dropout) after each hidden activation
  int64_t ghost_batch = 0;  // the sub-batch size of ghost_batch_norm
};

struct PaperMlp {
  std::shared_ptr<ng::nn::Sequential> net;               // images [N, 1, 28, 28] -> logits [N, 10]
  std::vector<std::shared_ptr<ng::nn::Linear>> linears;  // the four Linear layers, first to last
  std::vector<int64_t> activations;                      // index in `net` of each hidden layer's Sigmoid (or ReLU)
  int64_t last_sigmoid = 0;                              // activations.back(): the last hidden layer's
};

// Every variant built with the same seed and width starts from the same weight matrices, so a
// comparison of two sees only the effect of what differs. Reseeds the global generator
// (ng::manual_seed) with `seed`.
PaperMlp make_mlp(const MlpOptions& options, uint64_t seed);
// The paper's net, without (false) or with (true) BatchNorm1d before each sigmoid.
PaperMlp make_paper_mlp(bool batch_norm, uint64_t seed);

// The input of the last hidden layer's sigmoid (the output of its BatchNorm1d, or of its Linear
// without BN), computed in eval mode under NoGradGuard: images [N, 1, 28, 28] -> [N, width].
ng::Tensor last_sigmoid_input(const PaperMlp& mlp, const ng::Tensor& inputs);

}  // namespace examples
