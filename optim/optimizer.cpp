// optimizer.cpp: the parts every optimizer shares: checking the parameters, zero_grad, the learning
// rate, and reading the "state.<i>.<name>" entries of a checkpoint.
#include "optim/optimizer.h"

#include <algorithm>
#include <charconv>
#include <unordered_set>

#include "autograd/graph.h"

namespace ng::optim {

Optimizer::Optimizer(const char* name, std::vector<Tensor> params, double lr)
    : params_(std::move(params)), name_(name), lr_(0) {
  if (params_.empty()) throw Error(std::string(name_) + ": got an empty parameter list");
  std::unordered_set<const TensorImpl*> seen;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    std::string which = std::string(name_) + ": parameter " + std::to_string(i);
    if (!p.defined()) throw Error(which + " is an undefined tensor");
    if (p.dtype() == int64) throw Error(which + " has dtype int64; expected float32 or float64");
    if (!p.is_leaf())
      throw Error(which + " is not a leaf (it was made by '" + p.grad_fn()->op + "'); an optimizer updates leaves");
    // Updating one tensor twice per step would silently double its learning rate.
    if (!seen.insert(p.impl()).second) throw Error(which + " appears more than once in the parameter list");
  }
  set_lr(lr);
}

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  if (!(lr >= 0))
    throw Error(std::string(name_) + ": invalid learning rate " + std::to_string(lr) + "; expected lr >= 0");
  lr_ = lr;
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
