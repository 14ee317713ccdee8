// training.cpp: a training step and held-out accuracy (see training.h).
#include "training.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "nn/loss.h"

namespace examples {

double train_step(ng::nn::Module& model, ng::optim::Optimizer& optimizer, const ng::data::Batch& batch) {
  const ng::Tensor loss = ng::nn::cross_entropy(model(batch.inputs), batch.labels);
  optimizer.zero_grad();
  loss.backward();
  optimizer.step();
  return loss.item();
}

double test_accuracy(ng::nn::Module& model, const ng::data::Dataset& data, int64_t count, int64_t batch_size) {
  if (batch_size < 1)  // the loop below would never advance
    throw std::invalid_argument("test_accuracy: batch_size " + std::to_string(batch_size) + "; expected >= 1");
  const int64_t n = count < 0 ? data.size() : std::min(count, data.size());
  if (n == 0) return 0;
  EvalScope eval(model);
  ng::NoGradGuard no_grad;
  int64_t correct = 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    std::vector<int64_t> indices(static_cast<std::size_t>(std::min(batch_size, n - start)));
    std::iota(indices.begin(), indices.end(), start);
    const ng::data::Batch batch = data.get_batch(indices);
    // logits [B, 10] -> predicted class [B]
    const ng::Tensor predicted = ng::argmax(model(batch.inputs), 1);
    const int64_t* guess = predicted.data<int64_t>();
    const int64_t* label = batch.labels.data<int64_t>();
    for (std::size_t i = 0; i < indices.size(); ++i) correct += guess[i] == label[i];
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace examples
