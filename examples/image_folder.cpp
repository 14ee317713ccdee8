// image_folder: from picture files on disk to a trained network.
//
// Most real data sets are not IDX arrays but folders of pictures, one folder per class. This example
// makes such a folder from Fashion-MNIST's test set (a few hundred PNG files written with
// stb_image_write, in folders named by class: T-shirt_top/, Trouser/, ...), then reads it back with
// ng::data::ImageFolder (stb_image decodes, classes are the sorted folder names) and trains a small
// network on it: Linear -> BatchNorm1d -> ReLU -> Linear, with SGD and momentum. BN here plays the
// role the BN paper gives it: the hidden layer's input stays normalized, so a plain learning rate of
// 0.1 with momentum trains in a few hundred steps without any tuning. A fifth of the pictures is held
// out, and the accuracy on them is printed at the end (chance is 10%).
//
//   image_folder                       write into /tmp/normgrad_fashion_png, then train on it
//   image_folder --write DIR           only write the pictures
//   image_folder --train DIR           only train, on any folder of class folders
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/dataloader.h"
#include "data/image_folder.h"
#include "data/mnist.h"
#include "data/subset.h"
#include "examples/common/args.h"
#include "examples/common/atomic_file.h"
#include "examples/common/progress.h"
#include "examples/common/sweep.h"
#include "examples/common/training.h"
#include "nn/activation.h"
#include "nn/batchnorm.h"
#include "nn/flatten.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "optim/sgd.h"

using namespace examples;

namespace {

// Fashion-MNIST's labels 0..9, as folder names ('/' cannot be part of one).
const char* const kClassNames[] = {"T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
                                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle_boot"};

struct Config {
  std::optional<std::string> write_dir, train_dir;
  std::string data;
  int64_t per_class, steps, batch;
  double lr;
  uint64_t seed;
};

std::optional<Config> parse_config(int argc, char** argv) {
  const std::string default_dir = (std::filesystem::temp_directory_path() / "normgrad_fashion_png").string();
  ArgParser args("image_folder",
                 "Writes Fashion-MNIST test images as PNG files into class folders, reads them back with\n"
                 "ng::data::ImageFolder and trains a small BN network on them. Without --write or --train it\n"
                 "does both in " +
                     default_dir + ".");
  args.option("write", "DIR", "write the PNG files into DIR", "");
  args.option("train", "DIR", "train on the class folders in DIR", "");
  args.option("per-class", "N", "pictures to write per class", "50");
  args.option("data", "DIR", "Fashion-MNIST folder (IDX files) to take the pictures from",
              ng::data::default_fashion_mnist_dir());
  args.option("steps", "N", "training steps", "300");
  args.option("batch", "N", "mini-batch size", "32");
  args.option("lr", "A", "SGD learning rate (momentum 0.9)", "0.1");
  args.option("seed", "S", "seed for the weights, the held-out split and the batch order", "1");
  if (!args.parse(argc, argv)) return std::nullopt;
  Config config;
  if (args.given("write")) config.write_dir = args.get("write");
  if (args.given("train")) config.train_dir = args.get("train");
  if (!config.write_dir && !config.train_dir) config.write_dir = config.train_dir = default_dir;
  if ((config.write_dir && config.write_dir->empty()) || (config.train_dir && config.train_dir->empty()))
    throw UsageError("--write and --train need a folder name");
  config.data = args.get("data");
  config.per_class = args.get_int("per-class", 1, 1000);
  config.steps = args.get_int("steps", 1, 10'000'000);
  config.batch = args.get_int("batch", 2, 100'000);
  config.lr = args.get_positive_list("lr").front();
  config.seed = static_cast<uint64_t>(args.get_int("seed", 0, 1'000'000'000));
  return config;
}

// stb_image_write hands the encoded PNG over in pieces; they are collected, then written atomically.
void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

// The first `per_class` test images of each class -> dir/<class>/<index in the test set>.png
int write_pictures(const Config& config, const std::string& dir) {
  if (!fashion_mnist_found("image_folder", config.data)) return 1;
  const ng::data::MNIST test(config.data, false);
  std::vector<int64_t> written(10, 0);
  int64_t total = 0;
  for (int64_t index = 0; index < test.size() && total < 10 * config.per_class; ++index) {
    const ng::data::Example example = test.get(index);  // input [1, 28, 28] in [0, 1]
    if (written[static_cast<std::size_t>(example.label)] == config.per_class) continue;
    std::vector<unsigned char> pixels(static_cast<std::size_t>(example.input.numel()));
    const float* x = example.input.data<float>();
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(std::lround(x[i] * 255.0f));

    const std::filesystem::path folder = std::filesystem::path(dir) / kClassNames[example.label];
    std::filesystem::create_directories(folder);
    std::string png;
    const int width = static_cast<int>(test.width()), height = static_cast<int>(test.height());
    if (!stbi_write_png_to_func(append_bytes, &png, width, height, 1, pixels.data(), width))
      throw std::runtime_error("stb_image_write could not encode test image " + std::to_string(index));
    char name[32];
    std::snprintf(name, sizeof name, "%05lld.png", static_cast<long long>(index));
    write_file_atomically((folder / name).string(), png);
    ++written[static_cast<std::size_t>(example.label)], ++total;
  }
  std::printf("Wrote %lld PNG files (%lld per class) into %s/<class>/\n", static_cast<long long>(total),
              static_cast<long long>(config.per_class), dir.c_str());
  return 0;
}

int train_on_folder(const Config& config, const std::string& dir) {
  const ng::data::ImageFolder folder(dir);
  const int64_t n = folder.size(), num_classes = static_cast<int64_t>(folder.classes().size());
  std::printf("ImageFolder %s: %lld pictures in %lld classes:", dir.c_str(), static_cast<long long>(n),
              static_cast<long long>(num_classes));
  for (const std::string& name : folder.classes()) std::printf(" %s", name.c_str());
  std::printf("\n");

  // A fifth of the pictures, chosen at random, is held out for measuring accuracy.
  const int64_t held_out_count = std::max<int64_t>(1, n / 5);
  const std::vector<ng::data::Subset> split =
      ng::data::random_split(folder, {n - held_out_count, held_out_count}, config.seed);
  const ng::data::Subset& train = split[0];
  const ng::data::Subset& held_out = split[1];
  if (train.size() < 2) throw std::runtime_error("image_folder: " + dir + " has too few pictures to train on");

  // [N, 1, 28, 28] -> [N, 784] -> [N, 64] -> [N, classes]
  ng::manual_seed(config.seed);
  const int64_t pixels = 28 * 28;
  ng::nn::Sequential model{std::make_shared<ng::nn::Flatten>(), std::make_shared<ng::nn::Linear>(pixels, 64, false),
                           std::make_shared<ng::nn::BatchNorm1d>(64), std::make_shared<ng::nn::ReLU>(),
                           std::make_shared<ng::nn::Linear>(64, num_classes)};
  ng::optim::SGD sgd(model.parameters(), {.lr = config.lr, .momentum = 0.9});
  ng::data::DataLoader loader(
      train,
      {.batch_size = std::min(config.batch, train.size()), .shuffle = true, .seed = config.seed, .drop_last = true});

  ProgressLine progress;
  double loss_sum = 0;  // over the steps since the last status line
  int64_t loss_count = 0, step = 0;
  while (step < config.steps) {
    for (const ng::data::Batch& batch : loader) {
      loss_sum += train_step(model, sgd, batch), ++loss_count, ++step;
      if (step % 20 == 0 || step == config.steps) {
        char status[96];
        std::snprintf(status, sizeof status, "step %lld/%lld  loss %.4f", static_cast<long long>(step),
                      static_cast<long long>(config.steps), loss_sum / static_cast<double>(loss_count));
        progress.update(status, static_cast<double>(step) / static_cast<double>(config.steps));
        loss_sum = 0, loss_count = 0;
      }
      if (step == config.steps) break;
    }
  }
  progress.done("trained " + std::to_string(step) + " steps on " + std::to_string(train.size()) + " pictures");
  const double acc = test_accuracy(model, held_out);
  std::printf("Held-out accuracy: %.3f on %lld pictures (chance: %.3f)\n", acc, static_cast<long long>(held_out.size()),
              1.0 / static_cast<double>(num_classes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("image_folder", [&] {
    const std::optional<Config> config = parse_config(argc, argv);
    if (!config) return 0;
    if (config->write_dir)
      if (int status = write_pictures(*config, *config->write_dir); status != 0) return status;
    return config->train_dir ? train_on_folder(*config, *config->train_dir) : 0;
  });
}
