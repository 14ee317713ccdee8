// paper_mlp.cpp: building the paper's MLP and looking inside it (see paper_mlp.h).
#include "paper_mlp.h"

#include <vector>

#include "autograd/graph.h"
#include "examples/common/training.h"
#include "nn/activation.h"
#include "nn/batchnorm.h"
#include "nn/flatten.h"
#include "nn/init.h"
#include "nn/linear.h"

namespace examples {

PaperMlp make_paper_mlp(bool batch_norm, uint64_t seed) {
  constexpr int64_t kSizes[] = {784, 100, 100, 100, 10};
  PaperMlp mlp;
  mlp.net = std::make_shared<ng::nn::Sequential>();
  mlp.net->push_back(std::make_shared<ng::nn::Flatten>());
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
  // W ~ N(0, 0.1^2), b = 0: the paper's "small random Gaussian values". Drawn after construction from
  // a fresh seed, so both variants get the same matrices.
  ng::manual_seed(seed);
  for (const auto& linear : linears) {
    ng::nn::init::normal_(linear->weight, 0, 0.1);
    if (linear->bias.defined()) ng::nn::init::zeros_(linear->bias);
  }
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
