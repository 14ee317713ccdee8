// paper_mlp.cpp: building the paper's MLP and looking inside it (see paper_mlp.h).
#include "paper_mlp.h"

#include <algorithm>
#include <vector>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "examples/common/flatten.h"
#include "examples/common/training.h"
#include "nn/activation.h"
#include "nn/batchnorm.h"
#include "nn/linear.h"

namespace examples {

namespace {

// W ~ N(0, 0.1^2), b = 0: the paper's "small random Gaussian values".
void init_paper_weights(ng::nn::Linear& layer) {
  ng::NoGradGuard no_grad;
  const ng::Tensor drawn = ng::randn(layer.weight.shape()) * 0.1;
  std::copy_n(drawn.data<float>(), drawn.numel(), layer.weight.data<float>());
  if (layer.bias.defined()) std::fill_n(layer.bias.data<float>(), layer.bias.numel(), 0.0f);
}

}  // namespace

PaperMlp make_paper_mlp(bool batch_norm, uint64_t seed) {
  constexpr int64_t kSizes[] = {784, 100, 100, 100, 10};
  PaperMlp mlp;
  mlp.net = std::make_shared<ng::nn::Sequential>();
  mlp.net->push_back(std::make_shared<Flatten>());
  std::vector<std::shared_ptr<ng::nn::Linear>> linears;
  for (int layer = 0; layer < 4; ++layer) {
    const bool hidden = layer < 3;
    linears.push_back(std::make_shared<ng::nn::Linear>(kSizes[layer], kSizes[layer + 1], !(hidden && batch_norm)));
    mlp.net->push_back(linears.back());
    if (!hidden) break;
    if (batch_norm) mlp.net->push_back(std::make_shared<ng::nn::BatchNorm1d>(kSizes[layer + 1]));
    mlp.last_sigmoid = mlp.net->size();
    mlp.net->push_back(std::make_shared<ng::nn::Sigmoid>());
  }
  // Drawn after construction from a fresh seed, so both variants get the same matrices.
  ng::manual_seed(seed);
  for (const auto& linear : linears) init_paper_weights(*linear);
  return mlp;
}

ng::Tensor last_sigmoid_input(const PaperMlp& mlp, const ng::Tensor& inputs) {
  EvalScope eval(*mlp.net);
  ng::NoGradGuard no_grad;
  ng::Tensor h = inputs;
  for (int64_t i = 0; i < mlp.last_sigmoid; ++i) h = (*mlp.net)[i](h);
  return h;
}

}  // namespace examples
