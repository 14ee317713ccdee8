// effective_rate: why BN tolerates a large learning rate: the weights before BN grow, and their
// effective step lr / ||W||^2 shrinks by itself.
//
// The idea. Section 3.3 of the BN paper: with BN after x = W u, BN(a W u) = BN(W u) for a > 0, so the
// loss L does not depend on the length of W (each row's, in fact), only on its direction, and
// (examples/scale_invariance measures both)
//   dL/d(aW) = (1/a) dL/dW,                        large weights get small gradients,
//   <W, dL/dW> = d L(a W) / da at a = 1 = 0,        the gradient is orthogonal to W.
// Orthogonality makes every SGD step W' = W - lr g lengthen W: ||W'||^2 = ||W||^2 + lr^2 ||g||^2. And
// since only the direction W / ||W|| matters, the step that counts is the one of the direction, which
// is lr ||g|| / ||W|| with ||g|| itself proportional to 1 / ||W||: the effective learning rate is
//   lr / ||W||^2.
// A too large lr makes big steps, the steps grow ||W||, and the effective rate falls until training
// is stable: BN tunes the rate down by itself. Without BN nothing of the kind holds: the loss depends
// on the length of W, and a large rate throws the weights wherever the gradient points.
//
// The experiment: the BN paper's sigmoid MLP (examples/common/paper_mlp.h) trained on Fashion-MNIST
// with SGD, batches of 60, at lr 0.1, 1 and 10, without and with BN, from the same weights and batches.
// Every --every steps: ||W|| of each hidden layer's weight matrix, lr / ||W2||^2 for the second one,
// the cosine between W2 and its gradient, and accuracy on 1,000 test images. Written into --out
// (default effective_rate_out/): weight_norm.svg and effective_rate.svg.
//
// What the default run printed (1,000 steps; about 8 s of CPU, 16 to 45 s on 2 cores shared with others):
//                        |   ||W1||  ||W2||  ||W3|| | lr / ||W2||^2              |     cos    acc
//   net, lr              |              at the end |    at step 0    at the end |  (W2,g)
//   without BN, lr 0.1   |    28.3    11.4    11.6 |     9.76e-04      7.71e-04 |  -0.159  0.589
//   without BN, lr 1     |    31.5    15.8    16.8 |     9.76e-03      4.02e-03 |   0.003  0.808
//   without BN, lr 10    |    29.6    14.0    42.4 |     9.76e-02      5.10e-02 |   0.021  0.095
//   with BN, lr 0.1      |    28.0    10.2    10.2 |     9.76e-04      9.62e-04 |  -0.000  0.840
//   with BN, lr 1        |    30.8    12.5    12.4 |     9.76e-03      6.38e-03 |  -0.000  0.839
//   with BN, lr 10       |    56.2    37.8    35.2 |     9.76e-02      6.98e-03 |   0.000  0.834
// With BN the gradient is orthogonal to W (cos 0.000), and at lr 10 ||W2|| grows from 10 to 38 (to 33
// by step 200), so the effective rate falls 14-fold, to about that of lr 1: the three BN nets end
// within 0.006 of each other. Without BN lr 10 does not overflow here, but it leaves the net at chance
// (0.095; its sigmoids saturate, see examples/saturation), and the weights do not grow to compensate:
// their length is not free when the loss depends on it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "data/dataloader.h"
#include "data/mnist.h"
#include "examples/common/args.h"
#include "examples/common/paper_mlp.h"
#include "examples/common/svg_plot.h"
#include "examples/common/sweep.h"
#include "examples/common/training.h"
#include "optim/sgd.h"

using namespace examples;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kProbeImages = 1000;

struct Config {
  int64_t steps, every;
  std::vector<double> learning_rates;
  uint64_t seed;
  std::string out, data;
};

struct Measurement {
  int64_t step;
  double norm[3];  // ||W|| of the three hidden layers' weights (Frobenius norm)
  double cosine;   // <W2, dL/dW2> / (||W2|| ||dL/dW2||) at the last step before, NaN at step 0
  double accuracy;
};

struct Run {
  bool batch_norm;
  double lr;
  std::vector<Measurement> measurements;
  int64_t diverged_at = 0;  // the step whose loss was NaN or Inf (0: none)
  double effective_rate(const Measurement& m) const { return lr / (m.norm[1] * m.norm[1]); }
};

std::string label(const Run& run) {
  char text[48];
  std::snprintf(text, sizeof text, "%s, lr %g", run.batch_norm ? "with BN" : "without BN", run.lr);
  return text;
}

// ||t|| = sqrt(sum t^2), in double
double norm(const ng::Tensor& t) {
  double sum = 0;
  for (double v : t.to_vector()) sum += v * v;
  return std::sqrt(sum);
}

double cosine(const ng::Tensor& a, const ng::Tensor& b) {
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  double dot = 0;
  for (std::size_t i = 0; i < x.size(); ++i) dot += x[i] * y[i];
  return dot / (norm(a) * norm(b));
}

void train(Run& run, const Config& config, const ng::data::MNIST& train_set, const ng::data::MNIST& test_set) {
  PaperMlp mlp = make_paper_mlp(run.batch_norm, config.seed);
  ng::optim::SGD sgd(mlp.net->parameters(), {.lr = run.lr});
  ng::data::DataLoader loader(train_set, {.batch_size = 60, .shuffle = true, .seed = config.seed, .drop_last = true});
  const ng::Tensor& W2 = mlp.linears[1]->weight;
  auto measure = [&](int64_t step, double cos) {
    Measurement m{step, {}, cos, test_accuracy(*mlp.net, test_set, kProbeImages)};
    for (int layer = 0; layer < 3; ++layer) m.norm[layer] = norm(mlp.linears[static_cast<std::size_t>(layer)]->weight);
    run.measurements.push_back(m);
  };
  measure(0, kNaN);
  int64_t step = 0;
  while (step < config.steps && run.diverged_at == 0) {
    for (const ng::data::Batch& batch : loader) {
      // The update W' = W - lr g is taken inside train_step; the cosine wants W before it and g.
      const ng::Tensor W_before = W2.detach().clone();
      const double loss = train_step(*mlp.net, sgd, batch);
      ++step;
      if (!std::isfinite(loss)) {
        run.diverged_at = step;
        break;
      }
      if (step % config.every == 0 || step == config.steps) measure(step, cosine(W_before, W2.grad()));
      if (step == config.steps) break;
    }
  }
}

void print_table(const std::vector<Run>& runs) {
  std::printf("\n%-20s | %-23s | %-26s | %7s %6s\n", "", "  ||W1||  ||W2||  ||W3||", "lr / ||W2||^2", "cos", "acc");
  std::printf("%-20s | %23s | %12s %13s | %7s %6s\n", "net, lr", "at the end", "at step 0", "at the end", "(W2,g)", "");
  for (const Run& run : runs) {
    const Measurement &first = run.measurements.front(), &last = run.measurements.back();
    if (run.diverged_at > 0) {
      std::printf("%-20s | diverged at step %-6lld |\n", label(run).c_str(), static_cast<long long>(run.diverged_at));
      continue;
    }
    std::printf("%-20s | %7.1f %7.1f %7.1f | %12.2e %13.2e | %7.3f %6.3f\n", label(run).c_str(), last.norm[0],
                last.norm[1], last.norm[2], run.effective_rate(first), run.effective_rate(last), last.cosine,
                last.accuracy);
  }
  const Measurement& start = runs.front().measurements.front();
  std::printf(
      "(||W||: Frobenius norm of a hidden layer's weight matrix, at step 0 %.1f, %.1f, %.1f; cos(W2, g):\n"
      " between W2 and its gradient at the last step; acc: on 1,000 test images)\n",
      start.norm[0], start.norm[1], start.norm[2]);
}

Plot figure(const std::vector<Run>& runs, const Config& config, bool rate) {
  Plot plot;
  plot.title =
      rate ? "Effective learning rate of the second layer, lr / ||W2||^2" : "Norm of the second layer's weights ||W2||";
  plot.x_label = "training step (mini-batches of 60)";
  plot.y_label = rate ? "lr / ||W2||^2 (log scale)" : "||W2|| (log scale)";
  plot.y_log = true;
  for (const Run& run : runs) {
    const auto lr_index =
        std::find(config.learning_rates.begin(), config.learning_rates.end(), run.lr) - config.learning_rates.begin();
    Line line{label(run), palette_color(static_cast<int>(lr_index)), {}, {}, !run.batch_norm};
    for (const Measurement& m : run.measurements) {
      line.x.push_back(static_cast<double>(m.step));
      line.y.push_back(rate ? run.effective_rate(m) : m.norm[1]);
    }
    plot.lines.push_back(line);
  }
  return plot;
}

std::optional<Config> parse_config(int argc, char** argv) {
  ArgParser args("effective_rate",
                 "Trains the BN paper's sigmoid MLP on Fashion-MNIST at several learning rates, without and with BN,\n"
                 "and follows the norm of the weights and the effective learning rate lr / ||W||^2.");
  args.option("steps", "N", "training steps per net", "1000");
  args.option("lr", "A[,B,...]", "SGD learning rates", "0.1,1,10");
  args.option("every", "K", "measure every K steps", "10");
  args.option("seed", "S", "seed for the weights and the batch order", "1");
  args.option("out", "DIR", "output folder", "effective_rate_out");
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
  if (!fashion_mnist_found("effective_rate", config.data)) return 1;
  const auto start = std::chrono::steady_clock::now();
  const ng::data::MNIST train_set(config.data, true), test_set(config.data, false);
  std::printf("effective_rate: sigmoid MLP 784-100-100-100-10, SGD, batch 60, %lld steps, without and with BN\n",
              static_cast<long long>(config.steps));
  std::vector<Run> runs;
  for (bool batch_norm : {false, true})
    for (double lr : config.learning_rates) {
      runs.push_back({batch_norm, lr, {}});
      train(runs.back(), config, train_set, test_set);
    }
  print_table(runs);
  write_svg(config.out, "weight_norm.svg", figure(runs, config, false));
  write_svg(config.out, "effective_rate.svg", figure(runs, config, true));
  std::printf("Figures in %s/ (weight_norm.svg, effective_rate.svg); %.1f s\n", config.out.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("effective_rate", [&] {
    const std::optional<Config> config = parse_config(argc, argv);
    return config ? run(*config) : 0;
  });
}
