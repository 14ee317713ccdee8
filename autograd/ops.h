// ops.h: the primitive operations on tensors, each differentiable.
//
// Every op here computes its forward with a plain loop (kernels in the .cpp files) and, when an input
// requires grad, records a node whose backward is written beside the forward with its derivative as
// a formula. Everything in nn/ (BatchNorm included) is composed from these.
//
//   elementwise (ops_elementwise.cpp): add sub mul div neg pow sqrt exp log abs relu sigmoid tanh sign,
//                                      and the fused backward ops sigmoid_backward tanh_backward
//                                      threshold_backward pow_backward
//   reductions  (ops_reduce.cpp):      sum mean sum_to max argmax
//   shape       (ops_shape.cpp):       reshape permute transpose unsqueeze squeeze cat slice index_select
//                                      index_add gather scatter_add broadcast_to
//   in place    (ops_inplace.cpp):     Tensor::add_ mul_ zero_ fill_ copy_ clamp_, and clamp
//   matmul      (ops_matmul.cpp):      matmul linear scaled_dot_product_attention
//   selection   (ops_select.cpp):      eq ne lt le gt ge (and == != < <= > >=) where maximum minimum
//                                      max min argmax argmin (over all elements or a dim) topk stack
//                                      masked_fill tril triu select chunk split
//   trigonometry (ops_trig.cpp):       sin cos
//   softmax     (ops_softmax.cpp):     softmax log_softmax logsumexp multinomial
//   activations (ops_activation.cpp):  erf gelu leaky_relu dropout_mask, and the fused backward op gelu_backward
//   convolution (ops_conv.cpp):        conv2d conv1d, and their backward ops
//   pooling     (ops_pool.cpp):        max_pool2d avg_pool2d adaptive_avg_pool2d pad
//
// Binary elementwise ops broadcast by NumPy's rules: shapes are aligned at the right, and a size-1 (or
// missing) dimension stretches to the other's size. Their backward sums each gradient back down to
// its input's shape (sum_to).
#pragma once

#include <array>
#include <optional>

#include "tensor.h"

namespace ng {

// ---- elementwise ----------------------------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor pow(const Tensor& base, const Tensor& exponent);
Tensor sqrt(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sign(const Tensor& x);  // -1, 0 or 1; no gradient (its derivative is 0 almost everywhere)
Tensor clamp(const Tensor& x, double min, double max);  // min(max(x, min), max); gradient 1 inside, 0 outside

// Fused backward formulas, each an op with its own derivative (so gradients of gradients flow):
Tensor sigmoid_backward(const Tensor& grad, const Tensor& output);    // grad * y * (1 - y)
Tensor tanh_backward(const Tensor& grad, const Tensor& output);       // grad * (1 - y^2)
Tensor threshold_backward(const Tensor& grad, const Tensor& output);  // grad where y > 0, else 0
Tensor pow_backward(const Tensor& grad, const Tensor& x, double p);   // grad * p * x^(p-1)

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
// A scalar on either side becomes a 0-dim tensor of the other operand's dtype.
Tensor operator+(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(const Tensor& a, double b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(const Tensor& a, double b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(const Tensor& a, double b);
Tensor operator/(double a, const Tensor& b);

// The shape two shapes broadcast to, or an Error naming `op` and both shapes.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// ---- reductions -----------------------------------------------------------------------------------
Tensor sum(const Tensor& x);  // all elements -> 0-dim
Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim = false);
// Sums a (broadcast) gradient down to `shape`: the backward of broadcasting.
Tensor sum_to(const Tensor& x, const Shape& shape);

struct MaxResult {
  Tensor values;   // differentiable; the gradient flows to the first maximal element
  Tensor indices;  // int64, where the maxima were
};
MaxResult max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

// ---- shape ----------------------------------------------------------------------------------------
Tensor reshape(const Tensor& x, Shape shape);                // one size may be -1; shares the buffer
Tensor view(const Tensor& x, Shape shape);                   // same as reshape (storage is always contiguous)
Tensor permute(const Tensor& x, std::vector<int64_t> dims);  // copies into the new order
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x);  // all size-1 dimensions
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end);  // [start, end), step 1
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);  // index: 1-D int64
// x with source[.., i, ..] added at x[.., index[i], ..] (repeats add up); index_select's backward.
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source);
// out[i][j] = x[i][index[i][j]] for dim 1 (any rank, any dim; index: int64 of x's rank), PyTorch's gather.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// x with source[i][j] added at x[i][index[i][j]] for dim 1 (repeats add up); gather's backward.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source);
// zeros(shape) with g placed at [start, start + g.size(dim)) along dim: slice's backward.
Tensor slice_backward(const Tensor& g, const Shape& shape, int64_t dim, int64_t start);
Tensor broadcast_to(const Tensor& x, const Shape& shape);

// ---- matmul ---------------------------------------------------------------------------------------
// [n,k]@[k,m] -> [n,m];  [*,n,k]@[*,k,m] -> [*,n,m], where the batch dims * broadcast as in elementwise
// ops ([B,H,T,d]@[B,H,d,T], [B,T,C]@[C,D] and [T,d]@[B,H,d,T] all work, as in PyTorch);
// [k]@[k] -> [] (dot);  [*,n,k]@[k] -> [*,n];  [k]@[*,k,m] -> [*,m].
Tensor matmul(const Tensor& a, const Tensor& b);
// x @ weight^T + bias (bias may be undefined): x [N,in], weight [out,in] -> [N,out]. One node, no transpose copy.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// PyTorch's F.scaled_dot_product_attention, composed from matmul, masked_fill and softmax:
//   q [*, L, E], k [*, S, E], v [*, S, Ev] -> [*, L, Ev]   (* broadcast, usually [B, H])
//   out = softmax(q k^T * scale + mask) v,  scale = 1/sqrt(E) unless given
// attn_mask ([L, S] or broadcastable to [*, L, S]): an int64 mask is PyTorch's bool mask (nonzero =
// may attend, zero = masked out); a float mask is added to the scores (0 and -inf, say).
// is_causal masks out key j > query i (the lower-triangular mask of ones(L, S).tril()); it may not be
// combined with attn_mask. A row with every key masked out is NaN (0/0 in the softmax).
// dropout_p in [0, 1): with dropout_p > 0 the attention weights go through dropout before they multiply v,
//   out = (softmax(q k^T * scale + mask) * dropout_mask(p)) v
// whatever the mode, as PyTorch's functional: the caller passes 0 in evaluation, as nn::CausalSelfAttention
// does when it is not training. The mask is drawn from the global generator (dropout_mask), so
// set_rng_state before a call repeats it.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask = Tensor(), double dropout_p = 0, bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);

// ---- selection (ops_select.cpp) -------------------------------------------------------------------
// Comparisons, broadcasting like the arithmetic ops: a 0/1 mask in the inputs' dtype (there is no bool
// dtype; int64 inputs give an int64 mask). No gradient flows through them (they are piecewise constant).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, double b);
Tensor operator!=(const Tensor& a, double b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);
Tensor operator==(double a, const Tensor& b);
Tensor operator!=(double a, const Tensor& b);
Tensor operator<(double a, const Tensor& b);
Tensor operator<=(double a, const Tensor& b);
Tensor operator>(double a, const Tensor& b);
Tensor operator>=(double a, const Tensor& b);

// a where cond is nonzero, else b; cond may have any dtype, and all three broadcast together.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// Elementwise max / min of two tensors (broadcasting); on ties each side gets half the gradient.
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

// The largest / smallest element, 0-dim; tied elements share the gradient evenly.
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
using MinResult = MaxResult;  // values and indices, as for max
MinResult min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
// The index into x flattened to 1-D, 0-dim int64 (the first one on ties).
Tensor argmax(const Tensor& x);
Tensor argmin(const Tensor& x);
// The k largest (largest = true) or smallest elements along dim and where they were, most extreme
// first: [.., n, ..] -> [.., k, ..], PyTorch's topk. Equal values come in index order (the lower index
// first) and NaN counts as the largest value, so the result is the same on every run; it is always
// sorted (sorted = false is accepted for PyTorch's signature). An Error unless 0 <= k <= n.
struct TopKResult {
  Tensor values;   // differentiable: each value's gradient goes to the element it was taken from
  Tensor indices;  // int64, positions along dim
};
TopKResult topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true);
// Tensors of one shape joined along a new dim: n of [A, B] with dim 1 -> [A, n, B].
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);

// x with `value` wherever mask is nonzero (mask: any dtype, broadcastable to x's shape) -> x's shape.
// The gradient is g where the mask is 0, and 0 at the filled positions.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
// The lower (tril) / upper (triu) triangle of the last two dims, the rest 0: x[.., i, j] is kept when
// j - i <= diagonal (tril) or j - i >= diagonal (triu). diagonal 0 is the main diagonal, > 0 above it.
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);
// x[.., index, ..] along dim, that dim removed ([A, B, C] with dim 1 -> [A, C]); negative dim and index
// count from the end. A copy (PyTorch's is a view); the backward puts g back into zeros.
Tensor select(const Tensor& x, int64_t dim, int64_t index);
// Pieces of x along dim, copies (PyTorch's are views): split gives pieces of split_size (the last may be
// smaller), or of the given sizes (which must add up to x.size(dim)); chunk gives `chunks` pieces of
// ceil(size / chunks), fewer when they run out first (chunk of 5 into 4: 2, 2, 1), as PyTorch.
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& split_sizes, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);

// ---- trigonometry (ops_trig.cpp) ------------------------------------------------------------------
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);

// ---- softmax and sampling (ops_softmax.cpp) ------------------------------------------------------
// e^(x - max) / sum(e^(x - max)) along dim: each slice along dim becomes a probability distribution.
Tensor softmax(const Tensor& x, int64_t dim);
// log(softmax(x)) along dim, computed as x - max - log(sum(exp(x - max))) so it never overflows.
Tensor log_softmax(const Tensor& x, int64_t dim);
// ln(sum_j e^(x_j)) along dim, computed as max + ln(sum_j e^(x_j - max)) so it never overflows; the dim is
// removed unless keepdim. Its gradient is softmax(x) along dim.
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim = false);
// Category indices (int64) drawn from the rows of probs ([C] -> [num_samples], [R, C] -> [R, num_samples]),
// each row weights up to scale, from the global generator (manual_seed). Without replacement the
// indices of a row are distinct. Throws for negative, NaN or infinite weights, an all-zero row, and more
// samples than categories (with positive weight) without replacement. Records no gradient.
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement = false);

// ---- activations (ops_activation.cpp) -------------------------------------------------------------
Tensor erf(const Tensor& x);  // the error function 2/sqrt(pi) * integral_0^x e^(-t^2) dt (GELU uses it)
// GELU, exact form: x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), Phi the standard normal CDF; one node whose
// backward is gelu_backward, itself an op with its own derivative (so gradients of gradients flow).
Tensor gelu(const Tensor& x);
Tensor gelu_backward(const Tensor& grad, const Tensor& x);         // grad * (Phi(x) + x phi(x)); same shapes
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);  // x if x > 0 else negative_slope * x
// Inverted dropout's mask, of `shape`: each element 1/(1-p) (kept) or 0 (dropped, with probability p), from
// one uniform draw u of the global generator per element in row-major order, kept where u >= p; p = 1 gives
// zeros and draws nothing. x * dropout_mask(x.shape(), p, x.dtype()) is dropout. Records no gradient (a
// constant). An Error unless 0 <= p <= 1 and dtype is floating.
Tensor dropout_mask(const Shape& shape, double p, Dtype dtype);

// ---- convolution and pooling ----------------------------------------------------------------------
// Images are [N, C, H, W]. Pairs are {h, w}. Output sizes follow PyTorch (floor division):
//   H_out = (H + 2 padding_h - dilation_h (kH - 1) - 1) / stride_h + 1
using Pair = std::array<int64_t, 2>;

// x [N, C, H, W], weight [C_out, C/groups, kH, kW], bias [C_out] or undefined -> [N, C_out, H_out, W_out]
// (PyTorch's cross-correlation: the kernel is not flipped).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Pair stride = {1, 1},
              Pair padding = {0, 0}, Pair dilation = {1, 1}, int64_t groups = 1);
// x [N, C, L], weight [C_out, C/groups, k] -> [N, C_out, L_out]: conv2d on [N, C, 1, L].
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
              int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
// conv2d's backward, each an op with its own derivative (so gradients of gradients flow):
// dL/dx for dL/dout = g ([N, C_out, H_out, W_out]) -> [x_shape]: col2im of W^T g.
Tensor conv2d_backward_input(const Tensor& g, const Tensor& weight, const Shape& x_shape, Pair stride = {1, 1},
                             Pair padding = {0, 0}, Pair dilation = {1, 1}, int64_t groups = 1);
// dL/dweight -> [weight_shape]: g @ im2col(x)^T, summed over the batch.
Tensor conv2d_backward_weight(const Tensor& x, const Tensor& g, const Shape& weight_shape, Pair stride = {1, 1},
                              Pair padding = {0, 0}, Pair dilation = {1, 1}, int64_t groups = 1);

// Maximum over each kernel window; stride defaults to the kernel; padded positions count as -inf and
// padding may be at most half the kernel (PyTorch's rule). The gradient goes to the first maximum.
Tensor max_pool2d(const Tensor& x, Pair kernel_size);
Tensor max_pool2d(const Tensor& x, Pair kernel_size, Pair stride, Pair padding = {0, 0});
// The same, with the int64 positions (h * W + w within each [H, W] plane) of the maxima.
MaxResult max_pool2d_with_indices(const Tensor& x, Pair kernel_size, Pair stride, Pair padding = {0, 0});
// max_pool2d's backward, an op with its own derivative (gather at the same indices): dL/dx for
// dL/dout = g [N, C, H_out, W_out] -> [input_shape], g added at each plane's indices (as above).
Tensor max_pool2d_backward(const Tensor& g, const Tensor& indices, const Shape& input_shape);
// Mean over each window, zeros of the padding included (count_include_pad = true, PyTorch's default).
Tensor avg_pool2d(const Tensor& x, Pair kernel_size);
Tensor avg_pool2d(const Tensor& x, Pair kernel_size, Pair stride, Pair padding = {0, 0});
// Mean over output_size windows: window i along H is [floor(i H / out_h), ceil((i + 1) H / out_h)).
Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size);
// Constant padding of the last dims, F.pad's order: {left, right} pads the last dim, {left, right,
// top, bottom} the last two, and so on. Sizes must be >= 0 (no cropping).
Tensor pad(const Tensor& x, const std::vector<int64_t>& padding, double value = 0);

}  // namespace ng
