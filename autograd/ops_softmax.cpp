// ops_softmax.cpp: softmax, log_softmax and logsumexp along a dim, each with its backward, and multinomial
// sampling from probabilities.
//
// softmax turns scores into a probability distribution along one dim; log_softmax is its logarithm, the
// form losses use (nn/loss.cpp); multinomial draws category indices from such distributions (a language
// model's sampling step: probs = softmax(logits), then next = multinomial(probs, 1)).
// softmax, log_softmax and logsumexp all start from the same two numbers per distribution, its largest value and
// the sum of exponentials shifted by it (max_sum_exp, kernels.h); over_distributions below is that
// common pass, and each op then writes its own formula.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "graph.h"
#include "kernels.h"
#include "ops.h"

namespace ng {

using Grads = std::vector<Tensor>;

namespace {

// The dim that softmax and log_softmax normalize along, checked: a 0-dim tensor has none.
int64_t distribution_dim(const char* op, const Tensor& x, int64_t dim) {
  if (x.dim() == 0) throw Error(std::string(op) + ": needs a tensor with at least one dimension; got a 0-dim tensor");
  return normalize_dim(op, dim, x.dim());
}

// x: any shape -> out: x's shape. A distribution is the `size` entries of x along dim d, `inner` apart:
// xs[0], xs[inner], ..., xs[(size - 1) * inner]. For each, write(xs, ys, size, inner, stats) fills the
// entries ys of out at the same places, given stats = max_sum_exp(xs) (its max m and sum_k e^(x_k - m)).
// kExpsInOut: ys already holds e^(x_k - m) in float32's fast path (max_sum_exp left them there).
template <bool kExpsInOut = false, class Write>
Tensor over_distributions(const char* op, const Tensor& x, int64_t d, Write write) {
  // Not a structured binding: clang before 16 cannot capture those in the kernel's lambda.
  const kernel::AroundDim around = kernel::around_dim(x.shape(), d);
  const int64_t outer = around.outer, size = around.size, inner = around.inner;
  Tensor out = empty(x.shape(), x.dtype());
  dispatch_float(op, x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* py = out.mutable_data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* xs = px + o * size * inner + i;
        T* ys = py + o * size * inner + i;
        write(xs, ys, size, inner, kernel::max_sum_exp(xs, size, inner, kExpsInOut ? ys : nullptr));
      }
  });
  return out;
}

}  // namespace

// y_k = e^(x_k - m) / sum_j e^(x_j - m), with m = max_j x_j so that no exponent is positive (no overflow;
// the largest term is e^0 = 1, so the sum is >= 1 and never underflows to 0).
// dy_k/dx_j = y_k ([k = j] - y_j), so dx_j = sum_k g_k y_k ([k = j] - y_j) = y_j (g_j - sum_k g_k y_k).
// The backward is that line in ops (mul, sub, sum), so it can be differentiated again.
// float32 computes e^(x_k - m) with the vectorizable fast_exp (see max_sum_exp in kernels.h).
Tensor softmax(const Tensor& x, int64_t dim) {
  const int64_t d = distribution_dim("softmax", x, dim);
  Tensor out =
      over_distributions<true>("softmax", x, d, [](const auto* xs, auto* ys, int64_t size, int64_t inner, auto stats) {
        using T = decltype(stats.max);
        if constexpr (std::is_same_v<T, float> && !kernel::kReferenceKernels)
          for (int64_t k = 0; k < size; ++k)  // ys holds e^(x_k - m) from max_sum_exp: divide by the sum
            ys[k * inner] = static_cast<float>(ys[k * inner] / stats.sum_exp);
        else
          for (int64_t k = 0; k < size; ++k)
            ys[k * inner] = static_cast<T>(std::exp(static_cast<double>(xs[k * inner] - stats.max)) / stats.sum_exp);
      });
  if (any_requires_grad({&x}))
    record(out, "softmax", {&x}, [out = SavedTensor::output(out), d](const Tensor& g, const Node& n) {
      const Tensor y = out.unpack(n);
      return Grads{y * (g - sum(g * y, {d}, true))};
    });
  return out;
}

// y_k = x_k - m - ln(sum_j e^(x_j - m)), with m = max_j x_j so no exponent is positive.
// dy_k/dx_j = [k = j] - softmax_j, so dx_j = g_j - softmax_j * sum_k g_k, with softmax = e^y.
// The backward is that line in ops, so it can be differentiated again.
Tensor log_softmax(const Tensor& x, int64_t dim) {
  const int64_t d = distribution_dim("log_softmax", x, dim);
  Tensor out =
      over_distributions("log_softmax", x, d, [](const auto* xs, auto* ys, int64_t size, int64_t inner, auto stats) {
        using T = decltype(stats.max);
        const T log_sum = static_cast<T>(std::log(stats.sum_exp));
        for (int64_t k = 0; k < size; ++k) ys[k * inner] = xs[k * inner] - stats.max - log_sum;
      });
  if (any_requires_grad({&x}))
    record(out, "log_softmax", {&x}, [out = SavedTensor::output(out), d](const Tensor& g, const Node& n) {
      return Grads{g - exp(out.unpack(n)) * sum(g, {d}, true)};
    });
  return out;
}

Tensor Tensor::softmax(int64_t dim) const { return ng::softmax(*this, dim); }

// out = ln(sum_j e^(x_j)) along dim, computed as m + ln(sum_j e^(x_j - m)) with m = max_j x_j, from the same
// max_sum_exp pass as softmax, so that it neither overflows (x_j = 1000) nor underflows (x_j = -1000) where
// the plain formula would. A row of -inf gives -inf (m = -inf: ln 0), a row with +inf gives +inf (PyTorch).
// d out/dx_j = e^(x_j) / sum_k e^(x_k) = e^(x_j - out) = softmax(x)_j, so dx = g * exp(x - out), with g and
// out broadcast back along the reduced dim. The backward is that line in ops (sub, exp, mul), so it can be
// differentiated again.
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim) {
  // A 0-dim tensor has one dim to reduce, as in PyTorch (dim 0 or -1), and gives a 0-dim result either way.
  if (x.dim() == 0) {
    normalize_dim("logsumexp", dim, 1);
    return logsumexp(x.reshape({1}), 0, false);
  }
  const int64_t d = normalize_dim("logsumexp", dim, x.dim());
  const kernel::AroundDim around = kernel::around_dim(x.shape(), d);
  const int64_t outer = around.outer, size = around.size, inner = around.inner;
  Shape kept = x.shape();
  kept[static_cast<std::size_t>(d)] = 1;
  Tensor out = empty(kept, x.dtype());
  dispatch_float("logsumexp", x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* po = out.mutable_data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const auto stats = kernel::max_sum_exp(px + o * size * inner + i, size, inner);
        // m = +-inf (or an empty row, m = -inf): the answer is m itself; x - m would be NaN
        po[o * inner + i] = std::isinf(stats.max) ? stats.max : stats.max + static_cast<T>(std::log(stats.sum_exp));
      }
  });
  if (any_requires_grad({&x}))
    record(out, "logsumexp", {&x},
           [x = SavedTensor(x), out = SavedTensor::output(out)](const Tensor& g, const Node& n) {
             return Grads{g * exp(x.unpack(n) - out.unpack(n))};  // g, out: [.., 1, ..] broadcast along d
           });
  // The node's output keeps the reduced dim (so that its backward broadcasts); squeeze is a view of it.
  return keepdim ? out : out.squeeze(d);
}

Tensor Tensor::logsumexp(int64_t dim, bool keepdim) const { return ng::logsumexp(*this, dim, keepdim); }

namespace {

// Checks one row of (unnormalized) probabilities and returns how many categories have weight > 0.
template <class T>
int64_t check_distribution(const T* row, int64_t categories, int64_t row_index, const Tensor& probs) {
  int64_t positive = 0;
  for (int64_t k = 0; k < categories; ++k) {
    const T p = row[k];
    if (!(p >= 0) || std::isinf(p))
      throw Error("multinomial: probs " + shape_str(probs.shape()) + " has the entry " + std::to_string(p) +
                  " in row " + std::to_string(row_index) + ", category " + std::to_string(k) +
                  "; expected finite, non-negative weights (not NaN)");
    positive += p > 0;
  }
  if (positive == 0)
    throw Error("multinomial: row " + std::to_string(row_index) + " of probs " + shape_str(probs.shape()) +
                " is all zeros; expected at least one positive weight per row");
  return positive;
}

// The first category k with weight[k] > 0 whose cumulative weight exceeds target, target in [0, total):
// category k is chosen with probability weight[k] / total. Zero weights are never chosen (their
// cumulative sum does not rise above the previous one).
int64_t pick(const std::vector<double>& weight, double target) {
  double cumulative = 0;
  int64_t last_positive = -1;
  for (int64_t k = 0; k < static_cast<int64_t>(weight.size()); ++k) {
    if (weight[k] <= 0) continue;
    cumulative += weight[k];
    last_positive = k;
    if (target < cumulative) return k;
  }
  return last_positive;  // target rounded to total: the last category that can be drawn
}

// sum_k weight[k], in double.
double remaining_total(const std::vector<double>& weight) {
  double total = 0;
  for (double w : weight) total += w;
  return total;
}

}  // namespace

// probs: [C] -> [num_samples], or [R, C] -> [R, num_samples]; int64 category indices.
// Each row is a distribution up to scale (p_k / sum_j p_j), as in PyTorch. With replacement every draw
// is independent; without, a drawn category is removed (its weight set to 0) before the next draw, so
// the indices of a row are distinct, and each later draw is from the remaining weights over their own
// sum (O(C) per draw). Draws come from the global generator (manual_seed), row by row.
// Sampling is not differentiable: the result records no graph.
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement) {
  if (probs.dim() != 1 && probs.dim() != 2)
    throw Error("multinomial: probs of shape " + shape_str(probs.shape()) + "; expected [C] or [R, C]");
  const int64_t rows = probs.dim() == 2 ? probs.size(0) : 1, categories = probs.size(-1);
  if (categories == 0) throw Error("multinomial: probs " + shape_str(probs.shape()) + " has no categories");
  if (num_samples <= 0)
    throw Error("multinomial: num_samples = " + std::to_string(num_samples) + "; expected a positive number");
  if (!replacement && num_samples > categories)
    throw Error("multinomial: cannot draw " + std::to_string(num_samples) + " samples without replacement from " +
                std::to_string(categories) + " categories; expected num_samples <= " + std::to_string(categories) +
                " (or replacement = true)");
  Shape out_shape = probs.dim() == 2 ? Shape{rows, num_samples} : Shape{num_samples};
  Tensor out = empty(out_shape, int64);
  int64_t* samples = out.mutable_data<int64_t>();
  dispatch_float("multinomial", probs.dtype(), [&]<class T>() {
    const T* p = probs.data<T>();
    // Every row is checked before the first draw, so an error leaves the generator where it was.
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t positive = check_distribution(p + r * categories, categories, r, probs);
      if (!replacement && num_samples > positive)
        throw Error("multinomial: row " + std::to_string(r) + " of probs " + shape_str(probs.shape()) + " has only " +
                    std::to_string(positive) + " categories with positive weight, too few for " +
                    std::to_string(num_samples) + " samples without replacement");
    }
    if (rows == 0 || num_samples == 0) return;  // nothing to draw: no row's weights are needed
    RandomDraws draws;
    std::vector<double> weight(static_cast<std::size_t>(categories));
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = p + r * categories;
      for (int64_t k = 0; k < categories; ++k) weight[k] = static_cast<double>(row[k]);
      double total = remaining_total(weight);
      for (int64_t s = 0; s < num_samples; ++s) {
        const int64_t k = pick(weight, draws.uniform() * total);
        samples[r * num_samples + s] = k;
        if (!replacement) {
          // The total of what remains is summed afresh, not kept as total - weight[k]: after removing
          // 1 from 1 + 2e-17 that difference is 0 (the small weights were lost to rounding when they
          // were added), every later target would be 0, and the order of the small ones fixed.
          weight[k] = 0;
          total = remaining_total(weight);
        }
      }
    }
  });
  return out;
}

}  // namespace ng
