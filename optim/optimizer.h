// optimizer.h: what every optimizer shares (PyTorch's torch.optim.Optimizer).
//
// An optimizer holds the parameters it updates in one or more parameter groups, each with its own
// learning rate and weight decay (PyTorch's param_groups: a GPT decays its weight matrices but not its
// biases and norms), and per-parameter state (momentum buffers, Adam's moving averages) that lives
// here rather than on the tensors. step() reads each parameter's .grad() and changes the parameter in
// place under NoGradGuard; a parameter whose grad is undefined (no backward reached it) is skipped, as
// in PyTorch.
//
// The state can be listed and restored under PyTorch's names ("state.<i>.exp_avg" for parameter i,
// counting through the groups in order, "param_groups.<g>.lr" for group g), which is how
// optim/checkpoint.h saves it.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace ng::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// A list of parameters that share a learning rate and a weight decay, as an optimizer is built from
// it: what is not given comes from the optimizer's options. The other options (momentum, betas, eps)
// are the optimizer's for every group.
//   AdamW opt({{.params = decay, .weight_decay = 0.1}, {.params = no_decay, .weight_decay = 0}}, {.lr = 3e-3});
struct ParamGroup {
  std::vector<Tensor> params = {};
  std::optional<double> lr = std::nullopt;
  std::optional<double> weight_decay = std::nullopt;
};

class Optimizer {
 public:
  // A group as the optimizer keeps it, every setting filled in (an entry of PyTorch's
  // optimizer.param_groups). lr and weight_decay may be changed between steps (step() checks them);
  // the parameters are fixed when the optimizer is made, since the state is kept by their position.
  struct Group {
    const std::vector<Tensor> params;
    double lr;
    double weight_decay;
  };

  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;
  // Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  // The first group's learning rate (the only one, for an optimizer built from one list).
  double lr() const { return groups_[0].lr; }
  // Sets every group's learning rate; an Error unless lr >= 0.
  void set_lr(double lr);
  // Sets group g's learning rate (schedulers, scheduler.h, call this for each group).
  void set_lr(std::size_t group, double lr);

  std::vector<Group>& param_groups() { return groups_; }
  const std::vector<Group>& param_groups() const { return groups_; }
  // Every parameter, group after group: parameter i of the state names.
  const std::vector<Tensor>& params() const { return params_; }
  // "SGD", "Adam", "AdamW": for messages and checkpoints.
  const char* name() const { return name_; }

  // The per-parameter state as "state.<i>.<name>" tensors, in parameter order (a parameter that no
  // step() has reached yet has no entries: PyTorch creates state lazily too), then for each group g
  // "param_groups.<g>.lr" and "param_groups.<g>.weight_decay" (float64 0-dim) and
  // "param_groups.<g>.params" (int64 [n], the indices i of its parameters).
  NamedTensors state_dict() const;
  // Replaces the state with `state` (as state_dict() returned it). Every entry is checked first: an
  // unknown name, a parameter or group index out of range, a shape or dtype unlike the parameter's, or
  // groups that hold other parameters is an Error naming the entry, and leaves the optimizer unchanged.
  // The param_groups entries are optional (a checkpoint from before groups has none, and keeps the
  // current settings), but present for one group they must be present for all.
  void load_state_dict(const NamedTensors& state);

 protected:
  // An Error naming `name` for no parameters at all, an undefined, int64 or non-leaf parameter, one
  // that appears twice, or an invalid lr or weight_decay. Groups take the lr and weight_decay they do
  // not give from default_lr and default_weight_decay.
  Optimizer(const char* name, std::vector<ParamGroup> groups, double default_lr, double default_weight_decay);

  // The "state.<i>.<name>" entries of the subclass (SGD's momentum buffers, Adam's moments).
  virtual NamedTensors parameter_state() const = 0;
  // Checks all of `state` ("state.<i>.<name>" entries only), then replaces the subclass's state with
  // it; an Error leaves the state unchanged.
  virtual void load_parameter_state(const NamedTensors& state) = 0;

  // The group parameter i belongs to, its lr and weight_decay checked (an Error if a caller of
  // param_groups() made one negative or NaN).
  const Group& group_of(std::size_t i) const;

  // "state.3.exp_avg" -> {3, "exp_avg"}; an Error (naming this optimizer) when the name is not of
  // that form, the index is not below params().size() or the state name is not among `known`.
  std::pair<std::size_t, std::string> parse_state_name(const std::string& entry,
                                                       const std::vector<std::string>& known) const;
  // An Error naming `entry` unless `value` has this shape and dtype.
  void check_state_like(const std::string& entry, const Tensor& value, const Shape& shape, Dtype dtype) const;

  std::vector<Tensor> params_;

 private:
  // An Error naming the setting ("lr", "weight_decay") and, when there are several, the group unless value >= 0.
  void check_setting(const char* setting, std::size_t group, std::size_t group_count, double value) const;

  const char* name_;
  std::vector<Group> groups_;
  std::vector<std::size_t> group_index_;  // per parameter: which group holds it
};

}  // namespace ng::optim
