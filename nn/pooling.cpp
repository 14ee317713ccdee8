// pooling.cpp: the pooling layers, thin wrappers around max_pool2d, avg_pool2d and adaptive_avg_pool2d.
#include "pooling.h"

namespace ng::nn {

MaxPool2d::MaxPool2d(Pair kernel) : MaxPool2d(kernel, kernel) {}
MaxPool2d::MaxPool2d(Pair kernel, Pair stride_, Pair padding_)
    : kernel_size(kernel), stride(stride_), padding(padding_) {}
Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, kernel_size, stride, padding); }

AvgPool2d::AvgPool2d(Pair kernel) : AvgPool2d(kernel, kernel) {}
AvgPool2d::AvgPool2d(Pair kernel, Pair stride_, Pair padding_)
    : kernel_size(kernel), stride(stride_), padding(padding_) {}
Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, kernel_size, stride, padding); }

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Pair size) : output_size(size) {}
Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, output_size); }

}  // namespace ng::nn
