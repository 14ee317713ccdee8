// conv_reference.cpp: conv2d straight from its definition (see conv_reference.h).
//
//   out[n, co, oh, ow] = b[co] + sum_{c, i, j} W[co, c, i, j] x[n, g C/groups + c, oh s_h - p_h + i d_h, ow s_w - p_w +
//   j d_w]
//
// where g = co / (C_out/groups) is co's group and x is 0 outside the image.
#include "conv_reference.h"

#include "graph.h"

namespace ng::detail {

Tensor conv2d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding,
                        Pair dilation, int64_t groups) {
  Tensor out;
  {
    NoGradGuard no_grad;  // only for the checks and the output shape
    out = conv2d(x, weight, bias, stride, padding, dilation, groups).detach();
  }
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t C_out = weight.size(0), C_group = weight.size(1), kH = weight.size(2), kW = weight.size(3);
  const int64_t H_out = out.size(2), W_out = out.size(3), C_out_group = C_out / groups;
  dispatch_float("conv2d_reference", x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    T* po = out.mutable_data<T>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t co = 0; co < C_out; ++co)
        for (int64_t oh = 0; oh < H_out; ++oh)
          for (int64_t ow = 0; ow < W_out; ++ow) {
            T total = bias.defined() ? bias.data<T>()[co] : T(0);
            const int64_t c0 = co / C_out_group * C_group;
            for (int64_t c = 0; c < C_group; ++c)
              for (int64_t i = 0; i < kH; ++i)
                for (int64_t j = 0; j < kW; ++j) {
                  const int64_t h = oh * stride[0] - padding[0] + i * dilation[0];
                  const int64_t w = ow * stride[1] - padding[1] + j * dilation[1];
                  if (h < 0 || h >= H || w < 0 || w >= W) continue;
                  total += pw[((co * C_group + c) * kH + i) * kW + j] * px[((n * C + c0 + c) * H + h) * W + w];
                }
            po[((n * C_out + co) * H_out + oh) * W_out + ow] = total;
          }
  });
  return out;
}

}  // namespace ng::detail
