// sequential.h: nn::Sequential, modules applied one after the other; children are named "0", "1", ...
#pragma once

#include <initializer_list>
#include <memory>

#include "module.h"

namespace ng::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);

  void push_back(std::shared_ptr<Module> module);
  // x -> layers[size-1](...layers[0](x))
  Tensor forward(const Tensor& x) override;

  int64_t size() const { return static_cast<int64_t>(layers_.size()); }
  Module& operator[](int64_t index) const;

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace ng::nn
