// ops_matmul.cpp: matrix multiplication and its backward.
//
//   C = A @ B,  A: [M, K], B: [K, N] -> C: [M, N],  C[i,j] = sum_k A[i,k] B[k,j]
//   dL/dA = G @ B^T   ([M,N] @ [N,K] -> [M,K])
//   dL/dB = A^T @ G   ([K,M] @ [M,N] -> [K,N])      where G = dL/dC
//
// The batched form applies this to each matrix of a [batch, M, K] @ [batch, K, N] pair; a 2-D side is
// shared by every batch element, so its gradient is the sum over the batch. The vector cases are
// reshapes around the matrix case, so their gradients come from the graph.
#include <vector>

#include "gemm.h"
#include "graph.h"
#include "ops.h"

namespace ng {

namespace {

// op(A) @ op(B) for [b?,M,K]-shaped operands, where op(X) is X or its transpose (the last two dims
// swapped). The transpose is never copied: gemm reads the operand through swapped strides. This is
// the one recorded matmul node; its backward is two more of them:
//   C = op_a(A) @ op_b(B),  G = dL/dC
//   d op_a(A) = G @ op_b(B)^T   so   dA = G @ op_b(B)^T          (ta false)   or  op_b(B) @ G^T  (ta true)
//   d op_b(B) = op_a(A)^T @ G   so   dB = op_a(A)^T @ G          (tb false)   or  G^T @ op_a(A)  (tb true)
// A 2-D operand used by every matrix of a batch gets the sum of its gradients over the batch.
Tensor matmul_t(const Tensor& a, bool ta, const Tensor& b, bool tb) {
  const Shape &sa = a.shape(), &sb = b.shape();
  const int64_t a_batch = a.dim() == 3 ? sa[0] : 1, b_batch = b.dim() == 3 ? sb[0] : 1;
  const int64_t a_rows = sa[a.dim() - 2], a_cols = sa[a.dim() - 1], b_rows = sb[b.dim() - 2], b_cols = sb[b.dim() - 1];
  const int64_t M = ta ? a_cols : a_rows, K = ta ? a_rows : a_cols, N = tb ? b_rows : b_cols;
  if ((tb ? b_cols : b_rows) != K)
    throw Error("matmul: " + shape_str(sa) + (ta ? "^T" : "") + " @ " + shape_str(sb) + (tb ? "^T" : "") +
                ": inner dimensions differ");
  if (a_batch != b_batch && a_batch != 1 && b_batch != 1)
    throw Error("matmul: " + shape_str(sa) + " @ " + shape_str(sb) + ": batch sizes " + std::to_string(a_batch) +
                " and " + std::to_string(b_batch) + " differ (expected equal, or one of them 1)");
  const int64_t batch = std::max(a_batch, b_batch);
  Shape out_shape = {M, N};
  if (a.dim() == 3 || b.dim() == 3) out_shape.insert(out_shape.begin(), batch);

  Tensor out = zeros(out_shape, a.dtype());
  dispatch_float("matmul", a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    // Element (i, k) of op(A) sits at i * row + k * col.
    const int64_t a_row = ta ? 1 : a_cols, a_col = ta ? a_cols : 1;
    const int64_t b_row = tb ? 1 : b_cols, b_col = tb ? b_cols : 1;
    T* c = out.mutable_data<T>();
    for (int64_t i = 0; i < batch; ++i)
      kernel::gemm(M, N, K, a.data<T>() + (a_batch == 1 ? 0 : i * a_rows * a_cols), a_row, a_col,
                   b.data<T>() + (b_batch == 1 ? 0 : i * b_rows * b_cols), b_row, b_col, c + i * M * N);
  });

  if (any_requires_grad({&a, &b}))
    record(out, "matmul", {&a, &b},
           [a = b.requires_grad() ? SavedTensor(a) : SavedTensor(), b = a.requires_grad() ? SavedTensor(b) : SavedTensor(),
            sa, sb, ta, tb](const Tensor& g, const Node& n) {
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

// [b?,M,K] @ [b?,K,N]: both 2-D or 3-D, inner dimensions already checked by matmul().
Tensor matmul_matrices(const Tensor& a, const Tensor& b) { return matmul_t(a, false, b, false); }

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw Error("matmul: " + shape_str(a.shape()) + " " + dtype_name(a.dtype()) + " @ " + shape_str(b.shape()) + " " +
                dtype_name(b.dtype()) + ": dtypes differ; convert one with .to()");
  const int64_t da = a.dim(), db = b.dim();
  if (da < 1 || da > 3 || db < 1 || db > 3)
    throw Error("matmul: " + shape_str(a.shape()) + " @ " + shape_str(b.shape()) +
                ": expected 1-D, 2-D or 3-D operands");
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
  dispatch_float("linear", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
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
             return std::vector<Tensor>{n.needs_grad(0) ? matmul_t(g, false, weight.unpack(n), false) : Tensor(),  // G @ W
                                        n.needs_grad(1) ? matmul_t(g, true, x.unpack(n), false) : Tensor(),  // G^T @ x
                                        n.needs_grad(2) ? sum(g, {0}) : Tensor()};  // sum_i G[i, :]
           });
  return out;
}

Tensor Tensor::matmul(const Tensor& other) const { return ng::matmul(*this, other); }

}  // namespace ng
