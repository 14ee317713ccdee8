// gradcheck.h: checks analytic gradients (backward) against central finite differences.
//
// For a function f of tensors, the Jacobian column for input element x_i is estimated as
//     (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)        (error O(eps^2))
// and compared with the rows that backward produces, one output element at a time, element by element:
//     |analytic - numeric| <= atol + rtol * |numeric|.
// Defaults are PyTorch's (eps 1e-6, atol 1e-5, rtol 1e-3). Only float64 inputs are accepted: in
// float32, f(x + eps) - f(x - eps) with eps = 1e-6 is mostly rounding error.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tensor.h"

namespace ng {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;   // on failure: the input, element index, analytic and numeric values
  double max_abs_error = 0;
  explicit operator bool() const { return ok; }
};

// Checks d f(inputs) / d inputs for every input that requires grad. f may return a tensor of any shape.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace ng
