// flatten.cpp: nn::Flatten, a reshape whose target shape is computed from the input's.
#include "flatten.h"

#include "autograd/ops.h"

namespace ng::nn {

Flatten::Flatten(int64_t start, int64_t end) : start_dim(start), end_dim(end) {}

// x: [d0, ..., d_start, ..., d_end, ...] -> y: [d0, ..., d_start * ... * d_end, ...]
Tensor Flatten::forward(const Tensor& x) {
  const int64_t ndim = x.dim();
  auto resolve = [&](const char* which, int64_t dim) {
    if (dim < -ndim || dim >= ndim)
      throw Error(std::string("Flatten: ") + which + " = " + std::to_string(dim) +
                  " is out of range for input of shape " + shape_str(x.shape()) + "; expected " +
                  std::to_string(-ndim) + " to " + std::to_string(ndim - 1));
    return dim < 0 ? dim + ndim : dim;
  };
  const int64_t start = resolve("start_dim", start_dim), end = resolve("end_dim", end_dim);
  if (start > end)
    throw Error("Flatten: start_dim = " + std::to_string(start_dim) +
                " comes after end_dim = " + std::to_string(end_dim) + " for input of shape " + shape_str(x.shape()) +
                "; expected start_dim <= end_dim");
  Shape shape(x.shape().begin(), x.shape().begin() + start);
  int64_t merged = 1;
  for (int64_t d = start; d <= end; ++d) merged *= x.size(d);
  shape.push_back(merged);
  shape.insert(shape.end(), x.shape().begin() + end + 1, x.shape().end());
  return reshape(x, shape);
}

}  // namespace ng::nn
