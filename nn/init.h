// init.h: filling parameters in place with starting values (PyTorch's torch.nn.init).
//
// Each function overwrites the numbers of a float32 or float64 leaf tensor (a parameter, or any tensor
// no op produced) and returns the same handle, so `init::normal_(layer.weight, 0, 0.1)` reads as in
// PyTorch. They write the buffer directly and record nothing in the graph, as PyTorch's run under
// torch.no_grad(). Random values come from the global generator (ng::manual_seed), one draw per
// element in row-major order: after manual_seed(s) the same calls give the same numbers.
//
// The scaled initializers size the spread by the fans of a weight [out, in, k1, k2, ...]:
//   fan_in = in * k1 * k2 * ...,  fan_out = out * k1 * k2 * ...
// Kaiming (He et al. 2015) keeps the variance of activations constant through ReLU layers;
// Xavier (Glorot & Bengio 2010) balances the variances of activations and of gradients.
#pragma once

#include "autograd/tensor.h"

namespace ng::nn::init {

// x = mean + std * z, z ~ N(0, 1); std >= 0.
Tensor normal_(Tensor tensor, double mean = 0, double std = 1);
// x = a + (b - a) * u, u ~ U[0, 1); a <= b. (Rounding to float32 can give b itself.)
Tensor uniform_(Tensor tensor, double a = 0, double b = 1);
// x = value, for every element.
Tensor constant_(Tensor tensor, double value);
Tensor zeros_(Tensor tensor);
Tensor ones_(Tensor tensor);

// Which fan Kaiming scales by: fan_in keeps the forward activations' variance, fan_out the gradients'.
enum class FanMode { fan_in, fan_out };

// {fan_in, fan_out} of a weight of at least 2 dimensions (see above); an Error naming `op` otherwise.
struct Fans {
  int64_t fan_in, fan_out;
};
Fans calculate_fans(const char* op, const Tensor& tensor);

// Kaiming for a leaky ReLU of negative slope `a` (a = 0: ReLU), PyTorch's default nonlinearity:
//   gain = sqrt(2 / (1 + a^2)),  std = gain / sqrt(fan)
//   kaiming_uniform_: U(-bound, bound) with bound = sqrt(3) * std   (a uniform's std is bound / sqrt(3))
//   kaiming_normal_:  N(0, std^2)
Tensor kaiming_uniform_(Tensor tensor, double a = 0, FanMode mode = FanMode::fan_in);
Tensor kaiming_normal_(Tensor tensor, double a = 0, FanMode mode = FanMode::fan_in);

// Xavier (Glorot): std = gain * sqrt(2 / (fan_in + fan_out))
//   xavier_uniform_: U(-bound, bound) with bound = sqrt(3) * std = gain * sqrt(6 / (fan_in + fan_out))
//   xavier_normal_:  N(0, std^2)
Tensor xavier_uniform_(Tensor tensor, double gain = 1);
Tensor xavier_normal_(Tensor tensor, double gain = 1);

}  // namespace ng::nn::init
