// identity: BN's scale and shift can undo the normalization, so adding BN takes nothing away from
// what a layer can represent, and SGD finds the undoing values by itself.
//
// The idea. Section 3 of the BN paper: normalizing a layer's input could limit the layer (a sigmoid
// fed inputs of mean 0 and variance 1 stays in its nearly linear middle). So BN follows the
// normalization with a learned scale and shift per feature j:
//   x_hat = (x - mu_B) / sqrt(var_B + eps),    y = gamma * x_hat + beta,
// and with gamma = sqrt(var_B + eps) and beta = mu_B this gives back y = x: the identity is one of the
// transforms BN can represent. Nobody has to set those values: they can be learned. Train only gamma
// and beta of a BatchNorm1d to reproduce its input, L = mse(BN(x), x) over a batch of N rows and C
// features. Since y - x = (gamma - sigma_B) x_hat + (beta - mu_B), with sigma_B = sqrt(var_B + eps)
// and x_hat of mean 0 and mean square ~1 over the batch,
//   dL/dgamma_j ~ (2/C) (gamma_j - sigma_B,j),     dL/dbeta_j ~ (2/C) (beta_j - mu_B,j),
// so SGD pulls gamma and beta towards them by a fraction 2 lr / C per step. Every batch has its own
// sigma_B and mu_B; SGD settles at their averages over batches: beta at the mean mu of the whole
// training set, gamma at the average batch sigma_B, a little below the training set's sqrt(var + eps)
// (a small batch's standard deviation is too small on average, by one or two percent for N = 60).
// The loss levels off above 0 for the same reason: one fixed gamma and beta cannot match the sigma_B
// and mu_B of every batch.
//
// The experiment: batches of 60 Fashion-MNIST training images through a fixed random Linear(784, 16)
// give the inputs x of a BatchNorm1d(16). First gamma and beta are set to the formula (exact identity
// up to rounding); then a fresh BatchNorm1d starts at gamma = 1, beta = 0 and SGD trains them (only
// them) for --steps steps, its learning rate annealed to 0 so that the batch-to-batch jitter of the
// targets averages out. Written into --out (default identity_out/): loss.svg (the loss falling),
// gamma.svg and beta.svg (four features' gamma and beta approaching their targets, drawn dashed).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "data/dataloader.h"
#include "data/mnist.h"
#include "examples/common/args.h"
#include "examples/common/svg_plot.h"
#include "examples/common/sweep.h"
#include "nn/batchnorm.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "optim/scheduler.h"
#include "optim/sgd.h"

using namespace examples;
using ng::Tensor;

namespace {

constexpr int64_t kFeatures = 16, kBatch = 60, kShown = 4;  // kShown features in the figures and the table
constexpr double kEps = 1e-5;

double max_abs(const Tensor& x) { return ng::max(ng::abs(x).reshape({-1}), 0).values.item(); }

// var_B = (1/N) sum_i (x_i - mu_B)^2 per feature:  x: [N, C] -> [C]
Tensor batch_variance(const Tensor& x) { return (x - x.mean({0}, true)).pow(2).mean({0}); }

// With gamma = sqrt(var_B + eps) and beta = mu_B, BN(x) = x. Prints max |BN(x) - x| for both BN
// implementations, in float32 and float64.
void show_exact_identity(const Tensor& x32) {
  std::printf("\nExact: gamma = sqrt(var_B + eps), beta = mu_B on one batch x [%lld, %lld] (max |x| = %.2f)\n",
              static_cast<long long>(x32.size(0)), static_cast<long long>(x32.size(1)), max_abs(x32));
  std::printf("%-10s %-9s %16s\n", "BN", "dtype", "max |BN(x) - x|");
  for (const Tensor& x : {x32, x32.to(ng::float64)}) {
    const Tensor gamma = (batch_variance(x) + kEps).sqrt(), beta = x.mean({0});
    const char* dtype = x.dtype() == ng::float32 ? "float32" : "float64";
    std::printf("%-10s %-9s %16.1e\n", "fused", dtype,
                max_abs(ng::nn::functional::batch_norm_fused(x, gamma, beta, kEps) - x));
    std::printf("%-10s %-9s %16.1e\n", "composed", dtype,
                max_abs(ng::nn::functional::batch_norm_composed(x, gamma, beta, kEps) - x));
  }
}

struct Targets {
  std::vector<double> mean, sigma;  // over the whole training set: mu_j and sqrt(var_j + eps)
};

// mu_j and sqrt(var_j + eps) of the layer's outputs over the whole training set, 1,000 images at a time.
Targets population_targets(ng::nn::Linear& layer, const ng::data::MNIST& data) {
  std::vector<double> sum(kFeatures, 0.0), sum_squares(kFeatures, 0.0);
  for (int64_t start = 0; start < data.size(); start += 1000) {
    std::vector<int64_t> indices(static_cast<std::size_t>(std::min<int64_t>(1000, data.size() - start)));
    std::iota(indices.begin(), indices.end(), start);
    const Tensor images = data.get_batch(indices).inputs;  // [B, 1, 28, 28]
    const Tensor x = layer(images.reshape({images.size(0), -1})).to(ng::float64);
    const std::vector<double> s = x.sum({0}).to_vector(), ss = (x * x).sum({0}).to_vector();
    for (int64_t j = 0; j < kFeatures; ++j) sum[j] += s[j], sum_squares[j] += ss[j];
  }
  Targets t;
  const double n = static_cast<double>(data.size());
  for (int64_t j = 0; j < kFeatures; ++j) {
    const double mean = sum[j] / n;
    t.mean.push_back(mean);
    t.sigma.push_back(std::sqrt(sum_squares[j] / n - mean * mean + kEps));  // var = E[x^2] - mu^2
  }
  return t;
}

struct History {
  std::vector<double> step, loss;
  std::vector<std::vector<double>> gamma, beta;  // [kShown][step]
  std::vector<double> batch_sigma_sum;           // sum over the steps of each feature's sigma_B
};

Plot parameter_plot(const History& h, const Targets& targets, bool gamma) {
  Plot plot;
  plot.title = gamma ? "gamma learns sqrt(var + eps)" : "beta learns the mean";
  plot.x_label = "SGD step (batches of 60)";
  plot.y_label = gamma ? "gamma" : "beta";
  for (int64_t j = 0; j < kShown; ++j) {
    const std::string color = palette_color(static_cast<int>(j)), name = "feature " + std::to_string(j);
    plot.lines.push_back({name + (gamma ? ": gamma" : ": beta"), color, h.step, gamma ? h.gamma[j] : h.beta[j]});
    const double target = gamma ? targets.sigma[j] : targets.mean[j];
    plot.lines.push_back({name + (gamma ? ": sqrt(var + eps)" : ": mean"),
                          color,
                          {h.step.front(), h.step.back()},
                          {target, target},
                          true});
  }
  return plot;
}

int run(const ArgParser& args) {
  const std::string data_dir = args.get("data"), out_dir = args.get("out");
  const int64_t steps = args.get_int("steps", 1, 1'000'000);
  const std::vector<double> lrs = args.get_positive_list("lr");
  if (lrs.size() != 1) throw UsageError("--lr: expected one learning rate, got " + args.get("lr"));
  const double lr = lrs[0];
  if (!fashion_mnist_found("identity", data_dir)) return 1;
  const auto start = std::chrono::steady_clock::now();
  // Pixels standardized with Fashion-MNIST's mean and standard deviation, as a network would see them.
  const ng::data::MNIST train_set(data_dir, true, {.mean = 0.2860, .std = 0.3530});
  ng::manual_seed(1);
  ng::nn::Linear layer(784, kFeatures);  // fixed: it only makes realistic layer inputs
  ng::data::DataLoader loader(train_set, {.batch_size = kBatch, .shuffle = true, .seed = 1, .drop_last = true});
  auto layer_input = [&](const ng::data::Batch& batch) {
    ng::NoGradGuard no_grad;
    return layer(batch.inputs.reshape({batch.inputs.size(0), -1}));  // images [N, 1, 28, 28] -> x [N, 16]
  };
  show_exact_identity(layer_input(*loader.begin()));
  Targets targets;
  {
    ng::NoGradGuard no_grad;
    targets = population_targets(layer, train_set);
  }

  ng::nn::BatchNorm1d bn(kFeatures, {.eps = kEps});  // gamma = 1, beta = 0
  ng::optim::SGD sgd(bn.parameters(), {.lr = lr});
  // The step shrinks to 0 along half a cosine: the jitter from batch to batch averages out.
  ng::optim::CosineAnnealingLR schedule(sgd, steps);
  History h{{},
            {},
            std::vector<std::vector<double>>(kShown),
            std::vector<std::vector<double>>(kShown),
            std::vector<double>(kFeatures, 0.0)};
  auto record = [&](int64_t step, double loss) {
    h.step.push_back(static_cast<double>(step)), h.loss.push_back(loss);
    for (int64_t j = 0; j < kShown; ++j) h.gamma[j].push_back(bn.weight.at({j})), h.beta[j].push_back(bn.bias.at({j}));
  };
  std::printf("\nLearned: SGD on gamma and beta only, lr %g cosine-annealed to 0, loss = mse(BN(x), x)\n", lr);
  std::printf("%6s %11s %22s %22s\n", "step", "loss", "max_j |gamma_j/sigma_j-1|", "max_j |beta_j-mu_j|/sigma_j");
  int64_t step = 0;
  while (step < steps) {
    for (const ng::data::Batch& batch : loader) {
      const Tensor x = layer_input(batch);
      const Tensor loss = ng::nn::mse_loss(bn(x), x);
      if (step == 0) record(0, loss.item());
      sgd.zero_grad();
      loss.backward();
      sgd.step();
      schedule.step();
      const std::vector<double> batch_sigma = (batch_variance(x) + kEps).sqrt().to_vector();
      for (int64_t j = 0; j < kFeatures; ++j) h.batch_sigma_sum[j] += batch_sigma[j];
      ++step;
      record(step, ng::nn::mse_loss(bn(x), x).item());  // the loss on this batch after the step
      if (step == 1 || step % 50 == 0 || step == steps) {
        double gamma_error = 0, beta_error = 0;
        for (int64_t j = 0; j < kFeatures; ++j) {
          gamma_error = std::max(gamma_error, std::abs(bn.weight.at({j}) / targets.sigma[j] - 1));
          beta_error = std::max(beta_error, std::abs(bn.bias.at({j}) - targets.mean[j]) / targets.sigma[j]);
        }
        std::printf("%6lld %11.3e %22.4f %22.4f\n", static_cast<long long>(step), h.loss.back(), gamma_error,
                    beta_error);
      }
      if (step == steps) break;
    }
  }

  std::printf("(gamma's error does not go to 0: gamma learns the average batch sigma_B, a little below sigma)\n");
  std::printf(
      "\nAfter %lld steps, per feature (sigma = sqrt(var + eps) and mu over all 60,000 training images;\n"
      "mean sigma_B = the average over the training batches):\n%8s %9s %13s %9s | %9s %9s\n",
      static_cast<long long>(steps), "feature", "gamma", "mean sigma_B", "sigma", "beta", "mu");
  for (int64_t j = 0; j < kShown + 2; ++j)
    std::printf("%8lld %9.4f %13.4f %9.4f | %9.4f %9.4f\n", static_cast<long long>(j), bn.weight.at({j}),
                h.batch_sigma_sum[j] / static_cast<double>(steps), targets.sigma[j], bn.bias.at({j}), targets.mean[j]);

  Plot loss_plot;
  loss_plot.title = "Learning the identity: mse(BN(x), x) per batch";
  loss_plot.x_label = "SGD step (batches of 60)";
  loss_plot.y_label = "loss on the batch (log scale)";
  loss_plot.y_log = true;
  loss_plot.lines.push_back({"loss (floor > 0: batches differ)", palette_color(0), h.step, h.loss});
  write_svg(out_dir, "loss.svg", loss_plot);
  write_svg(out_dir, "gamma.svg", parameter_plot(h, targets, true));
  write_svg(out_dir, "beta.svg", parameter_plot(h, targets, false));
  std::printf("Figures in %s/ (loss.svg, gamma.svg, beta.svg); %.1f s\n", out_dir.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("identity", [&] {
    ArgParser args("identity",
                   "Shows that BN with gamma = sqrt(var + eps), beta = mean is the identity, and that SGD on gamma\n"
                   "and beta alone learns those values from real layer inputs (Fashion-MNIST through a Linear).");
    args.option("steps", "N", "SGD steps", "600");
    args.option("lr", "A", "SGD learning rate", "0.2");
    args.option("out", "DIR", "output folder", "identity_out");
    args.option("data", "DIR", "Fashion-MNIST folder (IDX files)", ng::data::default_fashion_mnist_dir());
    if (!args.parse(argc, argv)) return 0;
    return run(args);
  });
}
