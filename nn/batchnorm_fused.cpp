// batchnorm_fused.cpp: Batch Normalization as one op, with its closed-form backward.
//
// The fast path next to the reference in batchnorm_composed.cpp: one graph node instead of nine (for
// [N, C]; eleven for [N, C, H, W], which adds two reshapes), plain loops over raw pointers, sums accumulated in double.
// The backward is the closed form derived step by step from the composed graph in nn/batchnorm_backward.md; per
// channel, with sums over the m = N*H*W values i of the mini-batch and g = dL/dy:
//   dL/dbeta  = sum_i g_i
//   dL/dgamma = sum_i g_i x_hat_i
//   dL/dx_i   = gamma * inv_std / m * (m g_i - sum_j g_j - x_hat_i sum_j g_j x_hat_j)
// The tests hold it to the composed version and to finite differences.
#include <cmath>

#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"
#include "autograd/parallel_for.h"
#include "batchnorm.h"
#include "batchnorm_shapes.h"

namespace ng::nn::functional {

namespace {

using detail::ChannelLayout;

// Calls f(c, i) for every element i of x seen as [N, C, S], c being i's channel, in memory order. Two
// loop nests, so that the innermost loop is the contiguous one in both layouts: along the channels of
// a row for [N, C] (there it vectorizes), along the H*W positions of one channel for [N, C, H, W].
// Threads share out the rows n (each element is written by one thread).
template <class F> void for_each_element(const ChannelLayout& L, F&& f) {
  const bool threads = kernel::share_elements(L.N * L.C * L.S);
  if (L.S == 1) {
    kernel::parallel_for(L.N, threads, [&](int64_t n) {
      for (int64_t c = 0; c < L.C; ++c) f(c, n * L.C + c);
    });
  } else {
    kernel::parallel_for(L.N, threads, [&](int64_t n) {
      for (int64_t c = 0; c < L.C; ++c) {
        const int64_t block = (n * L.C + c) * L.S;
        for (int64_t s = 0; s < L.S; ++s) f(c, block + s);
      }
    });
  }
}

// sum_i term(c, i) over each channel's values, added into acc[c] (double). For [N, C] the loop runs along
// the channels of a row; for [N, C, S] along one channel's S contiguous positions, with kernel::lane_sum (eight
// partial sums in vector registers, a fixed order of additions: the same result on every
// run, close to the one-by-one sum). For [N, C, S] threads share out the channels: each channel's sum is
// made by one thread, over n in order, so the result does not depend on the thread count. [N, C] stays
// on one thread (its rows are short: a sum per channel would need partial sums per thread).
template <class Term> void sum_per_channel(const ChannelLayout& L, double* acc, Term term) {
  if (L.S == 1) {
    for (int64_t n = 0; n < L.N; ++n)
      for (int64_t c = 0; c < L.C; ++c) acc[c] += term(c, n * L.C + c);
    return;
  }
  kernel::parallel_for(L.C, kernel::share_elements(L.N * L.C * L.S), [&](int64_t c) {
    for (int64_t n = 0; n < L.N; ++n) {
      const int64_t block = (n * L.C + c) * L.S;
      acc[c] += kernel::lane_sum(L.S, [&](int64_t s) { return term(c, block + s); });
    }
  });
}

// What the forward hands to the backward and to the running averages, per channel.
struct Statistics {
  std::vector<double> mean;     // mu_B
  std::vector<double> var;      // sigma_B^2 (biased, 1/m)
  std::vector<double> inv_std;  // 1 / sqrt(sigma_B^2 + eps)
};

// x: [N, C, S], gamma, beta: [C] or null -> y: [N, C, S]
//   y = gamma * (x - mu_B) * inv_std + beta
template <class T>
Statistics forward_kernel(const T* x, const T* gamma, const T* beta, T* y, const ChannelLayout& L, double eps) {
  const auto C = static_cast<std::size_t>(L.C);
  const double m = static_cast<double>(L.m());
  Statistics stats{std::vector<double>(C, 0.0), std::vector<double>(C, 0.0), std::vector<double>(C)};
  double* mean = stats.mean.data();
  double* var = stats.var.data();

  // mu_B = 1/m sum_i x_i
  sum_per_channel(L, mean, [&](int64_t, int64_t i) { return static_cast<double>(x[i]); });
  for (std::size_t c = 0; c < C; ++c) mean[c] /= m;

  // sigma_B^2 = 1/m sum_i (x_i - mu_B)^2, in a second sweep: the one-sweep E[x^2] - E[x]^2 cancels
  // catastrophically when |mu_B| >> sigma_B (an input with mean 1e3 and spread 1e-2 loses 10 digits).
  sum_per_channel(L, var, [&](int64_t c, int64_t i) {
    const double centered = x[i] - mean[c];
    return centered * centered;
  });
  std::vector<double> scale(C), shift(C);
  for (std::size_t c = 0; c < C; ++c) {
    var[c] /= m;
    stats.inv_std[c] = 1.0 / std::sqrt(var[c] + eps);
    scale[c] = (gamma ? gamma[c] : 1.0) * stats.inv_std[c];
    shift[c] = beta ? beta[c] : 0.0;
  }

  // y_i = gamma x_hat_i + beta = (x_i - mu_B) * (gamma * inv_std) + beta, in double: x_i - mu_B must not
  // round mu_B to float32 first (an input with mean 1e3 and spread 1e-2 would lose half its digits).
  for_each_element(L, [&](int64_t c, int64_t i) { y[i] = static_cast<T>((x[i] - mean[c]) * scale[c] + shift[c]); });
  return stats;
}

// g = dL/dy: [N, C, S] -> dx: [N, C, S] (when non-null), dgamma, dbeta: [C] (double)
template <class T> void backward_kernel(const T* g, const T* x, const T* gamma, const Statistics& stats,
                                        const ChannelLayout& L, T* dx, std::vector<double>& dgamma,
                                        std::vector<double>& dbeta) {
  const auto C = static_cast<std::size_t>(L.C);
  const double m = static_cast<double>(L.m());
  const double* mean = stats.mean.data();
  const double* inv_std = stats.inv_std.data();
  dgamma.assign(C, 0.0);
  dbeta.assign(C, 0.0);
  double* sum_g = dbeta.data();
  double* sum_g_x_hat = dgamma.data();

  // dbeta = sum_i g_i;  dgamma = sum_i g_i x_hat_i = inv_std * sum_i g_i (x_i - mu_B)
  sum_per_channel(L, sum_g, [&](int64_t, int64_t i) { return static_cast<double>(g[i]); });
  sum_per_channel(L, sum_g_x_hat, [&](int64_t c, int64_t i) { return g[i] * (x[i] - mean[c]); });
  for (std::size_t c = 0; c < C; ++c) sum_g_x_hat[c] *= inv_std[c];
  if (!dx) return;

  // dx_i = gamma inv_std / m * (m g_i - sum_j g_j - x_hat_i sum_j g_j x_hat_j)
  //      = k * (g_i - mean_g - (x_i - mu_B) * x_hat_coef)
  // with k = gamma inv_std, mean_g = (sum_j g_j) / m and x_hat_coef = inv_std (sum_j g_j x_hat_j) / m.
  std::vector<double> k(C), mean_g(C), x_hat_coef(C);
  for (std::size_t c = 0; c < C; ++c) {
    k[c] = (gamma ? gamma[c] : 1.0) * inv_std[c];
    mean_g[c] = sum_g[c] / m;
    x_hat_coef[c] = inv_std[c] * sum_g_x_hat[c] / m;
  }
  for_each_element(L, [&](int64_t c, int64_t i) {
    dx[i] = static_cast<T>(k[c] * (g[i] - mean_g[c] - (x[i] - mean[c]) * x_hat_coef[c]));
  });
}

template <class T> const T* data_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

// The same closed form, written with ops so that it can be differentiated again: the backward the
// node runs under create_graph (second derivatives of BN, a gradient penalty through BN). It
// recomputes x_hat from x, so that gradients reach x through x_hat too.
//   dx = gamma inv_std (g - mean(g) - x_hat mean(g x_hat)),  dgamma = sum(g x_hat),  dbeta = sum(g)
std::vector<Tensor> backward_with_ops(const Tensor& g, const Tensor& x, const Tensor& gamma, double eps) {
  const std::vector<int64_t> B = detail::batch_dims(x);
  const Tensor centered = x - mean(x, B, true);
  const Tensor inv_std = 1.0 / sqrt(mean(pow(centered, 2.0), B, true) + eps);
  const Tensor x_hat = centered * inv_std;
  const Tensor scale = gamma.defined() ? detail::per_channel(gamma, x) * inv_std : inv_std;
  const Tensor dx = scale * (g - mean(g, B, true) - x_hat * mean(g * x_hat, B, true));
  return {dx, sum(g * x_hat, B), sum(g, B)};
}
}  // namespace

// x: [N, C], [N, C, L] or [N, C, H, W], gamma, beta: [C] -> y: the shape of x
BatchNormResult batch_norm_fused_with_stats(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  const ChannelLayout layout = detail::check_batch_norm_args("batch_norm_fused", x, gamma, beta);
  detail::check_batch_size("batch_norm_fused", x, layout);
  detail::check_eps("batch_norm_fused", eps);
  Tensor y = empty(x.shape(), x.dtype());
  Statistics stats = dispatch_float("batch_norm_fused", x.dtype(), [&]<class T>() {
    return forward_kernel<T>(x.data<T>(), data_or_null<T>(gamma), data_or_null<T>(beta), y.mutable_data<T>(), layout,
                             eps);
  });
  BatchNormResult result{y, tensor(stats.mean, {layout.C}, x.dtype()), tensor(stats.var, {layout.C}, x.dtype())};

  // The inputs that exist, in the order x, gamma, beta; the backward returns one gradient for each.
  std::vector<const Tensor*> inputs{&x};
  if (gamma.defined()) inputs.push_back(&gamma);
  if (beta.defined()) inputs.push_back(&beta);
  if (!any_requires_grad({&x, &gamma, &beta})) return result;

  // Without create_graph (grad mode off in the backward) the fast kernel runs; with it, the same
  // formula in ops, so that the gradient has a graph of its own.
  const std::size_t beta_at = gamma.defined() ? 2 : 1;  // gamma, when there is one, is input 1
  record(result.y, "batch_norm", inputs,
         [x = SavedTensor(x), gamma = SavedTensor(gamma), has_beta = beta.defined(), beta_at, n_inputs = inputs.size(),
          stats = std::move(stats), layout, eps](const Tensor& g, const Node& node) {
           const Tensor xv = x.unpack(node), gv = gamma.unpack(node);
           std::vector<Tensor> grads(n_inputs);
           Tensor dgamma, dbeta;
           if (is_grad_enabled()) {
             std::vector<Tensor> d = backward_with_ops(g, xv, gv, eps);
             grads[0] = d[0];
             dgamma = d[1];
             dbeta = d[2];
           } else {
             if (node.needs_grad(0)) grads[0] = empty(xv.shape(), xv.dtype());
             std::vector<double> dgamma_sum, dbeta_sum;
             dispatch_float("batch_norm_fused", xv.dtype(), [&]<class T>() {
               backward_kernel<T>(g.data<T>(), xv.data<T>(), data_or_null<T>(gv), stats, layout,
                                  node.needs_grad(0) ? grads[0].mutable_data<T>() : nullptr, dgamma_sum, dbeta_sum);
             });
             dgamma = tensor(dgamma_sum, {layout.C}, xv.dtype());
             dbeta = tensor(dbeta_sum, {layout.C}, xv.dtype());
           }
           if (!node.needs_grad(0)) grads[0] = Tensor();
           if (gv.defined() && node.needs_grad(1)) grads[1] = dgamma;
           if (has_beta && node.needs_grad(beta_at)) grads[beta_at] = dbeta;
           return grads;
         });
  return result;
}

Tensor batch_norm_fused(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  return batch_norm_fused_with_stats(x, gamma, beta, eps).y;
}

}  // namespace ng::nn::functional
