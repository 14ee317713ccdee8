// profile_step.cpp: runs the benchmark's MLP training step (784-100-100-100-10, sigmoid, batch 60; with or
// without BatchNorm) a fixed number of times and nothing else, for a profiler. Timings come from bench.cpp;
// this program is for finding where the time goes:
//   valgrind --tool=callgrind build/tests/bench/profile_step BN 200     (instruction counts, repeatable;
//                                                     configure with -Dnative=false: valgrind lacks AVX-512)
//   perf record -g build/tests/bench/profile_step noBN 20000 && perf report
// Usage: profile_step BN|noBN [STEPS]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "normgrad.h"
#include "optim/sgd.h"

int main(int argc, char** argv) {
  const std::string variant = argc > 1 ? argv[1] : "";
  if (variant != "BN" && variant != "noBN") {
    std::fprintf(stderr, "usage: %s BN|noBN [STEPS]\n", argv[0]);
    return 2;
  }
  const bool bn = variant == "BN";
  const long steps = argc > 2 ? std::atol(argv[2]) : 1000;

  // The network and data of bench.cpp's train_step cases.
  ng::manual_seed(1234);
  ng::nn::Sequential net;
  const int64_t sizes[] = {784, 100, 100, 100};
  for (int i = 0; i < 3; ++i) {
    auto linear = std::make_shared<ng::nn::Linear>(sizes[i], sizes[i + 1], !bn);
    ng::nn::init::normal_(linear->weight, 0.0, 0.1);
    net.push_back(linear);
    if (bn) net.push_back(std::make_shared<ng::nn::BatchNorm1d>(sizes[i + 1]));
    net.push_back(std::make_shared<ng::nn::Sigmoid>());
  }
  net.push_back(std::make_shared<ng::nn::Linear>(100, 10));
  net.train();
  ng::optim::SGD sgd(net.parameters(), {.lr = 0.1});
  std::vector<ng::Tensor> images, labels;
  for (int i = 0; i < 10; ++i) {
    images.push_back(ng::rand({60, 784}));
    std::vector<int64_t> batch_labels(60);
    for (auto& label : batch_labels) label = static_cast<int64_t>(ng::random_u64() % 10);
    labels.push_back(ng::from_vector(batch_labels, {60}));
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
