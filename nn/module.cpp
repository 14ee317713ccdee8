// module.cpp: registration, the hierarchical names, and the tree-wide walks (parameters, train/eval).
#include "module.h"

#include <unordered_set>

namespace ng::nn {

Module::~Module() = default;

void Module::check_new_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos)
    throw Error("Module: name '" + name +
                "' is not allowed; expected a non-empty name without '.' (dots separate levels)");
  auto taken = [&](const auto& list) {
    for (const auto& entry : list)
      if (entry.first == name) return true;
    return false;
  };
  if (taken(parameters_) || taken(buffers_) || taken(children_))
    throw Error("Module: name '" + name + "' is already registered in this module; expected a new name");
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor) {
  check_new_name(name);
  if (!tensor.defined()) throw Error("Module: parameter '" + name + "' is undefined; expected a tensor");
  tensor.requires_grad_(true).set_name(name);
  parameters_.emplace_back(name, tensor);
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor) {
  check_new_name(name);
  if (!tensor.defined()) throw Error("Module: buffer '" + name + "' is undefined; expected a tensor");
  tensor.set_name(name);
  buffers_.emplace_back(name, tensor);
  return tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  check_new_name(name);
  if (!child) throw Error("Module: child module '" + name + "' is null; expected a module");
  // The child's tensors now live one level deeper: "weight" becomes "name.weight". A tensor this
  // module already reaches (a tied child, registered a second time) keeps its first name.
  std::unordered_set<const TensorImpl*> known;
  for (const auto& [known_name, tensor] : named_parameters()) known.insert(tensor.impl());
  for (const auto& [known_name, tensor] : named_buffers()) known.insert(tensor.impl());
  for (auto& [child_name, tensor] : child->named_parameters())
    if (!known.count(tensor.impl())) tensor.set_name(name + "." + child_name);
  for (auto& [child_name, tensor] : child->named_buffers())
    if (!known.count(tensor.impl())) tensor.set_name(name + "." + child_name);
  children_.emplace_back(name, std::move(child));
}

namespace {

using NamedList = std::vector<std::pair<std::string, Tensor>>;
using Children = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;

// own, then each child's list with "prefix." in front, skipping a tensor already listed: the first
// name wins. Children's lists are deduplicated already, so one set over the whole walk suffices.
template <class ChildList> NamedList first_names(const NamedList& own, const Children& children, ChildList child_list) {
  NamedList all;
  std::unordered_set<const TensorImpl*> seen;
  for (const auto& [name, tensor] : own)
    if (seen.insert(tensor.impl()).second) all.emplace_back(name, tensor);
  for (const auto& [prefix, child] : children)
    for (auto& [name, tensor] : child_list(*child))
      if (seen.insert(tensor.impl()).second) all.emplace_back(prefix + "." + name, tensor);
  return all;
}

}  // namespace

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  return first_names(parameters_, children_, [](const Module& child) { return child.named_parameters(); });
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  return first_names(buffers_, children_, [](const Module& child) { return child.named_buffers(); });
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> all;
  for (auto& [name, tensor] : named_parameters()) all.push_back(tensor);
  return all;
}

std::vector<Tensor> Module::buffers() const {
  std::vector<Tensor> all;
  for (auto& [name, tensor] : named_buffers()) all.push_back(tensor);
  return all;
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.zero_grad();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

}  // namespace ng::nn

namespace ng::nn {

// ---- ModuleList -------------------------------------------------------------------------------------

ModuleList::ModuleList(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& module : modules) append(module);
}

void ModuleList::append(std::shared_ptr<Module> module) {
  if (!module) throw Error("ModuleList: module " + std::to_string(size()) + " is null; expected a module");
  modules_.push_back(register_module(std::to_string(size()), std::move(module)));
}

std::size_t ModuleList::position(int64_t index) const {
  if (index < -size() || index >= size())
    throw Error("ModuleList: index " + std::to_string(index) + " is out of range for " + std::to_string(size()) +
                " modules; expected -" + std::to_string(size()) + " <= index < " + std::to_string(size()));
  return static_cast<std::size_t>(index < 0 ? index + size() : index);
}

Module& ModuleList::operator[](int64_t index) const { return *modules_[position(index)]; }

Tensor ModuleList::forward(const Tensor& x) {
  throw Error("ModuleList: forward called with input " + shape_str(x.shape()) +
              "; a ModuleList has no forward, expected its modules to be called (or use Sequential)");
}

}  // namespace ng::nn
