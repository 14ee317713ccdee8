// gradcheck.cpp: numeric Jacobian by central differences, analytic Jacobian by backward, compared;
// and gradgradcheck, the same comparison run on the first derivatives (G in gradcheck.h).
#include "gradcheck.h"

#include <cmath>
#include <sstream>

#include "graph.h"
#include "ops.h"

namespace ng {

namespace {

using Function = std::function<Tensor(const std::vector<Tensor>&)>;

// The first element where analytic and numeric derivatives disagree: d output[output_element] /
// d inputs[input] element input_element.
struct Mismatch {
  int64_t output_element = 0;
  std::size_t input = 0;
  int64_t input_element = 0;
  double analytic = 0, numeric = 0, allowed = 0;
};

struct Comparison {
  bool ok = true;
  Mismatch first;  // valid when !ok
  double max_abs_error = 0;
};

void check_float64_inputs(const char* who, const std::vector<Tensor>& inputs) {
  for (std::size_t k = 0; k < inputs.size(); ++k)
    if (inputs[k].requires_grad() && inputs[k].dtype() != float64)
      throw Error(std::string(who) + ": input " + std::to_string(k) + " is " + dtype_name(inputs[k].dtype()) +
                  "; expected float64 (finite differences in float32 are too coarse to check anything)");
}

Comparison compare_jacobians(const char* who, const Function& f, const std::vector<Tensor>& inputs,
                             const GradcheckOptions& options) {
  check_float64_inputs(who, inputs);

  // Analytic: row j of the Jacobian is the gradient of output element j, from one backward each.
  Tensor output = f(inputs);
  const int64_t n_out = output.numel();
  std::vector<std::vector<std::vector<double>>> analytic(inputs.size());  // [input][out j][in i]
  std::vector<std::size_t> which;
  for (std::size_t k = 0; k < inputs.size(); ++k)
    if (inputs[k].requires_grad()) which.push_back(k);
  if (which.empty()) throw Error(std::string(who) + ": no input requires grad; nothing to check");
  if (output.dtype() != float64)
    throw Error(std::string(who) + ": f returned a " + dtype_name(output.dtype()) + " tensor; expected float64");
  for (int64_t j = 0; j < n_out; ++j) {
    Tensor one_hot = zeros(output.shape(), output.dtype());
    one_hot.mutable_data<double>()[j] = 1;
    // One input at a time: an input that f does not use has a zero row (ng::grad refuses it), and
    // that must not zero the rows of the inputs that f does use.
    for (std::size_t k : which) {
      std::vector<double> row(static_cast<std::size_t>(inputs[k].numel()), 0.0);
      if (output.requires_grad()) {  // otherwise f depends on no input at all
        try {
          row = grad({output}, {inputs[k]}, {one_hot}, {.retain_graph = true})[0].to_vector();
        } catch (const Error& e) {
          if (std::string(e.what()).find("is not used") == std::string::npos) throw;
        }
      }
      analytic[k].push_back(std::move(row));
    }
  }

  // Numeric: perturb each input element by +-eps and difference the outputs.
  Comparison result;
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
        const double allowed = options.atol + options.rtol * std::abs(numeric);
        result.max_abs_error = std::max(result.max_abs_error, error);
        if (result.ok && !(error <= allowed)) {
          result.ok = false;
          result.first = {j, k, i, a, numeric, allowed};
        }
      }
    }
  }
  return result;
}

// "analytic 1.5, numeric 1.2 (difference 0.3, allowed 0.0012)"
std::string values_str(const Mismatch& m) {
  std::ostringstream msg;
  msg.precision(10);
  msg << "analytic " << m.analytic << ", numeric " << m.numeric << " (difference " << std::abs(m.analytic - m.numeric)
      << ", allowed " << m.allowed << ")";
  return msg.str();
}

// The gradients of `inputs` (all float64 leaves or graph tensors requiring grad) for <output, v>,
// recorded (create_graph). An input the output does not use gets zeros, which have no graph.
std::vector<Tensor> recorded_gradients(const Tensor& output, const std::vector<Tensor>& inputs, const Tensor& v) {
  auto is_unused = [](const Error& e) { return std::string(e.what()).find("is not used") != std::string::npos; };
  std::vector<Tensor> grads;
  if (!output.requires_grad()) {  // f ignores every input: all of its gradients are 0
    for (const Tensor& x : inputs) grads.push_back(zeros(x.shape(), float64));
    return grads;
  }
  try {
    return grad({output}, inputs, {v}, {.retain_graph = true, .create_graph = true});
  } catch (const Error& e) {
    if (!is_unused(e)) throw;
  }
  for (const Tensor& x : inputs) {  // some input is unused: ask for each alone
    try {
      grads.push_back(grad({output}, {x}, {v}, {.retain_graph = true, .create_graph = true})[0]);
    } catch (const Error& e) {
      if (!is_unused(e)) throw;
      grads.push_back(zeros(x.shape(), float64));
    }
  }
  return grads;
}

// Uniform in [-1, 1) from a splitmix64 sequence of its own, so that checking leaves ng's generator alone.
Tensor random_grad_output(const Shape& shape, uint64_t seed) {
  Tensor v = empty(shape, float64);
  double* p = v.mutable_data<double>();
  uint64_t state = seed;
  for (int64_t i = 0; i < v.numel(); ++i) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    p[i] = static_cast<double>(z >> 11) * 0x1.0p-52 - 1.0;  // 53 random bits in [0, 2), shifted
  }
  return v;
}

}  // namespace

GradcheckResult gradcheck(const Function& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  const Comparison c = compare_jacobians("gradcheck", f, inputs, options);
  GradcheckResult result;
  result.ok = c.ok;
  result.max_abs_error = c.max_abs_error;
  if (!c.ok)
    result.message = "gradcheck: d output[" + std::to_string(c.first.output_element) + "] / d input " +
                     std::to_string(c.first.input) + " " + shape_str(inputs[c.first.input].shape()) + " element " +
                     std::to_string(c.first.input_element) + ": " + values_str(c.first);
  return result;
}

GradcheckResult gradgradcheck(const Function& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options,
                              const Tensor& grad_output, uint64_t seed) {
  check_float64_inputs("gradgradcheck", inputs);
  std::vector<std::size_t> which;  // the inputs whose first derivatives G holds
  for (std::size_t k = 0; k < inputs.size(); ++k)
    if (inputs[k].requires_grad()) which.push_back(k);
  if (which.empty()) throw Error("gradgradcheck: no input requires grad; nothing to check");

  Shape output_shape;
  {
    GradModeGuard grad_mode(true);
    const Tensor output = f(inputs);
    if (output.dtype() != float64)
      throw Error(std::string("gradgradcheck: f returned a ") + dtype_name(output.dtype()) +
                  " tensor; expected float64");
    output_shape = output.shape();
  }
  Tensor v;
  if (grad_output.defined()) {
    if (grad_output.shape() != output_shape || grad_output.dtype() != float64)
      throw Error("gradgradcheck: grad_output " + shape_str(grad_output.shape()) + " " +
                  dtype_name(grad_output.dtype()) + " for an output of shape " + shape_str(output_shape) +
                  "; expected float64 of the output's shape");
    v = grad_output.detach();
  } else {
    v = random_grad_output(output_shape, seed);
  }
  v.requires_grad_();

  // G(inputs, v): the recorded first derivatives, flattened and concatenated. gradcheck hands in
  // perturbed copies that do not require grad (and runs its differences without grad mode); they
  // become leaves again here, so that G can be formed from them.
  const std::size_t n = inputs.size();
  auto first_derivatives = [&f, &which, n](const std::vector<Tensor>& args) {
    GradModeGuard grad_mode(true);
    std::vector<Tensor> xs(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(n));
    std::vector<Tensor> wrt;
    for (std::size_t k : which) {
      if (!xs[k].requires_grad()) {
        xs[k] = xs[k].detach();
        xs[k].requires_grad_();
      }
      wrt.push_back(xs[k]);
    }
    std::vector<Tensor> pieces;
    for (const Tensor& g : recorded_gradients(f(xs), wrt, args[n])) pieces.push_back(reshape(g, {g.numel()}));
    return cat(pieces, 0);
  };
  std::vector<Tensor> args = inputs;
  args.push_back(v);
  const Comparison c = compare_jacobians("gradgradcheck", first_derivatives, args, options);

  GradcheckResult result;
  result.ok = c.ok;
  result.max_abs_error = c.max_abs_error;
  if (!c.ok) {
    // Which gradient (of which input) output element j of G belongs to.
    int64_t element = c.first.output_element;
    std::size_t of = which.front();
    for (std::size_t k : which) {
      of = k;
      if (element < inputs[k].numel()) break;
      element -= inputs[k].numel();
    }
    const std::string wrt =
        c.first.input < n ? "input " + std::to_string(c.first.input) + " " + shape_str(inputs[c.first.input].shape())
                          : "grad_output " + shape_str(output_shape);
    result.message = "gradgradcheck: d (d <f, grad_output> / d input " + std::to_string(of) + " " +
                     shape_str(inputs[of].shape()) + ")[" + std::to_string(element) + "] / d " + wrt + " element " +
                     std::to_string(c.first.input_element) + ": " + values_str(c.first);
  }
  return result;
}

}  // namespace ng
