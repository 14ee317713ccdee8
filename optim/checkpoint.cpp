// checkpoint.cpp (optim/): an optimizer's state to and from a safetensors file.
#include "optim/checkpoint.h"

#include <algorithm>
#include <charconv>

#include "data/safetensors.h"

namespace ng::optim {

void save(const Optimizer& optimizer, const std::string& path) {
  char lr[32];
  auto written = std::to_chars(lr, lr + sizeof lr, optimizer.lr());  // shortest text that reads back exactly
  data::Metadata metadata{{"optimizer", optimizer.name()},
                          {"parameters", std::to_string(optimizer.params().size())},
                          {"lr", std::string(lr, written.ptr)}};
  data::save_safetensors(path, optimizer.state_dict(), metadata);
}

void load(Optimizer& optimizer, const std::string& path) {
  data::SafetensorsFile file = data::read_safetensors(path);
  const std::string context = "optim::load: '" + path + "'";
  auto field = [&](const std::string& key) {
    auto it = file.metadata.find(key);
    if (it == file.metadata.end())
      throw Error(context + ": no '" + key +
                  "' in its __metadata__; expected an optimizer checkpoint from optim::save");
    return it->second;
  };
  std::string kind = field("optimizer");
  if (kind != optimizer.name())
    throw Error(context + ": holds the state of " + kind + ", but this optimizer is " + optimizer.name());
  std::string parameters = field("parameters");
  if (parameters != std::to_string(optimizer.params().size()))
    throw Error(context + ": was saved for " + parameters + " parameters, but this optimizer has " +
                std::to_string(optimizer.params().size()));
  std::string lr_text = field("lr");
  double lr = 0;
  auto [end, error] = std::from_chars(lr_text.data(), lr_text.data() + lr_text.size(), lr);
  if (error != std::errc() || end != lr_text.data() + lr_text.size() || !(lr >= 0))
    throw Error(context + ": its learning rate '" + lr_text + "' is not a number >= 0");
  optimizer.load_state_dict(file.tensors);
  // A checkpoint from before param groups has only the "lr" field; a newer one has each group's
  // settings among its tensors, which load_state_dict has just restored.
  const bool has_group_settings = std::any_of(file.tensors.begin(), file.tensors.end(), [](const auto& entry) {
    return entry.first.rfind("param_groups.", 0) == 0;
  });
  if (!has_group_settings) optimizer.set_lr(lr);
}

}  // namespace ng::optim
