// paper_mlp.cpp: building the paper's MLP and its variants, and looking inside them (see paper_mlp.h).
#include "paper_mlp.h"

#include <stdexcept>
#include <string>

#include "autograd/graph.h"
#include "examples/common/ghost_batch_norm.h"
#include "examples/common/training.h"
#include "nn/activation.h"
#include "nn/batchnorm.h"
#include "nn/flatten.h"
#include "nn/init.h"
#include "nn/whitening.h"

namespace examples {

namespace {

std::shared_ptr<ng::nn::Module> normalization_layer(const MlpOptions& options) {
  switch (options.normalization) {
    case Normalization::batch_norm:
      return std::make_shared<ng::nn::BatchNorm1d>(options.width);
    case Normalization::ghost_batch_norm:
      return std::make_shared<GhostBatchNorm1d>(options.width, options.ghost_batch);
    case Normalization::whitening:
      return std::make_shared<ng::nn::IterNorm>(options.width);
    case Normalization::none:
      break;
  }
  return nullptr;
}

}  // namespace

PaperMlp make_mlp(const MlpOptions& options, uint64_t seed) {
  if (options.width < 1)
    throw std::invalid_argument("make_mlp: width " + std::to_string(options.width) + "; expected >= 1");
  const int64_t sizes[] = {784, options.width, options.width, options.width, 10};
  const bool normalized = options.normalization != Normalization::none;
  PaperMlp mlp;
  mlp.net = std::make_shared<ng::nn::Sequential>();
  mlp.net->push_back(std::make_shared<ng::nn::Flatten>());
  for (int layer = 0; layer < 4; ++layer) {
    const bool hidden = layer < 3;
    mlp.linears.push_back(std::make_shared<ng::nn::Linear>(sizes[layer], sizes[layer + 1], !(hidden && normalized)));
    mlp.net->push_back(mlp.linears.back());
    if (!hidden) break;
    if (normalized) mlp.net->push_back(normalization_layer(options));
    mlp.activations.push_back(mlp.net->size());
    if (options.activation == Activation::sigmoid)
      mlp.net->push_back(std::make_shared<ng::nn::Sigmoid>());
    else
      mlp.net->push_back(std::make_shared<ng::nn::ReLU>());
    if (options.dropout > 0) mlp.net->push_back(std::make_shared<ng::nn::Dropout>(options.dropout));
  }
  mlp.last_sigmoid = mlp.activations.back();
  // W ~ N(0, 0.1^2), b = 0: the paper's "small random Gaussian values". Drawn after construction from
  // a fresh seed, so all variants of one width get the same matrices.
  ng::manual_seed(seed);
  for (const auto& linear : mlp.linears) {
    ng::nn::init::normal_(linear->weight, 0, 0.1);
    if (linear->bias.defined()) ng::nn::init::zeros_(linear->bias);
  }
  return mlp;
}

PaperMlp make_paper_mlp(bool batch_norm, uint64_t seed) {
  return make_mlp({.normalization = batch_norm ? Normalization::batch_norm : Normalization::none}, seed);
}

ng::Tensor last_sigmoid_input(const PaperMlp& mlp, const ng::Tensor& inputs) {
  EvalScope eval(*mlp.net);
  ng::NoGradGuard no_grad;
  ng::Tensor h = inputs;
  for (int64_t i = 0; i < mlp.last_sigmoid; ++i) h = (*mlp.net)[i](h);
  return h;
}

}  // namespace examples
