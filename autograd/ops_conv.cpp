// ops_conv.cpp: convolution over images [N, C, H, W] (conv2d, conv1d), with its backward ops.
//
// conv2d is computed as im2col + matrix multiply: for one image and one group, every kernel window of
// the input is unrolled into a column, so that
//   cols[(c, i, j), (oh, ow)] = x[c, oh*s_h - p_h + i*d_h, ow*s_w - p_w + j*d_w]   (0 in the padding)
//   out[co, (oh, ow)]        = sum_(c,i,j) W[co, (c, i, j)] cols[(c, i, j), (oh, ow)]
// i.e. out = W @ cols, one gemm ([C_out/groups, C/groups*kH*kW] @ [C/groups*kH*kW, H_out*W_out]).
// The backward is the same product turned around: dcols = W^T @ G, folded back onto the input by
// col2im (the sum over every window an input element took part in), and dW = G @ cols^T.
// Those two are ops of their own (conv2d_backward_input, conv2d_backward_weight) whose derivatives
// are conv2d and each other, so the backward can be differentiated again.
// For speed, the columns of several images are put side by side so that each op runs one large gemm
// per block of images and group instead of one small gemm per image (layout and shapes above im2col's
// users, under "one gemm for many images"). Threads: the gemm shares out its column panels, and the
// images of a block are unrolled (im2col) and folded back (col2im) by threads, one image each, into
// their own columns or their own image, so the result does not depend on the thread count. Pooling and
// padding are in ops_pool.cpp.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "gemm.h"
#include "graph.h"
#include "kernels.h"
#include "ops.h"

namespace ng {

using Grads = std::vector<Tensor>;
using kernel::pair_str;
using kernel::valid_outputs;

namespace {

// Every size of a convolution, checked once, shared by the forward and both backward ops.
struct ConvGeometry {
  int64_t N, C, H, W;          // input
  int64_t C_out, kH, kW;       // weight [C_out, C/groups, kH, kW]
  int64_t H_out, W_out;
  int64_t groups;
  Pair stride, padding, dilation;
  int64_t C_group() const { return C / groups; }                   // input channels per group
  int64_t C_out_group() const { return C_out / groups; }           // output channels per group
  int64_t window() const { return C_group() * kH * kW; }           // rows of cols
  int64_t L() const { return H_out * W_out; }                      // columns of cols
  Shape out_shape() const { return {N, C_out, H_out, W_out}; }
};

ConvGeometry conv_geometry(const char* op, const Shape& x, const Shape& w, Pair stride, Pair padding, Pair dilation,
                           int64_t groups) {
  const std::string args = std::string(op) + ": input " + shape_str(x) + ", weight " + shape_str(w);
  if (x.size() != 4) throw Error(args + ": expected a 4-D input [N, C, H, W]");
  if (w.size() != 4) throw Error(args + ": expected a 4-D weight [C_out, C/groups, kH, kW]");
  if (groups < 1) throw Error(args + ": groups " + std::to_string(groups) + "; expected >= 1");
  for (int a = 0; a < 2; ++a) {
    if (stride[a] < 1) throw Error(args + ": stride " + pair_str(stride) + "; expected every stride >= 1");
    if (dilation[a] < 1) throw Error(args + ": dilation " + pair_str(dilation) + "; expected every dilation >= 1");
    if (padding[a] < 0) throw Error(args + ": padding " + pair_str(padding) + "; expected every padding >= 0");
  }
  ConvGeometry g{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0, groups, stride, padding, dilation};
  if (g.C % groups != 0)
    throw Error(args + ": " + std::to_string(g.C) + " input channels are not divisible by groups " + std::to_string(groups));
  if (g.C_out % groups != 0)
    throw Error(args + ": " + std::to_string(g.C_out) + " output channels are not divisible by groups " +
                std::to_string(groups));
  if (w[1] * groups != g.C)
    throw Error(args + ", groups " + std::to_string(groups) + ": the input has " + std::to_string(g.C) +
                " channels; expected weight.size(1) * groups = " + std::to_string(w[1] * groups));
  if (g.kH < 1 || g.kW < 1) throw Error(args + ": expected a kernel of at least 1x1");
  const int64_t span_h = dilation[0] * (g.kH - 1) + 1, span_w = dilation[1] * (g.kW - 1) + 1;
  const int64_t padded_h = g.H + 2 * padding[0], padded_w = g.W + 2 * padding[1];
  if (span_h > padded_h || span_w > padded_w)
    throw Error(args + ": the (dilated) kernel " + std::to_string(span_h) + "x" + std::to_string(span_w) +
                " is larger than the padded input " + std::to_string(padded_h) + "x" + std::to_string(padded_w));
  g.H_out = (padded_h - span_h) / stride[0] + 1;
  g.W_out = (padded_w - span_w) / stride[1] + 1;
  return g;
}

// cols[(c, i, j), (oh, ow)] = x[c0 + c, oh*s_h - p_h + i*d_h, ow*s_w - p_w + j*d_w] (0 outside the image)
// for one image x: [C, H, W] and the group's channels c0 .. c0 + C/groups; cols: [window, L], its rows
// ld apart (ld = L for one image alone; ld = nb * L when nb images sit side by side, see conv2d).
// The columns that fall in the padding are found once per kernel column j, so the copy loop has no test.
template <class T> void im2col(const ConvGeometry& g, const T* x, int64_t c0, T* cols, int64_t ld) {
  for (int64_t c = 0; c < g.C_group(); ++c)
    for (int64_t i = 0; i < g.kH; ++i)
      for (int64_t j = 0; j < g.kW; ++j) {
        const T* plane = x + (c0 + c) * g.H * g.W;
        T* row = cols + ((c * g.kH + i) * g.kW + j) * ld;
        const int64_t offset = j * g.dilation[1] - g.padding[1], s = g.stride[1];
        const auto [lo, hi] = valid_outputs(offset, s, g.W, g.W_out);
        for (int64_t oh = 0; oh < g.H_out; ++oh) {
          const int64_t ih = oh * g.stride[0] - g.padding[0] + i * g.dilation[0];
          T* out = row + oh * g.W_out;
          if (ih < 0 || ih >= g.H) {
            std::fill_n(out, g.W_out, T(0));
            continue;
          }
          const T* in = plane + ih * g.W;
          std::fill_n(out, lo, T(0));
          if (s == 1)  // a plain loop: rows are short (W_out), a call to memmove per row costs more than the copy
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow + offset];
          else
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow * s + offset];
          std::fill(out + hi, out + g.W_out, T(0));
        }
      }
}

// The adjoint of im2col: every entry of cols (rows ld apart) is added back onto the input element it
// was copied from.
template <class T> void col2im_add(const ConvGeometry& g, const T* cols, int64_t ld, int64_t c0, T* x) {
  for (int64_t c = 0; c < g.C_group(); ++c)
    for (int64_t i = 0; i < g.kH; ++i)
      for (int64_t j = 0; j < g.kW; ++j) {
        T* plane = x + (c0 + c) * g.H * g.W;
        const T* row = cols + ((c * g.kH + i) * g.kW + j) * ld;
        const int64_t offset = j * g.dilation[1] - g.padding[1], s = g.stride[1];
        const auto [lo, hi] = valid_outputs(offset, s, g.W, g.W_out);
        for (int64_t oh = 0; oh < g.H_out; ++oh) {
          const int64_t ih = oh * g.stride[0] - g.padding[0] + i * g.dilation[0];
          if (ih < 0 || ih >= g.H) continue;
          T* out = plane + ih * g.W;
          const T* in = row + oh * g.W_out;
          if (s == 1)  // unit stride on its own, so that the compiler vectorizes it
            for (int64_t ow = lo; ow < hi; ++ow) out[ow + offset] += in[ow];
          else
            for (int64_t ow = lo; ow < hi; ++ow) out[ow * s + offset] += in[ow];
        }
      }
}

// ---- one gemm for many images ---------------------------------------------------------------------
// A small image's gemms are small (14x14 images, 16 channels, 32 filters 3x3: [32, 144] @ [144, 196]),
// and each pays for its own ragged edges. So nb images are put side by side, and each op runs ONE gemm
// per block of images and group
// (K = C/groups * kH * kW, L = H_out * W_out, M = C_out/groups, images n0 .. n0 + nb):
//   cols [K, nb*L]   cols[k, n*L + l] = im2col(x[n0 + n])[k, l]
//   mat  [M, nb*L]   mat[co, n*L + l] = t[n0 + n, grp*M + co, l]   (t: out or G, both [N, C_out, L])
//   forward          mat [M, nb*L]    = W_grp [M, K] @ cols [K, nb*L]          then copied into out (+ bias)
//   backward input   cols [K, nb*L]   = W_grp^T [K, M] @ G mat [M, nb*L]       then col2im onto dx
//   backward weight  dW_grp [M, K]   += G mat [M, nb*L] @ cols^T [nb*L, K]     (summed over the blocks)
//               or   dW_grp^T [K, M] += cols [K, nb*L] @ G mat^T [nb*L, M]     (when K > M, see there)
// A block of one image uses x, out and G in place (no mat copy). nb: enough images for kMinColumns
// columns (larger images run one at a time: the copies into and out of mat would cost more than a
// larger gemm saves), but no more than keep cols within kColsBytes, so that it stays in the L2 cache
// between im2col and the gemm (measured on the benchmark case: 0.5 to 1 MB run alike, 2 MB and more
// 10-30% slower), and at least one.
constexpr int64_t kMinColumns = 1024;
constexpr int64_t kColsBytes = int64_t{1} << 19;

template <class T> int64_t images_per_block(const ConvGeometry& g) {
  const int64_t per_image = std::max<int64_t>(1, g.window() * g.L() * static_cast<int64_t>(sizeof(T)));
  return std::max<int64_t>(1, std::min({g.N, kMinColumns / g.L(), kColsBytes / per_image}));
}

// mat [M, nb*L] <- t[n0 .. n0+nb, grp*M .. (grp+1)*M, :] for t: [N, C_out, L].
template <class T> void to_block(const ConvGeometry& g, const T* t, int64_t n0, int64_t nb, int64_t grp, T* mat) {
  const int64_t L = g.L(), M = g.C_out_group();
  for (int64_t co = 0; co < M; ++co)
    for (int64_t n = 0; n < nb; ++n)
      std::copy_n(t + ((n0 + n) * g.C_out + grp * M + co) * L, L, mat + (co * nb + n) * L);
}

// t[n0 .. n0+nb, grp*M .. (grp+1)*M, :] = mat [M, nb*L] (+ bias[grp*M + co] when bias is given).
template <class T>
void from_block(const ConvGeometry& g, const T* mat, const T* bias, int64_t n0, int64_t nb, int64_t grp, T* t) {
  const int64_t L = g.L(), M = g.C_out_group();
  for (int64_t co = 0; co < M; ++co)
    for (int64_t n = 0; n < nb; ++n) {
      const T* src = mat + (co * nb + n) * L;
      T* dst = t + ((n0 + n) * g.C_out + grp * M + co) * L;
      if (bias) {
        const T b = bias[grp * M + co];
        for (int64_t l = 0; l < L; ++l) dst[l] = src[l] + b;
      } else {
        std::copy_n(src, L, dst);
      }
    }
}

void check_floats(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> tensors) {
  const Tensor* first = tensors.begin()->second;
  for (const auto& [name, t] : tensors)
    if (t->defined() && t->dtype() != first->dtype())
      throw Error(std::string(op) + ": " + name + " is " + dtype_name(t->dtype()) + " but " +
                  tensors.begin()->first + " is " + dtype_name(first->dtype()) + "; convert with .to()");
}

void check_grad_shape(const char* op, const Tensor& g, const ConvGeometry& geo) {
  if (g.shape() != geo.out_shape())
    throw Error(std::string(op) + ": gradient " + shape_str(g.shape()) + "; expected the convolution's output shape " +
                shape_str(geo.out_shape()));
}

}  // namespace

// out[n, co, oh, ow] = b[co] + sum_(c,i,j) W[co, c, i, j] x[n, g*C/groups + c, oh*s - p + i*d, ow*s - p + j*d]
//   (g = co's group).  d out/dx: conv2d_backward_input (col2im of W^T G);  d out/dW: conv2d_backward_weight
//   (G @ cols^T);  d out/db[co] = 1, so db = sum of G over n, oh, ow.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding, Pair dilation,
              int64_t groups) {
  const ConvGeometry geo = conv_geometry("conv2d", x.shape(), weight.shape(), stride, padding, dilation, groups);
  if (bias.defined() && (bias.dim() != 1 || bias.shape()[0] != geo.C_out))
    throw Error("conv2d: bias " + shape_str(bias.shape()) + " for weight " + shape_str(weight.shape()) + "; expected [" +
                std::to_string(geo.C_out) + "] (one per output channel) or no bias");
  check_floats("conv2d", {{"input", &x}, {"weight", &weight}, {"bias", &bias}});
  Tensor out = empty(geo.out_shape(), x.dtype());
  dispatch_float("conv2d", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    const T* pb = bias.defined() ? bias.data<T>() : nullptr;
    T* po = out.mutable_data<T>();
    // One gemm per block of nb images and group (layout above): mat [M, nb*L] = W_grp [M, K] @ cols [K, nb*L].
    const int64_t L = geo.L(), K = geo.window(), M = geo.C_out_group(), nb = images_per_block<T>(geo);
    std::vector<T> cols(static_cast<std::size_t>(K * nb * L)), mat(static_cast<std::size_t>(nb > 1 ? M * nb * L : 0));
    for (int64_t n0 = 0; n0 < geo.N; n0 += nb) {
      const int64_t count = std::min(nb, geo.N - n0), width = count * L;  // this block's images; columns of cols
      for (int64_t grp = 0; grp < groups; ++grp) {
        kernel::parallel_for(count, K * width >= kernel::kParallelElements, [&](int64_t n) {
          im2col(geo, px + (n0 + n) * geo.C * geo.H * geo.W, grp * geo.C_group(), cols.data() + n * L, width);
        });
        // C: the image's own out[n0, grp*M : (grp+1)*M] as [M, L] when it is alone, else mat
        T* c = count == 1 ? po + (n0 * geo.C_out + grp * M) * L : mat.data();
        for (int64_t co = 0; co < M; ++co) std::fill_n(c + co * width, width, pb ? pb[grp * M + co] : T(0));
        kernel::gemm(M, width, K, pw + grp * M * K, K, int64_t{1}, cols.data(), width, int64_t{1}, c);
        if (count > 1) from_block(geo, mat.data(), static_cast<const T*>(nullptr), n0, count, grp, po);
      }
    }
  });
  if (any_requires_grad({&x, &weight, &bias}))
    record(out, "conv2d", {&x, &weight, &bias},
           [x = weight.requires_grad() ? SavedTensor(x) : SavedTensor(),
            weight = x.requires_grad() ? SavedTensor(weight) : SavedTensor(), x_shape = x.shape(),
            w_shape = weight.shape(), stride, padding, dilation, groups](const Tensor& g, const Node& n) {
             return Grads{
                 n.needs_grad(0) ? conv2d_backward_input(g, weight.unpack(n), x_shape, stride, padding, dilation, groups)
                                 : Tensor(),
                 n.needs_grad(1) ? conv2d_backward_weight(x.unpack(n), g, w_shape, stride, padding, dilation, groups)
                                 : Tensor(),
                 n.needs_grad(2) ? sum(g, {0, 2, 3}) : Tensor()};
           });
  return out;
}

// dx = col2im(W^T @ G), per image and group. It is linear in G and in W:
//   <gg, dx(G, W)> = <conv2d(gg, W), G>, so  d/dG = conv2d(gg, W)  and  d/dW = conv2d_backward_weight(gg, G).
Tensor conv2d_backward_input(const Tensor& g, const Tensor& weight, const Shape& x_shape, Pair stride, Pair padding,
                             Pair dilation, int64_t groups) {
  const ConvGeometry geo =
      conv_geometry("conv2d_backward_input", x_shape, weight.shape(), stride, padding, dilation, groups);
  check_grad_shape("conv2d_backward_input", g, geo);
  check_floats("conv2d_backward_input", {{"gradient", &g}, {"weight", &weight}});
  Tensor dx = zeros(x_shape, g.dtype());
  dispatch_float("conv2d_backward_input", g.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* pg = g.data<T>();
    const T* pw = weight.data<T>();
    T* pdx = dx.mutable_data<T>();
    // One gemm per block of nb images and group (layout above): cols [K, nb*L] = W_grp^T [K, M] @ G mat [M, nb*L],
    // W_grp [M, K] row-major read transposed through strides; then every image's columns are folded onto dx.
    const int64_t L = geo.L(), K = geo.window(), M = geo.C_out_group(), nb = images_per_block<T>(geo);
    std::vector<T> cols(static_cast<std::size_t>(K * nb * L)), mat(static_cast<std::size_t>(nb > 1 ? M * nb * L : 0));
    for (int64_t n0 = 0; n0 < geo.N; n0 += nb) {
      const int64_t count = std::min(nb, geo.N - n0), width = count * L;
      for (int64_t grp = 0; grp < groups; ++grp) {
        const T* b = pg + (n0 * geo.C_out + grp * M) * L;  // G of an image alone: [M, L] in place
        if (count > 1) {
          to_block(geo, pg, n0, count, grp, mat.data());
          b = mat.data();
        }
        std::fill_n(cols.data(), K * width, T(0));  // gemm adds to C
        kernel::gemm(K, width, M, pw + grp * M * K, int64_t{1}, K, b, width, int64_t{1}, cols.data());
        kernel::parallel_for(count, K * width >= kernel::kParallelElements, [&](int64_t n) {
          col2im_add(geo, cols.data() + n * L, width, grp * geo.C_group(), pdx + (n0 + n) * geo.C * geo.H * geo.W);
        });
      }
    }
  });
  if (any_requires_grad({&g, &weight}))
    record(dx, "conv2d_backward_input", {&g, &weight},
           [g = weight.requires_grad() ? SavedTensor(g) : SavedTensor(),
            weight = g.requires_grad() ? SavedTensor(weight) : SavedTensor(), w_shape = weight.shape(), stride, padding,
            dilation, groups](const Tensor& gg, const Node& n) {
             return Grads{
                 n.needs_grad(0) ? conv2d(gg, weight.unpack(n), Tensor(), stride, padding, dilation, groups) : Tensor(),
                 n.needs_grad(1) ? conv2d_backward_weight(gg, g.unpack(n), w_shape, stride, padding, dilation, groups)
                                 : Tensor()};
           });
  return dx;
}

// dW = sum over images of G @ im2col(x)^T, per group. It is linear in x and in G:
//   <gg, dW(x, G)> = <conv2d(x, gg), G>, so  d/dx = conv2d_backward_input(G, gg)  and  d/dG = conv2d(x, gg).
Tensor conv2d_backward_weight(const Tensor& x, const Tensor& g, const Shape& weight_shape, Pair stride, Pair padding,
                              Pair dilation, int64_t groups) {
  const ConvGeometry geo =
      conv_geometry("conv2d_backward_weight", x.shape(), weight_shape, stride, padding, dilation, groups);
  check_grad_shape("conv2d_backward_weight", g, geo);
  check_floats("conv2d_backward_weight", {{"input", &x}, {"gradient", &g}});
  Tensor dw = empty(weight_shape, x.dtype());  // every group's block is written once, at the end
  dispatch_float("conv2d_backward_weight", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* pg = g.data<T>();
    T* pdw = dw.mutable_data<T>();
    // One gemm per block of nb images and group (layout above), the sum over the block's images being the
    // gemm's inner dimension. Two ways round, the same sum:
    //   dW_grp [M, K]   += G mat [M, nb*L] @ cols^T [nb*L, K]   (the gemm copies cols^T panel by panel: K*nb*L)
    //   dW_grp^T [K, M] += cols [K, nb*L] @ G mat^T [nb*L, M]   (G copied transposed, into mat: M*nb*L)
    // The second when K > M: it copies less and reads cols along its rows (measured ~25% faster on the
    // benchmark case, K = 144, M = 32; the first is faster for a first layer, K = 9, M = 16).
    const int64_t L = geo.L(), K = geo.window(), M = geo.C_out_group(), nb = images_per_block<T>(geo);
    const bool transposed = K > M;
    std::vector<T> cols(static_cast<std::size_t>(K * nb * L));
    std::vector<T> mat(static_cast<std::size_t>(transposed || nb > 1 ? M * nb * L : 0));
    std::vector<T> dw_t(static_cast<std::size_t>(transposed ? K * M : 0));  // dW_grp^T [K, M]
    for (int64_t grp = 0; grp < groups; ++grp) {
      T* dw_grp = pdw + grp * M * K;  // [M, K]
      if (transposed)
        std::fill(dw_t.begin(), dw_t.end(), T(0));
      else
        std::fill_n(dw_grp, M * K, T(0));
      for (int64_t n0 = 0; n0 < geo.N; n0 += nb) {
        const int64_t count = std::min(nb, geo.N - n0), width = count * L;
        kernel::parallel_for(count, K * width >= kernel::kParallelElements, [&](int64_t n) {
          im2col(geo, px + (n0 + n) * geo.C * geo.H * geo.W, grp * geo.C_group(), cols.data() + n * L, width);
        });
        if (transposed) {
          // mat as G mat^T [nb*L, M]: mat[n*L + l, co] = g[n0 + n, grp*M + co, l], written row by row
          kernel::parallel_for(count, M * width >= kernel::kParallelElements, [&](int64_t n) {
            const T* src = pg + ((n0 + n) * geo.C_out + grp * M) * L;  // G_n of the group, [M, L]
            T* dst = mat.data() + n * L * M;                            // [L, M]
            for (int64_t l = 0; l < L; ++l)
              for (int64_t co = 0; co < M; ++co) dst[l * M + co] = src[co * L + l];
          });
          kernel::gemm(K, M, width, cols.data(), width, int64_t{1}, mat.data(), M, int64_t{1}, dw_t.data());
        } else {
          const T* a = pg + (n0 * geo.C_out + grp * M) * L;  // G of an image alone: [M, L] in place
          if (count > 1) {
            to_block(geo, pg, n0, count, grp, mat.data());
            a = mat.data();
          }
          kernel::gemm(M, K, width, a, width, int64_t{1}, cols.data(), int64_t{1}, width, dw_grp);
        }
      }
      if (transposed)
        for (int64_t co = 0; co < M; ++co)
          for (int64_t k = 0; k < K; ++k) dw_grp[co * K + k] = dw_t[k * M + co];
    }
  });
  if (any_requires_grad({&x, &g}))
    record(dw, "conv2d_backward_weight", {&x, &g},
           [x = g.requires_grad() ? SavedTensor(x) : SavedTensor(), g = x.requires_grad() ? SavedTensor(g) : SavedTensor(),
            x_shape = x.shape(), stride, padding, dilation, groups](const Tensor& gg, const Node& n) {
             return Grads{
                 n.needs_grad(0) ? conv2d_backward_input(g.unpack(n), gg, x_shape, stride, padding, dilation, groups)
                                 : Tensor(),
                 n.needs_grad(1) ? conv2d(x.unpack(n), gg, Tensor(), stride, padding, dilation, groups) : Tensor()};
           });
  return dw;
}

// conv1d as conv2d on images of height 1: [N, C, L] -> [N, C, 1, L]; the graph carries the gradients.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  if (x.dim() != 3 || weight.dim() != 3)
    throw Error("conv1d: input " + shape_str(x.shape()) + ", weight " + shape_str(weight.shape()) +
                "; expected a 3-D input [N, C, L] and a 3-D weight [C_out, C/groups, k]");
  return squeeze(conv2d(unsqueeze(x, 2), unsqueeze(weight, 2), bias, {1, stride}, {0, padding}, {1, dilation}, groups),
                 2);
}

}  // namespace ng
