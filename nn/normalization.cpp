// normalization.cpp: LayerNorm, GroupNorm and RMSNorm written with primitive ops only, line for line like
// the composed BatchNorm (batchnorm_composed.cpp): mean, center, variance, normalize, scale and shift.
// Their backward is the chain rule through those ops; nothing about their gradients is written here.
// (The LayerNorm module runs the same function as one op, layer_norm in layer_norm_fused.cpp, which the
// tests hold to layer_norm_composed here.)
#include "normalization.h"

#include <limits>
#include <utility>

#include "autograd/ops.h"
#include "batchnorm_shapes.h"
#include "normalization_checks.h"

namespace ng::nn {

using detail::check_affine;
using detail::check_floating;
using detail::normalized_dims;

namespace {

// y = x_hat * weight + bias, either of them possibly absent (scale 1, shift 0).
Tensor scale_and_shift(Tensor x_hat, const Tensor& weight, const Tensor& bias) {
  if (weight.defined()) x_hat = x_hat * weight;
  if (bias.defined()) x_hat = x_hat + bias;
  return x_hat;
}

}  // namespace

namespace functional {

// x: [*, normalized_shape...] -> y: the shape of x
Tensor layer_norm_composed(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                           double eps) {
  // the last dims: the features of one example (one position)
  const std::vector<int64_t> features =
      detail::check_layer_norm_args("layer_norm_composed", x, normalized_shape, weight, bias, eps);

  // Statistics per example over its features (BN: per feature over the batch).
  Tensor feature_mean = mean(x, features, true);                    // mu      = 1/H sum_i x_i, over the H features
  Tensor x_centered = x - feature_mean;                             //           x_i - mu
  Tensor feature_var = mean(pow(x_centered, 2.0), features, true);  // sigma^2 = 1/H sum_i (x_i - mu)^2
  Tensor x_hat = x_centered / sqrt(feature_var + eps);              // x_hat_i = (x_i - mu) / sqrt(sigma^2 + eps)
  return scale_and_shift(x_hat, weight, bias);                      // y_i     = weight_i x_hat_i + bias_i (per feature)
}

// x: [N, C, *] -> y: the shape of x
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  check_floating("group_norm", x);
  detail::check_eps("group_norm", eps);
  if (x.dim() < 2)
    throw Error("group_norm: input of shape " + shape_str(x.shape()) + "; expected [N, C, *] (channels in dim 1)");
  const int64_t N = x.size(0), C = x.size(1), G = num_groups;
  if (G <= 0 || C % G != 0)
    throw Error("group_norm: " + std::to_string(C) + " channels (input " + shape_str(x.shape()) +
                ") cannot be split into " + std::to_string(G) +
                " groups; expected num_groups > 0 dividing the number of channels");
  if (x.numel() == 0) throw Error("group_norm: input of shape " + shape_str(x.shape()) + " is empty");
  check_affine("group_norm", "weight", weight, {C}, x);
  check_affine("group_norm", "bias", bias, {C}, x);

  // Each row of `grouped` is one group of one example: C/G consecutive channels and all their positions.
  // Statistics per (example, group) over that row (BN: per channel over the batch and positions).
  Tensor grouped = reshape(x, {N, G, -1});                   // [N, G, C/G * positions]
  Tensor group_mean = mean(grouped, {2}, true);              // mu_ng      = mean of the group's values
  Tensor x_centered = grouped - group_mean;                  //              x_i - mu_ng
  Tensor group_var = mean(pow(x_centered, 2.0), {2}, true);  // sigma_ng^2 = mean of (x_i - mu_ng)^2
  Tensor x_hat =
      reshape(x_centered / sqrt(group_var + eps), x.shape());  // x_hat_i = (x_i - mu_ng) / sqrt(sigma_ng^2 + eps)
  // y_i = weight_c x_hat_i + bias_c, per channel c as in BN ([C] lined up with dim 1 of x)
  return scale_and_shift(x_hat, weight.defined() ? detail::per_channel(weight, x) : weight,
                         bias.defined() ? detail::per_channel(bias, x) : bias);
}

// x: [*, normalized_shape...] -> y: the shape of x
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, std::optional<double> eps) {
  check_floating("rms_norm", x);
  // eps=None in PyTorch: the machine epsilon of the input's dtype (torch.finfo(x.dtype).eps).
  const double epsilon = eps                    ? *eps
                         : x.dtype() == float32 ? double{std::numeric_limits<float>::epsilon()}
                                                : std::numeric_limits<double>::epsilon();
  detail::check_eps("rms_norm", epsilon);
  const std::vector<int64_t> features = normalized_dims("rms_norm", x, normalized_shape);
  check_affine("rms_norm", "weight", weight, normalized_shape, x);

  // No centering: the root mean square of the features takes the standard deviation's place.
  Tensor mean_square = mean(pow(x, 2.0), features, true);  // ms      = 1/H sum_i x_i^2, over the H features
  Tensor x_hat = x / sqrt(mean_square + epsilon);          // x_hat_i = x_i / sqrt(ms + eps)
  return scale_and_shift(x_hat, weight, Tensor());         // y_i     = weight_i x_hat_i (no shift)
}

}  // namespace functional

LayerNorm::LayerNorm(Shape shape, double epsilon, bool elementwise_affine, Dtype dtype)
    : normalized_shape(std::move(shape)), eps(epsilon) {
  if (normalized_shape.empty()) throw Error("LayerNorm: normalized_shape is empty; expected at least one dim");
  for (int64_t s : normalized_shape)
    if (s <= 0) throw Error("LayerNorm: normalized_shape " + shape_str(normalized_shape) + "; expected positive sizes");
  detail::check_eps("LayerNorm", eps);
  detail::check_parameter_dtype("LayerNorm", dtype);
  if (elementwise_affine) {
    weight = register_parameter("weight", ones(normalized_shape, dtype));
    bias = register_parameter("bias", zeros(normalized_shape, dtype));
  }
}

// x: [*, normalized_shape...] -> y: the shape of x (the same in train and eval mode)
Tensor LayerNorm::forward(const Tensor& x) { return functional::layer_norm(x, normalized_shape, weight, bias, eps); }

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double epsilon, bool affine, Dtype dtype)
    : num_groups(groups), num_channels(channels), eps(epsilon) {
  if (groups <= 0 || channels <= 0 || channels % groups != 0)
    throw Error("GroupNorm: num_groups = " + std::to_string(groups) + ", num_channels = " + std::to_string(channels) +
                "; expected positive sizes with num_groups dividing num_channels");
  detail::check_eps("GroupNorm", eps);
  detail::check_parameter_dtype("GroupNorm", dtype);
  if (affine) {
    weight = register_parameter("weight", ones({channels}, dtype));
    bias = register_parameter("bias", zeros({channels}, dtype));
  }
}

// x: [N, C, *] -> y: the shape of x (the same in train and eval mode)
Tensor GroupNorm::forward(const Tensor& x) {
  if (x.dim() < 2 || x.size(1) != num_channels)
    throw Error("GroupNorm: input of shape " + shape_str(x.shape()) + "; expected [N, " + std::to_string(num_channels) +
                ", *]");
  return functional::group_norm(x, num_groups, weight, bias, eps);
}

RMSNorm::RMSNorm(Shape shape, std::optional<double> epsilon, bool elementwise_affine, Dtype dtype)
    : normalized_shape(std::move(shape)), eps(epsilon) {
  if (normalized_shape.empty()) throw Error("RMSNorm: normalized_shape is empty; expected at least one dim");
  for (int64_t s : normalized_shape)
    if (s <= 0) throw Error("RMSNorm: normalized_shape " + shape_str(normalized_shape) + "; expected positive sizes");
  if (eps) detail::check_eps("RMSNorm", *eps);
  detail::check_parameter_dtype("RMSNorm", dtype);
  if (elementwise_affine) weight = register_parameter("weight", ones(normalized_shape, dtype));
}

// x: [*, normalized_shape...] -> y: the shape of x (the same in train and eval mode)
Tensor RMSNorm::forward(const Tensor& x) { return functional::rms_norm(x, normalized_shape, weight, eps); }

}  // namespace ng::nn
