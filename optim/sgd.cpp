// sgd.cpp: SGD's step, as PyTorch's torch.optim.SGD computes it:
//
//   g = grad + weight_decay * p
//   b = g                                      on a parameter's first step (momentum != 0)
//   b = momentum * b + (1 - dampening) * g     afterwards
//   g = g + momentum * b   (nesterov)   or   g = b   (plain momentum)
//   p = p - lr * g
//
// lr and weight_decay are those of the parameter's group (optimizer.h).
#include "optim/sgd.h"

#include "autograd/graph.h"
#include "autograd/parallel_for.h"

namespace ng::optim {

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : SGD(std::vector<ParamGroup>{{.params = std::move(params)}}, options) {}
SGD::SGD(std::initializer_list<ParamGroup> groups, SGDOptions options)
    : SGD(std::vector<ParamGroup>(groups), options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer("SGD", std::move(groups), options.lr, options.weight_decay),
      options_(options),
      momentum_buffers_(params_.size()) {
  if (!(options_.momentum >= 0))
    throw Error("SGD: invalid momentum " + std::to_string(options_.momentum) + "; expected >= 0");
  if (options_.nesterov && (options_.momentum <= 0 || options_.dampening != 0))
    throw Error("SGD: Nesterov momentum requires momentum > 0 and dampening = 0 (got momentum " +
                std::to_string(options_.momentum) + ", dampening " + std::to_string(options_.dampening) + ")");
}

namespace {

// The update of one parameter of n elements with its group's lr and weight decay. `buffer` is null without momentum;
// `first_step` says the buffer was just created and takes the gradient as it is.
template <class T> void sgd_update(T* param, const T* grad, T* buffer, int64_t n, const SGDOptions& o, double lr,
                                   double decay, bool first_step) {
  const T step_size = static_cast<T>(lr);
  const T weight_decay = static_cast<T>(decay);
  const T momentum = static_cast<T>(o.momentum);
  const T keep = static_cast<T>(1 - o.dampening);
  // Each element on its own, so threads give the same result as one.
  kernel::parallel_for(n, kernel::share_elements(n), [&](int64_t i) {
    T g = grad[i] + weight_decay * param[i];  // g = grad + weight_decay * p
    if (buffer) {
      buffer[i] = first_step ? g : momentum * buffer[i] + keep * g;  // b = momentum * b + (1 - dampening) * g
      g = o.nesterov ? g + momentum * buffer[i] : buffer[i];         // nesterov: g + momentum * b; else b
    }
    param[i] -= step_size * g;  // p = p - lr * g
  });
}

}  // namespace

void SGD::step() {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor grad = p.grad();
    if (!grad.defined()) continue;
    const Group& group = group_of(i);
    Tensor& buffer = momentum_buffers_[i];
    bool first_step = options_.momentum != 0 && !buffer.defined();
    if (first_step) buffer = empty(p.shape(), p.dtype());
    dispatch_float("SGD.step", p.dtype(), [&]<class T>() {
      T* buffer_data = options_.momentum != 0 ? buffer.mutable_data<T>() : nullptr;
      sgd_update<T>(p.mutable_data<T>(), grad.data<T>(), buffer_data, p.numel(), options_, group.lr, group.weight_decay,
                    first_step);
    });
  }
}

NamedTensors SGD::parameter_state() const {
  NamedTensors state;
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (momentum_buffers_[i].defined())
      state.emplace_back("state." + std::to_string(i) + ".momentum_buffer", momentum_buffers_[i]);
  return state;
}

void SGD::load_parameter_state(const NamedTensors& state) {
  std::vector<Tensor> loaded(params_.size());
  for (const auto& [entry, value] : state) {
    auto [index, state_name] = parse_state_name(entry, {"momentum_buffer"});
    check_state_like(entry, value, params_[index].shape(), params_[index].dtype());
    loaded[index] = value.detach().clone();
  }
  momentum_buffers_ = std::move(loaded);
}

}  // namespace ng::optim
