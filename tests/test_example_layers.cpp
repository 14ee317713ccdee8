// test_example_layers.cpp: the layers and nets the examples build for themselves: ghost BatchNorm
// (examples/common/ghost_batch_norm.h) and the variants of the paper's MLP (examples/common/paper_mlp.h).
#include <doctest/doctest.h>

#include "examples/common/ghost_batch_norm.h"
#include "examples/common/paper_mlp.h"
#include "nn/whitening.h"
#include "normgrad.h"
#include "test_helpers.h"

using namespace examples;
using ng::Tensor;

TEST_CASE("ghost BN normalizes each sub-batch with its own statistics") {
  ng::manual_seed(3);
  const Tensor x = ng::randn({12, 5}) * 2.0 + 1.0;
  GhostBatchNorm1d ghost(5, 4);
  const Tensor y = ghost(x);
  for (int64_t start = 0; start < 12; start += 4) {
    const Tensor part = ng::slice(x, 0, start, start + 4);
    const Tensor expected = ng::nn::functional::batch_norm_fused(part, Tensor(), Tensor(), 1e-5);
    CHECK(max_abs_difference(ng::slice(y, 0, start, start + 4), expected) < 1e-5);
  }
  // and so differs from BN over the whole batch
  CHECK(max_abs_difference(y, ng::nn::functional::batch_norm_fused(x, Tensor(), Tensor(), 1e-5)) > 0.01);
  // one running-average update per sub-batch
  CHECK(ghost.bn->num_batches_tracked.item() == 3);
}

TEST_CASE("ghost BN in eval mode is its BatchNorm1d with the running averages, for any batch size") {
  ng::manual_seed(4);
  GhostBatchNorm1d ghost(3, 2);
  ghost(ng::randn({6, 3}));
  ghost.eval();
  const Tensor x = ng::randn({5, 3});
  CHECK(max_abs_difference(ghost(x), (*ghost.bn)(x)) == 0);
}

TEST_CASE("ghost BN rejects a training batch that its sub-batches do not divide, and sub-batches below 2") {
  GhostBatchNorm1d ghost(3, 4);
  CHECK_THROWS_WITH_AS(ghost(ng::zeros({10, 3})), doctest::Contains("multiple of the ghost size 4"), ng::Error);
  CHECK_THROWS_AS(GhostBatchNorm1d(3, 1), std::invalid_argument);
}

TEST_CASE("the MLP's variants share their weights for one seed and width, and have the layers asked for") {
  const PaperMlp plain = make_mlp({}, 7);
  const PaperMlp whitened = make_mlp({.normalization = Normalization::whitening}, 7);
  const PaperMlp relu = make_mlp({.activation = Activation::relu, .width = 100, .dropout = 0.2}, 7);
  for (std::size_t l = 0; l < 4; ++l) {
    CHECK(max_abs_difference(plain.linears[l]->weight, whitened.linears[l]->weight) == 0);
    CHECK(max_abs_difference(plain.linears[l]->weight, relu.linears[l]->weight) == 0);
  }
  CHECK(dynamic_cast<ng::nn::IterNorm*>(&(*whitened.net)[whitened.activations[0] - 1]) != nullptr);
  CHECK(dynamic_cast<ng::nn::ReLU*>(&(*relu.net)[relu.activations[0]]) != nullptr);
  CHECK(dynamic_cast<ng::nn::Dropout*>(&(*relu.net)[relu.activations[0] + 1]) != nullptr);
  // normalized hidden layers need no bias: the normalization's mean subtraction would cancel it
  CHECK_FALSE(whitened.linears[0]->bias.defined());
  CHECK(plain.linears[0]->bias.defined());
  const PaperMlp narrow = make_mlp({.width = 30}, 7);
  CHECK((*narrow.net)(ng::zeros({2, 1, 28, 28})).shape() == ng::Shape{2, 10});
}
