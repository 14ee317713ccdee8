// gradcheck.h: checks analytic gradients (backward) against central finite differences.
//
// For a function f of tensors, the Jacobian column for input element x_i is estimated as
//     (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)        (error O(eps^2))
// and compared with the rows that backward produces, one output element at a time, element by element:
//     |analytic - numeric| <= atol + rtol * |numeric|.
// Defaults are PyTorch's (eps 1e-6, atol 1e-5, rtol 1e-3). Only float64 inputs are accepted: in
// float32, f(x + eps) - f(x - eps) with eps = 1e-6 is mostly rounding error.
//
// gradgradcheck checks second derivatives the same way (PyTorch's gradgradcheck). With v a fixed
// weighting of f's output (grad_output, random unless given), the first derivatives
//     G(x, v) = d <f(x), v> / dx = J_f(x)^T v        (ng::grad with create_graph)
// are themselves a differentiable function of x and v, and gradcheck is run on it:
//     dG_k/dx_i = sum_j v_j d^2 f_j / (dx_k dx_i)    against  (G(x + eps e_i, v) - G(x - eps e_i, v)) / (2 eps)
//     dG_k/dv_j = d f_j / dx_k                        (the backward must be linear in v, and recorded)
// G is the gradients of every input that requires grad, flattened and concatenated. A gradient that
// does not depend on x (f linear in x) has no graph back to x: its second derivative is 0, and the
// finite differences must then be 0 too. An input f does not use has the gradient 0.
#pragma once

#include <cstdint>
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
  std::string message;  // on failure: the input, element index, analytic and numeric values
  double max_abs_error = 0;
  explicit operator bool() const { return ok; }
};

// Checks d f(inputs) / d inputs for every input that requires grad. f may return a tensor of any shape.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

// Checks the second derivatives of f (formula above): the derivatives of G(inputs, v) = d <f(inputs), v> /
// d inputs with respect to every input that requires grad and to v. grad_output is v (float64, the
// shape of f's output); when undefined, v is drawn uniform in [-1, 1) from its own generator seeded
// by `seed` (the global generator is left alone).
GradcheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs, const GradcheckOptions& options = {},
                              const Tensor& grad_output = Tensor(), uint64_t seed = 0);

}  // namespace ng
