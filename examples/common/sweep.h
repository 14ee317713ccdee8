// sweep.h: what bn_paper and bn_cnn share: a sweep over learning rates, each trained with and/or
// without Batch Normalization on Fashion-MNIST.
//
// The options (--steps, --lr, --batch, --seed, --eval-every, --out, --data, --bn) with each program's
// defaults and help, read into a SweepConfig; the names and labels of the runs in metrics.csv and in the
// figures; a run's record; the check that the data is there; and the training loop of one run, with its
// measurements, its status line and its stop when the loss diverges.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataloader.h"
#include "examples/common/args.h"
#include "examples/common/progress.h"
#include "examples/common/training.h"

namespace examples {

struct SweepConfig {
  int64_t steps, batch, eval_every;
  uint64_t seed;
  std::vector<double> learning_rates;  // each listed once
  std::vector<bool> batch_norm;        // which nets to train: false = without BN, true = with BN
  std::string out, data;
};

// One run of the sweep: one net (with or without BN) at one learning rate, and what was measured on it
// (Measurement is each program's own: a step, the mean training loss since the last measurement and the
// test accuracy, then whatever else the program measures; every number NaN unless set).
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

// What the runs of a sweep share while they train: the status line, and the step counts behind its ETA
// (over all runs; a run that diverges takes its remaining steps off steps_planned).
struct SweepProgress {
  ProgressLine line;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  int64_t steps_planned = 0, steps_done = 0;
};

// The status line of a run: net, learning rate, step, mean loss, the last test accuracy, speed and ETA.
std::string sweep_status(const SweepProgress& progress, const SweepConfig& config, bool batch_norm, double lr,
                         int64_t step, double mean_loss, double test_acc, double steps_per_second);

// The training loop of one run, the same for every sweep: config.steps SGD steps (train_step) on
// shuffled mini-batches of config.batch (the last partial batch of an epoch dropped). `measure(step,
// train_loss)` measures the net at step 0 (train_loss NaN: nothing trained yet), every config.eval_every
// steps and at the last step, train_loss being the mean loss since the previous measurement; each
// measurement is followed by write_outputs(), so the figures can be watched while the sweep runs. A loss
// that is NaN or Inf stops the run there: it is marked diverged, with a last measurement of that step and
// loss and nothing else (a NaN net predicts one class; there is nothing more to measure).
template <class Measurement>
void train_sweep_run(SweepRun<Measurement>& run, const SweepConfig& config, ng::nn::Module& net,
                     ng::optim::Optimizer& optimizer, ng::data::Dataset& train, SweepProgress& progress,
                     const std::function<Measurement(int64_t step, double train_loss)>& measure,
                     const std::function<void()>& write_outputs) {
  using Clock = std::chrono::steady_clock;
  const std::string name = model_label(run.batch_norm) + " lr " + lr_text(run.lr);
  const auto status = [&](int64_t step, double mean_loss) {  // (after the first measurement, at step 0)
    return sweep_status(progress, config, run.batch_norm, run.lr, step, mean_loss, run.measurements.back().test_acc,
                        static_cast<double>(run.steps_done) / run.train_seconds);
  };
  ng::data::DataLoader loader(train,
                              {.batch_size = config.batch, .shuffle = true, .seed = config.seed, .drop_last = true});
  run.measurements.push_back(measure(0, std::nan("")));
  write_outputs();
  double loss_sum = 0;  // since the last measurement: its mean is the train_loss reported there
  int64_t loss_count = 0, step = 0;
  while (step < config.steps && !run.diverged) {
    for (const ng::data::Batch& batch : loader) {
      const auto t0 = Clock::now();
      const double loss = train_step(net, optimizer, batch);
      run.train_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      ++step, ++run.steps_done, ++progress.steps_done;
      if (!std::isfinite(loss)) {
        run.diverged = true;
        run.measurements.push_back(Measurement{step, loss});
        progress.steps_planned -= config.steps - step;
        progress.line.message(name + ": loss is " + format("%g", loss) + " at step " + std::to_string(step) +
                              ", the run diverged; stopping it");
        break;
      }
      loss_sum += loss, ++loss_count;
      const double mean_loss = loss_sum / static_cast<double>(loss_count);
      if (step % config.eval_every == 0 || step == config.steps) {
        run.measurements.push_back(measure(step, mean_loss));
        write_outputs();
        loss_sum = 0, loss_count = 0;
      }
      progress.line.update(status(step, mean_loss), static_cast<double>(step) / static_cast<double>(config.steps));
      if (step == config.steps) break;
    }
  }
  write_outputs();
  if (run.diverged)
    progress.line.done(name + "  diverged at step " + std::to_string(step));
  else
    progress.line.done(status(step, run.measurements.back().train_loss));
}

}  // namespace examples
