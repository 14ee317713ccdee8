// init.cpp: the in-place initializers of init.h, each one loop over the tensor's buffer.
#include "init.h"

#include <cmath>
#include <string>
#include <utility>

#include "autograd/graph.h"

namespace ng::nn::init {

namespace {

// An initializer overwrites numbers that nothing else depends on yet: a defined, floating-point leaf.
// A tensor some op produced may be saved by the graph for a backward pass, which would then use the
// new numbers silently.
void check_target(const char* op, const Tensor& tensor) {
  if (!tensor.defined())
    throw Error(std::string("init::") + op + ": the tensor is undefined; expected a tensor to fill");
  if (tensor.dtype() == int64)
    throw Error(std::string("init::") + op + ": tensor of shape " + shape_str(tensor.shape()) +
                " has dtype int64; expected float32 or float64");
  if (!tensor.is_leaf())
    throw Error(std::string("init::") + op + ": tensor of shape " + shape_str(tensor.shape()) + " was made by '" +
                tensor.grad_fn()->op + "'; expected a leaf (a parameter, or a tensor made by a factory)");
}

// Sets every element to value(zero, draws), called once per element in row-major order. The random
// draws are one uninterrupted run of the generator's sequence (RandomDraws holds its lock). The write
// bumps the tensor's version, like every in-place write.
template <class Draw> Tensor fill(const char* op, Tensor tensor, Draw value) {
  check_target(op, tensor);
  dispatch_float(op, tensor.dtype(), [&]<class T>() {
    T* out = tensor.mutable_data<T>();
    RandomDraws draws;
    for (int64_t i = 0; i < tensor.numel(); ++i) out[i] = static_cast<T>(value(T{}, draws));
  });
  return tensor;
}

// gain = sqrt(2 / (1 + a^2)): the leaky ReLU of slope a passes on a fraction (1 + a^2) / 2 of its input's
// second moment, which the gain squared makes up for.
double leaky_relu_gain(double a) { return std::sqrt(2.0 / (1.0 + a * a)); }

// std = gain / sqrt(fan). A fan is 0 only for a tensor without elements, which has nothing to fill:
// any std will do.
double kaiming_std(const char* op, const Tensor& tensor, double a, FanMode mode) {
  const Fans fans = calculate_fans(op, tensor);
  const int64_t fan = mode == FanMode::fan_in ? fans.fan_in : fans.fan_out;
  return fan == 0 ? 0.0 : leaky_relu_gain(a) / std::sqrt(static_cast<double>(fan));
}

// std = gain * sqrt(2 / (fan_in + fan_out))
double xavier_std(const char* op, const Tensor& tensor, double gain) {
  const Fans fans = calculate_fans(op, tensor);
  const int64_t fans_sum = fans.fan_in + fans.fan_out;
  return fans_sum == 0 ? 0.0 : gain * std::sqrt(2.0 / static_cast<double>(fans_sum));
}

}  // namespace

Tensor normal_(Tensor tensor, double mean, double std) {
  if (!(std >= 0)) throw Error("init::normal_: std = " + std::to_string(std) + "; expected std >= 0");
  // x = mean + std * z in the tensor's dtype: normal_(t, 0, std) on float32 gives exactly the numbers
  // of randn(shape) * std.
  return fill("normal_", std::move(tensor), [&](auto zero, RandomDraws& draws) {
    using T = decltype(zero);
    return static_cast<T>(mean) + static_cast<T>(std) * static_cast<T>(draws.normal());
  });
}

Tensor uniform_(Tensor tensor, double a, double b) {
  if (!(a <= b))
    throw Error("init::uniform_: a = " + std::to_string(a) + ", b = " + std::to_string(b) + "; expected a <= b");
  // x = a + (b - a) * u, computed in double and rounded once.
  return fill("uniform_", std::move(tensor), [&](auto, RandomDraws& draws) { return a + (b - a) * draws.uniform(); });
}

Tensor constant_(Tensor tensor, double value) {
  return fill("constant_", std::move(tensor), [&](auto, RandomDraws&) { return value; });
}
Tensor zeros_(Tensor tensor) {
  return fill("zeros_", std::move(tensor), [](auto, RandomDraws&) { return 0.0; });
}
Tensor ones_(Tensor tensor) {
  return fill("ones_", std::move(tensor), [](auto, RandomDraws&) { return 1.0; });
}

Fans calculate_fans(const char* op, const Tensor& tensor) {
  check_target(op, tensor);
  if (tensor.dim() < 2)
    throw Error(std::string("init::") + op + ": tensor of shape " + shape_str(tensor.shape()) +
                " has no fan in and fan out; expected a weight of at least 2 dimensions [out, in, ...]");
  // [out, in, k1, k2, ...]: each output (input) unit connects through a receptive field of k1 * k2 * ... values.
  int64_t receptive_field = 1;
  for (int64_t d = 2; d < tensor.dim(); ++d) receptive_field *= tensor.size(d);
  return {tensor.size(1) * receptive_field, tensor.size(0) * receptive_field};
}

// U(-bound, bound) has standard deviation bound / sqrt(3), so bound = sqrt(3) * std.
Tensor kaiming_uniform_(Tensor tensor, double a, FanMode mode) {
  const double bound = std::sqrt(3.0) * kaiming_std("kaiming_uniform_", tensor, a, mode);
  return uniform_(std::move(tensor), -bound, bound);
}

Tensor kaiming_normal_(Tensor tensor, double a, FanMode mode) {
  const double std = kaiming_std("kaiming_normal_", tensor, a, mode);
  return normal_(std::move(tensor), 0, std);
}

Tensor xavier_uniform_(Tensor tensor, double gain) {
  const double bound = std::sqrt(3.0) * xavier_std("xavier_uniform_", tensor, gain);
  return uniform_(std::move(tensor), -bound, bound);
}

Tensor xavier_normal_(Tensor tensor, double gain) {
  const double std = xavier_std("xavier_normal_", tensor, gain);
  return normal_(std::move(tensor), 0, std);
}

}  // namespace ng::nn::init
