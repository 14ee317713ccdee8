// saturation: saturating nonlinearities stall training; Batch Normalization keeps them responsive, and
// a non-saturating activation (ReLU) is the other cure.
//
// The idea. A sigmoid s(x) = 1 / (1 + e^-x) has the derivative s'(x) = s(x) (1 - s(x)): 1/4 at x = 0,
// but s'(4) = 0.018 and s'(6) = 0.0025. Backpropagation multiplies the gradient by s'(x) at every
// sigmoid it passes through, dL/dx = s'(x) dL/ds, so a unit whose input has drifted into a flat tail
// (|x| > 4) passes almost nothing down, and the layers below it learn slowly. Without BN the input
// of a unit, x = W u + b, moves wherever the changing weights below push it. With BN before the
// sigmoid its input is
//   x = gamma * (z - batch_mean) / sqrt(batch_var + eps) + beta,     z = W u,
// which has mean beta and standard deviation gamma over the batch, whatever W and u do: it stays in
// the sigmoid's responsive range unless training chooses to move gamma and beta. The paper names the
// other cure too: an activation without a flat tail on the positive side, ReLU(x) = max(0, x), whose
// derivative is 1 for every x > 0 however large. It has a flat side still, x <= 0 (derivative 0): a
// unit whose input is negative for every example is dead and passes nothing down, ReLU's saturation.
//
// The experiment: the BN paper's 784-100-100-100-10 MLP (examples/common/paper_mlp.h), with sigmoid
// and with ReLU units, trained on Fashion-MNIST with SGD (batches of 60) at learning rates 0.5 and 5,
// without and with BN, from the same initial weights and the same batches. Every --every steps it
// measures, on the last hidden layer's 100 units over 1,000 fixed test images (the net in eval mode):
//   flat:       the fraction of (unit, image) pairs where the activation's derivative is small:
//               |x| > 4 for a sigmoid (s' < 0.018), x <= 0 for a ReLU (derivative 0);
//   dead:       the units that are flat on all 1,000 images;
//   ||dL/dW1||: the norm of the gradient reaching the first layer's weights, averaged over the
//               training steps since the previous measurement.
// Written into --out (default saturation_out/): saturated_fraction.svg and first_layer_gradient.svg.
//
// What the default run printed (1,000 steps; accuracy on the 1,000 images):
//   sigmoid, lr 0.5: ~3% flat without BN (acc 0.78), 0% with BN (0.84)
//   sigmoid, lr 5:   without BN 100% flat by step 25, the first layer's gradient falls 300-fold
//                    (0.0012), accuracy near chance until step ~250 (0.67 at the end); with BN 25%
//                    flat, learned on purpose (large beta), acc 0.85
//   ReLU,    lr 0.5: without BN 76% flat, 2 dead units, acc 0.84 (the sigmoid net without BN: 0.78);
//                    with BN 59% flat, none dead, acc 0.85
//   ReLU,    lr 5:   without BN the loss overflows to NaN within 25 steps; with BN it stays finite, but
//                    98 of the 100 units die and acc is 0.20: BN makes the weights' step scale-free,
//                    not gamma's and beta's, and beta at rate 5 pushes the units below 0
// So at a moderate rate ReLU cures the sigmoid's saturation on its own, about as well as BN does; at
// lr 5 neither cure alone saves the ReLU net, and the sigmoid net with BN is the one that learns. (A
// ReLU net is always about half flat: each unit is off for some images, which is not saturation.)
// 8 runs of 1,000 steps take about 20 s on 2 shared cores (8 s of CPU).
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
#include "examples/common/svg_plot.h"
#include "examples/common/sweep.h"
#include "examples/common/training.h"
#include "nn/linear.h"
#include "optim/sgd.h"

using namespace examples;

namespace {

constexpr double kSaturated = 4;        // |x| beyond which s'(x) < 0.018
constexpr int64_t kProbeImages = 1000;  // the fixed test batch the saturation is measured on

struct Config {
  int64_t steps, every;
  std::vector<double> learning_rates;
  uint64_t seed;
  std::string out, data;
};

struct Measurement {
  int64_t step;
  double saturated;  // the share of flat (unit, image) pairs
  int64_t dead;      // units flat on every image
  double grad_norm, probe_accuracy;
};

struct Run {
  Activation activation;
  bool batch_norm;
  double lr;
  std::vector<Measurement> measurements;
  bool diverged = false;  // the loss became NaN or Inf; the run stopped there
};

const char* activation_name(Activation activation) { return activation == Activation::sigmoid ? "sigmoid" : "ReLU"; }

std::string label(const Run& run) {
  char text[64];
  std::snprintf(text, sizeof text, "%s %s, lr %g", activation_name(run.activation),
                run.batch_norm ? "with BN" : "without BN", run.lr);
  return text;
}

// Where the activation's derivative is (almost) 0: |x| > 4 for a sigmoid, x <= 0 for a ReLU.
bool flat(Activation activation, float x) {
  return activation == Activation::sigmoid ? std::abs(x) > kSaturated : x <= 0;
}

// x: [N, 100], the activation's inputs -> the share of flat entries, and the units flat in every row.
void measure_flat(Activation activation, const ng::Tensor& x, Measurement& m) {
  const float* value = x.data<float>();
  const int64_t rows = x.size(0), units = x.size(1);
  int64_t flat_entries = 0;
  m.dead = 0;
  for (int64_t j = 0; j < units; ++j) {
    int64_t flat_rows = 0;
    for (int64_t i = 0; i < rows; ++i) flat_rows += flat(activation, value[i * units + j]);
    flat_entries += flat_rows;
    m.dead += flat_rows == rows;
  }
  m.saturated = static_cast<double>(flat_entries) / static_cast<double>(x.numel());
}

void train(Run& run, const Config& config, const ng::data::MNIST& train_set, const ng::data::MNIST& test_set,
           const ng::Tensor& probe) {
  PaperMlp mlp = make_mlp(
      {.normalization = run.batch_norm ? Normalization::batch_norm : Normalization::none, .activation = run.activation},
      config.seed);
  const ng::nn::Linear& first_layer = *mlp.linears.front();
  ng::optim::SGD sgd(mlp.net->parameters(), {.lr = run.lr});
  ng::data::DataLoader loader(train_set, {.batch_size = 60, .shuffle = true, .seed = config.seed, .drop_last = true});

  auto measure = [&](int64_t step, double grad_norm) {
    Measurement m{step, 0, 0, grad_norm, test_accuracy(*mlp.net, test_set, kProbeImages)};
    measure_flat(run.activation, last_sigmoid_input(mlp, probe), m);
    run.measurements.push_back(m);
  };
  measure(0, std::numeric_limits<double>::quiet_NaN());
  double norm_sum = 0;
  int64_t step = 0;
  while (step < config.steps && !run.diverged) {
    for (const ng::data::Batch& batch : loader) {
      if (!std::isfinite(train_step(*mlp.net, sgd, batch))) {
        run.diverged = true;
        break;
      }
      // The step's gradient stays in .grad() until the next zero_grad: ||g|| = sqrt(sum g^2)
      const ng::Tensor g = first_layer.weight.grad();
      norm_sum += ng::sqrt(ng::sum(g * g)).item();
      if (++step % config.every == 0 || step == config.steps) {
        measure(step, norm_sum / static_cast<double>(step - run.measurements.back().step));
        norm_sum = 0;
      }
      if (step == config.steps) break;
    }
  }
}

Plot figure(const std::vector<Run>& runs, bool gradient) {
  Plot plot;
  plot.title = gradient ? "Gradient reaching the first layer's weights, sigmoid and ReLU MLPs"
                        : "Flat units in the last hidden layer: sigmoid |input| > 4, ReLU input <= 0";
  plot.x_label = "training step (mini-batches of 60)";
  plot.y_label = gradient ? "||dL/dW1|| (mean over the steps between points)" : "fraction flat (1,000 test images)";
  plot.y_log = gradient;  // the gradient spans decades; the fraction stays on a linear axis from 0
  if (!gradient) plot.y_min = 0;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const Run& run = runs[i];
    // runs come in pairs, one color per activation and learning rate: without BN (dashed), then with BN
    Line line{label(run), palette_color(static_cast<int>(i / 2)), {}, {}, !run.batch_norm};
    for (const Measurement& m : run.measurements) {
      line.x.push_back(static_cast<double>(m.step));
      line.y.push_back(gradient ? m.grad_norm : m.saturated);
    }
    plot.lines.push_back(line);
  }
  return plot;
}

// One block per activation and learning rate: the net without BN on the left, with BN on the right.
void print_table(const Run& plain, const Run& bn) {
  char title[32];
  std::snprintf(title, sizeof title, "%s, lr %g", activation_name(plain.activation), plain.lr);
  std::printf("\n%-14s | %-32s | %s\n", title, "without BN", "with BN");
  std::printf("%14s | %6s %4s %10s %9s | %6s %4s %10s %9s\n", "step", "flat", "dead", "||dL/dW1||", "acc", "flat",
              "dead", "||dL/dW1||", "acc");
  auto columns = [](const Run& run, std::size_t i) {
    if (i >= run.measurements.size()) {
      std::printf(" %32s", run.diverged ? "diverged (loss NaN or Inf)" : "");
      return;
    }
    const Measurement& m = run.measurements[i];
    char norm[32] = "-";  // no gradient before the first step
    if (!std::isnan(m.grad_norm)) std::snprintf(norm, sizeof norm, "%.2g", m.grad_norm);
    std::printf(" %5.1f%% %4lld %10s %9.3f", 100 * m.saturated, static_cast<long long>(m.dead), norm, m.probe_accuracy);
  };
  const std::size_t rows = std::max(plain.measurements.size(), bn.measurements.size());
  for (std::size_t i = 0; i < rows; ++i) {
    const int64_t step = (i < plain.measurements.size() ? plain : bn).measurements[i].step;
    // A few rows: the first measurements, where the nets part ways, then every 250 steps and the last.
    if (!(i <= 4 || step % 250 == 0 || i + 1 == rows)) continue;
    std::printf("%14lld |", static_cast<long long>(step));
    columns(plain, i);
    std::printf(" |");
    columns(bn, i);
    std::printf("\n");
  }
}

std::optional<Config> parse_config(int argc, char** argv) {
  ArgParser args("saturation",
                 "Trains the BN paper's MLP with sigmoid and with ReLU units on Fashion-MNIST, without and with BN,\n"
                 "and follows how many last-layer units are flat (sigmoid |input| > 4, ReLU input <= 0) and how\n"
                 "much gradient reaches the first layer.");
  args.option("steps", "N", "training steps per net", "1000");
  args.option("lr", "A[,B,...]", "SGD learning rates", "0.5,5");
  args.option("every", "K", "measure every K steps", "25");
  args.option("seed", "S", "seed for the weights and the batch order", "1");
  args.option("out", "DIR", "output folder", "saturation_out");
  args.option("data", "DIR", "Fashion-MNIST folder (IDX files)", ng::data::default_fashion_mnist_dir());
  if (!args.parse(argc, argv)) return std::nullopt;
  return Config{args.get_int("steps", 1, 1'000'000),
                args.get_int("every", 1, 1'000'000),
                args.get_positive_list("lr"),
                static_cast<uint64_t>(args.get_int("seed", 0, std::numeric_limits<int64_t>::max())),
                args.get("out"),
                args.get("data")};
}

int run(const Config& config) {
  if (!fashion_mnist_found("saturation", config.data)) return 1;
  const auto start = std::chrono::steady_clock::now();
  const ng::data::MNIST train_set(config.data, true), test_set(config.data, false);
  std::vector<int64_t> first(kProbeImages);
  std::iota(first.begin(), first.end(), 0);
  const ng::Tensor probe = test_set.get_batch(first).inputs;
  std::printf(
      "saturation: MLP 784-100-100-100-10, sigmoid and ReLU units, SGD, batch 60, %lld steps, without and\n"
      "with BN\n",
      static_cast<long long>(config.steps));
  std::vector<Run> runs;
  for (Activation activation : {Activation::sigmoid, Activation::relu})
    for (double lr : config.learning_rates) {
      for (bool batch_norm : {false, true}) {
        runs.push_back({activation, batch_norm, lr, {}});
        train(runs.back(), config, train_set, test_set, probe);
      }
      print_table(runs[runs.size() - 2], runs.back());
    }
  std::printf(
      "(flat: share of 100 units x 1,000 test images with |sigmoid input| > 4 or ReLU input <= 0; dead:\n"
      " units flat on all 1,000; ||dL/dW1||: mean over the %lld steps before; acc: on those 1,000 images)\n",
      static_cast<long long>(config.every));

  write_svg(config.out, "saturated_fraction.svg", figure(runs, false));
  write_svg(config.out, "first_layer_gradient.svg", figure(runs, true));
  std::printf("Figures in %s/ (saturated_fraction.svg, first_layer_gradient.svg); %.1f s\n", config.out.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("saturation", [&] {
    const std::optional<Config> config = parse_config(argc, argv);
    return config ? run(*config) : 0;
  });
}
