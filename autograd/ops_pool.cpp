// ops_pool.cpp: pooling and padding over images [N, C, H, W], each with its backward.
//
// max_pool2d remembers where each maximum was and sends the gradient there (max_pool2d_backward, an op
// whose derivative gathers from those places again). avg_pool2d and adaptive_avg_pool2d share one
// "mean over windows" op whose backward spreads g evenly over each window (an op too, whose derivative
// is the mean again). pad is a copy into a larger tensor; its backward is slicing. Convolution is in
// ops_conv.cpp.
#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <string>

#include "checked_size.h"
#include "graph.h"
#include "kernels.h"
#include "ops.h"

namespace ng {

using Grads = std::vector<Tensor>;
using kernel::pair_str;
using kernel::valid_outputs;

namespace {

struct PoolGeometry {
  int64_t N, C, H, W, H_out, W_out;
};

// Checks a pooling's arguments as PyTorch does (an image of at least 1x1, padding at most half the
// kernel, so that every window holds at least one element of the image) and computes the output size
//   out = (in + 2*pad - k)/stride + 1,
// every step checked (checked_size.h): the arguments are the user's and may be near 2^63.
PoolGeometry pool_geometry(const char* op, const Tensor& x, Pair kernel, Pair stride, Pair padding) {
  const std::string args = std::string(op) + ": input " + shape_str(x.shape()) + ", kernel " + pair_str(kernel) +
                           ", stride " + pair_str(stride) + ", padding " + pair_str(padding);
  if (x.dim() != 4) throw Error(args + ": expected a 4-D input [N, C, H, W]");
  PoolGeometry g{x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3], 0, 0};
  if (g.H < 1 || g.W < 1) throw Error(args + ": the image is empty; expected H, W >= 1");
  const int64_t size[2] = {g.H, g.W};
  int64_t padded[2], out[2];
  for (int a = 0; a < 2; ++a) {
    if (kernel[a] < 1) throw Error(args + ": expected every kernel size >= 1");
    if (stride[a] < 1) throw Error(args + ": expected every stride >= 1");
    if (padding[a] < 0) throw Error(args + ": expected every padding >= 0");
    if (padding[a] > kernel[a] / 2) throw Error(args + ": expected padding at most half the kernel size");
    padded[a] = checked_size::add(size[a], 2 * padding[a], args, "padded size in + 2 * padding");  // 2*pad <= k
    // The loops find the first window inside the image as ceil(pad / stride), i.e. (pad + stride - 1) / stride
    // (valid_outputs, kernels.h): that sum must fit too.
    checked_size::add(padded[a], stride[a], args, "padded size + stride");
  }
  for (int a = 0; a < 2; ++a) {
    if (kernel[a] > padded[a])
      throw Error(args + ": the kernel is larger than the padded input " + std::to_string(padded[0]) + "x" +
                  std::to_string(padded[1]));
    out[a] = (padded[a] - kernel[a]) / stride[a] + 1;
  }
  g.H_out = out[0];
  g.W_out = out[1];
  checked_size::check_fits({g.N, g.C, g.H_out, g.W_out}, x.dtype(), args + ": output");
  return g;
}

// The common case, 2x2 windows with stride 2 and no padding (they tile the image): each window is
// read in place, with no bounds test. For `count` windows side by side, upper and lower pointing at
// the first one's two rows, `top` its flat position in the plane: first the maximum of the four (a NaN
// wins), then the first of them in row-major order that equals it (or is a NaN), i.e. the first
// maximum. Written as selects, with the int64 positions apart from the comparisons, so that the loop
// is vectorized; always kPoolBlock windows, a count fixed at compile time (whole vectors, no scalar
// remainder).
constexpr int64_t kPoolBlock = 8;
template <class T>
void max_pool_2x2_windows(const T* upper, const T* lower, int64_t W, int64_t top, T* out, int64_t* indices) {
  for (int64_t ow = 0; ow < kPoolBlock; ++ow) {
    const T a = upper[2 * ow], b = upper[2 * ow + 1], c = lower[2 * ow], d = lower[2 * ow + 1];
    T best = a;  // strict >: a tie keeps the first; a NaN wins (v != v) and stays (best == best fails)
    best = (b > best || b != b) && best == best ? b : best;
    best = (c > best || c != c) && best == best ? c : best;
    best = (d > best || d != d) && best == best ? d : best;
    const bool nan = best != best;
    int64_t at = W + 1;
    at = (c == best) | (nan & (c != c)) ? W : at;
    at = (b == best) | (nan & (b != b)) ? 1 : at;
    at = (a == best) | (nan & (a != a)) ? 0 : at;
    out[ow] = best;
    indices[ow] = top + 2 * ow + at;
  }
}

// x: [planes, H, W] -> out, indices: [planes, H_out, W_out], 2x2 windows with stride 2.
// A row of windows is done in blocks of kPoolBlock, the last block shifted back to end at the row's end (it
// recomputes a few windows, with the same result): rows are short (14 windows for MNIST's 28 / 2), and
// the fixed-size blocks spare them a scalar remainder loop, which would take as long as the vectors.
template <class T> void max_pool_2x2(const T* x, const PoolGeometry& geo, T* out, int64_t* indices) {
  const int64_t H = geo.H, W = geo.W, H_out = geo.H_out, W_out = geo.W_out, planes = geo.N * geo.C;
  kernel::parallel_for(planes, kernel::share_elements(planes * H * W), [&](int64_t plane) {
    for (int64_t oh = 0; oh < H_out; ++oh) {
      const int64_t top = 2 * oh * W;  // the flat position of the row's first window in the plane
      const T* upper = x + plane * H * W + top;
      const T* lower = upper + W;
      T* out_row = out + (plane * H_out + oh) * W_out;
      int64_t* indices_row = indices + (plane * H_out + oh) * W_out;
      if (W_out < kPoolBlock) {
        // Fewer windows than a block (the second pool of an MNIST CNN has 7 per row): a whole block is
        // computed into `best` and `at`, of which the first W_out are kept. Its reads run past the row's
        // end into the next rows of x (the extra windows' results are dropped), except for the last rows
        // of x, which are copied into a block's room first. The same formulas on vectors, where a loop over
        // 7 windows ran one window at a time, and took longer than the first pool's 4 times as many windows.
        T best[kPoolBlock];
        int64_t at[kPoolBlock];
        if (upper - x + W + 2 * kPoolBlock <= planes * H * W) {
          max_pool_2x2_windows(upper, lower, W, top, best, at);
        } else {
          T up[2 * kPoolBlock] = {}, low[2 * kPoolBlock] = {};
          std::copy_n(upper, 2 * W_out, up);
          std::copy_n(lower, 2 * W_out, low);
          max_pool_2x2_windows(up, low, W, top, best, at);
        }
        for (int64_t k = 0; k < W_out; ++k) out_row[k] = best[k], indices_row[k] = at[k];
        continue;
      }
      for (int64_t start = 0; start < W_out; start += kPoolBlock) {
        const int64_t first = std::min(start, W_out - kPoolBlock);
        max_pool_2x2_windows(upper + 2 * first, lower + 2 * first, W, top + 2 * first, out_row + first,
                             indices_row + first);
      }
    }
  });
}

// Any kernel, stride and padding. One output row at a time, all its windows together: for each kernel
// offset (i, j) in row-major order, every window of the row compares its element at (i, j) with its
// best so far. The loop over the windows has no branch (selects), so it runs at the speed of the loads.
template <class T> void max_pool_general(const T* x, const PoolGeometry& geo, Pair kernel, Pair stride, Pair padding,
                                         T* out_planes, int64_t* indices_planes) {
  // Sizes copied into locals: the int64 stores through indices could otherwise alias them, and the
  // compiler would reload every one of them after each store.
  const int64_t H = geo.H, W = geo.W, H_out = geo.H_out, W_out = geo.W_out, planes = geo.N * geo.C;
  const int64_t kh = kernel[0], kw = kernel[1], sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1];
  // Only the kernel offsets that reach into the image are visited: a kernel of 2^34 rows over a 1x1
  // image reads one row, not 2^34. Column j reads iw = ow*sw + j - pw for some ow in [0, W_out) only if
  // pw - (W_out - 1)*sw <= j < pw + W; row i, ih = oh*sh - ph + i in [0, H), for i in [ph - oh*sh, ph + H - oh*sh).
  const int64_t j_first = std::max<int64_t>(0, pw - (W_out - 1) * sw), j_end = std::min(kw, pw + W);
  const int64_t visited = std::min(kh, H) * std::max<int64_t>(0, j_end - j_first);  // per output, at most
  // Shared out from share_elements' bounds on the number of elements read (outputs * visited), compared
  // as outputs >= bound / visited: no product to overflow.
  const int64_t per_output = std::max<int64_t>(1, visited);
  const bool threads = ng::kernel::worth_sharing(planes * H_out * W_out, ng::kernel::kParallelElements / per_output,
                                                 ng::kernel::kParallelElementsFar / per_output);
  ng::kernel::parallel_for(planes, threads, [&](int64_t plane) {
    const T* in = x + plane * H * W;
    for (int64_t oh = 0; oh < H_out; ++oh) {
      T* out = out_planes + (plane * H_out + oh) * W_out;  // this output row, and its indices
      int64_t* indices = indices_planes + (plane * H_out + oh) * W_out;
      std::fill_n(indices, W_out, int64_t{-1});  // -1: nothing seen yet (the padding is never taken)
      std::fill_n(out, W_out, T(0));
      const int64_t i_first = std::max<int64_t>(0, ph - oh * sh), i_end = std::min(kh, ph + H - oh * sh);
      for (int64_t i = i_first; i < i_end; ++i) {
        const int64_t ih = oh * sh - ph + i;
        const T* row = in + ih * W;
        for (int64_t j = j_first; j < j_end; ++j) {
          const int64_t offset = j - pw;
          const auto [lo, hi] = valid_outputs(offset, sw, W, W_out);
          for (int64_t ow = lo; ow < hi; ++ow) {
            const int64_t iw = ow * sw + offset;
            const T v = row[iw], best = out[ow];
            // strict >: ties keep the first in row-major order; a NaN wins (v != v) and stays
            const bool take = (indices[ow] < 0) | (v > best) | ((v != v) & (best == best));
            out[ow] = take ? v : best;
            indices[ow] = take ? ih * W + iw : indices[ow];
          }
        }
      }
    }
  });
}

}  // namespace

// out[n, c, oh, ow] = max over the window of x (padding is -inf); indices: where, as h * W + w.
//   d out/dx = 1 at the (first) maximum of each window, else 0: dx = max_pool2d_backward(G, indices),
//   G sent to those positions.
MaxResult max_pool2d_with_indices(const Tensor& x, Pair kernel, Pair stride, Pair padding) {
  const PoolGeometry geo = pool_geometry("max_pool2d", x, kernel, stride, padding);
  Tensor out = empty({geo.N, geo.C, geo.H_out, geo.W_out}, x.dtype());
  Tensor indices = empty({geo.N, geo.C, geo.H_out, geo.W_out}, int64);
  dispatch_float("max_pool2d", x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* po = out.mutable_data<T>();
    int64_t* pi = indices.mutable_data<int64_t>();
    // -Dreference_kernels=true: every pooling through the general loop
    if (!ng::kernel::kReferenceKernels && kernel == Pair{2, 2} && stride == Pair{2, 2} && padding == Pair{0, 0}) {
      max_pool_2x2(px, geo, po, pi);
      return;
    }
    max_pool_general(px, geo, kernel, stride, padding, po, pi);
  });
  if (any_requires_grad({&x}))
    record(out, "max_pool2d", {&x},
           [x_shape = x.shape(), indices = SavedTensor(indices)](const Tensor& g, const Node& n) {
             return Grads{max_pool2d_backward(g, indices.unpack(n), x_shape)};
           });
  return {out, indices};
}

// dx[n, c, indices[n, c, k]] += G[n, c, k] within each [H, W] plane (+=: overlapping windows can share
// a maximum). Linear in G; its adjoint reads gg back at the same positions:
//   <gg, dx(G)> = sum_k gg[n, c, indices[n, c, k]] G[n, c, k],  so  d/dG = gather of gg at indices.
Tensor max_pool2d_backward(const Tensor& g, const Tensor& indices, const Shape& input_shape) {
  auto args = [&] {  // built only when an error is thrown
    return "max_pool2d_backward: gradient " + shape_str(g.shape()) + ", indices " + shape_str(indices.shape()) + " " +
           dtype_name(indices.dtype()) + ", input shape " + shape_str(input_shape);
  };
  if (input_shape.size() != 4 || g.dim() != 4 || g.shape()[0] != input_shape[0] || g.shape()[1] != input_shape[1])
    throw Error(args() + ": expected a 4-D input shape [N, C, H, W] and a 4-D gradient [N, C, H_out, W_out]");
  checked_size::check_fits(input_shape, g.dtype(), args());  // before H*W is formed
  if (indices.dtype() != int64 || indices.shape() != g.shape())
    throw Error(args() + ": expected int64 indices of the gradient's shape");
  const int64_t N = input_shape[0], C = input_shape[1], HW = input_shape[2] * input_shape[3];
  const int64_t per_plane = g.shape()[2] * g.shape()[3];
  Tensor dx = empty(input_shape, g.dtype());
  dispatch_float("max_pool2d_backward", g.dtype(), [&]<class T>() {
    const T* pg = g.data<T>();
    const int64_t* where = indices.data<int64_t>();
    T* pdx = dx.mutable_data<T>();
    // Each thread takes whole planes. An exception must not leave a parallel loop, so an index out of
    // range is noted (the one found first by any thread) and thrown after the loop.
    bool out_of_range = false;
    int64_t bad_index = 0;
    std::mutex bad_index_mutex;
    kernel::parallel_for(N * C, kernel::share_elements(N * C * HW), [&](int64_t plane) {
      T* dx_plane = pdx + plane * HW;
      const T* g_plane = pg + plane * per_plane;
      const int64_t* where_plane = where + plane * per_plane;
      std::fill_n(dx_plane, HW, T(0));  // zeroed plane by plane, so that the plane is in cache for the additions
      for (int64_t k = 0; k < per_plane; ++k) {
        if (where_plane[k] < 0 || where_plane[k] >= HW) {
          const std::lock_guard<std::mutex> lock(bad_index_mutex);
          if (!out_of_range) {
            out_of_range = true;
            bad_index = where_plane[k];
          }
          break;
        }
        dx_plane[where_plane[k]] += g_plane[k];
      }
    });
    if (out_of_range)
      throw Error(args() + ": index " + std::to_string(bad_index) +
                  " is out of range; expected 0 <= index < H*W = " + std::to_string(HW));
  });
  if (any_requires_grad({&g}))
    record(dx, "max_pool2d_backward", {&g},
           [g_shape = g.shape(), HW, indices = SavedTensor(indices)](const Tensor& gg, const Node& n) {
             const int64_t N = g_shape[0], C = g_shape[1];  // gg: [N, C, H, W] read as [N, C, H*W]
             const Tensor picked =
                 gather(reshape(gg, {N, C, HW}), 2, reshape(indices.unpack(n), {N, C, g_shape[2] * g_shape[3]}));
             return Grads{reshape(picked, g_shape)};
           });
  return dx;
}

Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding) {
  return max_pool2d_with_indices(x, kernel, stride, padding).values;
}
Tensor max_pool2d(const Tensor& x, Pair kernel) { return max_pool2d(x, kernel, kernel); }

namespace {

// The windows of an average pooling, as [start, end) ranges in the image along each axis, and what
// each window's sum is divided by (the kernel area for avg_pool2d, which counts padding as zeros;
// the window's own area for adaptive_avg_pool2d). The ranges are listed only when the output has an
// element: with N = 0 or C = 0 there is nothing to pool, and H_out may be as large as 2^46.
struct MeanWindows {
  const char* op;           // "avg_pool2d" or "adaptive_avg_pool2d"
  const char* backward_op;  // the same + "_backward"
  Shape in_shape;           // [N, C, H, W]
  int64_t h_out = 0, w_out = 0;
  std::vector<int64_t> h_start, h_end, w_start, w_end;  // h_out and w_out entries, or none (see above)
  int64_t divisor = 0;                                  // 0: each window's own area
  int64_t H_out() const { return h_out; }
  int64_t W_out() const { return w_out; }
  bool has_windows() const { return in_shape[0] * in_shape[1] > 0; }
  template <class T> T scale(int64_t oh, int64_t ow) const {
    const int64_t area = divisor ? divisor : (h_end[oh] - h_start[oh]) * (w_end[ow] - w_start[ow]);
    return T(1) / static_cast<T>(area);
  }
};
using Windows = std::shared_ptr<const MeanWindows>;

Tensor window_mean_backward(const Tensor& g, const Windows& win);

// out[n, c, oh, ow] = scale(oh, ow) * sum of x over the window (oh, ow).
//   d out/dx = scale on the window's elements: dx = window_mean_backward(G).
// `out`, when given, is the output's buffer, made by the caller before the window tables (an output
// too large for memory is then an Error before the tables, as large as its rows, are listed).
Tensor window_mean(const Tensor& x, const Windows& win, Tensor out = Tensor()) {
  const Shape& s = win->in_shape;
  if (!out.defined()) out = empty({s[0], s[1], win->H_out(), win->W_out()}, x.dtype());
  dispatch_float(win->op, x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* po = out.mutable_data<T>();
    for (int64_t plane = 0; plane < s[0] * s[1]; ++plane) {
      const T* in = px + plane * s[2] * s[3];
      for (int64_t oh = 0; oh < win->H_out(); ++oh)
        for (int64_t ow = 0; ow < win->W_out(); ++ow) {
          T total = 0;
          for (int64_t h = win->h_start[oh]; h < win->h_end[oh]; ++h)
            for (int64_t w = win->w_start[ow]; w < win->w_end[ow]; ++w) total += in[h * s[3] + w];
          *po++ = total * win->scale<T>(oh, ow);
        }
    }
  });
  if (any_requires_grad({&x}))
    record(out, win->op, {&x}, [win](const Tensor& g, const Node&) { return Grads{window_mean_backward(g, win)}; });
  return out;
}

// dx[n, c, h, w] = sum over the windows (oh, ow) holding (h, w) of scale(oh, ow) * G[n, c, oh, ow].
//   Linear in G, and the adjoint of window_mean: its derivative is window_mean(gg).
Tensor window_mean_backward(const Tensor& g, const Windows& win) {
  const Shape& s = win->in_shape;
  const Shape g_shape = {s[0], s[1], win->H_out(), win->W_out()};
  if (g.shape() != g_shape)
    throw Error(std::string(win->backward_op) + ": gradient " + shape_str(g.shape()) + "; expected " +
                shape_str(g_shape));
  Tensor dx = zeros(s, g.dtype());
  dispatch_float(win->backward_op, g.dtype(), [&]<class T>() {
    const T* pg = g.data<T>();
    T* pdx = dx.mutable_data<T>();
    for (int64_t plane = 0; plane < s[0] * s[1]; ++plane) {
      T* out = pdx + plane * s[2] * s[3];
      for (int64_t oh = 0; oh < win->H_out(); ++oh)
        for (int64_t ow = 0; ow < win->W_out(); ++ow) {
          const T share = *pg++ * win->scale<T>(oh, ow);
          for (int64_t h = win->h_start[oh]; h < win->h_end[oh]; ++h)
            for (int64_t w = win->w_start[ow]; w < win->w_end[ow]; ++w) out[h * s[3] + w] += share;
        }
    }
  });
  if (any_requires_grad({&g}))
    record(dx, win->backward_op, {&g}, [win](const Tensor& gg, const Node&) { return Grads{window_mean(gg, win)}; });
  return dx;
}

}  // namespace

// out = the mean of each kernel window, the padding counted as zeros: (1 / (kH kW)) sum over the window.
Tensor avg_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding) {
  const PoolGeometry geo = pool_geometry("avg_pool2d", x, kernel, stride, padding);
  auto win = std::make_shared<MeanWindows>();
  win->op = "avg_pool2d";
  win->backward_op = "avg_pool2d_backward";
  win->in_shape = x.shape();
  win->h_out = geo.H_out;
  win->w_out = geo.W_out;
  // divisor = kH * kW, checked: a kernel of 2^32 x 2^32 wrapped it to 0 (a mean of 1, with gradient 4).
  const std::string args = "avg_pool2d: input " + shape_str(x.shape()) + ", kernel " + pair_str(kernel);
  win->divisor = checked_size::mul(kernel[0], kernel[1], args, "divisor kH * kW");
  Tensor out = empty({geo.N, geo.C, geo.H_out, geo.W_out}, x.dtype());
  if (!win->has_windows()) return window_mean(x, win, out);
  for (int64_t oh = 0; oh < geo.H_out; ++oh) {
    const int64_t start = oh * stride[0] - padding[0];
    win->h_start.push_back(std::max<int64_t>(start, 0));
    win->h_end.push_back(std::min(start + kernel[0], geo.H));
  }
  for (int64_t ow = 0; ow < geo.W_out; ++ow) {
    const int64_t start = ow * stride[1] - padding[1];
    win->w_start.push_back(std::max<int64_t>(start, 0));
    win->w_end.push_back(std::min(start + kernel[1], geo.W));
  }
  return window_mean(x, win, out);
}
Tensor avg_pool2d(const Tensor& x, Pair kernel) { return avg_pool2d(x, kernel, kernel); }

// out[n, c, i, j] = the mean of x over rows [floor(i H / out_h), ceil((i + 1) H / out_h)) and the
// columns likewise: windows that tile the image (overlapping by one when the sizes do not divide).
Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size) {
  const std::string args =
      "adaptive_avg_pool2d: input " + shape_str(x.shape()) + ", output size " + pair_str(output_size);
  if (x.dim() != 4 || output_size[0] < 1 || output_size[1] < 1)
    throw Error(args + "; expected a 4-D input [N, C, H, W] and output sizes >= 1");
  if (x.shape()[2] < 1 || x.shape()[3] < 1)
    throw Error("adaptive_avg_pool2d: input " + shape_str(x.shape()) + " has an empty image; expected H, W >= 1");
  checked_size::check_fits({x.shape()[0], x.shape()[1], output_size[0], output_size[1]}, x.dtype(), args + ": output");
  auto win = std::make_shared<MeanWindows>();
  win->op = "adaptive_avg_pool2d";
  win->backward_op = "adaptive_avg_pool2d_backward";
  win->in_shape = x.shape();
  win->h_out = output_size[0];
  win->w_out = output_size[1];
  Tensor out = empty({x.shape()[0], x.shape()[1], output_size[0], output_size[1]}, x.dtype());
  if (!win->has_windows()) return window_mean(x, win, out);
  // (i + 1) * size may pass 2^63 for an output and an image both past 2^31 along one axis: checked.
  auto windows = [&args](int64_t size, int64_t out, std::vector<int64_t>& start, std::vector<int64_t>& end) {
    for (int64_t i = 0; i < out; ++i) {
      start.push_back(checked_size::mul(i, size, args, "window start i * size") / out);  // floor
      const int64_t reach = checked_size::mul(i + 1, size, args, "window end (i + 1) * size");
      end.push_back(reach / out + (reach % out != 0));  // ceil
    }
  };
  windows(x.shape()[2], output_size[0], win->h_start, win->h_end);
  windows(x.shape()[3], output_size[1], win->w_start, win->w_end);
  return window_mean(x, win, out);
}

// out = x surrounded by `value`: padding {before, after} pairs, from the last dim backwards.
//   d out/dx = 1 on the copied region: dx = g sliced back to x's region along every padded dim.
Tensor pad(const Tensor& x, const std::vector<int64_t>& padding, double value) {
  const int64_t pairs = static_cast<int64_t>(padding.size()) / 2;
  std::string list;
  for (int64_t p : padding) list += (list.empty() ? "" : ", ") + std::to_string(p);
  const std::string args = "pad: padding {" + list + "} for input " + shape_str(x.shape());
  if (padding.size() % 2 != 0 || pairs > x.dim())
    throw Error(args + "; expected an even number of sizes, at most two per dimension");
  Shape out_shape = x.shape();
  std::vector<int64_t> before(static_cast<std::size_t>(x.dim()), 0);
  for (int64_t k = 0; k < pairs; ++k) {
    const int64_t d = x.dim() - 1 - k;
    if (padding[2 * k] < 0 || padding[2 * k + 1] < 0)
      throw Error(args + "; expected sizes >= 0 (negative padding, i.e. cropping, is not supported)");
    before[d] = padding[2 * k];
    // out_shape[d] = size + before + after, checked: INT64_MAX paddings wrapped it, and rows were copied
    // outside the output.
    out_shape[d] =
        checked_size::add(checked_size::add(out_shape[d], padding[2 * k], args, "padded size (size + before)"),
                          padding[2 * k + 1], args, "padded size (size + before + after)");
  }
  checked_size::check_fits(out_shape, x.dtype(), args + ": output");
  Tensor out = full(out_shape, value, x.dtype());
  dispatch_float("pad", x.dtype(), [&]<class T>() {
    const auto out_strides = kernel::strides_of(out_shape);
    int64_t base = 0;
    for (int64_t d = 0; d < x.dim(); ++d) base += before[d] * out_strides[d];
    const T* src = x.data<T>();
    T* dst = out.mutable_data<T>() + base;
    // Walk x's rows; each lands at the same index (shifted by `before`) of out.
    kernel::for_each_row<1>(x.shape(), {out_strides.data()}, [&](const std::array<int64_t, 1>& off, int64_t len) {
      std::copy_n(src, len, dst + off[0]);
      src += len;
    });
  });
  if (any_requires_grad({&x}))
    record(out, "pad", {&x}, [before, shape = x.shape()](const Tensor& g, const Node&) {
      Tensor dx = g;
      for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d)
        if (dx.shape()[d] != shape[d]) dx = slice(dx, d, before[d], before[d] + shape[d]);
      return Grads{dx};
    });
  return out;
}

}  // namespace ng
