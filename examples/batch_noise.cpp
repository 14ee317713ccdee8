// batch_noise: in training, BN's output for an example depends on the other examples in its batch,
// a noise that shrinks like 1/sqrt(N) with the batch size N (and acts as a regularizer).
//
// The idea. Section 3.4 of the BN paper: in training, BN normalizes an example x0 with the statistics
// of its mini-batch,
//   x_hat = (x0 - mu_B) / sqrt(var_B + eps),
// and mu_B, var_B change with whichever other examples were drawn, so the same x0 gets a slightly
// different x_hat in every batch: the network never sees an example the same way twice, which the
// paper found to regularize (less need for Dropout). How much does x_hat move? With the feature's
// mean mu and standard deviation sigma over the whole data, write mu_B = mu + sigma a and
// sigma_B = sigma (1 + b); over random batches a and b are small, with
//   var(a) = 1/N,   var(b) ~ (kurtosis - 1) / (4N),   cov(a, b) ~ skewness / (2N),
// and to first order x_hat ~ z - a - z b, where z = (x0 - mu) / sigma is where x0 sits. So
//   std(x_hat) ~ c / sqrt(N),   c = sqrt(1 + z skewness + z^2 (kurtosis - 1) / 4),
// which for a Gaussian feature is sqrt(1 + z^2 / 2): 1/sqrt(N) from the batch mean alone, more for an
// example far from the mean, whose x_hat also depends on the batch's spread.
//
// The experiment: one fixed Fashion-MNIST test image is put into --trials random batches of size N
// (the other N - 1 drawn from the training set), for N in 4, 16, 60, 256; the batch goes through a
// fixed random Linear(784, 4), then BatchNorm1d(4) in training mode; we collect the image's output
// for the 4 units and measure its standard deviation over the batches. The table gives std, std *
// sqrt(N) (about constant if std ~ 1/sqrt(N)) and c predicted from the moments of each unit over the
// training set. Written into --out (default batch_noise_out/): std_vs_batch_size.svg, log-log.
//
// What to look for: std * sqrt(N) about constant, near the predicted c for N = 60 and 256 (500
// batches measure a std to ~3%); at N = 4 the first-order formula is rough, and the image is a
// quarter of its own batch.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "data/mnist.h"
#include "examples/common/args.h"
#include "examples/common/svg_plot.h"
#include "examples/common/sweep.h"
#include "nn/batchnorm.h"
#include "nn/linear.h"

using namespace examples;
using ng::Tensor;

namespace {

constexpr int64_t kUnits = 4;

// images [B, 1, 28, 28] -> [B, 784]
Tensor flat(const Tensor& images) { return images.reshape({images.size(0), -1}); }

// What the delta method above needs about each unit: its moments over the training set, and z of the image.
struct UnitStats {
  double z, skewness, kurtosis;
  double predicted_c() const { return std::sqrt(1 + z * skewness + z * z * (kurtosis - 1) / 4); }
};

std::vector<UnitStats> unit_stats(ng::nn::Linear& layer, const ng::data::MNIST& train_set, const Tensor& image) {
  std::vector<double> s1(kUnits), s2(kUnits), s3(kUnits), s4(kUnits);  // sums of x, x^2, x^3, x^4
  for (int64_t start = 0; start < train_set.size(); start += 1000) {
    std::vector<int64_t> indices;
    for (int64_t i = start; i < std::min(start + 1000, train_set.size()); ++i) indices.push_back(i);
    const Tensor x = layer(flat(train_set.get_batch(indices).inputs)).to(ng::float64);  // [1000, 4]
    const std::vector<double> v = x.to_vector();
    for (std::size_t k = 0; k < v.size(); ++k) {
      const std::size_t j = k % kUnits;
      s1[j] += v[k], s2[j] += v[k] * v[k], s3[j] += v[k] * v[k] * v[k], s4[j] += v[k] * v[k] * v[k] * v[k];
    }
  }
  const double n = static_cast<double>(train_set.size());
  const std::vector<double> x0 = layer(flat(image)).to_vector();
  std::vector<UnitStats> stats;
  for (std::size_t j = 0; j < kUnits; ++j) {
    const double mu = s1[j] / n, m2 = s2[j] / n, m3 = s3[j] / n, m4 = s4[j] / n;
    // central moments from raw ones: E[(x - mu)^k] expanded binomially
    const double var = m2 - mu * mu;
    const double c3 = m3 - 3 * mu * m2 + 2 * mu * mu * mu;
    const double c4 = m4 - 4 * mu * m3 + 6 * mu * mu * m2 - 3 * mu * mu * mu * mu;
    stats.push_back({(x0[j] - mu) / std::sqrt(var), c3 / std::pow(var, 1.5), c4 / (var * var)});
  }
  return stats;
}

// `count` distinct indices below `population`, from ng's generator (so that runs repeat exactly).
std::vector<int64_t> draw_distinct(int64_t count, int64_t population) {
  std::vector<int64_t> picked;
  while (static_cast<int64_t>(picked.size()) < count) {
    const auto index = static_cast<int64_t>(ng::random_u64() % static_cast<uint64_t>(population));
    if (std::find(picked.begin(), picked.end(), index) == picked.end()) picked.push_back(index);
  }
  return picked;
}

// The standard deviation (1/(T-1)) of each unit's x_hat over T batches: samples [T][kUnits] -> [kUnits].
std::vector<double> spread(const std::vector<std::vector<double>>& samples) {
  std::vector<double> mean(kUnits, 0.0), sq(kUnits, 0.0);
  const double t = static_cast<double>(samples.size());
  for (const auto& s : samples)
    for (std::size_t j = 0; j < kUnits; ++j) mean[j] += s[j] / t;
  for (const auto& s : samples)
    for (std::size_t j = 0; j < kUnits; ++j) sq[j] += (s[j] - mean[j]) * (s[j] - mean[j]);
  for (std::size_t j = 0; j < kUnits; ++j) sq[j] = std::sqrt(sq[j] / (t - 1));
  return sq;
}

int run(const ArgParser& args) {
  const std::string data_dir = args.get("data"), out_dir = args.get("out");
  const int64_t trials = args.get_int("trials", 2, 1'000'000);
  std::vector<int64_t> sizes;
  for (double n : args.get_positive_list("sizes")) {
    if (n != std::floor(n) || n < 2 || n > 60'000)
      throw UsageError("--sizes: batch sizes must be whole numbers from 2 to 60000, got " + args.get("sizes"));
    sizes.push_back(static_cast<int64_t>(n));
  }
  if (!fashion_mnist_found("batch_noise", data_dir)) return 1;
  const auto start = std::chrono::steady_clock::now();
  const ng::data::Normalize standardize{.mean = 0.2860, .std = 0.3530};  // Fashion-MNIST's pixel statistics
  const ng::data::MNIST train_set(data_dir, true, standardize), test_set(data_dir, false, standardize);
  ng::NoGradGuard no_grad;
  ng::manual_seed(static_cast<uint64_t>(args.get_int("seed", 0, 1'000'000'000)));
  ng::nn::Linear layer(784, kUnits);
  ng::nn::BatchNorm1d bn(kUnits);  // training mode: batch statistics; gamma = 1, beta = 0, so y = x_hat
  const Tensor image = test_set.get_batch({0}).inputs;  // [1, 1, 28, 28], the example we follow
  const std::vector<UnitStats> stats = unit_stats(layer, train_set, image);

  std::printf(
      "batch_noise: test image 0 in %lld random batches of training images per size N;\n"
      "Linear(784, %lld) -> BatchNorm1d (training mode); std over the batches of the image's output\n\n",
      static_cast<long long>(trials), static_cast<long long>(kUnits));
  std::printf("%8s | %-31s | %s\n", "", "std of x_hat, units 0..3", "std * sqrt(N)");
  std::vector<std::vector<double>> stds;
  for (int64_t n : sizes) {
    std::vector<std::vector<double>> samples;
    for (int64_t t = 0; t < trials; ++t) {
      const Tensor others = train_set.get_batch(draw_distinct(n - 1, train_set.size())).inputs;
      const Tensor y = bn(layer(flat(ng::cat({image, others}, 0))));  // [N, 4]; row 0 is our image
      samples.push_back(ng::slice(y, 0, 0, 1).to_vector());
    }
    stds.push_back(spread(samples));
    std::printf("N = %4lld |", static_cast<long long>(n));
    for (double s : stds.back()) std::printf(" %7.4f", s);
    std::printf(" |");
    for (double s : stds.back()) std::printf(" %7.3f", s * std::sqrt(static_cast<double>(n)));
    std::printf("\n");
  }
  std::printf("%8s | %-31s |", "c", "predicted for large N:");
  for (const UnitStats& u : stats) std::printf(" %7.3f", u.predicted_c());
  std::printf("\n%8s | %-31s |", "z", "where the image sits:");
  for (const UnitStats& u : stats) std::printf(" %7.2f", u.z);
  std::printf(
      "\n(c = sqrt(1 + z skewness + z^2 (kurtosis - 1) / 4), from each unit's moments over the training set)\n");

  Plot plot;
  plot.title = "BN output of one image across random batches";
  plot.x_label = "batch size N (log scale)";
  plot.y_label = "std of its x_hat over the batches (log scale)";
  plot.x_log = plot.y_log = true;
  std::vector<double> ns;
  for (int64_t n : sizes) ns.push_back(static_cast<double>(n));
  for (std::size_t j = 0; j < kUnits; ++j) {
    char label[48];
    std::snprintf(label, sizeof label, "unit %zu (z = %.2f)", j, stats[j].z);
    Line measured{label, palette_color(static_cast<int>(j)), ns, {}};
    measured.markers = true;
    for (const auto& s : stds) measured.y.push_back(s[j]);
    plot.lines.push_back(measured);
  }
  Line reference{"1 / sqrt(N)", "#555555", ns, {}, true};
  for (double n : ns) reference.y.push_back(1 / std::sqrt(n));
  plot.lines.push_back(reference);
  write_svg(out_dir, "std_vs_batch_size.svg", plot);
  std::printf("Figure in %s/std_vs_batch_size.svg; %.1f s\n", out_dir.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("batch_noise", [&] {
    ArgParser args("batch_noise",
                   "Puts one Fashion-MNIST test image into many random batches and measures how much its BatchNorm\n"
                   "output moves with the batch: about 1/sqrt(N) for batches of N.");
    args.option("trials", "T", "random batches per batch size", "500");
    args.option("sizes", "N[,M,...]", "batch sizes", "4,16,60,256");
    args.option("seed", "S", "seed for the Linear layer and the batches", "1");
    args.option("out", "DIR", "output folder", "batch_noise_out");
    args.option("data", "DIR", "Fashion-MNIST folder (IDX files)", ng::data::default_fashion_mnist_dir());
    if (!args.parse(argc, argv)) return 0;
    return run(args);
  });
}
