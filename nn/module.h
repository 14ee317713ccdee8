// module.h: nn::Module, the base of every layer and model.
//
// A Module owns named tensors of two kinds, as in PyTorch: parameters (learned, requires_grad, what an
// optimizer updates) and buffers (state that is not learned, such as BatchNorm's running averages).
// Modules nest: a child registered as "layers" contributes its "0.weight" as "layers.0.weight", and
// these hierarchical names are what checkpoints store and what to_dot shows on the graph's leaves.
// train() / eval() switch the mode of the whole tree (BatchNorm and Dropout behave differently).
//
// A module may appear in the tree more than once (tied weights: Sequential{lin, Tanh, lin} uses one
// Linear twice). Its tensors are still listed once, under the first name they are reached by, as
// PyTorch's parameters() / named_parameters() / named_buffers() do: identity is the TensorImpl, so an
// optimizer or clip_grad_norm_ sees each parameter once, and its gradient already holds the sum over
// every use. A checkpoint (nn/checkpoint.h) is built from these lists, so it too stores a tied tensor
// once, under its first name (PyTorch's state_dict would keep both keys).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace ng::nn {

class Module {
 public:
  Module() = default;
  virtual ~Module();
  // A module's tensors are shared handles, so a copy would alias the original's parameters: forbidden.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Own tensors first, then each child's, in registration order; a tensor reached twice is listed once,
  // under its first name.
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> buffers() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;

  // Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();
  // Sets training mode (on) or evaluation mode (!on) for this module and all its children.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

 protected:
  // Registers `tensor` as a parameter: it is made to require grad and named. Returns the same handle,
  // so a layer writes `weight = register_parameter("weight", ...)`.
  Tensor register_parameter(const std::string& name, Tensor tensor);
  Tensor register_buffer(const std::string& name, Tensor tensor);
  // Adds a child and prefixes the names of its tensors with "name.".
  template <class M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  void check_new_name(const std::string& name) const;

  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace ng::nn

namespace ng::nn {

// PyTorch's nn.ModuleList: modules held in a list and registered as children "0", "1", ..., so that a
// list registered as "h" names its tensors "h.0.attn.c_attn.weight". It has no forward of its own: the
// model that owns it calls its modules in the order and the way it needs (a GPT's blocks, say), where
// Sequential (sequential.h) would feed each output into the next. Register the list in its parent
// after filling it if the tensors' own names (to_dot) should carry the full path; named_parameters()
// builds its names when called and is right either way.
class ModuleList : public Module {
 public:
  ModuleList() = default;
  ModuleList(std::initializer_list<std::shared_ptr<Module>> modules);

  // Adds `module` at the end, registered under its position (std::to_string(size())).
  void append(std::shared_ptr<Module> module);
  int64_t size() const { return static_cast<int64_t>(modules_.size()); }
  // The module at `index`; a negative index counts from the end, as in Python.
  Module& operator[](int64_t index) const;
  // The same module as its own type (an Error if it is not an M).
  template <class M> std::shared_ptr<M> get(int64_t index) const {
    auto typed = std::dynamic_pointer_cast<M>(modules_[position(index)]);
    if (!typed) throw Error("ModuleList: module " + std::to_string(index) + " is not of the requested type");
    return typed;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

  // A list has no forward: throws, saying to call its modules instead.
  Tensor forward(const Tensor& x) override;

 private:
  std::size_t position(int64_t index) const;  // index checked and counted from the end when negative
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace ng::nn
