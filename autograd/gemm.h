// gemm.h: the matrix-multiply kernels behind matmul (internal to autograd/, declared here so tests
// can compare the fast kernel with the plain one).
//
//   C[M,N] += A[M,K] @ B[K,N]          (gemm, gemm_reference)
//   C[M,N]  = A[M,K] @ B[K,N]          (gemm_overwrite: C need not be cleared first, its old values are not read)
//
// A and B are read through strides (element (i,k) of A at A[i*a_row + k*a_col], element (k,j) of B
// at B[k*b_row + j*b_col]), so a transposed operand needs no copy: A^T of a row-major [K,M] matrix is
// a_row = 1, a_col = M. C is row-major with rows of length N.
//
// gemm_reference is the textbook triple loop. gemm is the same sum, computed in tiles: a 6x16 block
// of C (8x32 on a CPU with AVX-512) stays in registers while k runs (so each loaded element of A and B
// is used for every column resp. row of the tile), and k is cut into slices so the touched part of B stays in cache.
// Same results up to rounding (the order of the additions differs from the triple loop's); the two tile
// sizes give bit-identical results. gemm shares the column panels of C out among threads (see
// parallel_for.h); built with -Dreference_kernels=true, gemm is gemm_reference.
#pragma once

#include <cstdint>

namespace ng::kernel {

template <class T> void gemm_reference(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row, int64_t a_col,
                                       const T* B, int64_t b_row, int64_t b_col, T* C);

template <class T> void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row, int64_t a_col, const T* B,
                             int64_t b_row, int64_t b_col, T* C);

// C = A @ B: gemm's tiles store their sums into C in the first k-slice instead of adding them, so a
// caller that would fill C with zeros first saves that pass over C. For every element the additions are
// gemm's, in gemm's order: the result is bit for bit gemm's on a C of zeros.
template <class T> void gemm_overwrite(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row, int64_t a_col,
                                       const T* B, int64_t b_row, int64_t b_col, T* C);

// For tests and benchmarks: gemm (or gemm_overwrite, `overwrite`) with the AVX-512 tiles (`wide`, where
// the CPU has them) or the narrow ones.
template <class T> void gemm_with(bool wide, int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row, int64_t a_col,
                                  const T* B, int64_t b_row, int64_t b_col, T* C, bool overwrite = false);
bool gemm_wide_available();  // the CPU has AVX-512 and the build has the wide kernel

// dst[c*ld_dst + r] = src[r*ld_src + c] for r < rows, c < cols: a matrix copied transposed, with the AVX-512
// family's 16 x 16 register transpose where the CPU has it (float), else element by element. A copy: the
// same values either way.
template <class T>
void transpose_copy(int64_t rows, int64_t cols, const T* src, int64_t ld_src, T* dst, int64_t ld_dst);
const char* gemm_kernel_name();

}  // namespace ng::kernel
