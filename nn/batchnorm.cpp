// batchnorm.cpp: the BatchNorm1d / BatchNorm2d modules: parameters, running averages, train vs eval.
//
// Training (Algorithm 1): normalize with the statistics of the current mini-batch, through the fused
// or the composed implementation chosen at construction, and fold those statistics into the running
// averages. Evaluation (Algorithm 2): normalize with the running averages, so that the output of a
// sample no longer depends on the rest of its batch.
#include "batchnorm.h"

#include "autograd/graph.h"
#include "batchnorm_shapes.h"

namespace ng::nn {

BatchNormBase::BatchNormBase(const char* name, int64_t expected_dim, int64_t features, BatchNormOptions opts)
    : num_features(features), options(opts), name_(name), expected_dim_(expected_dim) {
  if (features <= 0)
    throw Error(std::string(name) + ": num_features = " + std::to_string(features) + "; expected a positive count");
  detail::check_parameter_dtype(name, opts.dtype);
  if (!(opts.eps >= 0)) throw Error(std::string(name) + ": eps = " + std::to_string(opts.eps) + "; expected eps >= 0");
  if (!(opts.momentum >= 0 && opts.momentum <= 1))
    throw Error(std::string(name) + ": momentum = " + std::to_string(opts.momentum) + "; expected a value in [0, 1]");
  if (opts.affine) {
    weight = register_parameter("weight", ones({features}, opts.dtype));
    bias = register_parameter("bias", zeros({features}, opts.dtype));
  }
  running_mean = register_buffer("running_mean", zeros({features}, opts.dtype));
  running_var = register_buffer("running_var", ones({features}, opts.dtype));
  num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, int64));
}

BatchNorm1d::BatchNorm1d(int64_t num_features, BatchNormOptions options)
    : BatchNormBase("BatchNorm1d", 2, num_features, options) {}

BatchNorm2d::BatchNorm2d(int64_t channels, BatchNormOptions options)
    : BatchNormBase("BatchNorm2d", 4, channels, options) {}

void BatchNormBase::check_input(const Tensor& x) const {
  // BatchNorm1d takes [N, C] or, as PyTorch, [N, C, L] (statistics over N and L); BatchNorm2d [N, C, H, W].
  const std::string C = std::to_string(num_features);
  const std::string expected = expected_dim_ == 2 ? "[N, " + C + "] or [N, " + C + ", L]" : "[N, " + C + ", H, W]";
  const bool rank_ok = x.dim() == expected_dim_ || (expected_dim_ == 2 && x.dim() == 3);
  if (!rank_ok || x.size(1) != num_features)
    throw Error(std::string(name_) + ": input of shape " + shape_str(x.shape()) + "; expected " + expected);
  if (x.dtype() != options.dtype)
    throw Error(std::string(name_) + ": input has dtype " + dtype_name(x.dtype()) +
                " but the module's parameters are " + dtype_name(options.dtype) +
                "; expected the same dtype (set BatchNormOptions::dtype)");
}

// x: [N, C] (BatchNorm1d) or [N, C, H, W] (BatchNorm2d) -> y: the shape of x
Tensor BatchNormBase::forward(const Tensor& x) {
  check_input(x);
  if (!is_training()) return functional::batch_norm_inference(x, running_mean, running_var, weight, bias, options.eps);

  const int64_t m = x.numel() / num_features;  // values per channel: N, or N*H*W
  detail::check_batch_size(name_, x, {.N = m, .C = num_features},
                           "; use eval() to normalize single samples with the running statistics");
  functional::BatchNormResult batch = options.impl == BatchNormImpl::fused
                                          ? functional::batch_norm_fused_with_stats(x, weight, bias, options.eps)
                                          : functional::batch_norm_composed_with_stats(x, weight, bias, options.eps);
  update_running_stats(batch, m);
  return batch.y;
}

// running_mean = (1 - momentum) running_mean + momentum mu_B
// running_var  = (1 - momentum) running_var  + momentum m/(m-1) sigma_B^2
// The running variance takes the unbiased estimate, as PyTorch and the paper's Algorithm 2 (which
// uses Var[x] = m/(m-1) E_B[sigma_B^2]) do, while the batch itself was normalized with the biased one.
void BatchNormBase::update_running_stats(const functional::BatchNormResult& batch, int64_t m) {
  NoGradGuard no_grad;
  const double momentum = options.momentum;
  const double unbiased = static_cast<double>(m) / static_cast<double>(m - 1);
  dispatch_float(name_, options.dtype, [&]<class T>() {
    T* mean = running_mean.mutable_data<T>();  // writes: they bump the running statistics' versions
    T* var = running_var.mutable_data<T>();
    const T* batch_mean = batch.batch_mean.data<T>();
    const T* batch_var = batch.batch_var.data<T>();
    for (int64_t c = 0; c < num_features; ++c) {
      mean[c] = static_cast<T>((1 - momentum) * mean[c] + momentum * batch_mean[c]);
      var[c] = static_cast<T>((1 - momentum) * var[c] + momentum * unbiased * batch_var[c]);
    }
  });
  num_batches_tracked.mutable_data<int64_t>()[0] += 1;
}

}  // namespace ng::nn
