// normalization_checks.h: the argument checks that the composed (normalization.cpp) and fused
// (layer_norm_fused.cpp) normalizations share (internal to nn/, not installed).
#pragma once

#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "checks.h"

namespace ng::nn::detail {

// weight or bias (when defined) must have `shape` and x's dtype.
inline void check_affine(const char* op, const char* what, const Tensor& t, const Shape& shape, const Tensor& x) {
  if (!t.defined()) return;
  if (t.shape() != shape)
    throw Error(std::string(op) + ": " + what + " of shape " + shape_str(t.shape()) + " for input " +
                shape_str(x.shape()) + "; expected " + shape_str(shape));
  check_same_dtype(op, what, t, x);
}

// The last normalized_shape.size() dims of x (as negative dims), after checking that x ends in normalized_shape.
inline std::vector<int64_t> normalized_dims(const char* op, const Tensor& x, const Shape& normalized_shape) {
  const auto k = static_cast<int64_t>(normalized_shape.size());
  const bool trailing_match = k > 0 && x.dim() >= k && Shape(x.shape().end() - k, x.shape().end()) == normalized_shape;
  if (!trailing_match)
    throw Error(std::string(op) + ": input of shape " + shape_str(x.shape()) + " does not end in normalized_shape " +
                shape_str(normalized_shape) + "; expected [*, " + shape_str(normalized_shape).substr(1));
  std::vector<int64_t> dims;
  for (int64_t d = -k; d < 0; ++d) dims.push_back(d);
  return dims;
}

// layer_norm's checks (both forms): x floating and ending in normalized_shape, weight and bias of
// normalized_shape and x's dtype, eps >= 0. Returns the normalized dims (negative).
inline std::vector<int64_t> check_layer_norm_args(const char* op, const Tensor& x, const Shape& normalized_shape,
                                                  const Tensor& weight, const Tensor& bias, double eps) {
  check_floating(op, x);
  check_eps(op, eps);
  std::vector<int64_t> features = normalized_dims(op, x, normalized_shape);
  check_affine(op, "weight", weight, normalized_shape, x);
  check_affine(op, "bias", bias, normalized_shape, x);
  return features;
}

}  // namespace ng::nn::detail
