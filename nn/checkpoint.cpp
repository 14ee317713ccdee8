// checkpoint.cpp (nn/): a module's named tensors to and from a safetensors file.
#include "nn/checkpoint.h"

#include <cstring>
#include <map>

#include "autograd/graph.h"
#include "data/safetensors.h"

namespace ng::nn {

namespace {

// named_parameters() then named_buffers(): what a checkpoint holds.
data::NamedTensors state_of(const Module& module) {
  data::NamedTensors state = module.named_parameters();
  for (auto& named : module.named_buffers()) state.push_back(std::move(named));
  return state;
}

std::string describe(const Tensor& t) { return shape_str(t.shape()) + " " + dtype_name(t.dtype()); }

}  // namespace

void save(const Module& module, const std::string& path) { data::save_safetensors(path, state_of(module)); }

void load(Module& module, const std::string& path) {
  const std::string context = "nn::load: '" + path + "'";
  data::NamedTensors saved = data::load_safetensors(path);
  data::NamedTensors expected = state_of(module);
  std::map<std::string, const Tensor*> saved_by_name;
  for (const auto& [name, tensor] : saved) saved_by_name[name] = &tensor;

  // Check everything first, in the module's order, so that the first difference is reported and a
  // refused file changes nothing.
  std::map<std::string, const Tensor*> expected_by_name;
  for (const auto& [name, tensor] : expected) {
    expected_by_name[name] = &tensor;
    auto found = saved_by_name.find(name);
    if (found == saved_by_name.end())
      throw Error(context + ": the model's tensor '" + name + "' (" + describe(tensor) + ") is not in the file");
    const Tensor& in_file = *found->second;
    if (in_file.shape() != tensor.shape() || in_file.dtype() != tensor.dtype())
      throw Error(context + ": tensor '" + name + "' is " + describe(in_file) + " in the file but " + describe(tensor) +
                  " in the model");
  }
  for (const auto& [name, tensor] : saved)
    if (!expected_by_name.count(name))
      throw Error(context + ": the file holds a tensor '" + name + "' (" + describe(tensor) +
                  ") that the model does not have");

  NoGradGuard no_grad;
  for (auto& [name, tensor] : expected)
    std::memcpy(tensor.mutable_raw_data(), saved_by_name[name]->raw_data(),
                static_cast<std::size_t>(tensor.numel()) * dtype_size(tensor.dtype()));
}

}  // namespace ng::nn
