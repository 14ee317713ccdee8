// optimizer.h: what every optimizer shares (PyTorch's torch.optim.Optimizer).
//
// An optimizer holds the parameters it updates, a learning rate, and per-parameter state (momentum
// buffers, Adam's moving averages) that lives here rather than on the tensors. step() reads each
// parameter's .grad() and changes the parameter in place under NoGradGuard; a parameter whose grad is
// undefined (no backward reached it) is skipped, as in PyTorch.
//
// The state can be listed and restored under PyTorch's names ("state.<i>.exp_avg" for parameter i),
// which is how optim/checkpoint.h saves it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace ng::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;
  // Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);  // schedulers (scheduler.h) call this

  const std::vector<Tensor>& params() const { return params_; }
  // "SGD", "Adam", "AdamW": for messages and checkpoints.
  const char* name() const { return name_; }

  // The per-parameter state as "state.<i>.<name>" tensors, in parameter order; a parameter that no
  // step() has reached yet has no entries (PyTorch creates state lazily too).
  virtual NamedTensors state_dict() const = 0;
  // Replaces the state with `state` (as state_dict() returned it). Every entry is checked first: an
  // unknown name, a parameter index out of range or a shape or dtype unlike the parameter's is an
  // Error naming the entry, and leaves the optimizer unchanged.
  virtual void load_state_dict(const NamedTensors& state) = 0;

 protected:
  Optimizer(const char* name, std::vector<Tensor> params, double lr);

  // "state.3.exp_avg" -> {3, "exp_avg"}; an Error (naming this optimizer) when the name is not of
  // that form, the index is not below params().size() or the state name is not among `known`.
  std::pair<std::size_t, std::string> parse_state_name(const std::string& entry,
                                                       const std::vector<std::string>& known) const;
  // An Error naming `entry` unless `value` has this shape and dtype.
  void check_state_like(const std::string& entry, const Tensor& value, const Shape& shape, Dtype dtype) const;

  std::vector<Tensor> params_;

 private:
  const char* name_;
  double lr_;
};

}  // namespace ng::optim
