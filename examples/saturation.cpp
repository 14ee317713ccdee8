// saturation: saturating nonlinearities stall training; Batch Normalization keeps them responsive.
//
// The idea. A sigmoid s(x) = 1 / (1 + e^-x) has the derivative s'(x) = s(x) (1 - s(x)): 1/4 at x = 0,
// but s'(4) = 0.018 and s'(6) = 0.0025. Backpropagation multiplies the gradient by s'(x) at every
// sigmoid it passes through, dL/dx = s'(x) dL/ds, so a unit whose input has drifted into a flat tail
// (|x| > 4) passes almost nothing down, and the layers below it learn slowly. Without BN the input
// of a unit, x = W u + b, moves wherever the changing weights below push it. With BN before the
// sigmoid its input is
//   x = gamma * (z - batch_mean) / sqrt(batch_var + eps) + beta,     z = W u,
// which has mean beta and standard deviation gamma over the batch, whatever W and u do: it stays in
// the sigmoid's responsive range unless training chooses to move gamma and beta.
//
// The experiment: the BN paper's 784-100-100-100-10 sigmoid MLP (examples/common/paper_mlp.h) trained
// on Fashion-MNIST with SGD (batches of 60) at learning rates 0.5 and 5, without and with BN, from the
// same initial weights and the same batches. Every --every steps it measures
//   saturated:  the fraction of the last hidden layer's 100 sigmoids, over 1,000 fixed test images,
//               whose input has |x| > 4 (the net in eval mode, as it would be used);
//   ||dL/dW1||: the norm of the gradient reaching the first layer's weights, averaged over the
//               training steps since the previous measurement.
// Written into --out (default saturation_out/): saturated_fraction.svg and first_layer_gradient.svg.
//
// What to look for: at lr 0.5 a few percent of the plain net's units saturate; at lr 5 almost all of
// them do within 100 steps, the gradient reaching the first layer collapses and accuracy sits near
// chance, while the BN net learns at once. (Later the BN net saturates some units too, by learning
// large beta: BN does not forbid saturation, it only stops it from happening by accident.)
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
  double saturated, grad_norm, probe_accuracy;
};

struct Run {
  bool batch_norm;
  double lr;
  std::vector<Measurement> measurements;
};

std::string label(const Run& run) {
  char text[48];
  std::snprintf(text, sizeof text, "%s, lr %g", run.batch_norm ? "with BN" : "without BN", run.lr);
  return text;
}

// The share of the entries of x: [N, 100] with |x| > 4.
double saturated_fraction(const ng::Tensor& x) {
  const float* value = x.data<float>();
  int64_t saturated = 0;
  for (int64_t i = 0; i < x.numel(); ++i) saturated += std::abs(value[i]) > kSaturated;
  return static_cast<double>(saturated) / static_cast<double>(x.numel());
}

void train(Run& run, const Config& config, const ng::data::MNIST& train_set, const ng::data::MNIST& test_set,
           const ng::Tensor& probe) {
  PaperMlp mlp = make_paper_mlp(run.batch_norm, config.seed);
  auto& first_layer = dynamic_cast<ng::nn::Linear&>((*mlp.net)[1]);  // [0] is the Flatten
  ng::optim::SGD sgd(mlp.net->parameters(), {.lr = run.lr});
  ng::data::DataLoader loader(train_set, {.batch_size = 60, .shuffle = true, .seed = config.seed, .drop_last = true});

  auto measure = [&](int64_t step, double grad_norm) {
    const double saturated = saturated_fraction(last_sigmoid_input(mlp, probe));
    run.measurements.push_back({step, saturated, grad_norm, test_accuracy(*mlp.net, test_set, kProbeImages)});
  };
  measure(0, std::numeric_limits<double>::quiet_NaN());
  double norm_sum = 0;
  int64_t step = 0;
  while (step < config.steps) {
    for (const ng::data::Batch& batch : loader) {
      train_step(*mlp.net, sgd, batch);
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
  plot.title = gradient ? "Gradient reaching the first layer's weights, sigmoid MLP"
                        : "Saturated sigmoids (|input| > 4) in the last hidden layer";
  plot.x_label = "training step (mini-batches of 60)";
  plot.y_label = gradient ? "||dL/dW1|| (mean over the steps between points)" : "fraction saturated (1,000 test images)";
  plot.y_log = gradient;  // the gradient spans decades; the fraction stays on a linear axis from 0
  if (!gradient) plot.y_min = 0;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const Run& run = runs[i];
    // runs come in pairs, one color per learning rate: without BN (dashed), then with BN
    Line line{label(run), palette_color(static_cast<int>(i / 2)), {}, {}, !run.batch_norm};
    for (const Measurement& m : run.measurements) {
      line.x.push_back(static_cast<double>(m.step));
      line.y.push_back(gradient ? m.grad_norm : m.saturated);
    }
    plot.lines.push_back(line);
  }
  return plot;
}

// One block per learning rate: the net without BN on the left, with BN on the right.
void print_table(const Run& plain, const Run& bn) {
  char lr[32];
  std::snprintf(lr, sizeof lr, "lr %g", plain.lr);
  std::printf("\n%-6s | %-27s | %s\n", lr, "without BN", "with BN");
  std::printf("%6s | %9s %10s %6s | %9s %10s %6s\n", "step", "saturated", "||dL/dW1||", "acc", "saturated", "||dL/dW1||",
              "acc");
  auto columns = [](const Measurement& m) {
    char norm[32] = "-";  // no gradient before the first step
    if (!std::isnan(m.grad_norm)) std::snprintf(norm, sizeof norm, "%.2g", m.grad_norm);
    std::printf(" %8.1f%% %10s %6.3f", 100 * m.saturated, norm, m.probe_accuracy);
  };
  for (std::size_t i = 0; i < plain.measurements.size(); ++i) {
    const Measurement &p = plain.measurements[i], &b = bn.measurements[i];
    // A few rows: the first measurements, where the nets part ways, then every 250 steps and the last.
    if (!(i <= 4 || p.step % 250 == 0 || i + 1 == plain.measurements.size())) continue;
    std::printf("%6lld |", static_cast<long long>(p.step));
    columns(p);
    std::printf(" |");
    columns(b);
    std::printf("\n");
  }
}

std::optional<Config> parse_config(int argc, char** argv) {
  ArgParser args("saturation",
                 "Trains the BN paper's sigmoid MLP on Fashion-MNIST without and with BN and follows how many\n"
                 "last-layer sigmoids saturate (|input| > 4) and how much gradient reaches the first layer.");
  args.option("steps", "N", "training steps per net", "1000");
  args.option("lr", "A[,B,...]", "SGD learning rates", "0.5,5");
  args.option("every", "K", "measure every K steps", "25");
  args.option("seed", "S", "seed for the weights and the batch order", "1");
  args.option("out", "DIR", "output folder", "saturation_out");
  args.option("data", "DIR", "Fashion-MNIST folder (IDX files)", ng::data::default_fashion_mnist_dir());
  if (!args.parse(argc, argv)) return std::nullopt;
  return Config{args.get_int("steps", 1, 1'000'000), args.get_int("every", 1, 1'000'000), args.get_positive_list("lr"),
                static_cast<uint64_t>(args.get_int("seed", 0, std::numeric_limits<int64_t>::max())), args.get("out"),
                args.get("data")};
}

int run(const Config& config) {
  if (!ng::data::MNIST::available(config.data)) {
    std::fprintf(stderr,
                 "saturation: Fashion-MNIST was not found in %s (expected train-images-idx3-ubyte.gz and the\n"
                 "other IDX files). Install it with `apt-get install dataset-fashion-mnist` or pass --data DIR.\n",
                 config.data.c_str());
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  const ng::data::MNIST train_set(config.data, true), test_set(config.data, false);
  std::vector<int64_t> first(kProbeImages);
  std::iota(first.begin(), first.end(), 0);
  const ng::Tensor probe = test_set.get_batch(first).inputs;
  std::printf("saturation: sigmoid MLP 784-100-100-100-10, SGD, batch 60, %lld steps, without and with BN\n",
              static_cast<long long>(config.steps));
  std::vector<Run> runs;
  for (double lr : config.learning_rates) {
    for (bool batch_norm : {false, true}) {
      runs.push_back({batch_norm, lr, {}});
      train(runs.back(), config, train_set, test_set, probe);
    }
    print_table(runs[runs.size() - 2], runs.back());
  }
  std::printf("(saturated: share of 100 units x 1,000 test images with |sigmoid input| > 4; ||dL/dW1||: mean over\n"
              " the %lld steps before; acc: on those 1,000 test images)\n", static_cast<long long>(config.every));

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
