// layer_norm_fused.cpp: Layer Normalization as one op, with its closed-form backward: the fast path next to
// layer_norm_composed (normalization.cpp), which the tests hold it to, as batchnorm_fused.cpp is to the
// composed BatchNorm. One graph node instead of nine, and two passes over x instead of about ten.
//
// x is seen as R rows of H features (H = the product of normalized_shape). Per row, as the composed form:
//   mu = 1/H sum_j x_j,   sigma^2 = 1/H sum_j (x_j - mu)^2,   inv_std = 1 / sqrt(sigma^2 + eps)
//   x_hat_j = (x_j - mu) inv_std,   y_j = weight_j x_hat_j + bias_j
// The backward is BatchNorm's closed form (nn/batchnorm_backward.md) with the statistics taken along a row
// instead of down a column. With g = dL/dy and gw_j = g_j weight_j (g_j without weight), per row:
//   dx_j = inv_std (gw_j - 1/H sum_k gw_k - x_hat_j 1/H sum_k gw_k x_hat_k)
// and, summed over the rows,
//   dweight_j = sum_rows g_j x_hat_j,   dbias_j = sum_rows g_j
// Sums are accumulated in double. Under create_graph the backward runs the same formulas in ops instead,
// so the gradient has a graph of its own (second derivatives through LayerNorm).
#include <cmath>
#include <vector>

#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"
#include "autograd/parallel_for.h"
#include "normalization.h"
#include "normalization_checks.h"

namespace ng::nn::functional {

namespace {

// What the forward hands to the backward, per row.
struct RowStatistics {
  std::vector<double> mean;     // mu
  std::vector<double> inv_std;  // 1 / sqrt(sigma^2 + eps)
};

// x: [R, H], weight, bias: [H] or null -> y: [R, H]. Each row is normalized by one thread.
template <class T>
RowStatistics forward_kernel(const T* x, const T* weight, const T* bias, T* y, int64_t R, int64_t H, double eps) {
  RowStatistics stats{std::vector<double>(static_cast<std::size_t>(R)),
                      std::vector<double>(static_cast<std::size_t>(R))};
  kernel::parallel_for(R, kernel::share_elements(R * H), [&](int64_t r) {
    const T* x_row = x + r * H;
    T* y_row = y + r * H;
    // mu = 1/H sum_j x_j
    const double mu =
        kernel::lane_sum(H, [&](int64_t j) { return static_cast<double>(x_row[j]); }) / static_cast<double>(H);
    // sigma^2 = 1/H sum_j (x_j - mu)^2, in a second sweep (E[x^2] - E[x]^2 would cancel when |mu| >> sigma)
    const auto squared_deviation = [&](int64_t j) { return (x_row[j] - mu) * (x_row[j] - mu); };
    const double var = kernel::lane_sum(H, squared_deviation) / static_cast<double>(H);
    const double inv_std = 1.0 / std::sqrt(var + eps);
    // y_j = weight_j x_hat_j + bias_j, in double: x_j - mu must not round mu to float32 first
    for (int64_t j = 0; j < H; ++j) {
      const double x_hat = (x_row[j] - mu) * inv_std;
      y_row[j] = static_cast<T>((weight ? x_hat * weight[j] : x_hat) + (bias ? static_cast<double>(bias[j]) : 0.0));
    }
    stats.mean[r] = mu;
    stats.inv_std[r] = inv_std;
  });
  return stats;
}

// g = dL/dy: [R, H] -> dx: [R, H] (when non-null; one thread per row), dweight, dbias: [H] (double, when
// non-null; summed over the rows in order, r = 0, 1, ..., on one thread).
template <class T> void backward_kernel(const T* g, const T* x, const T* weight, const RowStatistics& stats, int64_t R,
                                        int64_t H, T* dx, double* dweight, double* dbias) {
  const double inv_H = 1.0 / static_cast<double>(H);
  if (dx)
    kernel::parallel_for(R, kernel::share_elements(R * H), [&](int64_t r) {
      const T *g_row = g + r * H, *x_row = x + r * H;
      T* dx_row = dx + r * H;
      const double mu = stats.mean[r], inv_std = stats.inv_std[r];
      const auto gw = [&](int64_t j) { return weight ? static_cast<double>(g_row[j]) * weight[j] : g_row[j]; };
      const auto x_hat = [&](int64_t j) { return (x_row[j] - mu) * inv_std; };
      // mean_gw = 1/H sum_k gw_k,  mean_gw_x_hat = 1/H sum_k gw_k x_hat_k
      const double mean_gw = kernel::lane_sum(H, gw) * inv_H;
      const double mean_gw_x_hat = kernel::lane_sum(H, [&](int64_t j) { return gw(j) * x_hat(j); }) * inv_H;
      // dx_j = inv_std (gw_j - mean_gw - x_hat_j mean_gw_x_hat)
      for (int64_t j = 0; j < H; ++j)
        dx_row[j] = static_cast<T>(inv_std * (gw(j) - mean_gw - x_hat(j) * mean_gw_x_hat));
    });
  if (!dweight && !dbias) return;
  for (int64_t r = 0; r < R; ++r) {
    const T *g_row = g + r * H, *x_row = x + r * H;
    const double mu = stats.mean[r], inv_std = stats.inv_std[r];
    if (dweight)  // dweight_j += g_j x_hat_j
      for (int64_t j = 0; j < H; ++j) dweight[j] += g_row[j] * ((x_row[j] - mu) * inv_std);
    if (dbias)  // dbias_j += g_j
      for (int64_t j = 0; j < H; ++j) dbias[j] += g_row[j];
  }
}

// The same closed form, written with ops so that it can be differentiated again: the backward the node
// runs under create_graph. It recomputes x_hat from x, so that gradients reach x through x_hat too.
//   dx = inv_std (gw - mean(gw) - x_hat mean(gw x_hat)),  dweight = sum_rows(g x_hat),  dbias = sum_rows(g)
std::vector<Tensor> backward_with_ops(const Tensor& g, const Tensor& x, const Tensor& weight,
                                      const std::vector<int64_t>& features, const Shape& normalized_shape, double eps) {
  const Tensor centered = x - mean(x, features, true);
  const Tensor inv_std = 1.0 / sqrt(mean(centered * centered, features, true) + eps);
  const Tensor x_hat = centered * inv_std;
  const Tensor gw = weight.defined() ? g * weight : g;
  const Tensor dx = inv_std * (gw - mean(gw, features, true) - x_hat * mean(gw * x_hat, features, true));
  return {dx, sum_to(g * x_hat, normalized_shape), sum_to(g, normalized_shape)};
}

template <class T> const T* data_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

}  // namespace

// x: [*, normalized_shape...] -> y: the shape of x
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  std::vector<int64_t> features = detail::check_layer_norm_args("layer_norm", x, normalized_shape, weight, bias, eps);
  const int64_t H = shape_numel(normalized_shape, "layer_norm");
  int64_t R = 1;  // the rows: every dim before normalized_shape
  for (int64_t d = 0; d + static_cast<int64_t>(normalized_shape.size()) < x.dim(); ++d) R *= x.size(d);
  Tensor y = empty(x.shape(), x.dtype());
  RowStatistics stats = dispatch_float("layer_norm", x.dtype(), [&]<class T>() {
    return forward_kernel<T>(x.data<T>(), data_or_null<T>(weight), data_or_null<T>(bias), y.mutable_data<T>(), R, H,
                             eps);
  });

  // The inputs that exist, in the order x, weight, bias; the backward returns one gradient for each.
  std::vector<const Tensor*> inputs{&x};
  if (weight.defined()) inputs.push_back(&weight);
  if (bias.defined()) inputs.push_back(&bias);
  if (!any_requires_grad({&x, &weight, &bias})) return y;

  const std::size_t bias_at = weight.defined() ? 2 : 1;  // weight, when there is one, is input 1
  record(y, "layer_norm", inputs,
         [x = SavedTensor(x), weight = SavedTensor(weight), has_bias = bias.defined(), bias_at,
          n_inputs = inputs.size(), stats = std::move(stats), features = std::move(features), normalized_shape, R, H,
          eps](const Tensor& g, const Node& node) {
           const Tensor xv = x.unpack(node), wv = weight.unpack(node);
           const bool need_dweight = wv.defined() && node.needs_grad(1),
                      need_dbias = has_bias && node.needs_grad(bias_at);
           std::vector<Tensor> grads(n_inputs);
           if (is_grad_enabled()) {  // create_graph: the formulas in ops
             std::vector<Tensor> d = backward_with_ops(g, xv, wv, features, normalized_shape, eps);
             if (node.needs_grad(0)) grads[0] = d[0];
             if (need_dweight) grads[1] = d[1];
             if (need_dbias) grads[bias_at] = d[2];
             return grads;
           }
           if (node.needs_grad(0)) grads[0] = empty(xv.shape(), xv.dtype());
           std::vector<double> dweight(need_dweight ? static_cast<std::size_t>(H) : 0, 0.0);
           std::vector<double> dbias(need_dbias ? static_cast<std::size_t>(H) : 0, 0.0);
           dispatch_float("layer_norm", xv.dtype(), [&]<class T>() {
             backward_kernel<T>(g.data<T>(), xv.data<T>(), data_or_null<T>(wv), stats, R, H,
                                node.needs_grad(0) ? grads[0].mutable_data<T>() : nullptr,
                                need_dweight ? dweight.data() : nullptr, need_dbias ? dbias.data() : nullptr);
           });
           if (need_dweight) grads[1] = tensor(dweight, normalized_shape, xv.dtype());
           if (need_dbias) grads[bias_at] = tensor(dbias, normalized_shape, xv.dtype());
           return grads;
         });
  return y;
}

}  // namespace ng::nn::functional
