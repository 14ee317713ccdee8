// bn_paper: the MNIST experiment of the Batch Normalization paper (Ioffe & Szegedy 2015, section 4.1
// and Figure 1), run on Fashion-MNIST.
//
// The idea. While a network trains, the layers below a unit keep changing, so the distribution of the
// unit's input keeps moving: the paper calls this internal covariate shift. Sigmoid units suffer most:
// once their input drifts away from 0 they saturate, their derivative s(1 - s) goes to 0, and
// learning through them slows down. Batch Normalization normalizes each unit's input over the
// mini-batch before the nonlinearity,
//   x_hat = (x - batch_mean) / sqrt(batch_var + eps),    y = gamma * x_hat + beta,
// so the sigmoid sees an input whose distribution stays put. The net trains faster, and it tolerates
// learning rates at which the net without BN stalls or diverges.
//
// The experiment: one 784-100-100-100-10 sigmoid MLP (examples/common/paper_mlp.h), trained with plain
// SGD on mini-batches of 60, once without BN and once with BN before each sigmoid, from the same
// initial weights and the same sequence of batches. Written into --out (default bn_paper_out/):
//   accuracy.svg                   Figure 1(a): test accuracy (10,000 test images) against training step
//   sigmoid_input_plain_lr<A>.svg  Figure 1(b): the 15th, 50th and 85th percentiles of the input of one
//   sigmoid_input_bn_lr<A>.svg     Figure 1(c)  sigmoid (unit 0 of the last hidden layer, as in the paper)
//                                  over 1,000 fixed test images, as training goes on
//   metrics.csv                    every measurement: model,lr,step,train_loss,test_acc,p15,p50,p85
// The percentiles are taken in eval mode, as the trained net would be used: at step 0 BN's running
// averages are still 0 and 1, so there both nets show the same distribution.
//
// What to look for: the BN net far ahead early on (about 0.80 against 0.32 at step 500 with the
// defaults, lr 0.1 and 10,000 steps); the input of its sigmoid steady around 0 while the other net's
// drifts down into the sigmoid's flat tail. Then try larger learning rates: bn_paper --lr 0.5,5,20
// (without BN the net is stuck at chance at lr 20; with BN it still learns).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "data/mnist.h"
#include "examples/common/args.h"
#include "examples/common/atomic_file.h"
#include "examples/common/paper_mlp.h"
#include "examples/common/percentile.h"
#include "examples/common/svg_plot.h"
#include "examples/common/sweep.h"
#include "examples/common/training.h"
#include "optim/sgd.h"

using namespace examples;
using Clock = std::chrono::steady_clock;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kWatchedUnit = 0;     // the sigmoid whose input Figure 1(b, c) follows
constexpr int64_t kProbeImages = 1000;  // the fixed test batch those percentiles are taken over

// Everything measured at one step; NaN where nothing was measured (no training loss before step 1).
struct Measurement {
  int64_t step;
  double train_loss = kNaN, test_acc = kNaN, p15 = kNaN, p50 = kNaN, p85 = kNaN;
};

using Run = SweepRun<Measurement>;

// The same color for a run in every figure: per learning rate a pair, blue with BN, red without.
std::string run_color(const Run& run, const SweepConfig& config) {
  const auto lr_index =
      std::find(config.learning_rates.begin(), config.learning_rates.end(), run.lr) - config.learning_rates.begin();
  return palette_color(static_cast<int>(2 * lr_index + (run.batch_norm ? 0 : 1)));
}

std::optional<SweepConfig> parse_config(int argc, char** argv) {
  ArgParser args("bn_paper",
                 "Trains the BN paper's sigmoid MLP (784-100-100-100-10) on Fashion-MNIST without and with Batch\n"
                 "Normalization, and writes the paper's Figure 1 (test accuracy; percentiles of a sigmoid's input)\n"
                 "as SVG files plus metrics.csv into the output folder.");
  declare_sweep_options(args, {.steps = "10000",
                               .lr = "0.1",
                               .lr_help = "SGD learning rate; a list runs a sweep, e.g. 0.5,5,20",
                               .batch = "60",
                               .eval_every_help = "measure test accuracy and percentiles every K steps",
                               .out = "bn_paper_out"});
  if (!args.parse(argc, argv)) return std::nullopt;
  return read_sweep_options(args);
}

// What every run shares: the data, the output, the clock and the progress line.
struct Context {
  explicit Context(const SweepConfig& c) : config(c), train(c.data, true), test(c.data, false) {}
  SweepConfig config;
  ng::data::MNIST train, test;
  ng::Tensor probe_inputs;  // the first kProbeImages test images
  std::vector<Run> runs;
  SweepProgress progress;
};

Measurement measure(const PaperMlp& mlp, const Context& ctx, int64_t step, double train_loss) {
  const double acc = test_accuracy(*mlp.net, ctx.test);
  // [kProbeImages, 100] -> the column of the watched unit
  const ng::Tensor pre_activation = last_sigmoid_input(mlp, ctx.probe_inputs);
  const float* rows = pre_activation.data<float>();
  const int64_t width = pre_activation.size(1);
  std::vector<double> unit_input(static_cast<std::size_t>(pre_activation.size(0)));
  for (std::size_t i = 0; i < unit_input.size(); ++i)
    unit_input[i] = rows[static_cast<int64_t>(i) * width + kWatchedUnit];
  const std::vector<double> p = percentiles(unit_input, {15, 50, 85});
  return {step, train_loss, acc, p[0], p[1], p[2]};
}

std::string metrics_csv(const std::vector<Run>& runs) {
  // Empty where nothing was measured; a diverged loss is written as it was ("nan", "inf").
  auto field = [](double v) { return format("%.6g", v); };
  auto optional_field = [&](double v) { return std::isnan(v) ? std::string() : field(v); };
  std::string csv = "model,lr,step,train_loss,test_acc,p15,p50,p85\n";
  for (const Run& run : runs)
    for (const Measurement& m : run.measurements)
      csv += model_name(run.batch_norm) + "," + lr_text(run.lr) + "," + std::to_string(m.step) + "," +
             (m.step == 0 ? "" : field(m.train_loss)) + "," + optional_field(m.test_acc) + "," + optional_field(m.p15) +
             "," + optional_field(m.p50) + "," + optional_field(m.p85) + "\n";
  return csv;
}

// Figure 1(a): one line per run, the net without BN dashed.
Plot accuracy_plot(const Context& ctx) {
  Plot plot;
  plot.title = "Figure 1(a): test accuracy on Fashion-MNIST, sigmoid MLP";
  plot.x_label = "training step (mini-batches of " + std::to_string(ctx.config.batch) + ")";
  plot.y_label = "test accuracy (10,000 images)";
  for (const Run& run : ctx.runs) {
    Line line{
        model_label(run.batch_norm) + ", lr " + lr_text(run.lr), run_color(run, ctx.config), {}, {}, !run.batch_norm};
    for (const Measurement& m : run.measurements)
      line.x.push_back(static_cast<double>(m.step)), line.y.push_back(m.test_acc);
    plot.lines.push_back(line);
  }
  return plot;
}

// Figure 1(b, c): the 15th-85th percentile band and the median of the watched sigmoid's input. Runs
// with the same learning rate share the y range, so their figures compare at a glance.
Plot percentile_plot(const Run& run, const Context& ctx) {
  Plot plot;
  plot.title = std::string(run.batch_norm ? "Figure 1(c)" : "Figure 1(b)") +
               ": input of a last-hidden-layer sigmoid, " + model_label(run.batch_norm) + ", lr " + lr_text(run.lr);
  plot.x_label = "training step";
  plot.y_label = "sigmoid input (unit " + std::to_string(kWatchedUnit) + ", 1,000 test images)";
  const std::string color = run_color(run, ctx.config);
  Band band{"15th to 85th percentile", color, {}, {}, {}};
  Line median{"median (50th percentile)", color, {}, {}};
  for (const Measurement& m : run.measurements) {
    const double step = static_cast<double>(m.step);
    band.x.push_back(step), band.low.push_back(m.p15), band.high.push_back(m.p85);
    median.x.push_back(step), median.y.push_back(m.p50);
  }
  plot.bands.push_back(band);
  plot.lines.push_back(median);
  for (const Run& other : ctx.runs) {
    if (other.lr != run.lr) continue;
    for (const Measurement& m : other.measurements) {
      if (std::isfinite(m.p15)) plot.y_min = std::min(plot.y_min.value_or(m.p15), m.p15);
      if (std::isfinite(m.p85)) plot.y_max = std::max(plot.y_max.value_or(m.p85), m.p85);
    }
  }
  if (plot.y_min && plot.y_max) {  // widen to ticks, as an automatic axis would
    const Ticks ticks = nice_ticks(*plot.y_min, *plot.y_max);
    plot.y_min = ticks.values.front(), plot.y_max = ticks.values.back();
  }
  return plot;
}

// Rewritten after every measurement, so the figures can be watched while training runs.
void write_outputs(const Context& ctx) {
  const std::filesystem::path out = ctx.config.out;
  write_file_atomically((out / "metrics.csv").string(), metrics_csv(ctx.runs));
  write_svg(ctx.config.out, "accuracy.svg", accuracy_plot(ctx));
  for (const Run& run : ctx.runs)
    write_svg(ctx.config.out, "sigmoid_input_" + model_name(run.batch_norm) + "_lr" + lr_text(run.lr) + ".svg",
              percentile_plot(run, ctx));
}

void train_run(Run& run, Context& ctx) {
  PaperMlp mlp = make_paper_mlp(run.batch_norm, ctx.config.seed);
  ng::optim::SGD sgd(mlp.net->parameters(), {.lr = run.lr});
  train_sweep_run<Measurement>(
      run, ctx.config, *mlp.net, sgd, ctx.train, ctx.progress,
      [&](int64_t step, double train_loss) { return measure(mlp, ctx, step, train_loss); },
      [&] { write_outputs(ctx); });
}

void print_summary(const Context& ctx, double wall_seconds) {
  const int64_t early_step = std::min(ctx.config.eval_every, ctx.config.steps);
  std::printf("\nSummary: Fashion-MNIST, 784-100-100-100-10 sigmoid MLP, SGD, batch %lld, %lld steps, seed %llu\n",
              static_cast<long long>(ctx.config.batch), static_cast<long long>(ctx.config.steps),
              static_cast<unsigned long long>(ctx.config.seed));
  std::printf("  %-11s %8s %16s %15s %11s %9s\n", "net", "lr", ("acc @ step " + std::to_string(early_step)).c_str(),
              "final test acc", "train time", "steps/s");
  for (const Run& run : ctx.runs) {
    double early = kNaN;
    for (const Measurement& m : run.measurements)
      if (m.step == early_step) early = m.test_acc;
    const std::string final_acc = run.diverged ? "diverged @ " + std::to_string(run.steps_done)
                                               : format("%.4f", run.measurements.back().test_acc);
    std::printf("  %-11s %8s %16s %15s %9.1f s %9.0f\n", model_label(run.batch_norm).c_str(), lr_text(run.lr).c_str(),
                std::isnan(early) ? "-" : format("%.4f", early).c_str(), final_acc.c_str(), run.train_seconds,
                static_cast<double>(run.steps_done) / run.train_seconds);
  }
  std::printf("Wall time %.1f s (training plus evaluation). Figures and metrics.csv in %s/\n", wall_seconds,
              ctx.config.out.c_str());
}

int run_experiment(const SweepConfig& config) {
  if (!fashion_mnist_found("bn_paper", config.data)) return 1;
  std::filesystem::create_directories(config.out);
  Context ctx(config);
  std::vector<int64_t> probe(kProbeImages);
  for (int64_t i = 0; i < kProbeImages; ++i) probe[static_cast<std::size_t>(i)] = i;
  ctx.probe_inputs = ctx.test.get_batch(probe).inputs;

  for (double lr : config.learning_rates)
    for (bool batch_norm : config.batch_norm) ctx.runs.push_back({batch_norm, lr, {}});
  ctx.progress.steps_planned = config.steps * static_cast<int64_t>(ctx.runs.size());
  std::printf("bn_paper: %zu run(s) of %lld steps, measured every %lld steps; data %s, output %s/\n", ctx.runs.size(),
              static_cast<long long>(config.steps), static_cast<long long>(config.eval_every), config.data.c_str(),
              config.out.c_str());
  for (Run& run : ctx.runs) train_run(run, ctx);
  print_summary(ctx, std::chrono::duration<double>(Clock::now() - ctx.progress.start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("bn_paper", [&] {
    const std::optional<SweepConfig> config = parse_config(argc, argv);
    return config ? run_experiment(*config) : 0;
  });
}
