// gradcheck.cpp: numeric Jacobian by central differences, analytic Jacobian by backward, compared.
#include "gradcheck.h"

#include <cmath>
#include <sstream>

#include "graph.h"

namespace ng {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  for (std::size_t k = 0; k < inputs.size(); ++k)
    if (inputs[k].requires_grad() && inputs[k].dtype() != float64)
      throw Error("gradcheck: input " + std::to_string(k) + " is " + dtype_name(inputs[k].dtype()) +
                  "; expected float64 (finite differences in float32 are too coarse to check anything)");

  // Analytic: row j of the Jacobian is the gradient of output element j, from one backward each.
  Tensor output = f(inputs);
  const int64_t n_out = output.numel();
  std::vector<std::vector<std::vector<double>>> analytic(inputs.size());  // [input][out j][in i]
  std::vector<std::size_t> which;
  for (std::size_t k = 0; k < inputs.size(); ++k)
    if (inputs[k].requires_grad()) which.push_back(k);
  if (which.empty()) throw Error("gradcheck: no input requires grad; nothing to check");
  if (output.dtype() != float64)
    throw Error(std::string("gradcheck: f returned a ") + dtype_name(output.dtype()) + " tensor; expected float64");
  for (int64_t j = 0; j < n_out; ++j) {
    Tensor one_hot = zeros(output.shape(), output.dtype());
    one_hot.mutable_data<double>()[j] = 1;
    // One input at a time: an input that f does not use has a zero row (ng::grad refuses it), and
    // that must not zero the rows of the inputs that f does use.
    for (std::size_t k : which) {
      std::vector<double> row(static_cast<std::size_t>(inputs[k].numel()), 0.0);
      if (output.requires_grad()) {  // otherwise f depends on no input at all
        try {
          row = grad({output}, {inputs[k]}, {one_hot}, /*retain_graph=*/true)[0].to_vector();
        } catch (const Error& e) {
          if (std::string(e.what()).find("is not used") == std::string::npos) throw;
        }
      }
      analytic[k].push_back(std::move(row));
    }
  }

  // Numeric: perturb each input element by +-eps and difference the outputs.
  GradcheckResult result;
  NoGradGuard no_grad;
  for (std::size_t k : which) {
    Tensor perturbed = inputs[k].detach().clone();
    std::vector<Tensor> args = inputs;
    args[k] = perturbed;
    double* x = perturbed.mutable_data<double>();
    for (int64_t i = 0; i < perturbed.numel(); ++i) {
      const double original = x[i];
      x[i] = original + options.eps;
      std::vector<double> plus = f(args).to_vector();
      x[i] = original - options.eps;
      std::vector<double> minus = f(args).to_vector();
      x[i] = original;
      for (int64_t j = 0; j < n_out; ++j) {
        const double numeric = (plus[j] - minus[j]) / (2 * options.eps);
        const double a = analytic[k][j][i];
        const double error = std::abs(a - numeric);
        result.max_abs_error = std::max(result.max_abs_error, error);
        if (result.ok && !(error <= options.atol + options.rtol * std::abs(numeric))) {
          std::ostringstream msg;
          msg.precision(10);
          msg << "gradcheck: d output[" << j << "] / d input " << k << " " << shape_str(inputs[k].shape()) << " element "
              << i << ": analytic " << a << ", numeric " << numeric << " (difference " << error << ", allowed "
              << options.atol + options.rtol * std::abs(numeric) << ")";
          result.ok = false;
          result.message = msg.str();
        }
      }
    }
  }
  return result;
}

}  // namespace ng
