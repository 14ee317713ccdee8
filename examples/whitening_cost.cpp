// whitening_cost: whitening would fix a layer's input distribution completely, but costs too much;
// BN normalizes each feature on its own, for a fraction of the price.
//
// The idea. Section 2 of the BN paper: the thorough cure for a shifting input distribution is to
// whiten each layer's input, i.e. make it mean 0 with covariance I. For m examples of d features,
// x: [m, d], ZCA whitening computes
//   mu = (1/m) sum_i x_i,    Sigma = (1/m) (x - mu)^T (x - mu)           [d, d]       O(m d^2)
//   Sigma = U diag(lambda) U^T       (symmetric eigendecomposition)                   O(d^3)
//   W = U diag(1 / sqrt(lambda + eps)) U^T,    y = (x - mu) W                         O(d^3 + m d^2)
//   cov(y) = W Sigma W = U diag(lambda / (lambda + eps)) U^T  ~ I
// and a network would have to do it, and backpropagate through it, at every layer and every step.
// BN gives up the decorrelation and normalizes each feature j alone,
//   y_j = (x_j - mu_j) / sqrt(var_j + eps)                                            O(m d)
// so each feature gets mean 0 and variance 1, while the correlations between features stay exactly
// what they were: a shift and a positive scale per feature leave corr(x_j, x_k) unchanged.
//
// The experiment: m = 512 Fashion-MNIST training images through a fixed random Linear(784, d), in
// float64, for d = 16 ... 256; it times ZCA whitening (the eigendecomposition by the Jacobi method
// below) against ng::nn::functional::batch_norm_fused, and checks what each one delivers. Written
// into --out (default whitening_cost_out/): time_vs_d.svg, log-log, where a cost growing like d^k
// is a straight line of slope k.
//
// What to look for: ZCA costs 10 times BN at d = 16 and thousands of times at d = 256; its slope is 3
// or a little more (the eigen solver's sweeps grow slowly with d, and past d ~ 100 its matrices leave
// the fast caches), BN's is 1 (flatter at small d, where a call's fixed cost dominates). ZCA's output
// has covariance I to ~1e-6; BN's has every mean 0 and variance 1, and the same correlations as x.
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
#include "data/mnist.h"
#include "examples/common/args.h"
#include "examples/common/svg_plot.h"
#include "examples/common/sweep.h"
#include "nn/batchnorm.h"
#include "nn/linear.h"

using namespace examples;
using ng::Tensor;

namespace {

// The same eps for whitening and for BN. It only guards the divisions; PyTorch's 1e-5 would shift the
// results by eps / lambda, up to 1e-1 here where the smallest eigenvalues are ~1e-4, and hide how
// exactly each method does what it does.
constexpr double kEps = 1e-9;
constexpr int64_t kBatch = 512;

struct Eigen {
  std::vector<double> lambda;  // [d]
  std::vector<double> U;       // [d, d] row-major, column k is the eigenvector of lambda[k]
  int sweeps = 0;
};

// Symmetric eigendecomposition A = U diag(lambda) U^T by cyclic Jacobi rotations. A rotation J in the
// (p, q) plane (c = cos, s = sin: J_pp = J_qq = c, J_pq = s, J_qp = -s) makes A' = J^T A J with
//   a'_pq = c s (a_pp - a_qq) + (c^2 - s^2) a_pq,
// which is 0 when t = s / c solves t^2 + 2 theta t - 1 = 0 with theta = (a_qq - a_pp) / (2 a_pq); the
// smaller root t = sign(theta) / (|theta| + sqrt(theta^2 + 1)) keeps the rotation under 45 degrees.
// Then c = 1 / sqrt(t^2 + 1), s = t c, and only rows and columns p and q change:
//   a'_pr = a'_rp = c a_pr - s a_qr,   a'_qr = a'_rq = s a_pr + c a_qr     (r != p, q)
//   a'_pp = a_pp - t a_pq,   a'_qq = a_qq + t a_pq,   a'_pq = a'_qp = 0.
// Each rotation costs O(d); a sweep over all d(d-1)/2 pairs costs O(d^3), and the off-diagonal mass
// falls so fast that a handful of sweeps reach rounding level. The rotations multiply into U = J1 J2 ...,
// kept transposed (V = U^T, V' = J^T V) so that every update walks along rows of memory.
Eigen symmetric_eigen(std::vector<double> A, int64_t d) {
  std::vector<double> V(static_cast<std::size_t>(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i) V[static_cast<std::size_t>(i * d + i)] = 1;
  auto row = [d](std::vector<double>& M, int64_t i) { return M.data() + i * d; };
  auto off_diagonal = [&] {
    double sum = 0;
    for (int64_t p = 0; p < d; ++p)
      for (int64_t q = p + 1; q < d; ++q) sum += row(A, p)[q] * row(A, p)[q];
    return sum;
  };
  const double total = std::inner_product(A.begin(), A.end(), A.begin(), 0.0);
  int sweeps = 0;
  for (; off_diagonal() > 1e-30 * total; ++sweeps) {
    if (sweeps == 100)
      throw ng::Error("symmetric_eigen: Jacobi did not converge in 100 sweeps (NaN or Inf in the matrix?)");
    for (int64_t p = 0; p < d; ++p)
      for (int64_t q = p + 1; q < d; ++q) {
        double* a_p = row(A, p);
        double* a_q = row(A, q);
        const double a_pq = a_p[q], a_pp = a_p[p], a_qq = a_q[q];
        if (a_pq == 0) continue;
        const double theta = (a_qq - a_pp) / (2 * a_pq);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t r = 0; r < d; ++r) {
          const double a_pr = a_p[r], a_qr = a_q[r];
          a_p[r] = c * a_pr - s * a_qr;
          a_q[r] = s * a_pr + c * a_qr;
        }
        a_p[p] = a_pp - t * a_pq, a_q[q] = a_qq + t * a_pq;
        a_p[q] = a_q[p] = 0;
        for (int64_t r = 0; r < d; ++r) row(A, r)[p] = a_p[r], row(A, r)[q] = a_q[r];  // A stays symmetric
        double* v_p = row(V, p);
        double* v_q = row(V, q);
        for (int64_t r = 0; r < d; ++r) {
          const double v_pr = v_p[r], v_qr = v_q[r];
          v_p[r] = c * v_pr - s * v_qr;
          v_q[r] = s * v_pr + c * v_qr;
        }
      }
  }
  Eigen result{std::vector<double>(static_cast<std::size_t>(d)), std::vector<double>(V.size()), sweeps};
  for (int64_t k = 0; k < d; ++k) {
    result.lambda[static_cast<std::size_t>(k)] = row(A, k)[k];
    for (int64_t r = 0; r < d; ++r) result.U[static_cast<std::size_t>(r * d + k)] = row(V, k)[r];
  }
  return result;
}

// x: [m, d] -> Sigma = (1/m) (x - mu)^T (x - mu): [d, d]
Tensor covariance(const Tensor& x) {
  const Tensor centered = x - x.mean({0}, true);
  return ng::matmul(centered.t(), centered) / static_cast<double>(x.size(0));
}

struct Whitened {
  Tensor y;              // [m, d]
  double eigen_seconds;  // spent in symmetric_eigen
  int sweeps;
};

// x: [m, d] -> y = (x - mu) W: [m, d], with covariance ~I
Whitened zca_whiten(const Tensor& x) {
  const int64_t d = x.size(1);
  const Tensor sigma = covariance(x);
  const auto start = std::chrono::steady_clock::now();
  const Eigen eig = symmetric_eigen(std::vector<double>(sigma.data<double>(), sigma.data<double>() + d * d), d);
  const double eigen_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> inv_sqrt(eig.lambda.size());
  for (std::size_t k = 0; k < inv_sqrt.size(); ++k) inv_sqrt[k] = 1 / std::sqrt(eig.lambda[k] + kEps);
  const Tensor U = ng::from_vector(eig.U, {d, d});
  // U diag(1/sqrt(lambda + eps)) U^T: scaling the columns of U is a broadcast multiply by a row.
  const Tensor W = ng::matmul(U * ng::from_vector(inv_sqrt, {1, d}), U.t());
  return {ng::matmul(x - x.mean({0}, true), W), eigen_seconds, eig.sweeps};
}

// The shortest of several runs of f (at least 3, more while under 0.2 s in total): the others were
// slowed by something else on the machine.
template <class F> double best_seconds(F&& f) {
  double best = std::numeric_limits<double>::infinity(), spent = 0;
  for (int run = 0; run < 3 || (spent < 0.2 && run < 1000); ++run) {
    const auto start = std::chrono::steady_clock::now();
    f();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, seconds), spent += seconds;
  }
  return best;
}

// The largest |M_jk - I_jk| over the entries off (diagonal = false) or on (true) the diagonal of M: [d, d].
double max_deviation_from_identity(const Tensor& M, bool diagonal) {
  const int64_t d = M.size(0);
  const double* m = M.data<double>();
  double worst = 0;
  for (int64_t j = 0; j < d; ++j)
    for (int64_t k = 0; k < d; ++k)
      if ((j == k) == diagonal) worst = std::max(worst, std::abs(m[j * d + k] - (j == k ? 1 : 0)));
  return worst;
}

// var_j = (1/m) sum_i (x_ij - mu_j)^2:  x: [m, d] -> [d]
Tensor variance(const Tensor& x) { return (x - x.mean({0}, true)).pow(2).mean({0}); }

// corr_jk = Sigma_jk / sqrt(var_j var_k):  x: [m, d] -> [d, d]
Tensor correlation(const Tensor& x) {
  const Tensor stddev = variance(x).sqrt();
  return covariance(x) / (stddev.unsqueeze(1) * stddev.unsqueeze(0));
}

double max_abs(const Tensor& x) { return ng::max(ng::abs(x).reshape({-1}), 0).values.item(); }

struct Row {
  int64_t d;
  double zca_seconds, eigen_seconds, bn_seconds;
  int sweeps;
  // What the outputs are like: cov(ZCA(x)) against I, and BN(x)'s correlations, means and variances.
  double zca_off, zca_diag, bn_max_corr, bn_corr_change, bn_max_mean, bn_var_error;
};

// Times both methods on x: [m, d] and measures their outputs.
Row compare(const Tensor& x) {
  Row row{};
  row.d = x.size(1);
  row.eigen_seconds = std::numeric_limits<double>::infinity();
  Whitened whitened;
  Tensor normalized;
  row.zca_seconds = best_seconds([&] {
    whitened = zca_whiten(x);
    row.eigen_seconds = std::min(row.eigen_seconds, whitened.eigen_seconds);
  });
  row.sweeps = whitened.sweeps;
  row.bn_seconds =
      best_seconds([&] { normalized = ng::nn::functional::batch_norm_fused(x, Tensor(), Tensor(), kEps); });

  const Tensor cov_whitened = covariance(whitened.y);
  row.zca_off = max_deviation_from_identity(cov_whitened, false);
  row.zca_diag = max_deviation_from_identity(cov_whitened, true);
  // With variances 1, BN's covariance is its correlation matrix: its largest off-diagonal entry.
  row.bn_max_corr = max_deviation_from_identity(correlation(normalized), false);
  row.bn_corr_change = max_abs(correlation(normalized) - correlation(x));
  row.bn_max_mean = max_abs(normalized.mean({0}));
  row.bn_var_error = max_abs(variance(normalized) - 1.0);
  return row;
}

// Least-squares slope of log t against log d over rows[first..]: t ~ d^slope.
double log_log_slope(const std::vector<Row>& rows, std::size_t first, double Row::*seconds) {
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = first; i < rows.size(); ++i) {
    const double x = std::log(static_cast<double>(rows[i].d)), y = std::log(rows[i].*seconds);
    n += 1, sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

int run(const std::string& data_dir, const std::string& out_dir) {
  if (!fashion_mnist_found("whitening_cost", data_dir)) return 1;
  const auto start = std::chrono::steady_clock::now();
  const ng::data::MNIST train_set(data_dir, true);
  std::vector<int64_t> first(kBatch);
  std::iota(first.begin(), first.end(), 0);
  const Tensor images = train_set.get_batch(first).inputs.reshape({kBatch, -1}).to(ng::float64);  // [512, 784]
  ng::NoGradGuard no_grad;

  std::printf("whitening_cost: m = %lld Fashion-MNIST images through a fixed random Linear(784, d), float64, eps %g\n",
              static_cast<long long>(kBatch), kEps);
  std::vector<Row> rows;
  for (int64_t d : {16, 32, 64, 128, 256}) {
    ng::manual_seed(static_cast<uint64_t>(d));
    ng::nn::Linear layer(784, d, true, ng::float64);
    rows.push_back(compare(layer(images)));  // x: [512, d]
  }

  std::printf("\nCost (best of several runs)\n");
  std::printf("%5s %12s %12s %7s %12s %9s\n", "d", "ZCA", "eigen part", "sweeps", "BN", "ZCA / BN");
  for (const Row& r : rows)
    std::printf("%5lld %9.3f ms %9.3f ms %7d %9.3f ms %9.0f\n", static_cast<long long>(r.d), 1e3 * r.zca_seconds,
                1e3 * r.eigen_seconds, r.sweeps, 1e3 * r.bn_seconds, r.zca_seconds / r.bn_seconds);
  const double zca_slope = log_log_slope(rows, 2, &Row::zca_seconds),
               bn_slope = log_log_slope(rows, 2, &Row::bn_seconds);
  std::printf("time ~ d^k, k fitted over d = 64..256: %.2f for ZCA, %.2f for BN\n", zca_slope, bn_slope);

  std::printf("\nWhat they give   %-27s | %s\n%5s %13s %13s | %10s %11s %10s %10s\n", "ZCA: cov(y) against I",
              "BN: y keeps the correlations of x", "d", "max|off-diag|", "max|diag-1|", "max|corr|", "max|dcorr|",
              "max|mean|", "max|var-1|");
  for (const Row& r : rows)
    std::printf("%5lld %13.1e %13.1e | %10.2f %11.1e %10.1e %10.1e\n", static_cast<long long>(r.d), r.zca_off,
                r.zca_diag, r.bn_max_corr, r.bn_corr_change, r.bn_max_mean, r.bn_var_error);
  std::printf(
      "(max|corr|: the largest correlation between two features after BN; max|dcorr|: the largest change\n"
      " BN made to any correlation)\n\n");

  Plot plot;
  plot.title = "ZCA whitening against BatchNorm, m = 512 examples, float64";
  plot.x_label = "number of features d (log scale)";
  plot.y_label = "time per call, seconds (log scale)";
  plot.x_log = plot.y_log = true;
  char zca_label[64], bn_label[64];
  std::snprintf(zca_label, sizeof zca_label, "ZCA whitening (slope %.1f)", zca_slope);
  std::snprintf(bn_label, sizeof bn_label, "BatchNorm (slope %.1f)", bn_slope);
  Line zca{zca_label, palette_color(1), {}, {}}, bn{bn_label, palette_color(0), {}, {}};
  zca.markers = bn.markers = true;
  // Reference slopes through the largest d: c d^3 and c d.
  Line cubic{"~ d^3", "#999999", {}, {}, true}, linear{"~ d", "#bbbbbb", {}, {}, true};
  const Row& last = rows.back();
  for (const Row& r : rows) {
    const double scale = static_cast<double>(r.d) / static_cast<double>(last.d);
    zca.x.push_back(static_cast<double>(r.d)), zca.y.push_back(r.zca_seconds);
    bn.x.push_back(static_cast<double>(r.d)), bn.y.push_back(r.bn_seconds);
    cubic.x.push_back(static_cast<double>(r.d)), cubic.y.push_back(last.zca_seconds * scale * scale * scale);
    linear.x.push_back(static_cast<double>(r.d)), linear.y.push_back(last.bn_seconds * scale);
  }
  plot.lines = {zca, bn, cubic, linear};
  write_svg(out_dir, "time_vs_d.svg", plot);
  std::printf("Figure in %s/time_vs_d.svg; %.1f s\n", out_dir.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("whitening_cost", [&] {
    ArgParser args("whitening_cost",
                   "Times full ZCA whitening against per-feature BatchNorm for d = 16 ... 256 features and shows\n"
                   "what each one gives: covariance I, or mean 0 / variance 1 with the correlations left alone.");
    args.option("out", "DIR", "output folder", "whitening_cost_out");
    args.option("data", "DIR", "Fashion-MNIST folder (IDX files)", ng::data::default_fashion_mnist_dir());
    if (!args.parse(argc, argv)) return 0;
    return run(args.get("data"), args.get("out"));
  });
}
