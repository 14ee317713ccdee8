// sweep.cpp: the options, the run names and the status line of bn_paper's and bn_cnn's learning-rate
// sweeps (sweep.h; the training loop, a template, is there).
#include "examples/common/sweep.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "data/mnist.h"

namespace examples {

void declare_sweep_options(ArgParser& args, const SweepDefaults& defaults) {
  args.option("steps", "N", "training steps (mini-batches) per net", defaults.steps);
  args.option("lr", "A[,B,...]", defaults.lr_help, defaults.lr);
  args.option("batch", "N", "mini-batch size", defaults.batch);
  args.option("seed", "S", "seed for the weights and the batch order", "1");
  args.option("eval-every", "K", defaults.eval_every_help, "500");
  args.option("out", "DIR", "output folder", defaults.out);
  args.option("data", "DIR", "Fashion-MNIST folder (IDX files)", ng::data::default_fashion_mnist_dir());
  args.option("bn", "on|off|both", "train the net with BN, without, or both", "both");
}

SweepConfig read_sweep_options(const ArgParser& args) {
  SweepConfig config;
  config.steps = args.get_int("steps", 1, 100'000'000);
  config.batch = args.get_int("batch", 2, 60'000);  // BN needs at least 2 examples for a variance
  config.eval_every = args.get_int("eval-every", 1, 100'000'000);
  config.seed = static_cast<uint64_t>(args.get_int("seed", 0, std::numeric_limits<int64_t>::max()));
  config.learning_rates = args.get_positive_list("lr");
  for (std::size_t i = 0; i < config.learning_rates.size(); ++i)
    if (std::count(config.learning_rates.begin(), config.learning_rates.end(), config.learning_rates[i]) > 1)
      throw UsageError("--lr: " + lr_text(config.learning_rates[i]) + " is listed twice; each learning rate runs once");
  const std::string bn = args.get_choice("bn", {"on", "off", "both"});
  if (bn != "on") config.batch_norm.push_back(false);
  if (bn != "off") config.batch_norm.push_back(true);
  config.out = args.get("out");
  config.data = args.get("data");
  return config;
}

std::string model_name(bool batch_norm) { return batch_norm ? "bn" : "plain"; }
std::string model_label(bool batch_norm) { return batch_norm ? "with BN" : "without BN"; }

std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

std::string lr_text(double lr) { return format("%g", lr); }

bool fashion_mnist_found(const char* program, const std::string& dir) {
  if (ng::data::MNIST::available(dir)) return true;
  std::fprintf(stderr,
               "%s: Fashion-MNIST was not found in %s (expected train-images-idx3-ubyte.gz and the other\n"
               "IDX files there). Install it with `apt-get install dataset-fashion-mnist`, or point --data at\n"
               "a folder that holds it.\n",
               program, dir.c_str());
  return false;
}

std::string sweep_status(const SweepProgress& progress, const SweepConfig& config, bool batch_norm, double lr,
                         int64_t step, double mean_loss, double test_acc, double steps_per_second) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - progress.start).count();
  // The rate so far, evaluations included; in the first second it says little.
  const double eta = elapsed / static_cast<double>(progress.steps_done) *
                     static_cast<double>(progress.steps_planned - progress.steps_done);
  std::string net = model_label(batch_norm);
  net.resize(10, ' ');
  return net + " lr " + lr_text(lr) + "  step " + std::to_string(step) + "/" + std::to_string(config.steps) +
         "  loss " + format("%.4f", mean_loss) + "  test acc " + format("%.4f", test_acc) + "  " +
         format(steps_per_second < 100 ? "%.1f" : "%.0f", steps_per_second) + " steps/s  ETA " +
         (elapsed < 1 ? "-" : format_duration(eta));
}

}  // namespace examples
