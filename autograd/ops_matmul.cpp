// ops_matmul.cpp: matrix multiplication and its backward, and attention composed from it.
//
//   C = A @ B,  A: [M, K], B: [K, N] -> C: [M, N],  C[i,j] = sum_k A[i,k] B[k,j]
//   dL/dA = G @ B^T   ([M,N] @ [N,K] -> [M,K])
//   dL/dB = A^T @ G   ([K,M] @ [M,N] -> [K,N])      where G = dL/dC
//
// The batched form applies this to each matrix of a [*, M, K] @ [*, K, N] pair. The batch dims (all
// but the last two) broadcast as in elementwise ops: [B,H,T,d] @ [B,H,d,T], [B,T,C] @ [C,D] (a 2-D
// side is shared by every batch element), [T,d] @ [B,H,d,T]. An operand repeated over batch dims gets
// the sum of its gradients over them (sum_to). The vector cases are reshapes around the matrix case,
// so their gradients come from the graph.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "gemm.h"
#include "graph.h"
#include "kernels.h"
#include "ops.h"

namespace ng {

namespace {

// For each matrix of the broadcast batch `out_batch` (flat, row-major), the index of the matrix of an
// operand with batch dims `batch` that it reads: a size-1 (or missing) batch dim repeats its matrix.
std::vector<int64_t> matrix_indices(const Shape& batch, const Shape& out_batch) {
  const std::vector<int64_t> strides = kernel::broadcast_strides(batch, out_batch);
  std::vector<int64_t> indices(static_cast<std::size_t>(shape_numel(out_batch, "matmul")));
  for (std::size_t i = 0; i < indices.size(); ++i) {
    int64_t rest = static_cast<int64_t>(i), index = 0;
    for (std::size_t d = out_batch.size(); d-- > 0;) {  // the digits of i in the mixed radix out_batch
      index += (rest % out_batch[d]) * strides[d];
      rest /= out_batch[d];
    }
    indices[i] = index;
  }
  return indices;
}

// op(A) @ op(B) for operands of at least 2 dims, where op(X) is X or its transpose (the last two dims
// swapped). The transpose is never copied: gemm reads the operand through swapped strides. This is
// the one recorded matmul node; its backward is two more of them:
//   C = op_a(A) @ op_b(B),  G = dL/dC
//   d op_a(A) = G @ op_b(B)^T   so   dA = G @ op_b(B)^T          (ta false)   or  op_b(B) @ G^T  (ta true)
//   d op_b(B) = op_a(A)^T @ G   so   dB = op_a(A)^T @ G          (tb false)   or  G^T @ op_a(A)  (tb true)
// each summed over the batch dims the operand was broadcast along (sum_to its own shape).
Tensor matmul_t(const Tensor& a, bool ta, const Tensor& b, bool tb) {
  const Shape &sa = a.shape(), &sb = b.shape();
  const int64_t a_rows = sa[a.dim() - 2], a_cols = sa[a.dim() - 1], b_rows = sb[b.dim() - 2], b_cols = sb[b.dim() - 1];
  const int64_t M = ta ? a_cols : a_rows, K = ta ? a_rows : a_cols, N = tb ? b_rows : b_cols;
  if ((tb ? b_cols : b_rows) != K)
    throw Error("matmul: " + shape_str(sa) + (ta ? "^T" : "") + " @ " + shape_str(sb) + (tb ? "^T" : "") +
                ": inner dimensions differ");
  const Shape a_batch(sa.begin(), sa.end() - 2), b_batch(sb.begin(), sb.end() - 2);
  Shape batch;
  try {
    batch = broadcast_shapes("matmul", a_batch, b_batch);
  } catch (const Error&) {
    throw Error("matmul: " + shape_str(sa) + " @ " + shape_str(sb) + ": batch dims " + shape_str(a_batch) + " and " +
                shape_str(b_batch) + " cannot be broadcast together (expected equal sizes, or 1, in each batch dim)");
  }
  Shape out_shape = batch;
  out_shape.insert(out_shape.end(), {M, N});

  Tensor out = empty(out_shape, a.dtype());  // gemm_overwrite writes every element
  dispatch_float("matmul", a.dtype(), [&]<class T>() {
    // Element (i, k) of op(A) sits at i * row + k * col.
    const int64_t a_row = ta ? 1 : a_cols, a_col = ta ? a_cols : 1;
    const int64_t b_row = tb ? 1 : b_cols, b_col = tb ? b_cols : 1;
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* c = out.mutable_data<T>();
    const int64_t count = shape_numel(batch, "matmul");
    if (!ta && a_batch == batch && shape_numel(b_batch, "matmul") == 1) {
      // One B for the whole batch ([M,K] @ [K,N], [B,T,C] @ [C,D]): A's matrices are stacked rows, so
      // the batch folds into the rows of one gemm, [count * M, K] @ [K, N].
      kernel::gemm_overwrite(count * M, N, K, pa, a_row, a_col, pb, b_row, b_col, c);
      return;
    }
    // Otherwise one gemm per output matrix, reading the matrices of A and B it broadcasts from.
    const std::vector<int64_t> a_index = matrix_indices(a_batch, batch), b_index = matrix_indices(b_batch, batch);
    for (int64_t i = 0; i < count; ++i)
      kernel::gemm_overwrite(M, N, K, pa + a_index[i] * a_rows * a_cols, a_row, a_col,
                             pb + b_index[i] * b_rows * b_cols, b_row, b_col, c + i * M * N);
  });

  if (any_requires_grad({&a, &b}))
    record(out, "matmul", {&a, &b},
           [a = b.requires_grad() ? SavedTensor(a) : SavedTensor(),
            b = a.requires_grad() ? SavedTensor(b) : SavedTensor(), sa, sb, ta, tb](const Tensor& g, const Node& n) {
             Tensor da, db;
             if (n.needs_grad(0)) {
               const Tensor bv = b.unpack(n);
               da = sum_to(ta ? matmul_t(bv, tb, g, true) : matmul_t(g, false, bv, !tb), sa);
             }
             if (n.needs_grad(1)) {
               const Tensor av = a.unpack(n);
               db = sum_to(tb ? matmul_t(g, true, av, ta) : matmul_t(av, !ta, g, false), sb);
             }
             return std::vector<Tensor>{da, db};
           });
  return out;
}

// [*,M,K] @ [*,K,N]: both at least 2-D, inner dimensions already checked by matmul().
Tensor matmul_matrices(const Tensor& a, const Tensor& b) { return matmul_t(a, false, b, false); }

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw Error("matmul: " + shape_str(a.shape()) + " " + dtype_name(a.dtype()) + " @ " + shape_str(b.shape()) + " " +
                dtype_name(b.dtype()) + ": dtypes differ; convert one with .to()");
  const int64_t da = a.dim(), db = b.dim();
  if (da < 1 || db < 1)
    throw Error("matmul: " + shape_str(a.shape()) + " @ " + shape_str(b.shape()) +
                ": expected operands of at least 1 dimension (a 0-dim operand is a scalar: use mul)");
  // Checked here, before the vector cases reshape, so that the message shows the shapes as given.
  const int64_t k_a = a.shape()[da - 1], k_b = b.shape()[db == 1 ? 0 : db - 2];
  if (k_a != k_b)
    throw Error("matmul: " + shape_str(a.shape()) + " @ " + shape_str(b.shape()) + ": inner dimensions " +
                std::to_string(k_a) + " and " + std::to_string(k_b) + " differ");
  // Vector cases, as PyTorch: a 1-D left operand is a row [1,K], a 1-D right operand a column [K,1],
  // and the added dimension is removed from the result.
  if (da == 1 && db == 1) return reshape(matmul_matrices(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  if (da == 1) return squeeze(matmul_matrices(unsqueeze(a, 0), b), -2);
  if (db == 1) return squeeze(matmul_matrices(a, unsqueeze(b, 1)), -1);
  return matmul_matrices(a, b);
}

// y = x @ W^T + b, PyTorch's F.linear: x [N,in], W [out,in], b [out] or undefined -> y [N,out].
// The same as matmul(x, W.t()) + b, in one node and without copying W into its transpose:
//   dL/dx = G @ W     ([N,out] @ [out,in])
//   dL/dW = G^T @ x   ([out,N] @ [N,in])
//   dL/db = sum over rows of G
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (x.dim() != 2 || weight.dim() != 2 || x.shape()[1] != weight.shape()[1] ||
      (bias.defined() && (bias.dim() != 1 || bias.shape()[0] != weight.shape()[0])))
    throw Error("linear: input " + shape_str(x.shape()) + ", weight " + shape_str(weight.shape()) + ", bias " +
                (bias.defined() ? shape_str(bias.shape()) : std::string("none")) +
                "; expected [N, in], [out, in] and [out] with matching sizes");
  if (x.dtype() != weight.dtype() || (bias.defined() && bias.dtype() != x.dtype()))
    throw Error("linear: dtypes of input " + std::string(dtype_name(x.dtype())) + ", weight " +
                dtype_name(weight.dtype()) + " and bias " + (bias.defined() ? dtype_name(bias.dtype()) : "none") +
                " differ; convert with .to()");
  const int64_t N = x.shape()[0], in = x.shape()[1], out_features = weight.shape()[0];
  Tensor out = empty({N, out_features}, x.dtype());
  dispatch_float("linear", x.dtype(), [&]<class T>() {
    T* y = out.mutable_data<T>();
    const T* b = bias.defined() ? bias.data<T>() : nullptr;
    for (int64_t i = 0; i < N; ++i)  // start from the bias (or 0), then add x @ W^T
      for (int64_t j = 0; j < out_features; ++j) y[i * out_features + j] = b ? b[j] : T(0);
    kernel::gemm(N, out_features, in, x.data<T>(), in, int64_t{1}, weight.data<T>(), int64_t{1}, in, y);
  });
  if (any_requires_grad({&x, &weight, &bias}))
    record(out, "linear", {&x, &weight, &bias},
           [x = weight.requires_grad() ? SavedTensor(x) : SavedTensor(),
            weight = x.requires_grad() ? SavedTensor(weight) : SavedTensor()](const Tensor& g, const Node& n) {
             return std::vector<Tensor>{
                 n.needs_grad(0) ? matmul_t(g, false, weight.unpack(n), false) : Tensor(),  // G @ W
                 n.needs_grad(1) ? matmul_t(g, true, x.unpack(n), false) : Tensor(),        // G^T @ x
                 n.needs_grad(2) ? sum(g, {0}) : Tensor()};                                 // sum_i G[i, :]
           });
  return out;
}

// ---- attention ------------------------------------------------------------------------------------

namespace {

// The number of keys query i may look at: with `causal`, keys j <= i only (PyTorch's ones(L, S).tril(),
// aligned at the top left), else all S.
inline int64_t keys_seen(int64_t i, int64_t S, bool causal) { return causal ? std::min(i + 1, S) : S; }

// One row of attention_softmax: scores s [S] -> weights y [S], key j seen for j < seen:
//   y_j = e^(x_j - m) / sum_{j' < seen} e^(x_j' - m)  for j < seen,  0 beyond
// with x_j = scale * s_j and m = max_{j < seen} x_j (no exponent is positive, and the sum is >= 1).
// The float32 fast path finds m over eight lanes, computes e^(x - m) with the vectorizable fast_exp into y,
// and sums y in double over eight lanes (a fixed order: the same result on every run); the reference loop
// (float64, and -Dreference_kernels=true) uses std::exp and one running sum, as softmax's. The arguments
// are values, not references into a lambda's captures, so that the compiler knows a store into y changes
// none of them and vectorizes the loops.
template <class T> void attention_softmax_row(const T* s, T* y, int64_t seen, int64_t S, T scale) {
  if constexpr (std::is_same_v<T, float> && !kernel::kReferenceKernels) {
    constexpr int64_t kLanes = 8;
    float lane_max[kLanes];
    std::fill_n(lane_max, kLanes, -std::numeric_limits<float>::infinity());
    int64_t j = 0;
    for (; j + kLanes <= seen; j += kLanes)
      for (int64_t lane = 0; lane < kLanes; ++lane) lane_max[lane] = std::max(lane_max[lane], s[j + lane] * scale);
    float m = -std::numeric_limits<float>::infinity();
    for (; j < seen; ++j) m = std::max(m, s[j] * scale);
    for (float lane : lane_max) m = std::max(m, lane);
    for (j = 0; j < seen; ++j) y[j] = kernel::fast_exp(s[j] * scale - m);
    const double inv_total = 1.0 / kernel::lane_sum(seen, [y](int64_t k) { return static_cast<double>(y[k]); });
    for (j = 0; j < seen; ++j) y[j] = static_cast<float>(y[j] * inv_total);
  } else {
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < seen; ++j) m = std::max(m, s[j] * scale);
    double total = 0;
    for (int64_t j = 0; j < seen; ++j) total += std::exp(static_cast<double>(s[j] * scale - m));
    for (int64_t j = 0; j < seen; ++j) y[j] = static_cast<T>(std::exp(static_cast<double>(s[j] * scale - m)) / total);
  }
  std::fill(y + seen, y + S, T(0));
}

// One row of attention_softmax's backward: g = dL/dy, y = the weights -> ds = dL/ds, all [S]:
//   ds_j = scale * y_j (g_j - sum_{j' < seen} g_j' y_j')  for j < seen,  0 beyond
// (a key the query may not see gets no gradient, as masked_fill's backward gives). The dot product is
// summed in double, over eight lanes in the fast path, in order in the reference loop.
template <class T>
void attention_softmax_backward_row(const T* g, const T* y, T* ds, int64_t seen, int64_t S, T scale) {
  double dot = 0;
  if constexpr (std::is_same_v<T, float>) {
    dot = kernel::lane_sum(seen, [g, y](int64_t j) { return static_cast<double>(g[j]) * y[j]; });
  } else {
    for (int64_t j = 0; j < seen; ++j) dot += static_cast<double>(g[j]) * y[j];
  }
  const T row_dot = static_cast<T>(dot);
  for (int64_t j = 0; j < seen; ++j) ds[j] = scale * y[j] * (g[j] - row_dot);
  std::fill(ds + seen, ds + S, T(0));
}

// weights = softmax(scores * scale) along the last dim, keys j > query i left out when `causal`:
//   softmax(masked_fill(scores * scale, triu(ones(L, S), 1), -inf), -1)
// as one op (one pass per row instead of four ops, each a pass over [*, L, S]); scores: [*, L, S].
//   dL/ds = scale * y * (g - sum_j g y)          (softmax's backward, times the scale)
// With create_graph that line runs in ops, so it can be differentiated again; otherwise in one pass.
Tensor attention_softmax(const Tensor& scores, double scale, bool causal) {
  const int64_t L = scores.size(-2), S = scores.size(-1), rows = scores.numel() / std::max<int64_t>(S, 1);
  const bool threads = kernel::share_elements(scores.numel());
  Tensor out = empty(scores.shape(), scores.dtype());
  dispatch_float("scaled_dot_product_attention", scores.dtype(), [&]<class T>() {
    const T* s = scores.data<T>();
    T* y = out.mutable_data<T>();
    // each row made by one thread: the result does not depend on the thread count
    kernel::parallel_for(rows, threads, [&](int64_t r) {
      attention_softmax_row<T>(s + r * S, y + r * S, keys_seen(r % L, S, causal), S, static_cast<T>(scale));
    });
  });
  if (any_requires_grad({&scores}))
    record(out, "attention_softmax", {&scores},
           [out = SavedTensor::output(out), scale, causal, L, S, rows, threads](const Tensor& g, const Node& n) {
             const Tensor y = out.unpack(n);
             if (is_grad_enabled()) return std::vector<Tensor>{y * (g - sum(g * y, {y.dim() - 1}, true)) * scale};
             Tensor ds = empty(y.shape(), y.dtype());
             dispatch_float("scaled_dot_product_attention", y.dtype(), [&]<class T>() {
               const T *pg = g.data<T>(), *py = y.data<T>();
               T* pds = ds.mutable_data<T>();
               kernel::parallel_for(rows, threads, [&](int64_t r) {
                 attention_softmax_backward_row<T>(pg + r * S, py + r * S, pds + r * S, keys_seen(r % L, S, causal), S,
                                                   static_cast<T>(scale));
               });
             });
             return std::vector<Tensor>{ds};
           });
  return out;
}

}  // namespace

// q [*, L, E], k [*, S, E], v [*, S, Ev] -> out [*, L, Ev]: each of the L queries takes a weighted mean
// of the S values, weighted by how well it matches each key (Vaswani et al. 2017, eq. 1):
//   Attention(Q, K, V) = softmax(Q K^T / sqrt(E)) V
// Composed from ops, one line per step, so its backward is theirs (and can be differentiated again). Without
// attn_mask, scaling, the causal mask and softmax are the one op attention_softmax above.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                    double dropout_p, bool is_causal, std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  std::string shapes = "q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()) + ", v " + shape_str(v.shape());
  if (attn_mask.defined()) shapes += ", attn_mask " + shape_str(attn_mask.shape());
  const auto fail = [&](const std::string& expected) {
    throw Error(std::string(op) + ": " + shapes + "; " + expected);
  };
  if (q.dim() < 2 || k.dim() < 2 || v.dim() < 2 || q.size(-1) != k.size(-1) || k.size(-2) != v.size(-2))
    fail("expected q [*, L, E], k [*, S, E] and v [*, S, Ev] (q and k sharing E, k and v sharing S)");
  const int64_t L = q.size(-2), S = k.size(-2), E = q.size(-1);
  const auto broadcast = [&](const Shape& a, const Shape& b) -> std::optional<Shape> {
    try {
      return broadcast_shapes(op, a, b);
    } catch (const Error&) {
      return std::nullopt;
    }
  };
  const auto batch = [](const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); };
  const std::optional<Shape> qk_batch = broadcast(batch(q), batch(k));
  std::optional<Shape> scores_shape = qk_batch ? broadcast(*qk_batch, batch(v)) : std::nullopt;  // then [*, L, S]
  if (!scores_shape) fail("expected batch dims (all but the last two) that broadcast together");
  scores_shape->insert(scores_shape->end(), {L, S});
  if (q.dtype() == int64 || q.dtype() != k.dtype() || q.dtype() != v.dtype() ||
      (attn_mask.defined() && attn_mask.dtype() != int64 && attn_mask.dtype() != q.dtype()))
    fail(std::string("dtypes ") + dtype_name(q.dtype()) + ", " + dtype_name(k.dtype()) + ", " + dtype_name(v.dtype()) +
         (attn_mask.defined() ? std::string(", ") + dtype_name(attn_mask.dtype()) : std::string()) +
         "; expected one floating dtype (and an int64 or same-dtype mask)");
  if (attn_mask.defined() && broadcast(attn_mask.shape(), *scores_shape) != scores_shape)
    fail("expected attn_mask broadcastable to the scores' shape " + shape_str(*scores_shape) + " ([*, L, S])");
  if (is_causal && attn_mask.defined())
    fail("attn_mask given with is_causal = true; expected one or the other, as PyTorch");
  if (!(dropout_p >= 0 && dropout_p < 1))  // also refuses NaN
    fail("dropout_p = " + std::to_string(dropout_p) + "; expected a probability in [0, 1) (0 in evaluation)");
  const double scale_factor = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(E));
  const double minus_inf = -std::numeric_limits<double>::infinity();

  // scores = Q K^T, [*, L, S] (k is read transposed, not copied)
  Tensor scores = matmul_t(q, false, k, true);
  Tensor weights;
  if (!attn_mask.defined()) {
    // weights = softmax(scores * scale) over the keys, each query's weights summing to 1; causal: query i
    // may look at keys j <= i only (PyTorch's ones(L, S).tril() mask)
    weights = attention_softmax(scores, scale_factor, is_causal);
  } else {
    scores = scores * scale_factor;
    // a bool (int64) mask: 0 = may not attend; a float mask is added to the scores
    scores = attn_mask.dtype() == int64 ? masked_fill(scores, eq(attn_mask, 0.0), minus_inf) : scores + attn_mask;
    // weights = softmax over the keys: each query's weights sum to 1
    weights = softmax(scores, -1);
  }
  // dropout on the weights, as PyTorch: a key's weight is zeroed with probability dropout_p, the others
  // scaled by 1 / (1 - dropout_p)
  if (dropout_p > 0) weights = weights * dropout_mask(weights.shape(), dropout_p, weights.dtype());
  // out = weights V: each query's weighted mean of the values, [*, L, Ev]
  return matmul(weights, v);
}

Tensor Tensor::matmul(const Tensor& other) const { return ng::matmul(*this, other); }

}  // namespace ng
