// profile_step.cpp: runs one of the benchmark's training steps a fixed number of times and nothing else, for
// a profiler: the MLP (784-100-100-100-10, sigmoid, batch 60) or the small CNN (two 3x3 convolutions with
// 16 and 32 channels, ReLU, 2x2 max pooling, a linear layer; batch 64), each with or without BatchNorm, or
// the tiny GPT of train_step_gpt_tiny (AdamW, gradient clipping). Timings come from bench.cpp;
// this program is for finding where the time goes:
//   valgrind --tool=callgrind build/tests/bench/profile_step BN 200     (instruction counts, repeatable;
//                                                     configure with -Dnative=false: valgrind lacks AVX-512)
//   perf record -g build/tests/bench/profile_step noBN 20000 && perf report
//   OMP_NUM_THREADS=1 perf record -g build/tests/bench/profile_step cnnBN 300 && perf report --no-children
//   OMP_NUM_THREADS=1 perf record -g build/tests/bench/profile_step gpt 1000 && perf report --no-children
// Usage: profile_step BN|noBN|cnnBN|cnnnoBN|gpt [STEPS]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "examples/common/gpt.h"
#include "normgrad.h"
#include "optim/sgd.h"

namespace {

// bench.cpp's train_step_gpt_tiny: 2 blocks of 4 heads, 64 features, 32 positions, batch 16, LayerNorm; one
// step is forward, cross entropy, zero_grad, backward, clip_grad_norm_ to 1, AdamW (weight decay on the
// parameters of 2 or more dims).
int profile_gpt(long steps) {
  const examples::GptConfig config{.vocab = 65, .block = 32, .n_layer = 2, .n_head = 4, .n_embd = 64, .norm = "layer"};
  const int64_t batch = 16;
  ng::manual_seed(1234);
  examples::Gpt model(config);
  model.train();
  std::vector<ng::Tensor> decayed, plain;
  for (const auto& [name, p] : model.named_parameters()) (p.dim() >= 2 ? decayed : plain).push_back(p);
  ng::optim::AdamW optimizer({{.params = decayed, .weight_decay = 0.1}, {.params = plain, .weight_decay = 0.0}},
                             {.lr = 3e-3});
  std::vector<ng::Tensor> tokens;  // inputs and targets alike, as bench.cpp's
  for (int i = 0; i < 10; ++i) {
    std::vector<int64_t> ids(static_cast<std::size_t>(batch * config.block));
    for (auto& id : ids) id = static_cast<int64_t>(ng::random_u64() % static_cast<uint64_t>(config.vocab));
    tokens.push_back(ng::from_vector(ids, {batch, config.block}));
  }
  double last_loss = 0;
  for (long step = 0; step < steps; ++step) {
    const ng::Tensor logits = model(tokens[step % 10]);  // [B, T, V]
    const ng::Tensor loss =
        ng::nn::cross_entropy(logits.reshape({-1, logits.size(-1)}), tokens[(step + 1) % 10].reshape({-1}));
    optimizer.zero_grad();
    loss.backward();
    ng::nn::clip_grad_norm_(model.parameters(), 1.0);
    optimizer.step();
    last_loss = loss.item();
  }
  std::printf("%ld steps (gpt), last loss %.4f\n", steps, last_loss);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string variant = argc > 1 ? argv[1] : "";
  if (variant != "BN" && variant != "noBN" && variant != "cnnBN" && variant != "cnnnoBN" && variant != "gpt") {
    std::fprintf(stderr, "usage: %s BN|noBN|cnnBN|cnnnoBN|gpt [STEPS]\n", argv[0]);
    return 2;
  }
  const bool bn = variant == "BN" || variant == "cnnBN", cnn = variant.rfind("cnn", 0) == 0;
  const long steps = argc > 2 ? std::atol(argv[2]) : 1000;
  if (variant == "gpt") return profile_gpt(steps);

  // The networks and data of bench.cpp's train_step and train_step_cnn cases.
  ng::manual_seed(1234);
  ng::nn::Sequential net;
  if (cnn) {
    const int64_t channels[] = {1, 16, 32};
    for (int i = 0; i < 2; ++i) {
      net.push_back(std::make_shared<ng::nn::Conv2d>(channels[i], channels[i + 1], ng::Pair{3, 3}, ng::Pair{1, 1},
                                                     ng::Pair{1, 1}, ng::Pair{1, 1}, 1, !bn));
      if (bn) net.push_back(std::make_shared<ng::nn::BatchNorm2d>(channels[i + 1]));
      net.push_back(std::make_shared<ng::nn::ReLU>());
      net.push_back(std::make_shared<ng::nn::MaxPool2d>(ng::Pair{2, 2}));
    }
    net.push_back(std::make_shared<ng::nn::Flatten>());
    net.push_back(std::make_shared<ng::nn::Linear>(32 * 7 * 7, 10));
  } else {
    const int64_t sizes[] = {784, 100, 100, 100};
    for (int i = 0; i < 3; ++i) {
      auto linear = std::make_shared<ng::nn::Linear>(sizes[i], sizes[i + 1], !bn);
      ng::nn::init::normal_(linear->weight, 0.0, 0.1);
      net.push_back(linear);
      if (bn) net.push_back(std::make_shared<ng::nn::BatchNorm1d>(sizes[i + 1]));
      net.push_back(std::make_shared<ng::nn::Sigmoid>());
    }
    net.push_back(std::make_shared<ng::nn::Linear>(100, 10));
  }
  net.train();
  ng::optim::SGD sgd(net.parameters(), {.lr = cnn ? 0.05 : 0.1, .momentum = cnn ? 0.9 : 0.0});
  std::vector<ng::Tensor> images, labels;
  const int64_t batch = cnn ? 64 : 60;
  for (int i = 0; i < 10; ++i) {
    images.push_back(cnn ? ng::rand({batch, 1, 28, 28}) : ng::rand({batch, 784}));
    std::vector<int64_t> batch_labels(static_cast<std::size_t>(batch));
    for (auto& label : batch_labels) label = static_cast<int64_t>(ng::random_u64() % 10);
    labels.push_back(ng::from_vector(batch_labels, {batch}));
  }

  double last_loss = 0;
  for (long step = 0; step < steps; ++step) {
    ng::Tensor loss = ng::nn::cross_entropy(net(images[step % 10]), labels[step % 10]);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    last_loss = loss.item();
  }
  std::printf("%ld steps (%s), last loss %.4f\n", steps, variant.c_str(), last_loss);
  return 0;
}
