// checked_size.h: int64 size arithmetic that cannot overflow unnoticed (internal to the library, not installed).
//
// Every size an op derives from its arguments goes through add and mul below: a convolution's output
// size (in + 2*pad - dilation*(k-1) - 1)/stride + 1, a padded size, a pooling divisor kH*kW, a buffer
// of K*L elements, a batch's first index. Signed overflow is undefined behaviour, and a size that wraps
// silently has meant heap overflows, divisions by zero and hangs; here it is an Error that
// names the op, its arguments and the quantity. check_fits then holds a shape to the per-tensor limit
// (kMaxTensorBytes, tensor.h) before anything is allocated or looped over.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "tensor.h"

namespace ng::checked_size {

// `context` says who asks and with what ("conv2d: input [0, 1, 2, 2], weight [1, 1, 1, 1], ..."), `what`
// names the quantity ("padded height H + 2*pad").
[[noreturn]] inline void overflow(const std::string& context, const char* what, int64_t a, const char* sign,
                                  int64_t b) {
  throw Error(context + ": " + what + " = " + std::to_string(a) + sign + std::to_string(b) +
              " overflows int64 (more than 2^63 - 1)");
}

// a + b, or an Error.
inline int64_t add(int64_t a, int64_t b, const std::string& context, const char* what) {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) overflow(context, what, a, " + ", b);
  return sum;
}

// a * b, or an Error.
inline int64_t mul(int64_t a, int64_t b, const std::string& context, const char* what) {
  int64_t product;
  if (__builtin_mul_overflow(a, b, &product)) overflow(context, what, a, " * ", b);
  return product;
}

// The product of the sizes with every 0 counted as 1: how far the strides of `shape` reach (stride_d =
// s_{d+1} * ... * s_{n-1}), whether or not it holds any element. Sizes must be >= 0.
inline int64_t extent(const Shape& shape, const std::string& context) {
  bool has_zero = false;
  int64_t reach = 1;
  for (int64_t s : shape) {
    has_zero = has_zero || s == 0;
    if (s != 0 && __builtin_mul_overflow(reach, s, &reach))
      throw Error(context + ": shape " + shape_str(shape) + " has too many elements (more than 2^63 - 1" +
                  (has_zero ? ", its zero sizes counted as 1)" : ")"));
  }
  return reach;
}

// Throws unless a tensor of `shape` and `dtype` is within the per-tensor limit: extent * element size
// <= kMaxTensorBytes. The extent, not the element count, so that a shape holding no element is still
// checked dimension by dimension ([0, 2^62, 2^62] is refused: its strides overflow, and so would any
// cat or transpose of it). Every byte offset inside a tensor that passes fits in 64 bits.
inline void check_fits(const Shape& shape, Dtype dtype, const std::string& context) {
  for (int64_t s : shape)
    if (s < 0) throw Error(context + ": negative size in shape " + shape_str(shape));
  const int64_t reach = extent(shape, context);
  if (static_cast<uint64_t>(reach) > kMaxTensorBytes / dtype_size(dtype)) {
    const bool has_zero = std::find(shape.begin(), shape.end(), 0) != shape.end();
    throw Error(context + ": shape " + shape_str(shape) + " " + dtype_name(dtype) + " has too many elements: " +
                std::to_string(reach) + (has_zero ? " (its zero sizes counted as 1)" : "") + " x " +
                std::to_string(dtype_size(dtype)) + " bytes exceeds the limit of 2^48 bytes");
  }
}

// How many elements a scratch buffer of `count` elements of `bytes_each` bytes may hold: `count`, once
// checked against the per-tensor limit (a buffer is a tensor by another name).
inline std::size_t buffer(int64_t count, std::size_t bytes_each, const std::string& context, const char* what) {
  if (count < 0 || static_cast<uint64_t>(count) > kMaxTensorBytes / bytes_each)
    throw Error(context + ": " + what + " of " + std::to_string(count) + " elements of " + std::to_string(bytes_each) +
                " bytes is over the per-tensor limit of 2^48 bytes");
  return static_cast<std::size_t>(count);
}

}  // namespace ng::checked_size
