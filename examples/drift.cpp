// drift: internal covariate shift as a number: how far the distribution of each hidden layer's
// input moves per 100 training steps, without and with BN.
//
// The idea. The BN paper defines internal covariate shift as the change in the distribution of a
// layer's inputs as the parameters below it change during training, and Figure 1(b, c) shows it for
// one sigmoid: without BN its input's percentiles wander, with BN they stay put. Here it is measured
// for every unit of every hidden layer. For unit j of layer l, with mean mu_j(t) and standard deviation
// sigma_j(t) of its input over a fixed set of images at step t, the drift over the window [t - 100, t] is
//   mean shift:       |mu_j(t) - mu_j(t - 100)| / sigma_j(t - 100)    (in units of its own spread)
//   variance change:  |log(sigma_j(t)^2 / sigma_j(t - 100)^2)|        (0.69 is a doubling or a halving)
// averaged over the layer's units. Three inputs are followed in each hidden layer:
//   x, the sigmoid's input, in the net without BN (x = W u + b);
//   z = W u, what BN receives, in the net with BN;
//   x = gamma (z - mu_B) / sqrt(var_B + eps) + beta, the sigmoid's input in the net with BN.
// The statistics mu_B, var_B are those of the fixed images themselves, as if they were one training
// batch (BN's running averages would add their own lag), so for BN's x the mean of unit j is beta_j and
// its deviation gamma_j sqrt(var_j / (var_j + eps)): what is left of its drift is what training
// chooses to do with gamma and beta.
//
// The experiment: the BN paper's sigmoid MLP (examples/common/paper_mlp.h) trained on Fashion-MNIST
// with SGD (batches of 60, lr 0.5) without and with BN from the same weights and batches, measured
// every 100 steps on 1,000 fixed test images. Written into --out (default drift_out/):
// mean_shift.svg and variance_change.svg, one line per layer and input.
//
// What the default run printed (3,000 steps; 5 s of CPU, 9 to 11 s on 2 shared cores), the mean shift
// per 100 steps:
//     step | without BN: x          | with BN: z = Wu        | with BN: x = BN(z)     | acc plain / BN
//          |     l1     l2     l3   |     l1     l2     l3   |     l1     l2     l3   |
//      100 |  0.609  1.837 23.123   |  0.619  0.369  0.452   |  0.008  0.010  0.029   | 0.240 / 0.752
//      200 |  0.470  0.761  1.445   |  0.384  0.149  0.117   |  0.007  0.006  0.012   | 0.381 / 0.756
//      500 |  0.141  0.125  0.180   |  0.274  0.130  0.111   |  0.005  0.004  0.009   | 0.701 / 0.827
//     1000 |  0.138  0.093  0.134   |  0.248  0.096  0.070   |  0.005  0.004  0.007   | 0.781 / 0.839
//     3000 |  0.141  0.083  0.093   |  0.240  0.066  0.039   |  0.006  0.004  0.005   | 0.824 / 0.832
// and the variance change: without BN 0.65 / 1.8 / 3.5 in the first window (the third layer's variance
// changes e^3.5 = 33-fold), 0.04-0.06 at the end; with BN 0.36-0.68 for z, 0.03-0.25 for x at first, 0.01-0.02
// at the end. So BN does not stop the weights below from moving what it receives: z drifts as much as
// the plain net's x does, more in the first layer. It stops that drift from reaching the sigmoid: x
// moves 20 to 800 times less. The early windows are where the difference is largest, and where the
// BN net is already at 0.75 while the plain one is at 0.24; later both nets drift slowly and the
// plain one catches up (0.82 against 0.83 at step 3,000).
#include <array>
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
#include "examples/common/svg_plot.h"
#include "examples/common/sweep.h"
#include "examples/common/training.h"
#include "nn/batchnorm.h"
#include "optim/sgd.h"

using namespace examples;
using ng::Tensor;

namespace {

constexpr int64_t kProbeImages = 1000;
constexpr int kLayers = 3;

struct Config {
  int64_t steps, window;
  double lr;
  uint64_t seed;
  std::string out, data;
};

// Per unit, over the probe images: x [N, units] -> mean [units], standard deviation [units].
struct UnitStats {
  std::vector<double> mean, std;
};

UnitStats unit_stats(const Tensor& x) {
  const auto n = static_cast<std::size_t>(x.size(0)), units = static_cast<std::size_t>(x.size(1));
  const std::vector<double> v = x.to_vector();  // row i, unit j at v[i * units + j]
  UnitStats s{std::vector<double>(units, 0.0), std::vector<double>(units, 0.0)};
  // mu_j = (1/N) sum_i x_ij,   sigma_j = sqrt((1/N) sum_i (x_ij - mu_j)^2)
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < units; ++j) s.mean[j] += v[i * units + j] / static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < units; ++j) s.std[j] += (v[i * units + j] - s.mean[j]) * (v[i * units + j] - s.mean[j]);
  for (double& value : s.std) value = std::sqrt(value / static_cast<double>(n));
  return s;
}

// The drift of one input from `before` to `after`, averaged over the units (formulas above).
struct Drift {
  double mean_shift, variance_change;
};

Drift drift(const UnitStats& before, const UnitStats& after) {
  Drift d{0, 0};
  const double units = static_cast<double>(before.mean.size());
  for (std::size_t j = 0; j < before.mean.size(); ++j) {
    d.mean_shift += std::abs(after.mean[j] - before.mean[j]) / before.std[j] / units;
    d.variance_change += std::abs(2 * std::log(after.std[j] / before.std[j])) / units;
  }
  return d;
}

// What one measurement sees in every hidden layer: the sigmoid's input x, and without BN nothing else,
// with BN also its input z.
struct Snapshot {
  UnitStats x[kLayers], z[kLayers];
};

// probe [N, 1, 28, 28] through the hidden layers, BN with the probe's own statistics (no running averages touched).
Snapshot snapshot(const PaperMlp& mlp, bool batch_norm, const Tensor& probe) {
  ng::NoGradGuard no_grad;
  Snapshot s;
  Tensor h = probe.reshape({probe.size(0), -1});  // [N, 784]
  for (int l = 0; l < kLayers; ++l) {
    const Tensor z = (*mlp.linears[static_cast<std::size_t>(l)])(h);  // [N, 100]
    Tensor x = z;
    if (batch_norm) {
      auto& bn = dynamic_cast<ng::nn::BatchNorm1d&>((*mlp.net)[mlp.activations[static_cast<std::size_t>(l)] - 1]);
      x = ng::nn::functional::batch_norm_fused(z, bn.weight, bn.bias, bn.options.eps);
      s.z[l] = unit_stats(z);
    }
    s.x[l] = unit_stats(x);
    h = ng::sigmoid(x);
  }
  return s;
}

// The drift in every window, for the three inputs of every layer: [window][layer].
struct Series {
  std::vector<int64_t> steps;  // the end of each window
  std::vector<std::array<Drift, kLayers>> plain_x, bn_z, bn_x;
  std::vector<double> plain_acc, bn_acc;  // at the end of each window, 1,000 test images
};

void train(bool batch_norm, const Config& config, const ng::data::MNIST& train_set, const ng::data::MNIST& test_set,
           const Tensor& probe, Series& series) {
  PaperMlp mlp = make_paper_mlp(batch_norm, config.seed);
  ng::optim::SGD sgd(mlp.net->parameters(), {.lr = config.lr});
  ng::data::DataLoader loader(train_set, {.batch_size = 60, .shuffle = true, .seed = config.seed, .drop_last = true});
  Snapshot before = snapshot(mlp, batch_norm, probe);
  int64_t step = 0;
  while (step < config.steps) {
    for (const ng::data::Batch& batch : loader) {
      train_step(*mlp.net, sgd, batch);
      if (++step % config.window == 0) {
        const Snapshot after = snapshot(mlp, batch_norm, probe);
        std::array<Drift, kLayers> x, z;
        for (int l = 0; l < kLayers; ++l) {
          x[static_cast<std::size_t>(l)] = drift(before.x[l], after.x[l]);
          if (batch_norm) z[static_cast<std::size_t>(l)] = drift(before.z[l], after.z[l]);
        }
        const double acc = test_accuracy(*mlp.net, test_set, kProbeImages);
        if (batch_norm) {
          series.bn_x.push_back(x), series.bn_z.push_back(z), series.bn_acc.push_back(acc);
        } else {
          series.steps.push_back(step), series.plain_x.push_back(x), series.plain_acc.push_back(acc);
        }
        before = after;
      }
      if (step == config.steps) break;
    }
  }
}

void print_table(const Series& s, const Config& config) {
  std::printf("\nmean shift |d mu| / sigma per %lld steps, averaged over each layer's 100 units\n",
              static_cast<long long>(config.window));
  std::printf("%6s | %-22s | %-22s | %-22s | %s\n", "step", "without BN: x", "with BN: z = Wu", "with BN: x = BN(z)",
              "acc plain / BN");
  std::printf("%6s | %6s %6s %6s   | %6s %6s %6s   | %6s %6s %6s   |\n", "", "l1", "l2", "l3", "l1", "l2", "l3", "l1",
              "l2", "l3");
  auto print_rows = [&](double Drift::*field) {
    for (std::size_t w = 0; w < s.steps.size(); ++w) {
      const int64_t step = s.steps[w];
      // the first windows, where most happens, then every 500 steps
      if (!(w < 5 || step % 500 == 0)) continue;
      std::printf("%6lld |", static_cast<long long>(step));
      for (const auto* series : {&s.plain_x, &s.bn_z, &s.bn_x}) {
        for (const Drift& d : (*series)[w]) std::printf(" %6.3f", d.*field);
        std::printf("   |");
      }
      std::printf(" %.3f / %.3f\n", s.plain_acc[w], s.bn_acc[w]);
    }
  };
  print_rows(&Drift::mean_shift);
  std::printf("\nvariance change |log(sigma^2 / sigma_before^2)| per %lld steps\n",
              static_cast<long long>(config.window));
  print_rows(&Drift::variance_change);
  std::printf(
      "(x: a sigmoid's input; z: the Linear's output that BN normalizes; statistics over 1,000 test\n"
      " images, BN normalizing them as one batch; acc on those images)\n");
}

Plot figure(const Series& s, double Drift::*field, const std::string& what) {
  Plot plot;
  plot.title = what + " of each hidden layer's input, per window of steps";
  plot.x_label = "training step (end of the window)";
  plot.y_label = what + " (mean over the layer's units, log scale)";
  plot.y_log = true;
  const struct {
    const std::vector<std::array<Drift, kLayers>>* series;
    const char* name;
    bool dashed;
  } inputs[] = {
      {&s.plain_x, "without BN, x", true}, {&s.bn_z, "with BN, z = Wu", false}, {&s.bn_x, "with BN, x = BN(z)", false}};
  int color = 0;
  for (const auto& input : inputs)
    for (int l = 0; l < kLayers; ++l) {
      Line line{
          std::string(input.name) + ", layer " + std::to_string(l + 1), palette_color(color++), {}, {}, input.dashed};
      for (std::size_t w = 0; w < s.steps.size(); ++w) {
        line.x.push_back(static_cast<double>(s.steps[w]));
        line.y.push_back((*input.series)[w][static_cast<std::size_t>(l)].*field);
      }
      plot.lines.push_back(line);
    }
  return plot;
}

std::optional<Config> parse_config(int argc, char** argv) {
  ArgParser args(
      "drift",
      "Trains the BN paper's sigmoid MLP on Fashion-MNIST without and with BN and measures how far the mean\n"
      "and variance of every hidden layer's input move per window of steps.");
  args.option("steps", "N", "training steps per net", "3000");
  args.option("window", "K", "steps per window (the drift is measured over each)", "100");
  args.option("lr", "A", "SGD learning rate", "0.5");
  args.option("seed", "S", "seed for the weights and the batch order", "1");
  args.option("out", "DIR", "output folder", "drift_out");
  args.option("data", "DIR", "Fashion-MNIST folder (IDX files)", ng::data::default_fashion_mnist_dir());
  if (!args.parse(argc, argv)) return std::nullopt;
  const std::vector<double> lr = args.get_positive_list("lr");
  if (lr.size() != 1) throw UsageError("--lr: one learning rate expected, got " + args.get("lr"));
  return Config{args.get_int("steps", 1, 1'000'000),
                args.get_int("window", 1, 1'000'000),
                lr[0],
                static_cast<uint64_t>(args.get_int("seed", 0, std::numeric_limits<int64_t>::max())),
                args.get("out"),
                args.get("data")};
}

int run(const Config& config) {
  if (!fashion_mnist_found("drift", config.data)) return 1;
  if (config.steps < config.window) throw UsageError("--steps must be at least one --window");
  const auto start = std::chrono::steady_clock::now();
  const ng::data::MNIST train_set(config.data, true), test_set(config.data, false);
  std::vector<int64_t> first(kProbeImages);
  std::iota(first.begin(), first.end(), 0);
  const Tensor probe = test_set.get_batch(first).inputs;
  std::printf("drift: sigmoid MLP 784-100-100-100-10, SGD lr %g, batch 60, %lld steps, without and with BN\n",
              config.lr, static_cast<long long>(config.steps));
  Series series;
  for (bool batch_norm : {false, true}) train(batch_norm, config, train_set, test_set, probe, series);
  print_table(series, config);
  write_svg(config.out, "mean_shift.svg", figure(series, &Drift::mean_shift, "Mean shift |d mu| / sigma"));
  write_svg(config.out, "variance_change.svg",
            figure(series, &Drift::variance_change, "Variance change |d log sigma^2|"));
  std::printf("Figures in %s/ (mean_shift.svg, variance_change.svg); %.1f s\n", config.out.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("drift", [&] {
    const std::optional<Config> config = parse_config(argc, argv);
    return config ? run(*config) : 0;
  });
}
