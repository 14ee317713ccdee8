// adam.cpp: the Adam and AdamW step, as PyTorch computes it. For parameter p at its step t:
//
//   p = p * (1 - lr * weight_decay)              AdamW only (decoupled decay)
//   g = grad + weight_decay * p                  Adam only (L2 penalty)
//   m = beta1 * m + (1 - beta1) * g              (m and v start at 0)
//   v = beta2 * v + (1 - beta2) * g^2
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// The two factors 1 - beta^t are the bias correction: m and v start at 0, so early on they
// underestimate E[g] and E[g^2] by exactly those factors. lr and weight_decay are those of the
// parameter's group (optimizer.h).
#include "optim/adam.h"

#include <algorithm>
#include <cmath>

#include "autograd/graph.h"
#include "autograd/parallel_for.h"

namespace ng::optim {

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : Adam(std::vector<ParamGroup>{{.params = std::move(params)}}, options) {}
Adam::Adam(std::initializer_list<ParamGroup> groups, AdamOptions options)
    : Adam(std::vector<ParamGroup>(groups), options) {}
Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options) : Adam("Adam", std::move(groups), options, false) {}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options)
    : AdamW(std::vector<ParamGroup>{{.params = std::move(params)}}, options) {}
AdamW::AdamW(std::initializer_list<ParamGroup> groups, AdamWOptions options)
    : AdamW(std::vector<ParamGroup>(groups), options) {}
AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions o)
    : Adam("AdamW", std::move(groups), {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay}, true) {}

Adam::Adam(const char* name, std::vector<ParamGroup> groups, AdamOptions options, bool decoupled_weight_decay)
    : Optimizer(name, std::move(groups), options.lr, options.weight_decay),
      options_(options),
      decoupled_weight_decay_(decoupled_weight_decay),
      steps_(params_.size(), 0),
      exp_avgs_(params_.size()),
      exp_avg_sqs_(params_.size()) {
  auto refuse = [&](const char* what, double value, const char* expected) {
    return Error(std::string(name) + ": invalid " + what + " " + std::to_string(value) + "; expected " + expected);
  };
  if (!(options_.eps >= 0)) throw refuse("eps", options_.eps, ">= 0");
  if (!(options_.beta1 >= 0 && options_.beta1 < 1)) throw refuse("beta1", options_.beta1, "0 <= beta1 < 1");
  if (!(options_.beta2 >= 0 && options_.beta2 < 1)) throw refuse("beta2", options_.beta2, "0 <= beta2 < 1");
}

namespace {

// The update of elements [0, n) of one parameter, the factors passed by value: in a lambda's captures the
// compiler would have to assume that a store into param may change them (both T), reload them per element
// and leave the loop unvectorized.
template <class T> void adam_update_block(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n, T shrink, T l2,
                                          T beta1, T beta2, T eps, T step_size, T bias_correction2_sqrt) {
  for (int64_t i = 0; i < n; ++i) {
    param[i] *= shrink;                                                // AdamW: p = p * (1 - lr * weight_decay)
    T g = grad[i] + l2 * param[i];                                     // Adam:  g = grad + weight_decay * p
    exp_avg[i] = beta1 * exp_avg[i] + (1 - beta1) * g;                 // m = beta1 m + (1 - beta1) g
    exp_avg_sq[i] = beta2 * exp_avg_sq[i] + (1 - beta2) * g * g;       // v = beta2 v + (1 - beta2) g^2
    T denom = std::sqrt(exp_avg_sq[i]) / bias_correction2_sqrt + eps;  // sqrt(v) / sqrt(1 - beta2^t) + eps
    param[i] -= step_size * exp_avg[i] / denom;                        // p = p - lr / (1 - beta1^t) * m / denom
  }
}

// The update of one parameter of n elements at its step t (t >= 1), with its group's lr and weight decay.
template <class T> void adam_update(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n, const AdamOptions& o,
                                    double lr, double weight_decay, int64_t t, bool decoupled_weight_decay) {
  const double bias_correction1 = 1 - std::pow(o.beta1, static_cast<double>(t));
  const double bias_correction2 = 1 - std::pow(o.beta2, static_cast<double>(t));
  const T step_size = static_cast<T>(lr / bias_correction1);
  const T bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
  const T shrink = static_cast<T>(decoupled_weight_decay ? 1 - lr * weight_decay : 1);
  const T l2 = static_cast<T>(decoupled_weight_decay ? 0 : weight_decay);
  const T beta1 = static_cast<T>(o.beta1), beta2 = static_cast<T>(o.beta2), eps = static_cast<T>(o.eps);
  // Each element on its own, so threads give the same result as one; blocks of 4096 elements.
  constexpr int64_t kBlock = 4096;
  kernel::parallel_for((n + kBlock - 1) / kBlock, kernel::share_elements(n), [&](int64_t b) {
    const int64_t i = b * kBlock;
    adam_update_block(param + i, grad + i, exp_avg + i, exp_avg_sq + i, std::min(kBlock, n - i), shrink, l2, beta1,
                      beta2, eps, step_size, bias_correction2_sqrt);
  });
}

}  // namespace

void Adam::step() {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor grad = p.grad();
    if (!grad.defined()) continue;
    const Group& group = group_of(i);
    if (!exp_avgs_[i].defined()) {
      exp_avgs_[i] = zeros(p.shape(), p.dtype());
      exp_avg_sqs_[i] = zeros(p.shape(), p.dtype());
    }
    int64_t t = ++steps_[i];
    dispatch_float(name(), p.dtype(), [&]<class T>() {
      adam_update<T>(p.mutable_data<T>(), grad.data<T>(), exp_avgs_[i].mutable_data<T>(),
                     exp_avg_sqs_[i].mutable_data<T>(), p.numel(), options_, group.lr, group.weight_decay, t,
                     decoupled_weight_decay_);
    });
  }
}

NamedTensors Adam::parameter_state() const {
  NamedTensors state;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!exp_avgs_[i].defined()) continue;
    std::string prefix = "state." + std::to_string(i) + ".";
    state.emplace_back(prefix + "step", scalar(static_cast<double>(steps_[i]), int64));
    state.emplace_back(prefix + "exp_avg", exp_avgs_[i]);
    state.emplace_back(prefix + "exp_avg_sq", exp_avg_sqs_[i]);
  }
  return state;
}

void Adam::load_parameter_state(const NamedTensors& state) {
  std::vector<int64_t> steps(params_.size(), 0);
  std::vector<Tensor> exp_avgs(params_.size()), exp_avg_sqs(params_.size());
  for (const auto& [entry, value] : state) {
    auto [index, state_name] = parse_state_name(entry, {"step", "exp_avg", "exp_avg_sq"});
    if (state_name == "step") {
      check_state_like(entry, value, {}, int64);
      steps[index] = value.data<int64_t>()[0];
      if (steps[index] < 1)
        throw Error(std::string(name()) + ": state entry '" + entry + "' is " + std::to_string(steps[index]) +
                    "; expected a step count >= 1");
    } else {
      check_state_like(entry, value, params_[index].shape(), params_[index].dtype());
      (state_name == "exp_avg" ? exp_avgs : exp_avg_sqs)[index] = value.detach().clone();
    }
  }
  for (std::size_t i = 0; i < params_.size(); ++i) {
    int present = (steps[i] > 0) + exp_avgs[i].defined() + exp_avg_sqs[i].defined();
    if (present != 0 && present != 3)
      throw Error(std::string(name()) + ": the state of parameter " + std::to_string(i) +
                  " is incomplete; expected all of state." + std::to_string(i) + ".step, .exp_avg and .exp_avg_sq");
  }
  steps_ = std::move(steps);
  exp_avgs_ = std::move(exp_avgs);
  exp_avg_sqs_ = std::move(exp_avg_sqs);
}

}  // namespace ng::optim
