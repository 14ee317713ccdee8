// conv_reference.h: conv2d as the plain definition, seven nested loops (internal to autograd/,
// declared here so that tests can compare the im2col + gemm conv2d of ops_conv.cpp with it).
#pragma once

#include "ops.h"

namespace ng::detail {

// The same arguments and result as ng::conv2d (checked the same way), no graph recorded.
Tensor conv2d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Pair stride = {1, 1},
                        Pair padding = {0, 0}, Pair dilation = {1, 1}, int64_t groups = 1);

}  // namespace ng::detail
