// test_training.cpp: end to end, the pieces train a network. The BN paper's sigmoid MLP
// (examples/common/paper_mlp.h, the net of examples/bn_paper) is trained for a few hundred SGD steps
// on Fashion-MNIST; its loss must fall clearly, its accuracy must beat chance (10%) by far, and with
// BN it must learn faster than without, the paper's Figure 1(a). Skipped, with a message, when the
// dataset is not installed (apt-get install dataset-fashion-mnist). First, test_accuracy's counting on
// a dataset small enough to check by hand.
#include <doctest/doctest.h>

#include <memory>
#include <numeric>
#include <vector>

#include "data/dataloader.h"
#include "data/mnist.h"
#include "examples/common/paper_mlp.h"
#include "examples/common/training.h"
#include "nn/activation.h"
#include "optim/sgd.h"
#include "test_requirements.h"

using namespace examples;

namespace {

constexpr uint64_t kSeed = 1;
constexpr int64_t kTestImages = 1000;

struct FashionMnist {
  ng::data::MNIST train, test;
};

// Loaded once for all test cases; null when the dataset is missing.
const FashionMnist* fashion_mnist() {
  static const std::unique_ptr<FashionMnist> data = []() -> std::unique_ptr<FashionMnist> {
    const std::string dir = ng::data::default_fashion_mnist_dir();
    if (!ng::data::MNIST::available(dir)) return nullptr;
    return std::make_unique<FashionMnist>(FashionMnist{ng::data::MNIST(dir, true), ng::data::MNIST(dir, false)});
  }();
  return data.get();
}

struct TrainingResult {
  std::vector<double> losses;  // one per step
  double test_accuracy;        // on the first kTestImages test images
};

TrainingResult train_paper_mlp(const FashionMnist& data, bool batch_norm, double lr, int64_t steps) {
  PaperMlp mlp = make_paper_mlp(batch_norm, kSeed);
  ng::optim::SGD sgd(mlp.net->parameters(), {.lr = lr});
  ng::data::DataLoader loader(data.train, {.batch_size = 60, .shuffle = true, .seed = kSeed, .drop_last = true});
  TrainingResult result;
  for (const ng::data::Batch& batch : loader) {
    result.losses.push_back(train_step(*mlp.net, sgd, batch));
    if (static_cast<int64_t>(result.losses.size()) == steps) break;
  }
  result.test_accuracy = test_accuracy(*mlp.net, data.test, kTestImages);
  return result;
}

double mean_of(const std::vector<double>& v, std::size_t begin, std::size_t end) {
  return std::accumulate(v.begin() + static_cast<std::ptrdiff_t>(begin), v.begin() + static_cast<std::ptrdiff_t>(end),
                         0.0) /
         static_cast<double>(end - begin);
}

// Example i: three "logits", the largest (1) at position i % 3, and a label.
struct ArgmaxDataset : ng::data::Dataset {
  int64_t size() const override { return 5; }
  ng::data::Example get(int64_t i) const override {
    check_index("ArgmaxDataset", i);
    std::vector<double> logits(3, 0.0);
    logits[static_cast<std::size_t>(i % 3)] = 1;
    const int64_t labels[] = {0, 1, 2, 2, 1};
    return {ng::tensor(logits), labels[i]};
  }
};

}  // namespace

TEST_CASE("test_accuracy counts the examples whose largest logit is their label, in eval mode, batch by batch") {
  // Example i's largest logit is at i % 3 = 0, 1, 2, 0, 1; the labels are 0, 1, 2, 2, 1: four of five right.
  const ArgmaxDataset data;
  ng::nn::Identity model;  // the inputs are the logits
  CHECK(test_accuracy(model, data, -1, 2) == doctest::Approx(4.0 / 5));
  CHECK(test_accuracy(model, data, 4, 3) == doctest::Approx(3.0 / 4));  // the first four only
  CHECK(test_accuracy(model, data, 100, 1000) == doctest::Approx(4.0 / 5));
  CHECK(model.is_training());  // the mode it was in is restored
  CHECK_THROWS_WITH_AS(test_accuracy(model, data, -1, 0), doctest::Contains("batch_size 0; expected >= 1"),
                       std::invalid_argument);
}

TEST_CASE("the BN sigmoid MLP's loss falls and it beats chance by far after 300 SGD steps" *
          doctest::skip(fashion_mnist_missing())) {
  const FashionMnist* data = fashion_mnist();
  REQUIRE(data != nullptr);
  const TrainingResult bn = train_paper_mlp(*data, true, 0.5, 300);
  REQUIRE(bn.losses.size() == 300);
  const double last = mean_of(bn.losses, 280, 300);
  MESSAGE("loss: step 1 " << bn.losses[0] << ", mean of the last 20 steps " << last << "; test accuracy "
                          << bn.test_accuracy);
  CHECK(bn.losses[0] > 2.0);  // about ln(10) = 2.3 at the start: ten classes, nothing learned yet
  CHECK(last < 0.3 * bn.losses[0]);
  CHECK(bn.test_accuracy > 0.7);
}

TEST_CASE("with BN the sigmoid MLP is ahead of the same net without BN early in training (lr 0.1)" *
          doctest::skip(fashion_mnist_missing())) {
  const FashionMnist* data = fashion_mnist();
  REQUIRE(data != nullptr);
  const TrainingResult bn = train_paper_mlp(*data, true, 0.1, 300);
  const TrainingResult plain = train_paper_mlp(*data, false, 0.1, 300);
  MESSAGE("after 300 steps at lr 0.1: test accuracy with BN " << bn.test_accuracy << ", without BN "
                                                              << plain.test_accuracy);
  // Measured for seeds 1 to 5 on all 10,000 test images: 0.78-0.79 with BN, 0.16-0.27 without.
  CHECK(bn.test_accuracy > plain.test_accuracy + 0.3);
  CHECK(mean_of(bn.losses, 280, 300) < mean_of(plain.losses, 280, 300));
}
