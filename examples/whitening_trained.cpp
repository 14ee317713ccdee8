// whitening_trained: a network trained with whitening in place of BN: what full decorrelation buys,
// and what it costs per step.
//
// The idea. Section 2 of the BN paper argues for normalizing each feature alone rather than whitening
// a layer's inputs, for two reasons: whitening costs too much (examples/whitening_cost times it), and
// its backward pass must go through the covariance matrix and its inverse square root. Here the
// whitening is trainable: nn::IterNorm (Huang et al. 2019, nn/whitening.h) computes Sigma^(-1/2) by
// Newton iterations made only of matrix products,
//   Sigma_N = Sigma / tr(Sigma),   P_0 = I,   P_k = (3 P_{k-1} - P_{k-1}^3 Sigma_N) / 2,
//   y = (x - mu) P_T / sqrt(tr(Sigma)),     then gamma * y + beta per feature,
// so its gradient is whatever the graph of those products gives (tests/test_whitening.cpp checks it
// against finite differences). Each step costs O(m d^2 + T d^3) for a batch of m and d features, against
// BN's O(m d), so the price grows with the width.
//
// The experiment: the BN paper's MLP (examples/common/paper_mlp.h, sigmoid units) with hidden layers
// of width d in {50, 100, 150}, trained on Fashion-MNIST with SGD (batches of 60, lr 0.1) three times
// per width from the same weights and batches: without normalization, with BatchNorm1d, and with
// IterNorm (5 iterations) before each sigmoid. Every --every steps: accuracy on the 10,000 test images.
// At the end: the mean |correlation| between the last hidden layer's sigmoid inputs (1,000 test images,
// eval mode), which whitening should bring towards 0 and BN leaves alone. Written into --out (default
// whitening_trained_out/): accuracy_d<width>.svg per width and time_per_step.svg.
//
// What the default run printed (1,000 steps; on 2 cores shared with other jobs, so the times are
// inflated and noisy; their ratios are what to read):
//    width normalized    acc @ 200   acc @ 1000    ms / step       x none   mean|corr|
//       50 none             0.1000       0.2764         0.34          1.0        0.975
//       50 BatchNorm        0.7533       0.8213         0.40          1.2        0.316
//       50 IterNorm         0.7361       0.8126         2.33          6.8        0.168
//      100 none             0.1000       0.5839         0.64          1.0        0.687
//      100 BatchNorm        0.7756       0.8305         0.73          1.1        0.310
//      100 IterNorm         0.7351       0.8139        11.71         18.3        0.113
//      150 none             0.1000       0.6552         0.89          1.0        0.618
//      150 BatchNorm        0.7833       0.8332         0.96          1.1        0.296
//      150 IterNorm         0.7200       0.8120        32.73         36.9        0.098
// (about 40 s of CPU; 70 to 85 s on the shared machine). Whitening does decorrelate: the mean
// |correlation| between sigmoid inputs is 0.10-0.17 against BN's 0.30 (and up to 0.98 without
// normalization), and it learns early, close behind BN (0.72-0.74 at step 200 against 0.75-0.78).
// But it ends 0.01-0.02 below BN at every width, so removing the correlations buys nothing here, and
// it costs 7 to 37 times a step without normalization where BN costs 1.1: its d^3 matrix products
// grow faster than the rest of the step (time ~ d^2.4 between d = 50 and 150). That is the paper's
// case for per-feature normalization, in numbers. (IterNorm's remedy, whitening groups of features
// separately, is not tried here.)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "data/dataloader.h"
#include "data/mnist.h"
#include "examples/common/args.h"
#include "examples/common/paper_mlp.h"
#include "examples/common/percentile.h"
#include "examples/common/svg_plot.h"
#include "examples/common/sweep.h"
#include "examples/common/training.h"
#include "optim/sgd.h"

using namespace examples;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t kProbeImages = 1000;

struct Config {
  int64_t steps, every;
  std::vector<int64_t> widths;
  double lr;
  uint64_t seed;
  std::string out, data;
};

const Normalization kKinds[] = {Normalization::none, Normalization::batch_norm, Normalization::whitening};

const char* kind_name(Normalization kind) {
  switch (kind) {
    case Normalization::none:
      return "none";
    case Normalization::batch_norm:
      return "BatchNorm";
    case Normalization::whitening:
      return "IterNorm";
    case Normalization::ghost_batch_norm:
      break;
  }
  return "?";
}

struct Run {
  Normalization kind;
  int64_t width;
  std::vector<int64_t> steps;
  std::vector<double> accuracy;
  std::vector<double> step_seconds;  // of each train_step
  double mean_abs_correlation = 0;
  // The median: robust to the steps that other jobs on the machine slowed down.
  double ms_per_step() const { return 1e3 * percentile(step_seconds, 50); }
};

// x: [m, d] -> the mean of |corr(x_j, x_k)| over the pairs j != k. corr_jk = Sigma_jk / sqrt(Sigma_jj Sigma_kk).
double mean_abs_correlation(const ng::Tensor& x) {
  const ng::Tensor centered = x.to(ng::float64) - x.to(ng::float64).mean({0}, true);
  const ng::Tensor sigma = ng::matmul(centered.t(), centered);  // the 1/m cancels in corr
  const int64_t d = sigma.size(0);
  const double* s = sigma.data<double>();
  double sum = 0;
  for (int64_t j = 0; j < d; ++j)
    for (int64_t k = 0; k < d; ++k)
      if (j != k) sum += std::abs(s[j * d + k]) / std::sqrt(s[j * d + j] * s[k * d + k]);
  return sum / static_cast<double>(d * (d - 1));
}

void train(Run& run, const Config& config, const ng::data::MNIST& train_set, const ng::data::MNIST& test_set,
           const ng::Tensor& probe) {
  PaperMlp mlp = make_mlp({.normalization = run.kind, .width = run.width}, config.seed);
  ng::optim::SGD sgd(mlp.net->parameters(), {.lr = config.lr});
  ng::data::DataLoader loader(train_set, {.batch_size = 60, .shuffle = true, .seed = config.seed, .drop_last = true});
  auto measure = [&](int64_t step) {
    run.steps.push_back(step);
    run.accuracy.push_back(test_accuracy(*mlp.net, test_set));
  };
  measure(0);
  int64_t step = 0;
  while (step < config.steps) {
    for (const ng::data::Batch& batch : loader) {
      const auto start = Clock::now();
      train_step(*mlp.net, sgd, batch);
      run.step_seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      if (++step % config.every == 0 || step == config.steps) measure(step);
      if (step == config.steps) break;
    }
  }
  run.mean_abs_correlation = mean_abs_correlation(last_sigmoid_input(mlp, probe));
}

double accuracy_at(const Run& run, int64_t step) {
  for (std::size_t i = 0; i < run.steps.size(); ++i)
    if (run.steps[i] == step) return run.accuracy[i];
  return std::numeric_limits<double>::quiet_NaN();
}

void print_table(const std::vector<Run>& runs, const Config& config) {
  const int64_t early = std::min<int64_t>(config.every * 2, config.steps);
  std::printf("\n%6s %-10s %12s %12s %12s %12s %12s\n", "width", "normalized",
              ("acc @ " + std::to_string(early)).c_str(), ("acc @ " + std::to_string(config.steps)).c_str(),
              "ms / step", "x none", "mean|corr|");
  for (const Run& run : runs) {
    const Run& plain = runs[static_cast<std::size_t>(&run - runs.data()) / 3 * 3];  // the same width, none
    std::printf("%6lld %-10s %12.4f %12.4f %12.2f %12.1f %12.3f\n", static_cast<long long>(run.width),
                kind_name(run.kind), accuracy_at(run, early), run.accuracy.back(), run.ms_per_step(),
                run.ms_per_step() / plain.ms_per_step(), run.mean_abs_correlation);
  }
  std::printf(
      "(acc: on the 10,000 test images; ms / step: median time of a forward, backward and update of one batch\n"
      " of 60; mean|corr|: between the last hidden layer's sigmoid inputs, 1,000 test images, eval mode)\n");
}

std::vector<Plot> figures(const std::vector<Run>& runs, const Config& config) {
  std::vector<Plot> plots;
  for (int64_t width : config.widths) {
    Plot plot;
    plot.title = "Test accuracy, sigmoid MLP 784-" + std::to_string(width) + "-" + std::to_string(width) + "-" +
                 std::to_string(width) + "-10";
    plot.x_label = "training step (mini-batches of 60)";
    plot.y_label = "test accuracy (10,000 images)";
    for (const Run& run : runs) {
      if (run.width != width) continue;
      Line line{kind_name(run.kind), palette_color(static_cast<int>(run.kind)), {}, run.accuracy};
      for (int64_t step : run.steps) line.x.push_back(static_cast<double>(step));
      plot.lines.push_back(line);
    }
    plots.push_back(plot);
  }
  Plot time;
  time.title = "Time per training step against width";
  time.x_label = "hidden width d (log scale)";
  time.y_label = "ms per step, batch of 60 (log scale)";
  time.x_log = time.y_log = true;
  for (Normalization kind : kKinds) {
    Line line{kind_name(kind), palette_color(static_cast<int>(kind)), {}, {}};
    line.markers = true;
    for (const Run& run : runs)
      if (run.kind == kind) line.x.push_back(static_cast<double>(run.width)), line.y.push_back(run.ms_per_step());
    time.lines.push_back(line);
  }
  plots.push_back(time);
  return plots;
}

std::optional<Config> parse_config(int argc, char** argv) {
  ArgParser args("whitening_trained",
                 "Trains the BN paper's sigmoid MLP on Fashion-MNIST without normalization, with BatchNorm and with\n"
                 "IterNorm whitening, at a few widths, and compares accuracy and time per step.");
  args.option("steps", "N", "training steps per net", "1000");
  args.option("widths", "D[,E,...]", "hidden widths", "50,100,150");
  args.option("lr", "A", "SGD learning rate", "0.1");
  args.option("every", "K", "measure test accuracy every K steps", "100");
  args.option("seed", "S", "seed for the weights and the batch order", "1");
  args.option("out", "DIR", "output folder", "whitening_trained_out");
  args.option("data", "DIR", "Fashion-MNIST folder (IDX files)", ng::data::default_fashion_mnist_dir());
  if (!args.parse(argc, argv)) return std::nullopt;
  Config config{args.get_int("steps", 1, 1'000'000),
                args.get_int("every", 1, 1'000'000),
                {},
                0,
                static_cast<uint64_t>(args.get_int("seed", 0, std::numeric_limits<int64_t>::max())),
                args.get("out"),
                args.get("data")};
  for (double width : args.get_positive_list("widths")) {
    if (width != std::floor(width) || width < 2 || width > 4096)
      throw UsageError("--widths: whole numbers from 2 to 4096 expected, got " + args.get("widths"));
    config.widths.push_back(static_cast<int64_t>(width));
  }
  const std::vector<double> lr = args.get_positive_list("lr");
  if (lr.size() != 1) throw UsageError("--lr: one learning rate expected, got " + args.get("lr"));
  config.lr = lr[0];
  return config;
}

int run(const Config& config) {
  if (!fashion_mnist_found("whitening_trained", config.data)) return 1;
  const auto start = Clock::now();
  const ng::data::MNIST train_set(config.data, true), test_set(config.data, false);
  std::vector<int64_t> first(kProbeImages);
  std::iota(first.begin(), first.end(), 0);
  const ng::Tensor probe = test_set.get_batch(first).inputs;
  std::printf(
      "whitening_trained: sigmoid MLP, SGD lr %g, batch 60, %lld steps; none / BatchNorm / IterNorm (5 iterations)\n",
      config.lr, static_cast<long long>(config.steps));
  std::vector<Run> runs;
  for (int64_t width : config.widths)
    for (Normalization kind : kKinds) {
      runs.push_back({kind, width, {}, {}, {}});
      train(runs.back(), config, train_set, test_set, probe);
      std::printf("  width %lld, %s: done, %.1f s\n", static_cast<long long>(width), kind_name(kind),
                  std::chrono::duration<double>(Clock::now() - start).count());
      std::fflush(stdout);
    }
  print_table(runs, config);
  const std::vector<Plot> plots = figures(runs, config);
  for (std::size_t i = 0; i < config.widths.size(); ++i)
    write_svg(config.out, "accuracy_d" + std::to_string(config.widths[i]) + ".svg", plots[i]);
  write_svg(config.out, "time_per_step.svg", plots.back());
  std::printf("Figures in %s/ (accuracy_d<width>.svg, time_per_step.svg); %.1f s\n", config.out.c_str(),
              std::chrono::duration<double>(Clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("whitening_trained", [&] {
    const std::optional<Config> config = parse_config(argc, argv);
    return config ? run(*config) : 0;
  });
}
