// transforms.h: from image bytes to the floats a network sees, as torchvision's ToTensor and Normalize:
//
//   x = byte / 255              scale to [0, 1]
//   x = (x - mean) / std        normalize (e.g. mean 0.2860, std 0.3530 for Fashion-MNIST's training set)
//
// Datasets keep images as bytes (a quarter of the memory of float32) and convert each batch as it is
// loaded. Because a byte has only 256 values, the conversion is a table lookup per pixel.
#pragma once

#include <array>
#include <cstdint>

#include "autograd/tensor.h"

namespace ng::data {

struct Normalize {
  double mean = 0;
  double std = 1;  // must be > 0
};

// table[b] = (b / 255 - mean) / std for every byte value b; an Error if std <= 0.
std::array<float, 256> byte_to_float_table(const Normalize& normalize);

// n bytes -> float32 tensor of `shape` (n = its numel): (byte / 255 - mean) / std.
Tensor bytes_to_tensor(const uint8_t* bytes, const Shape& shape, const Normalize& normalize = {});

// (x - mean) / std for a float32 or float64 tensor, into a new tensor (no graph is recorded: a
// transform of input data, not an op to differentiate).
Tensor normalize(const Tensor& x, const Normalize& normalize);

}  // namespace ng::data
