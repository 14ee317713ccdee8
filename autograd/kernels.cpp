// kernels.cpp: the index arithmetic behind kernels.h that is not a template (internal to autograd/).
//
// Every op file walks its tensors with these: contiguous strides, the strides that broadcast one shape
// to another, and a shape split around one dim. The loops that use them (for_each_row, binary, unary,
// max_sum_exp) are templates and stay in kernels.h; the ops themselves are in the ops_*.cpp files.
#include "kernels.h"

namespace ng::kernel {

// stride_d = s_{d+1} * ... * s_{n-1}: the last dim has stride 1, each dim to its left the product of the
// sizes to its right.
std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t stride = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

// Shapes align at the right: dim d of `shape` is dim skip + d of `target`. A dim of size 1 is repeated
// along target's dim (stride 0), and target's leading dims that `shape` lacks read it whole each time
// (stride 0 too).
std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& target) {
  std::vector<int64_t> own = strides_of(shape), strides(target.size(), 0);
  const std::size_t skip = target.size() - shape.size();
  for (std::size_t d = 0; d < shape.size(); ++d) strides[skip + d] = shape[d] == 1 ? 0 : own[d];
  return strides;
}

// outer = s_0 * ... * s_{dim-1},  size = s_dim,  inner = s_{dim+1} * ... * s_{n-1}
AroundDim around_dim(const Shape& shape, int64_t dim) {
  AroundDim r;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < dim) r.outer *= shape[d];
    if (d == dim) r.size = shape[d];
    if (d > dim) r.inner *= shape[d];
  }
  return r;
}

}  // namespace ng::kernel
