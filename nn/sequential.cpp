// sequential.cpp: nn::Sequential.
#include "sequential.h"

namespace ng::nn {

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& module : modules) push_back(module);
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  if (!module) throw Error("Sequential: layer " + std::to_string(size()) + " is null; expected a module");
  layers_.push_back(register_module(std::to_string(size()), std::move(module)));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& layer : layers_) h = layer->forward(h);
  return h;
}

Module& Sequential::operator[](int64_t index) const {
  if (index < 0 || index >= size())
    throw Error("Sequential: index " + std::to_string(index) + " is out of range for " + std::to_string(size()) +
                " layers");
  return *layers_[static_cast<std::size_t>(index)];
}

}  // namespace ng::nn
