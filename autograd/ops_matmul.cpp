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

struct Batched {
  int64_t batch, M, K, N;
  bool a_shared, b_shared;  // a 2-D operand (or a batch of 1) used for every batch element
};

// [b?,M,K] @ [b?,K,N]: both 2-D or 3-D, inner dimensions already checked by matmul().
Tensor matmul_matrices(const Tensor& a, const Tensor& b) {
  const Shape &sa = a.shape(), &sb = b.shape();
  const int64_t a_batch = a.dim() == 3 ? sa[0] : 1, b_batch = b.dim() == 3 ? sb[0] : 1;
  const int64_t M = sa[a.dim() - 2], K = sa[a.dim() - 1], N = sb[b.dim() - 1];
  if (a_batch != b_batch && a_batch != 1 && b_batch != 1)
    throw Error("matmul: " + shape_str(sa) + " @ " + shape_str(sb) + ": batch sizes " + std::to_string(a_batch) +
                " and " + std::to_string(b_batch) + " differ (expected equal, or one of them 1)");
  const Batched p{std::max(a_batch, b_batch), M, K, N, a_batch == 1, b_batch == 1};
  Shape out_shape = {M, N};
  if (a.dim() == 3 || b.dim() == 3) out_shape.insert(out_shape.begin(), p.batch);

  Tensor out = zeros(out_shape, a.dtype());
  dispatch_float("matmul", a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    for (int64_t i = 0; i < p.batch; ++i)
      kernel::gemm(M, N, K, a.data<T>() + (p.a_shared ? 0 : i * M * K), K, int64_t{1},
                   b.data<T>() + (p.b_shared ? 0 : i * K * N), N, int64_t{1}, out.data<T>() + i * M * N);
  });

  if (any_requires_grad({&a, &b}))
    record(out, "matmul", {&a, &b}, [a = a.detach(), b = b.detach(), p](const Tensor& g, const Node& n) {
      Tensor da, db;
      dispatch_float("matmul", g.dtype(), [&](auto zero) {
        using T = decltype(zero);
        const T* pg = g.data<T>();
        if (n.needs_grad(0)) {  // dA = G @ B^T: B [K,N] read transposed as [N,K] (row stride 1, column stride N)
          da = zeros(a.shape(), a.dtype());
          for (int64_t i = 0; i < p.batch; ++i)
            kernel::gemm(p.M, p.K, p.N, pg + i * p.M * p.N, p.N, int64_t{1}, b.data<T>() + (p.b_shared ? 0 : i * p.K * p.N),
                         int64_t{1}, p.N, da.data<T>() + (p.a_shared ? 0 : i * p.M * p.K));
        }
        if (n.needs_grad(1)) {  // dB = A^T @ G: A [M,K] read transposed as [K,M]
          db = zeros(b.shape(), b.dtype());
          for (int64_t i = 0; i < p.batch; ++i)
            kernel::gemm(p.K, p.N, p.M, a.data<T>() + (p.a_shared ? 0 : i * p.M * p.K), int64_t{1}, p.K,
                         pg + i * p.M * p.N, p.N, int64_t{1}, db.data<T>() + (p.b_shared ? 0 : i * p.K * p.N));
        }
      });
      return std::vector<Tensor>{da, db};
    });
  return out;
}

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
    T* y = out.data<T>();
    const T* b = bias.defined() ? bias.data<T>() : nullptr;
    for (int64_t i = 0; i < N; ++i)  // start from the bias (or 0), then add x @ W^T
      for (int64_t j = 0; j < out_features; ++j) y[i * out_features + j] = b ? b[j] : T(0);
    kernel::gemm(N, out_features, in, x.data<T>(), in, int64_t{1}, weight.data<T>(), int64_t{1}, in, y);
  });
  if (any_requires_grad({&x, &weight, &bias}))
    record(out, "linear", {&x, &weight, &bias},
           [x = x.detach(), weight = weight.detach(), N, in, out_features](const Tensor& g, const Node& n) {
             std::vector<Tensor> grads(3);
             dispatch_float("linear", g.dtype(), [&](auto zero) {
               using T = decltype(zero);
               const T* pg = g.data<T>();
               if (n.needs_grad(0)) {  // dx = G @ W
                 grads[0] = zeros(x.shape(), x.dtype());
                 kernel::gemm(N, in, out_features, pg, out_features, int64_t{1}, weight.data<T>(), in, int64_t{1},
                              grads[0].data<T>());
               }
               if (n.needs_grad(1)) {  // dW = G^T @ x
                 grads[1] = zeros(weight.shape(), weight.dtype());
                 kernel::gemm(out_features, in, N, pg, int64_t{1}, out_features, x.data<T>(), in, int64_t{1},
                              grads[1].data<T>());
               }
               if (n.needs_grad(2)) grads[2] = sum(g, {0});  // db = sum_i G[i, :]
             });
             return grads;
           });
  return out;
}

Tensor Tensor::matmul(const Tensor& other) const { return ng::matmul(*this, other); }

}  // namespace ng
