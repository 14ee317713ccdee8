// checks.h: the argument checks that several layers of nn/ share (internal to nn/, not installed), so that
// each message is written once.
#pragma once

#include <string>

#include "autograd/tensor.h"

namespace ng::nn::detail {

// eps >= 0 (NaN is refused too: every comparison with it is false).
inline void check_eps(const std::string& op, double eps) {
  if (!(eps >= 0)) throw Error(op + ": eps = " + std::to_string(eps) + "; expected eps >= 0");
}

// The input of a normalization must be floating point.
inline void check_floating(const char* op, const Tensor& x) {
  if (x.dtype() == int64) throw Error(std::string(op) + ": input is int64; expected float32 or float64");
}

// A weight, bias, gamma, beta or statistic `what` (when defined) must have the input's dtype.
inline void check_same_dtype(const char* op, const char* what, const Tensor& t, const Tensor& x) {
  if (t.defined() && t.dtype() != x.dtype())
    throw Error(std::string(op) + ": " + what + " has dtype " + dtype_name(t.dtype()) + " but the input is " +
                dtype_name(x.dtype()) + "; expected the same dtype");
}

// Parameters are learned by gradients, so they must be floating point.
inline void check_parameter_dtype(const std::string& layer, Dtype dtype) {
  if (dtype == int64) throw Error(layer + ": dtype int64 cannot hold parameters; expected float32 or float64");
}

}  // namespace ng::nn::detail
