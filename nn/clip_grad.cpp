// clip_grad.cpp: clip_grad_norm_: one pass to measure the gradients' joint norm, one to scale them.
#include "clip_grad.h"

#include <algorithm>
#include <cmath>

#include "autograd/graph.h"
#include "autograd/kernels.h"

namespace ng::nn {

Tensor clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type) {
  if (!(max_norm >= 0))
    throw Error("clip_grad_norm_: max_norm = " + std::to_string(max_norm) + "; expected a number >= 0");
  if (!(norm_type > 0))
    throw Error("clip_grad_norm_: norm_type = " + std::to_string(norm_type) + "; expected p > 0 (or INFINITY)");
  std::vector<Tensor> grads;
  for (const Tensor& p : parameters) {
    if (!p.defined()) throw Error("clip_grad_norm_: an undefined tensor in the parameter list");
    if (p.grad().defined()) grads.push_back(p.grad());
  }

  // total_norm = (sum_i |g_i|^p)^(1/p) over every element of every gradient, accumulated in double;
  // for p = inf, max_i |g_i|.
  const bool max_norm_type = std::isinf(norm_type);
  double accumulated = 0;
  for (const Tensor& g : grads)
    dispatch_float("clip_grad_norm_", g.dtype(), [&]<class T>() {
      const T* v = g.data<T>();
      const int64_t n = g.numel();
      if (!max_norm_type && norm_type == 2) {
        // the usual 2-norm: sum of a * a with kernel::lane_sum (vectorized; a fixed order, the same every run)
        accumulated += kernel::lane_sum(n, [&](int64_t i) {
          const double a = static_cast<double>(v[i]);
          return a * a;
        });
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        const double a = std::abs(static_cast<double>(v[i]));
        accumulated = max_norm_type ? std::max(accumulated, a) : accumulated + std::pow(a, norm_type);
      }
    });
  const double total_norm = max_norm_type ? accumulated : std::pow(accumulated, 1.0 / norm_type);

  const double clip_coef = max_norm / (total_norm + 1e-6);
  if (clip_coef < 1) {
    NoGradGuard no_grad;  // an update of the gradients, not part of any graph
    for (Tensor& g : grads) g.mul_(clip_coef);
  }
  return scalar(total_norm, float64);
}

}  // namespace ng::nn
