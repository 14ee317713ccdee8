// whitening.cpp: IterNorm, the whitening layer of whitening.h: the Newton iterations written with
// primitive ops (their backward is the graph's), and the module with its running averages.
#include "whitening.h"

#include <string>
#include <vector>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "checks.h"

namespace ng::nn {

namespace {

Tensor identity_matrix(int64_t d, Dtype dtype) {
  std::vector<double> values(static_cast<std::size_t>(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i) values[static_cast<std::size_t>(i * d + i)] = 1;
  return from_vector(values, {d, d}).to(dtype);
}

}  // namespace

namespace functional {

// x: [m, d] -> y: [m, d]
WhiteningResult iter_norm(const Tensor& x, int64_t iterations, double eps) {
  if (x.dim() != 2 || x.size(0) < 2)
    throw Error("iter_norm: input of shape " + shape_str(x.shape()) + "; expected [m, d] with m >= 2 examples");
  if (x.dtype() == int64) throw Error("iter_norm: input has dtype int64; expected float32 or float64");
  if (iterations < 1) throw Error("iter_norm: iterations = " + std::to_string(iterations) + "; expected >= 1");
  if (!(eps >= 0)) throw Error("iter_norm: eps = " + std::to_string(eps) + "; expected eps >= 0");
  const int64_t m = x.size(0), d = x.size(1);
  const Tensor I = identity_matrix(d, x.dtype());

  Tensor batch_mean = mean(x, {0}, true);  // mu = 1/m sum_i x_i       [1, d]
  Tensor x_centered = x - batch_mean;      //      x_i - mu            [m, d]
  Tensor sigma = matmul(x_centered.t(), x_centered) / static_cast<double>(m) + eps * I;  // Sigma = 1/m xc^T xc + eps I
  Tensor trace = sum(sigma * I);                                                         // tr(Sigma)                []
  Tensor sigma_n = sigma / trace;                                                        // Sigma_N = Sigma / tr(Sigma)
  Tensor P = I;                                                                          // P_0 = I
  for (int64_t k = 0; k < iterations; ++k)
    P = (3.0 * P - matmul(matmul(matmul(P, P), P), sigma_n)) * 0.5;  // P_k = (3 P - P^3 Sigma_N) / 2
  Tensor whitening = P / sqrt(trace);                                // Sigma^(-1/2) ~ P_T / sqrt(tr)
  Tensor y = matmul(x_centered, whitening);                          // y = (x - mu) Sigma^(-1/2)
  return {y, reshape(batch_mean, {d}), whitening};
}

}  // namespace functional

IterNorm::IterNorm(int64_t features, IterNormOptions opts) : num_features(features), options(opts) {
  if (features <= 0)
    throw Error("IterNorm: num_features = " + std::to_string(features) + "; expected a positive count");
  detail::check_parameter_dtype("IterNorm", opts.dtype);
  if (opts.iterations < 1) throw Error("IterNorm: iterations = " + std::to_string(opts.iterations) + "; expected >= 1");
  if (!(opts.eps >= 0)) throw Error("IterNorm: eps = " + std::to_string(opts.eps) + "; expected eps >= 0");
  if (!(opts.momentum >= 0 && opts.momentum <= 1))
    throw Error("IterNorm: momentum = " + std::to_string(opts.momentum) + "; expected a value in [0, 1]");
  if (opts.affine) {
    weight = register_parameter("weight", ones({features}, opts.dtype));
    bias = register_parameter("bias", zeros({features}, opts.dtype));
  }
  running_mean = register_buffer("running_mean", zeros({features}, opts.dtype));
  running_whitening = register_buffer("running_whitening", identity_matrix(features, opts.dtype));
}

void IterNorm::check_input(const Tensor& x) const {
  if (x.dim() != 2 || x.size(1) != num_features)
    throw Error("IterNorm: input of shape " + shape_str(x.shape()) + "; expected [N, " + std::to_string(num_features) +
                "]");
  if (x.dtype() != options.dtype)
    throw Error(std::string("IterNorm: input has dtype ") + dtype_name(x.dtype()) +
                " but the module's parameters are " + dtype_name(options.dtype) +
                "; expected the same dtype (set IterNormOptions::dtype)");
  if (is_training() && x.size(0) < 2)
    throw Error("IterNorm: expected more than 1 example when training, got input of shape " + shape_str(x.shape()) +
                " (use eval() to whiten single samples with the running statistics)");
}

// x: [N, C] -> y: [N, C]
Tensor IterNorm::forward(const Tensor& x) {
  check_input(x);
  Tensor y;
  if (is_training()) {
    functional::WhiteningResult batch = functional::iter_norm(x, options.iterations, options.eps);
    // running = (1 - momentum) running + momentum batch, for the mean and the whitening matrix alike
    NoGradGuard no_grad;
    running_mean.copy_(running_mean * (1 - options.momentum) + batch.batch_mean.detach() * options.momentum);
    running_whitening.copy_(running_whitening * (1 - options.momentum) + batch.whitening.detach() * options.momentum);
    y = batch.y;
  } else {
    y = matmul(x - running_mean, running_whitening);
  }
  return options.affine ? y * weight + bias : y;
}

}  // namespace ng::nn
