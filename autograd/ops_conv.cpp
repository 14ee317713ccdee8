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
// users, under "one gemm for many images"). Threads: each op is one parallel region, in which the blocks
// of images are shared out and every thread runs whole blocks (unroll, gemm, fold back) with buffers of
// its own (see "threads" below); the result does not depend on the thread count. Pooling and padding are
// in ops_pool.cpp.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "checked_size.h"
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
  int64_t N, C, H, W;     // input
  int64_t C_out, kH, kW;  // weight [C_out, C/groups, kH, kW]
  int64_t H_out, W_out;
  int64_t groups;
  Pair stride, padding, dilation;
  int64_t C_group() const { return C / groups; }          // input channels per group
  int64_t C_out_group() const { return C_out / groups; }  // output channels per group
  int64_t window() const { return C_group() * kH * kW; }  // rows of cols
  int64_t L() const { return H_out * W_out; }             // columns of cols
  Shape out_shape() const { return {N, C_out, H_out, W_out}; }
};

// Every size below goes through checked_size.h: the arguments are the user's, and any of them may be
// near 2^63 (a wrapped output size has meant a division by zero and copies outside the buffer).
ConvGeometry conv_geometry(const char* op, const Shape& x, const Shape& w, Pair stride, Pair padding, Pair dilation,
                           int64_t groups, Dtype dtype) {
  const std::string args = std::string(op) + ": input " + shape_str(x) + ", weight " + shape_str(w);
  if (x.size() != 4) throw Error(args + ": expected a 4-D input [N, C, H, W]");
  if (w.size() != 4) throw Error(args + ": expected a 4-D weight [C_out, C/groups, kH, kW]");
  checked_size::check_fits(x, dtype, args + ": input");
  checked_size::check_fits(w, dtype, args + ": weight");
  if (groups < 1) throw Error(args + ": groups " + std::to_string(groups) + "; expected >= 1");
  for (int a = 0; a < 2; ++a) {
    if (stride[a] < 1) throw Error(args + ": stride " + pair_str(stride) + "; expected every stride >= 1");
    if (dilation[a] < 1) throw Error(args + ": dilation " + pair_str(dilation) + "; expected every dilation >= 1");
    if (padding[a] < 0) throw Error(args + ": padding " + pair_str(padding) + "; expected every padding >= 0");
  }
  ConvGeometry g{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0, groups, stride, padding, dilation};
  // As PyTorch: at least one output channel per group (else groups could be 2^40 with no channel at all,
  // and the loop over the groups would never end).
  if (g.C_out < groups)
    throw Error(args + ", groups " + std::to_string(groups) + ": expected at least groups output channels, got " +
                std::to_string(g.C_out));
  if (g.C % groups != 0)
    throw Error(args + ": " + std::to_string(g.C) + " input channels are not divisible by groups " +
                std::to_string(groups));
  if (g.C_out % groups != 0)
    throw Error(args + ": " + std::to_string(g.C_out) + " output channels are not divisible by groups " +
                std::to_string(groups));
  const int64_t group_channels = checked_size::mul(w[1], groups, args, "weight.size(1) * groups");
  if (group_channels != g.C)
    throw Error(args + ", groups " + std::to_string(groups) + ": the input has " + std::to_string(g.C) +
                " channels; expected weight.size(1) * groups = " + std::to_string(group_channels));
  if (g.kH < 1 || g.kW < 1) throw Error(args + ": expected a kernel of at least 1x1");
  // Along each axis: span = dilation*(k-1) + 1 (the dilated kernel), padded = in + 2*pad, and
  //   out = (padded - span)/stride + 1 = (in + 2*pad - dilation*(k-1) - 1)/stride + 1   (PyTorch's formula).
  const std::string all_args =
      args + ", stride " + pair_str(stride) + ", padding " + pair_str(padding) + ", dilation " + pair_str(dilation);
  const int64_t in[2] = {g.H, g.W}, k[2] = {g.kH, g.kW};
  int64_t span[2], padded[2];
  for (int a = 0; a < 2; ++a) {
    const int64_t reach = checked_size::mul(dilation[a], k[a] - 1, all_args, "dilation * (k - 1)");
    span[a] = checked_size::add(reach, 1, all_args, "dilated kernel size dilation * (k - 1) + 1");
    const int64_t both_sides = checked_size::mul(2, padding[a], all_args, "2 * padding");
    padded[a] = checked_size::add(in[a], both_sides, all_args, "padded size in + 2 * padding");
    // The loops find the first window inside the image as ceil(pad / stride), i.e. (pad + stride - 1) / stride
    // (valid_outputs, kernels.h): that sum must fit too.
    checked_size::add(padded[a], stride[a], all_args, "padded size + stride");
  }
  if (span[0] > padded[0] || span[1] > padded[1])
    throw Error(args + ": the (dilated) kernel " + std::to_string(span[0]) + "x" + std::to_string(span[1]) +
                " is larger than the padded input " + std::to_string(padded[0]) + "x" + std::to_string(padded[1]));
  g.H_out = (padded[0] - span[0]) / stride[0] + 1;
  g.W_out = (padded[1] - span[1]) / stride[1] + 1;
  // The output must fit as a tensor even when N = 0 makes it empty: then H_out * W_out (L) and the
  // window's C/groups * kH * kW (K, bounded by the weight's extent) are both below 2^46.
  checked_size::check_fits(g.out_shape(), dtype, all_args + ": output");
  return g;
}

// ---- the fast case: stride 1, dilation 1 ---------------------------------------------------------------
// Then the row (c, i, j) of cols is the plane x[c0 + c] shifted by (i - p_h, j - p_w):
//   cols[(c, i, j), (oh, ow)] = x[c0 + c, oh + i - p_h, ow + j - p_w]
// so the output rows inside the image (valid_outputs along H) and columns (along W) are found once, and
// what is left are plain copies. When moreover W_out = W (a "same" padding, as the 3x3 padding 1
// convolution of the benchmark and the CNN), the rows are contiguous on both sides: the whole window of
// rows is ONE shifted copy, after which the few entries that fell in the left/right padding are cleared.
// Built with -Dreference_kernels=true, every convolution takes the general loops below.
bool unit_steps(const ConvGeometry& g) {
  return !kernel::kReferenceKernels && g.stride == Pair{1, 1} && g.dilation == Pair{1, 1};
}

// Where one shifted row of cols (c, i, j) meets the image (stride and dilation 1): output rows
// [h_lo, h_hi) and columns [lo, hi) read x[oh + dh, ow + dw]. Empty when either range is.
struct ShiftedWindow {
  int64_t dh, dw, h_lo, h_hi, lo, hi;
  bool empty() const { return h_lo == h_hi || lo == hi; }
};
ShiftedWindow shifted_window(const ConvGeometry& g, int64_t i, int64_t j) {
  const int64_t dh = i - g.padding[0], dw = j - g.padding[1];
  const auto [h_lo, h_hi] = valid_outputs(dh, 1, g.H, g.H_out);
  const auto [lo, hi] = valid_outputs(dw, 1, g.W, g.W_out);
  return {dh, dw, h_lo, h_hi, lo, hi};
}

// In a row of cols with W_out = W, the entries of the output rows h_lo .. h_hi - 1 that fall in the left
// padding (columns 0 .. lo - 1) or the right padding (hi .. W - 1) are set to 0. Column by column, a loop
// down the rows W apart: one padding column for a 3x3 kernel, where a loop along each row would be a call
// to memset for a single value.
template <class T> void clear_padding_columns(T* row, int64_t W, const ShiftedWindow& s) {
  for (int64_t ow = 0; ow < s.lo; ++ow)
    for (int64_t oh = s.h_lo; oh < s.h_hi; ++oh) row[oh * W + ow] = T(0);
  for (int64_t ow = s.hi; ow < W; ++ow)
    for (int64_t oh = s.h_lo; oh < s.h_hi; ++oh) row[oh * W + ow] = T(0);
}

// One row of cols [H_out * W_out] from one plane [H, W] (stride 1, dilation 1).
template <class T> void im2col_row_unit(const ConvGeometry& g, const T* plane, int64_t i, int64_t j, T* row) {
  const int64_t W = g.W, W_out = g.W_out, size = g.H_out * W_out;
  const ShiftedWindow s = shifted_window(g, i, j);
  if (s.empty()) {
    std::fill_n(row, size, T(0));
    return;
  }
  std::fill_n(row, s.h_lo * W_out, T(0));  // rows above the image
  if (W_out == W) {
    // row[oh*W + ow] = plane[(oh + dh)*W + ow + dw]: one copy from the first valid entry to the last, then
    // the entries in the left/right padding (which the copy filled from the neighbouring rows) are cleared
    const int64_t first = s.h_lo * W + s.lo, last = (s.h_hi - 1) * W + s.hi, shift = s.dh * W + s.dw;
    std::copy(plane + first + shift, plane + last + shift, row + first);
    clear_padding_columns(row, W, s);
  } else {
    for (int64_t oh = s.h_lo; oh < s.h_hi; ++oh) {
      T* out = row + oh * W_out;
      const T* in = plane + (oh + s.dh) * W;
      std::fill_n(out, s.lo, T(0));
      for (int64_t ow = s.lo; ow < s.hi; ++ow) out[ow] = in[ow + s.dw];
      std::fill(out + s.hi, out + W_out, T(0));
    }
  }
  std::fill(row + s.h_hi * W_out, row + size, T(0));  // rows below the image
}

// Its adjoint: plane[oh + dh, ow + dw] += row[oh*W_out + ow] over the window inside the image.
// When W_out = W the rows are contiguous on both sides, as in im2col: the entries of row that fall in the
// left/right padding are set to 0 first (clear_padding_columns; row is the caller's scratch), and then the
// whole window is ONE run of additions, whose padding entries add 0 to a pixel at the edge of the
// neighbouring row. One loop of ~H*W elements instead of H loops of W - 1 (3x3 kernels on 14x14 images: 13
// elements per loop).
template <class T> void col2im_row_unit_add(const ConvGeometry& g, T* row, int64_t i, int64_t j, T* plane) {
  const int64_t W = g.W, W_out = g.W_out;
  const ShiftedWindow s = shifted_window(g, i, j);
  if (s.empty()) return;
  if (W_out == W) {
    clear_padding_columns(row, W, s);
    const int64_t first = s.h_lo * W + s.lo, last = (s.h_hi - 1) * W + s.hi, shift = s.dh * W + s.dw;
    for (int64_t e = first; e < last; ++e) plane[e + shift] += row[e];
    return;
  }
  for (int64_t oh = s.h_lo; oh < s.h_hi; ++oh) {
    T* out = plane + (oh + s.dh) * W;
    const T* in = row + oh * W_out;
    for (int64_t ow = s.lo; ow < s.hi; ++ow) out[ow + s.dw] += in[ow];
  }
}

// ---- the general case ---------------------------------------------------------------------------------
// cols[(c, i, j), (oh, ow)] = x[c0 + c, oh*s_h - p_h + i*d_h, ow*s_w - p_w + j*d_w] (0 outside the image)
// for one image x: [C, H, W] and the group's channels c0 .. c0 + C/groups; cols: [window, L], its rows
// ld apart (ld = L for one image alone; ld = nb * L when nb images sit side by side, see conv2d).
// The columns that fall in the padding are found once per kernel column j, so the copy loop has no test.
template <class T> void im2col(const ConvGeometry& g, const T* x, int64_t c0, T* cols, int64_t ld) {
  if (unit_steps(g)) {
    for (int64_t c = 0; c < g.C_group(); ++c)
      for (int64_t i = 0; i < g.kH; ++i)
        for (int64_t j = 0; j < g.kW; ++j)
          im2col_row_unit(g, x + (c0 + c) * g.H * g.W, i, j, cols + ((c * g.kH + i) * g.kW + j) * ld);
    return;
  }
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
// was copied from. cols is scratch: the fast case clears its padding entries (col2im_row_unit_add).
template <class T> void col2im_add(const ConvGeometry& g, T* cols, int64_t ld, int64_t c0, T* x) {
  if (unit_steps(g)) {
    for (int64_t c = 0; c < g.C_group(); ++c)
      for (int64_t i = 0; i < g.kH; ++i)
        for (int64_t j = 0; j < g.kW; ++j)
          col2im_row_unit_add(g, cols + ((c * g.kH + i) * g.kW + j) * ld, i, j, x + (c0 + c) * g.H * g.W);
    return;
  }
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

// One image's columns, K * L elements, are checked against the per-tensor limit: the cols buffer of a
// block holds either one image or at most kColsBytes.
template <class T> int64_t images_per_block(const char* op, const ConvGeometry& g) {
  const int64_t per_image_elements =
      checked_size::mul(g.window(), g.L(), op, "im2col buffer (C/groups*kH*kW) * (H_out*W_out)");
  checked_size::buffer(per_image_elements, sizeof(T), op, "im2col buffer");
  const int64_t per_image = std::max<int64_t>(1, per_image_elements * static_cast<int64_t>(sizeof(T)));
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

// ---- threads: whole blocks of images --------------------------------------------------------------
// A convolution wakes the threads once: the blocks of images are shared out among them, and each thread
// runs a block from start to end (im2col, its gemm on its own thread, the copy out or the fold back).
// Many small parallel regions (one per im2col, per gemm, per fold, per block: 112 in the benchmark's
// forward and backward) cost more than they save on two cores, since every region wakes and waits for the
// other thread, and the more so when another program keeps a core busy. The blocks' boundaries depend
// on the shapes only, so every element is computed by the same additions in the same order whatever the
// thread count. With one block (a batch of one large image) the gemm shares out its panels instead.
// Below kParallelFlops multiply-adds in all (N * L * K * C_out) one thread is as fast.
constexpr int64_t kParallelFlops = int64_t{1} << 18;

// The weight gradient sums over every image: each block's sum goes into the partial sum of its chunk (at
// most kWeightChunks chunks of consecutive blocks, a number that depends on the shapes only), and the
// chunks' sums are added in chunk order at the end, so the sum is the same for any thread count.
constexpr int64_t kWeightChunks = 8;

int64_t block_count(const ConvGeometry& g, int64_t nb) { return (g.N + nb - 1) / nb; }
bool use_threads(const ConvGeometry& g, int64_t blocks) {  // (in double: the product may pass 2^63)
  return blocks > 1 && double(g.N) * double(g.L()) * double(g.window()) * double(g.C_out) >= double(kParallelFlops);
}

// Each thread's column buffer cols [K, nb*L] and block copy mat [M, nb*L], kept between calls so that a
// block does not allocate and clear half a megabyte; buffers larger than kKeptBytes (a single image
// larger than a block) are made for the call and freed after it.
template <class T> struct BlockBuffers { std::vector<T> cols, mat; };
constexpr int64_t kKeptBytes = int64_t{1} << 21;
template <class T> void with_block_buffers(int64_t cols_size, int64_t mat_size, auto&& body) {
  if ((cols_size + mat_size) * static_cast<int64_t>(sizeof(T)) > kKeptBytes) {
    BlockBuffers<T> own{std::vector<T>(static_cast<std::size_t>(cols_size)),
                        std::vector<T>(static_cast<std::size_t>(mat_size))};
    body(own);
    return;
  }
  thread_local BlockBuffers<T> kept;
  if (kept.cols.size() < static_cast<std::size_t>(cols_size)) kept.cols.resize(static_cast<std::size_t>(cols_size));
  if (kept.mat.size() < static_cast<std::size_t>(mat_size)) kept.mat.resize(static_cast<std::size_t>(mat_size));
  body(kept);
}

void check_floats(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> tensors) {
  const Tensor* first = tensors.begin()->second;
  for (const auto& [name, t] : tensors)
    if (t->defined() && t->dtype() != first->dtype())
      throw Error(std::string(op) + ": " + name + " is " + dtype_name(t->dtype()) + " but " + tensors.begin()->first +
                  " is " + dtype_name(first->dtype()) + "; convert with .to()");
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
  const ConvGeometry geo =
      conv_geometry("conv2d", x.shape(), weight.shape(), stride, padding, dilation, groups, x.dtype());
  if (bias.defined() && (bias.dim() != 1 || bias.shape()[0] != geo.C_out))
    throw Error("conv2d: bias " + shape_str(bias.shape()) + " for weight " + shape_str(weight.shape()) +
                "; expected [" + std::to_string(geo.C_out) + "] (one per output channel) or no bias");
  check_floats("conv2d", {{"input", &x}, {"weight", &weight}, {"bias", &bias}});
  Tensor out = empty(geo.out_shape(), x.dtype());
  dispatch_float("conv2d", x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    const T* pb = bias.defined() ? bias.data<T>() : nullptr;
    T* po = out.mutable_data<T>();
    // An empty output (N = 0, or no output channel) needs no column buffer, however large one image's
    // would be.
    if (out.numel() == 0) return;
    // One gemm per block of nb images and group (layout above): mat [M, nb*L] = W_grp [M, K] @ cols [K, nb*L].
    const int64_t L = geo.L(), K = geo.window(), M = geo.C_out_group(), nb = images_per_block<T>("conv2d", geo);
    const int64_t blocks = block_count(geo, nb);
    kernel::parallel_for(blocks, use_threads(geo, blocks), [&](int64_t block) {
      const int64_t n0 = block * nb, count = std::min(nb, geo.N - n0), width = count * L;  // its images; columns
      with_block_buffers<T>(K * nb * L, nb > 1 ? M * nb * L : 0, [&](BlockBuffers<T>& buffers) {
        for (int64_t grp = 0; grp < groups; ++grp) {
          for (int64_t n = 0; n < count; ++n)
            im2col(geo, px + (n0 + n) * geo.C * geo.H * geo.W, grp * geo.C_group(), buffers.cols.data() + n * L, width);
          // C: the image's own out[n0, grp*M : (grp+1)*M] as [M, L] when it is alone, else mat. The gemm
          // overwrites it (no clearing pass); the bias is added after, on the way out of mat.
          T* c = count == 1 ? po + (n0 * geo.C_out + grp * M) * L : buffers.mat.data();
          kernel::gemm_overwrite(M, width, K, pw + grp * M * K, K, int64_t{1}, buffers.cols.data(), width, int64_t{1},
                                 c);
          if (count > 1)
            from_block(geo, buffers.mat.data(), pb, n0, count, grp, po);
          else if (pb)
            for (int64_t co = 0; co < M; ++co)
              for (int64_t l = 0; l < L; ++l) c[co * L + l] += pb[grp * M + co];
        }
      });
    });
  });
  if (any_requires_grad({&x, &weight, &bias}))
    record(out, "conv2d", {&x, &weight, &bias},
           [x = weight.requires_grad() ? SavedTensor(x) : SavedTensor(),
            weight = x.requires_grad() ? SavedTensor(weight) : SavedTensor(), x_shape = x.shape(),
            w_shape = weight.shape(), stride, padding, dilation, groups](const Tensor& g, const Node& n) {
             return Grads{n.needs_grad(0)
                              ? conv2d_backward_input(g, weight.unpack(n), x_shape, stride, padding, dilation, groups)
                              : Tensor(),
                          n.needs_grad(1)
                              ? conv2d_backward_weight(x.unpack(n), g, w_shape, stride, padding, dilation, groups)
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
      conv_geometry("conv2d_backward_input", x_shape, weight.shape(), stride, padding, dilation, groups, g.dtype());
  check_grad_shape("conv2d_backward_input", g, geo);
  check_floats("conv2d_backward_input", {{"gradient", &g}, {"weight", &weight}});
  Tensor dx = zeros(x_shape, g.dtype());
  dispatch_float("conv2d_backward_input", g.dtype(), [&]<class T>() {
    const T* pg = g.data<T>();
    const T* pw = weight.data<T>();
    T* pdx = dx.mutable_data<T>();
    if (g.numel() == 0 || dx.numel() == 0) return;  // dx = 0, with no column buffer (see conv2d)
    // One gemm per block of nb images and group (layout above): cols [K, nb*L] = W_grp^T [K, M] @ G mat [M, nb*L],
    // W_grp [M, K] row-major read transposed through strides; then every image's columns are folded onto dx.
    const int64_t L = geo.L(), K = geo.window(), M = geo.C_out_group();
    const int64_t nb = images_per_block<T>("conv2d_backward_input", geo), blocks = block_count(geo, nb);
    kernel::parallel_for(blocks, use_threads(geo, blocks), [&](int64_t block) {
      const int64_t n0 = block * nb, count = std::min(nb, geo.N - n0), width = count * L;
      with_block_buffers<T>(K * nb * L, nb > 1 ? M * nb * L : 0, [&](BlockBuffers<T>& buffers) {
        T* cols = buffers.cols.data();
        for (int64_t grp = 0; grp < groups; ++grp) {
          const T* b = pg + (n0 * geo.C_out + grp * M) * L;  // G of an image alone: [M, L] in place
          if (count > 1) {
            to_block(geo, pg, n0, count, grp, buffers.mat.data());
            b = buffers.mat.data();
          }
          kernel::gemm_overwrite(K, width, M, pw + grp * M * K, int64_t{1}, K, b, width, int64_t{1}, cols);
          for (int64_t n = 0; n < count; ++n)
            col2im_add(geo, cols + n * L, width, grp * geo.C_group(), pdx + (n0 + n) * geo.C * geo.H * geo.W);
        }
      });
    });
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
      conv_geometry("conv2d_backward_weight", x.shape(), weight_shape, stride, padding, dilation, groups, x.dtype());
  check_grad_shape("conv2d_backward_weight", g, geo);
  check_floats("conv2d_backward_weight", {{"input", &x}, {"gradient", &g}});
  Tensor dw = empty(weight_shape, x.dtype());  // every element is written once, at the end
  dispatch_float("conv2d_backward_weight", x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    const T* pg = g.data<T>();
    T* pdw = dw.mutable_data<T>();
    if (g.numel() == 0 || dw.numel() == 0) {  // dW = 0, with no column buffer (see conv2d)
      std::fill_n(pdw, dw.numel(), T(0));
      return;
    }
    // One gemm per block of nb images and group (layout above), the sum over the block's images being the
    // gemm's inner dimension. Two ways round, the same sum:
    //   dW_grp [M, K]   += G mat [M, nb*L] @ cols^T [nb*L, K]   (the gemm copies cols^T panel by panel: K*nb*L)
    //   dW_grp^T [K, M] += cols [K, nb*L] @ G mat^T [nb*L, M]   (G copied transposed, into mat: M*nb*L)
    // The second when K > M: it copies less and reads cols along its rows (measured ~25% faster on the
    // benchmark case, K = 144, M = 32; the first is faster for a first layer, K = 9, M = 16).
    const int64_t L = geo.L(), K = geo.window(), M = geo.C_out_group();
    const int64_t nb = images_per_block<T>("conv2d_backward_weight", geo), blocks = block_count(geo, nb);
    const bool transposed = K > M;
    // The chunks (see kWeightChunks): consecutive blocks, summed into partial[chunk] [groups, M, K]
    // (transposed: [groups, K, M]), in block order within the chunk.
    const int64_t per_chunk = (blocks + kWeightChunks - 1) / kWeightChunks,
                  chunks = (blocks + per_chunk - 1) / per_chunk;
    std::vector<T> partial(static_cast<std::size_t>(chunks * groups * M * K), T(0));
    kernel::parallel_for(chunks, use_threads(geo, chunks), [&](int64_t chunk) {
      with_block_buffers<T>(K * nb * L, transposed || nb > 1 ? M * nb * L : 0, [&](BlockBuffers<T>& buffers) {
        T* cols = buffers.cols.data();
        T* mat = buffers.mat.data();
        for (int64_t block = chunk * per_chunk; block < std::min(blocks, (chunk + 1) * per_chunk); ++block) {
          const int64_t n0 = block * nb, count = std::min(nb, geo.N - n0), width = count * L;
          for (int64_t grp = 0; grp < groups; ++grp) {
            T* sum = partial.data() + (chunk * groups + grp) * M * K;  // dW_grp [M, K] or dW_grp^T [K, M]
            for (int64_t n = 0; n < count; ++n)
              im2col(geo, px + (n0 + n) * geo.C * geo.H * geo.W, grp * geo.C_group(), cols + n * L, width);
            if (transposed) {
              // mat as G mat^T [nb*L, M]: mat[n*L + l, co] = g[n0 + n, grp*M + co, l], written row by row
              for (int64_t n = 0; n < count; ++n)  // G_n of the group, [M, L], into [L, M]
                kernel::transpose_copy(M, L, pg + ((n0 + n) * geo.C_out + grp * M) * L, L, mat + n * L * M, M);
              kernel::gemm(K, M, width, cols, width, int64_t{1}, mat, M, int64_t{1}, sum);
            } else {
              const T* a = pg + (n0 * geo.C_out + grp * M) * L;  // G of an image alone: [M, L] in place
              if (count > 1) {
                to_block(geo, pg, n0, count, grp, mat);
                a = mat;
              }
              kernel::gemm(M, K, width, a, width, int64_t{1}, cols, int64_t{1}, width, sum);
            }
          }
        }
      });
    });
    // dW = the chunks' sums, added in chunk order (and turned back from [K, M] when transposed).
    for (int64_t grp = 0; grp < groups; ++grp)
      for (int64_t co = 0; co < M; ++co)
        for (int64_t k = 0; k < K; ++k) {
          const int64_t at = transposed ? k * M + co : co * K + k;
          T total = partial[static_cast<std::size_t>(grp * M * K + at)];
          for (int64_t chunk = 1; chunk < chunks; ++chunk)
            total += partial[static_cast<std::size_t>((chunk * groups + grp) * M * K + at)];
          pdw[(grp * M + co) * K + k] = total;
        }
  });
  if (any_requires_grad({&x, &g}))
    record(
        dw, "conv2d_backward_weight", {&x, &g},
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
