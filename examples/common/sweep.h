// sweep.h: what bn_paper and bn_cnn share: a sweep over learning rates, each trained with and/or
// without Batch Normalization on Fashion-MNIST.
//
// The options (--steps, --lr, --batch, --seed, --eval-every, --out, --data, --bn) with each program's
// defaults and help, read into a SweepConfig; the names and labels of the runs in metrics.csv and in the
// figures; a run's record; and the check that the data is there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "examples/common/args.h"

namespace examples {

struct SweepConfig {
  int64_t steps, batch, eval_every;
  uint64_t seed;
  std::vector<double> learning_rates;  // each listed once
  std::vector<bool> batch_norm;        // which nets to train: false = without BN, true = with BN
  std::string out, data;
};

// One run of the sweep: one net (with or without BN) at one learning rate, and what was measured on it
// (Measurement is each program's own: a step and the numbers taken there).
template <class Measurement> struct SweepRun {
  bool batch_norm;
  double lr;
  std::vector<Measurement> measurements;
  int64_t steps_done = 0;
  double train_seconds = 0;  // in train_step only: evaluation is not counted
  bool diverged = false;     // the loss became NaN or Inf; the run stopped there
};

// What differs between the programs: the defaults (as the text given on the command line) and the help
// of --lr and --eval-every.
struct SweepDefaults {
  std::string steps, lr, lr_help, batch, eval_every_help, out;
};

// Declares the sweep's options on `args`: --steps, --lr, --batch, --seed (default 1), --eval-every
// (default 500), --out, --data (default ng::data::default_fashion_mnist_dir()), --bn (default both).
void declare_sweep_options(ArgParser& args, const SweepDefaults& defaults);

// Reads them after args.parse(); throws UsageError for a value out of range or a learning rate listed twice.
SweepConfig read_sweep_options(const ArgParser& args);

std::string model_name(bool batch_norm);                // "bn" or "plain", as in metrics.csv
std::string model_label(bool batch_norm);               // "with BN" or "without BN", as in the figures
std::string format(const char* pattern, double value);  // snprintf of one number
std::string lr_text(double lr);                         // "%g": 0.1, 5, 0.01

// True when Fashion-MNIST is in `dir`; otherwise prints where it was looked for and how to install it,
// naming `program`, to stderr and returns false.
bool fashion_mnist_found(const char* program, const std::string& dir);

}  // namespace examples
