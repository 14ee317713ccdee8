// optimizer.cpp: the parts every optimizer shares: checking the parameters and their groups,
// zero_grad, the learning rates, and the state dict: the subclass's "state.<i>.<name>" entries and the
// groups' "param_groups.<g>.<setting>" entries.
#include "optim/optimizer.h"

#include <algorithm>
#include <charconv>
#include <unordered_set>

#include "autograd/graph.h"

namespace ng::optim {

Optimizer::Optimizer(const char* name, std::vector<ParamGroup> groups, double default_lr, double default_weight_decay)
    : name_(name) {
  std::unordered_set<const TensorImpl*> seen;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const ParamGroup& group = groups[g];
    for (const Tensor& p : group.params) {
      std::string which = std::string(name_) + ": parameter " + std::to_string(params_.size());
      if (groups.size() > 1) which += " (in param group " + std::to_string(g) + ")";
      if (!p.defined()) throw Error(which + " is an undefined tensor");
      if (p.dtype() == int64) throw Error(which + " has dtype int64; expected float32 or float64");
      if (!p.is_leaf())
        throw Error(which + " is not a leaf (it was made by '" + p.grad_fn()->op + "'); an optimizer updates leaves");
      // Updating one tensor twice per step would silently double its learning rate.
      if (!seen.insert(p.impl()).second) throw Error(which + " appears more than once in the parameter list");
      params_.push_back(p);
      group_index_.push_back(g);
    }
    const double lr = group.lr.value_or(default_lr), weight_decay = group.weight_decay.value_or(default_weight_decay);
    check_setting("lr", g, groups.size(), lr);
    check_setting("weight_decay", g, groups.size(), weight_decay);
    groups_.push_back({group.params, lr, weight_decay});
  }
  if (params_.empty()) throw Error(std::string(name_) + ": got an empty parameter list");
}

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::check_setting(const char* setting, std::size_t group, std::size_t group_count, double value) const {
  if (!(value >= 0))
    throw Error(std::string(name_) + ": invalid " + (std::string(setting) == "lr" ? "learning rate" : setting) + " " +
                std::to_string(value) +
                (group_count > 1 ? " for param group " + std::to_string(group) : std::string()) + "; expected " +
                setting + " >= 0");
}

void Optimizer::set_lr(double lr) {
  check_setting("lr", 0, 1, lr);
  for (Group& group : groups_) group.lr = lr;
}

void Optimizer::set_lr(std::size_t group, double lr) {
  if (group >= groups_.size())
    throw Error(std::string(name_) + ": set_lr for param group " + std::to_string(group) + ", but there are " +
                std::to_string(groups_.size()) + " groups");
  check_setting("lr", group, groups_.size(), lr);
  groups_[group].lr = lr;
}

const Optimizer::Group& Optimizer::group_of(std::size_t i) const {
  const std::size_t g = group_index_[i];
  check_setting("lr", g, groups_.size(), groups_[g].lr);
  check_setting("weight_decay", g, groups_.size(), groups_[g].weight_decay);
  return groups_[g];
}

NamedTensors Optimizer::state_dict() const {
  NamedTensors state = parameter_state();
  for (std::size_t g = 0, first = 0; g < groups_.size(); ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    const auto n = static_cast<int64_t>(groups_[g].params.size());
    state.emplace_back(prefix + "lr", scalar(groups_[g].lr, float64));
    state.emplace_back(prefix + "weight_decay", scalar(groups_[g].weight_decay, float64));
    state.emplace_back(prefix + "params", arange(static_cast<double>(first), static_cast<double>(first + n), 1, int64));
    first += static_cast<std::size_t>(n);
  }
  return state;
}

void Optimizer::load_state_dict(const NamedTensors& state) {
  // The group settings are read and checked here; everything else goes to the subclass.
  const std::string group_prefix = "param_groups.";
  const std::vector<std::string> settings{"lr", "weight_decay", "params"};
  NamedTensors parameter_entries;
  std::vector<std::vector<Tensor>> found(groups_.size(), std::vector<Tensor>(settings.size()));
  bool any_group_entry = false;
  for (const auto& named : state) {
    const std::string& entry = named.first;  // not a structured binding: clang 14 cannot capture one (refuse)
    const Tensor& value = named.second;
    if (entry.rfind(group_prefix, 0) != 0) {
      parameter_entries.emplace_back(entry, value);
      continue;
    }
    any_group_entry = true;
    const std::string expected = "expected param_groups.<g>.<setting> with g < " + std::to_string(groups_.size()) +
                                 " and setting one of lr weight_decay params";
    auto refuse = [&](const std::string& why) {
      return Error(std::string(name_) + ": state entry '" + entry + "' " + why + " (" + expected + ")");
    };
    const std::size_t dot = entry.find('.', group_prefix.size());
    std::size_t g = 0;
    const char* first = entry.data() + group_prefix.size();
    const char* last = entry.data() + (dot == std::string::npos ? entry.size() : dot);
    auto [end, error] = std::from_chars(first, last, g);
    if (dot == std::string::npos || error != std::errc() || end != last) throw refuse("does not hold a group index");
    if (g >= groups_.size())
      throw refuse("is for param group " + std::to_string(g) + ", which this optimizer does not have");
    const auto setting = std::find(settings.begin(), settings.end(), entry.substr(dot + 1));
    if (setting == settings.end()) throw refuse("is not a setting param groups keep");
    if (*setting == "params") {
      const auto n = static_cast<int64_t>(groups_[g].params.size());
      int64_t first_index = 0;
      for (std::size_t earlier = 0; earlier < g; ++earlier)
        first_index += static_cast<int64_t>(groups_[earlier].params.size());
      const Tensor expected_params =
          arange(static_cast<double>(first_index), static_cast<double>(first_index + n), 1, int64);
      if (!value.defined() || value.dtype() != int64 || value.shape() != expected_params.shape() ||
          value.to_vector() != expected_params.to_vector())
        throw Error(std::string(name_) + ": state entry '" + entry +
                    "' does not list the parameters of this optimizer's param group " + std::to_string(g) +
                    "; expected the int64 tensor " + shape_str(expected_params.shape()) + " of indices " +
                    std::to_string(first_index) + " to " + std::to_string(first_index + n - 1) +
                    " (a checkpoint of an optimizer grouped the same way)");
    } else {
      check_state_like(entry, value, {}, float64);
      check_setting(setting->c_str(), g, groups_.size(), value.item());
    }
    found[g][static_cast<std::size_t>(setting - settings.begin())] = value;
  }
  if (any_group_entry)
    for (std::size_t g = 0; g < groups_.size(); ++g)
      for (std::size_t s = 0; s < settings.size(); ++s)
        if (!found[g][s].defined())
          throw Error(std::string(name_) + ": the state has param_groups entries but no 'param_groups." +
                      std::to_string(g) + "." + settings[s] +
                      "'; expected lr, weight_decay and params for each of the " + std::to_string(groups_.size()) +
                      " groups");
  load_parameter_state(parameter_entries);  // checks everything before it changes anything
  if (any_group_entry)
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      groups_[g].lr = found[g][0].item();
      groups_[g].weight_decay = found[g][1].item();
    }
}

std::pair<std::size_t, std::string> Optimizer::parse_state_name(const std::string& entry,
                                                                const std::vector<std::string>& known) const {
  std::string expected = "expected state.<i>.<name> with i < " + std::to_string(params_.size()) + " and name one of";
  for (const std::string& k : known) expected += " " + k;
  auto refuse = [&](const std::string& why) {
    return Error(std::string(name_) + ": state entry '" + entry + "' " + why + " (" + expected + ")");
  };
  const std::string prefix = "state.";
  std::size_t dot = entry.find('.', prefix.size());
  if (entry.rfind(prefix, 0) != 0 || dot == std::string::npos) throw refuse("is not a per-parameter state name");
  std::size_t index = 0;
  const char* first = entry.data() + prefix.size();
  const char* last = entry.data() + dot;
  auto [end, error] = std::from_chars(first, last, index);
  if (error != std::errc() || end != last) throw refuse("does not hold a parameter index");
  if (index >= params_.size())
    throw refuse("is for parameter " + std::to_string(index) + ", which this optimizer does not have");
  std::string state_name = entry.substr(dot + 1);
  if (std::find(known.begin(), known.end(), state_name) == known.end())
    throw refuse("is not state this optimizer keeps");
  return {index, state_name};
}

void Optimizer::check_state_like(const std::string& entry, const Tensor& value, const Shape& shape, Dtype dtype) const {
  if (!value.defined()) throw Error(std::string(name_) + ": state entry '" + entry + "' is an undefined tensor");
  if (value.shape() != shape || value.dtype() != dtype)
    throw Error(std::string(name_) + ": state entry '" + entry + "' has shape " + shape_str(value.shape()) + " " +
                dtype_name(value.dtype()) + "; expected " + shape_str(shape) + " " + dtype_name(dtype));
}

}  // namespace ng::optim
