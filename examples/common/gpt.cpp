// gpt.cpp: the choice of normalization for the tiny GPT of gpt.h.
#include "gpt.h"

namespace examples {

std::shared_ptr<ng::nn::Module> make_norm(const std::string& kind, int64_t features) {
  if (kind == "layer") return std::make_shared<ng::nn::LayerNorm>(ng::Shape{features});
  if (kind == "rms") return std::make_shared<ng::nn::RMSNorm>(ng::Shape{features});
  if (kind == "batch") return std::make_shared<BatchNormOverTokens>(features);
  if (kind == "none") return std::make_shared<Identity>();
  throw ng::Error("make_norm: unknown normalization '" + kind + "'; expected layer, rms, batch or none");
}

}  // namespace examples
