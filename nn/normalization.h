// normalization.h: Layer Normalization (Ba et al. 2016) and Group Normalization (Wu & He 2018), as
// functions and as modules, composed from primitive ops like the composed BatchNorm (LayerNorm also as one
// fused op, which its module uses, as BatchNorm's).
//
// All three normalize x to x_hat = (x - mean) / sqrt(var + eps) and then scale and shift it; they differ
// in which values the mean and variance run over:
//   BatchNorm  each feature (channel) over the batch and its locations: [N, C, H, W] -> stats over N, H, W.
//              The output of one example depends on the others in its batch, so training (batch
//              statistics) and evaluation (running averages) differ.
//   LayerNorm  each example over its own features (the last dims, normalized_shape): [N, T, D] with
//              normalized_shape [D] -> stats over D, one mean per (n, t). No batch dependence: the same
//              in training and evaluation, fine with a batch of one, no running statistics.
//   GroupNorm  each example over groups of channels and their locations: [N, C, H, W] with G groups ->
//              stats over C/G channels x H x W, one mean per (n, group). Also batch-independent.
//              G = 1 is LayerNorm over (C, H, W); G = C is instance normalization.
// Like BatchNorm, both are invariant to scaling their input by a > 0 (for eps = 0).
//
// RMSNorm (Zhang & Sennrich 2019) is LayerNorm without the centering and the shift: x is divided by its
// root mean square over the last dims, x / sqrt(mean(x^2) + eps), then scaled. Cheaper, and what
// LLaMA-style GPTs use; invariant to scaling by a > 0 too, but not to shifting.
#pragma once

#include <optional>
#include <utility>

#include "module.h"

namespace ng::nn {

namespace functional {

// x: [*, normalized_shape...] -> y: the shape of x; weight, bias: normalized_shape (or undefined: scale 1, shift 0).
//   y = (x - mean) / sqrt(var + eps) * weight + bias, mean and biased var over the last normalized_shape.size() dims
// layer_norm is one op with a closed-form backward (layer_norm_fused.cpp; what LayerNorm uses);
// layer_norm_composed is the same function written with primitive ops (normalization.cpp), whose backward
// comes from the graph. They agree up to rounding (the fused one sums in double).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
Tensor layer_norm_composed(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                           const Tensor& bias = Tensor(), double eps = 1e-5);

// x: [N, C, *] -> y: the shape of x; weight, bias: [C] (or undefined); C divisible by num_groups.
//   y = (x - mean) / sqrt(var + eps) * weight + bias, mean and biased var per example over each group of
//   C / num_groups consecutive channels and all their positions
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5);

// x: [*, normalized_shape...] -> y: the shape of x; weight: normalized_shape (or undefined: scale 1).
//   y = x / sqrt(mean(x^2) + eps) * weight, the mean over the last normalized_shape.size() dims
// eps unset is the machine epsilon of x's dtype (PyTorch's eps=None, torch.finfo(x.dtype).eps:
// 1.19e-7 for float32, 2.22e-16 for float64), so it only matters for an all-zero x.
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                std::optional<double> eps = std::nullopt);

}  // namespace functional

// PyTorch's keyword arguments of nn.LayerNorm: `LayerNorm({64}, {.elementwise_affine = false})`.
struct LayerNormOptions {
  double eps = 1e-5;
  bool elementwise_affine = true;
  Dtype dtype = float32;
};

class LayerNorm : public Module {
 public:
  // weight (ones) and bias (zeros) of shape normalized_shape when elementwise_affine, as PyTorch.
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true, Dtype dtype = float32);
  LayerNorm(Shape normalized_shape, LayerNormOptions options)
      : LayerNorm(std::move(normalized_shape), options.eps, options.elementwise_affine, options.dtype) {}

  // x: [*, normalized_shape...] -> y: the shape of x
  Tensor forward(const Tensor& x) override;

  Shape normalized_shape;
  double eps;
  Tensor weight;  // normalized_shape, starts at 1 (undefined without elementwise_affine)
  Tensor bias;    // normalized_shape, starts at 0 (undefined without elementwise_affine)
};

// PyTorch's keyword arguments of nn.GroupNorm: `GroupNorm(4, 32, {.eps = 1e-6})`.
struct GroupNormOptions {
  double eps = 1e-5;
  bool affine = true;
  Dtype dtype = float32;
};

class GroupNorm : public Module {
 public:
  // weight (ones) and bias (zeros) of shape [num_channels] when affine, as PyTorch.
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true, Dtype dtype = float32);
  GroupNorm(int64_t num_groups, int64_t num_channels, GroupNormOptions options)
      : GroupNorm(num_groups, num_channels, options.eps, options.affine, options.dtype) {}

  // x: [N, C, *] -> y: the shape of x
  Tensor forward(const Tensor& x) override;

  int64_t num_groups, num_channels;
  double eps;
  Tensor weight;  // [C], starts at 1 (undefined without affine)
  Tensor bias;    // [C], starts at 0 (undefined without affine)
};

class RMSNorm : public Module {
 public:
  // weight (ones) of shape normalized_shape when elementwise_affine, as PyTorch (there is no bias).
  // eps unset: the machine epsilon of the input's dtype, as PyTorch's eps=None.
  explicit RMSNorm(Shape normalized_shape, std::optional<double> eps = std::nullopt, bool elementwise_affine = true,
                   Dtype dtype = float32);

  // x: [*, normalized_shape...] -> y: the shape of x
  Tensor forward(const Tensor& x) override;

  Shape normalized_shape;
  std::optional<double> eps;
  Tensor weight;  // normalized_shape, starts at 1 (undefined without elementwise_affine)
};

}  // namespace ng::nn
