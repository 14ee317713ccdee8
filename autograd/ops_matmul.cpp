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

#include "graph.h"
#include "ops.h"

namespace ng {

namespace {

// C[M,N] += A[M,K] @ B[K,N]. Loop order i, k, j: the inner loop runs along rows of B and C, which
// are contiguous, so the compiler vectorizes it.
template <class T> void gemm_accumulate(const T* A, const T* B, T* C, int64_t M, int64_t K, int64_t N) {
  for (int64_t i = 0; i < M; ++i) {
    T* c_row = C + i * N;
    for (int64_t k = 0; k < K; ++k) {
      const T a_ik = A[i * K + k];
      const T* b_row = B + k * N;
      for (int64_t j = 0; j < N; ++j) c_row[j] += a_ik * b_row[j];
    }
  }
}

// C[K,N] += A^T @ G with A: [M,K], G: [M,N] (the weight gradient), rows of G and C contiguous.
template <class T> void gemm_tn_accumulate(const T* A, const T* G, T* C, int64_t M, int64_t K, int64_t N) {
  for (int64_t i = 0; i < M; ++i) {
    const T* g_row = G + i * N;
    for (int64_t k = 0; k < K; ++k) {
      const T a_ik = A[i * K + k];
      T* c_row = C + k * N;
      for (int64_t j = 0; j < N; ++j) c_row[j] += a_ik * g_row[j];
    }
  }
}

// out[N,K] = in[K,N]^T
template <class T> void transpose_into(const T* in, T* out, int64_t K, int64_t N) {
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) out[j * K + k] = in[k * N + j];
}

struct Batched {
  int64_t batch, M, K, N;
  bool a_shared, b_shared;  // a 2-D operand (or a batch of 1) used for every batch element
};

// [b?,M,K] @ [b?,K,N]: both 2-D or 3-D.
Tensor matmul_matrices(const Tensor& a, const Tensor& b) {
  const Shape &sa = a.shape(), &sb = b.shape();
  const int64_t a_batch = a.dim() == 3 ? sa[0] : 1, b_batch = b.dim() == 3 ? sb[0] : 1;
  const int64_t M = sa[a.dim() - 2], K = sa[a.dim() - 1], N = sb[b.dim() - 1];
  if (sb[b.dim() - 2] != K)
    throw Error("matmul: " + shape_str(sa) + " @ " + shape_str(sb) + ": inner dimensions " + std::to_string(K) +
                " and " + std::to_string(sb[b.dim() - 2]) + " differ");
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
      gemm_accumulate(a.data<T>() + (p.a_shared ? 0 : i * M * K), b.data<T>() + (p.b_shared ? 0 : i * K * N),
                      out.data<T>() + i * M * N, M, K, N);
  });

  if (any_requires_grad({&a, &b}))
    record(out, "matmul", {&a, &b}, [a = a.detach(), b = b.detach(), p](const Tensor& g, const Node& n) {
      Tensor da, db;
      dispatch_float("matmul", g.dtype(), [&](auto zero) {
        using T = decltype(zero);
        const T* pg = g.data<T>();
        if (n.needs_grad(0)) {  // dA = G @ B^T
          da = zeros(a.shape(), a.dtype());
          std::vector<T> b_t(static_cast<std::size_t>(p.K * p.N));
          for (int64_t i = 0; i < p.batch; ++i) {
            if (i == 0 || !p.b_shared) transpose_into(b.data<T>() + (p.b_shared ? 0 : i * p.K * p.N), b_t.data(), p.K, p.N);
            gemm_accumulate(pg + i * p.M * p.N, b_t.data(), da.data<T>() + (p.a_shared ? 0 : i * p.M * p.K), p.M, p.N, p.K);
          }
        }
        if (n.needs_grad(1)) {  // dB = A^T @ G
          db = zeros(b.shape(), b.dtype());
          for (int64_t i = 0; i < p.batch; ++i)
            gemm_tn_accumulate(a.data<T>() + (p.a_shared ? 0 : i * p.M * p.K), pg + i * p.M * p.N,
                               db.data<T>() + (p.b_shared ? 0 : i * p.K * p.N), p.M, p.K, p.N);
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
  // Vector cases, as PyTorch: a 1-D left operand is a row [1,K], a 1-D right operand a column [K,1],
  // and the added dimension is removed from the result.
  if (da == 1 && db == 1) {
    if (a.shape()[0] != b.shape()[0])
      throw Error("matmul: " + shape_str(a.shape()) + " @ " + shape_str(b.shape()) + ": inner dimensions " +
                  std::to_string(a.shape()[0]) + " and " + std::to_string(b.shape()[0]) + " differ");
    return reshape(matmul_matrices(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  }
  if (da == 1) return squeeze(matmul_matrices(unsqueeze(a, 0), b), -2);
  if (db == 1) return squeeze(matmul_matrices(a, unsqueeze(b, 1)), -1);
  return matmul_matrices(a, b);
}

Tensor Tensor::matmul(const Tensor& other) const { return ng::matmul(*this, other); }

}  // namespace ng
