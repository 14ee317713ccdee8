// transforms.cpp: scaling bytes to [0, 1] and normalizing by mean and standard deviation.
#include "data/transforms.h"

namespace ng::data {

namespace {
void check_std(const Normalize& normalize) {
  if (!(normalize.std > 0))
    throw Error("Normalize: std " + std::to_string(normalize.std) + " must be > 0 (it divides every value)");
}
}  // namespace

std::array<float, 256> byte_to_float_table(const Normalize& normalize) {
  check_std(normalize);
  std::array<float, 256> table;
  for (int b = 0; b < 256; ++b) table[b] = static_cast<float>((b / 255.0 - normalize.mean) / normalize.std);
  return table;
}

// bytes: n values -> out: float32 `shape` with n elements
Tensor bytes_to_tensor(const uint8_t* bytes, const Shape& shape, const Normalize& normalize) {
  const std::array<float, 256> table = byte_to_float_table(normalize);
  Tensor out = empty(shape, float32);
  float* values = out.mutable_data<float>();
  for (int64_t i = 0; i < out.numel(); ++i) values[i] = table[bytes[i]];
  return out;
}

// x: [...] -> [...]
Tensor normalize(const Tensor& x, const Normalize& normalize) {
  check_std(normalize);
  Tensor out = empty(x.shape(), x.dtype());
  dispatch_float("normalize", x.dtype(), [&]<class T>() {
    const T mean = static_cast<T>(normalize.mean), std = static_cast<T>(normalize.std);
    const T* in = x.data<T>();
    T* values = out.mutable_data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) values[i] = (in[i] - mean) / std;
  });
  return out;
}

}  // namespace ng::data
