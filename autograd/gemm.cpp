// gemm.cpp: C += A @ B (and C = A @ B), a plain reference loop and a register-tiled fast version
// (see gemm.h).
#include "gemm.h"

#include <algorithm>
#include <vector>

#include "parallel_for.h"

namespace ng::kernel {

// C[i,j] += sum_k A[i,k] B[k,j]; loop order i, k, j so the inner loop walks rows of B and C.
template <class T> void gemm_reference(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row, int64_t a_col,
                                       const T* B, int64_t b_row, int64_t b_col, T* C) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) {
      const T a_ik = A[i * a_row + k * a_col];
      for (int64_t j = 0; j < N; ++j) C[i * N + j] += a_ik * B[k * b_row + j * b_col];
    }
}

namespace {

constexpr int64_t kCols = 16;    // columns of the C tile (and of a packed panel of B)
constexpr int64_t kDepth = 256;  // k-slice: kDepth x N of B is reused across all row tiles

// A short vector of T that the compiler maps to one SIMD register (GCC/Clang vector extension):
// 32 bytes = 8 floats or 4 doubles, one AVX register; 64 bytes, one AVX-512 register.
template <class T, int Bytes> using Vec [[gnu::vector_size(Bytes)]] = T;

// One full tile: C[0:Rows, 0:16] += A[0:Rows, 0:depth] @ B[0:depth, 0:16], or = when `store` (the first
// k-slice of gemm_overwrite: C's old contents, maybe garbage, are never read). The Rows x 16 accumulators live
// in vector registers for the whole k loop; each step broadcasts one element of A per row and
// multiplies it with the 16 elements of B's row k. For every element of C the products are added in the
// order k = 0, 1, ..., whatever the vector width: the two kernels below give bit-identical results.
template <class T, int64_t Rows, int Bytes>
[[gnu::always_inline]] inline void tile(int64_t depth, const T* A, int64_t a_row, int64_t a_col, const T* B,
                                        int64_t ldb, T* C, int64_t ldc, bool store) {
  using V = Vec<T, Bytes>;
  constexpr int64_t lanes = Bytes / static_cast<int64_t>(sizeof(T));
  constexpr int64_t vecs = kCols / lanes;  // vectors per tile row
  V acc[Rows][vecs] = {};
  for (int64_t k = 0; k < depth; ++k) {
    V b[vecs];
    for (int64_t v = 0; v < vecs; ++v) __builtin_memcpy(&b[v], B + k * ldb + v * lanes, sizeof(V));
    for (int64_t r = 0; r < Rows; ++r) {
      const T a = A[r * a_row + k * a_col];
      for (int64_t v = 0; v < vecs; ++v) acc[r][v] += a * b[v];
    }
  }
  for (int64_t r = 0; r < Rows; ++r)
    for (int64_t v = 0; v < vecs; ++v) {
      if (store) {
        __builtin_memcpy(C + r * ldc + v * lanes, &acc[r][v], sizeof(V));
        continue;
      }
      V c;
      __builtin_memcpy(&c, C + r * ldc + v * lanes, sizeof(V));
      c += acc[r][v];
      __builtin_memcpy(C + r * ldc + v * lanes, &c, sizeof(V));
    }
}

// The two kernels. AVX2 (or whatever the build targets): 6 rows, 6 x 2 accumulators of 8 floats + 2 for B,
// 14 of 16 registers. AVX-512: 12 rows, 12 accumulators of 16 floats (24 of 8 doubles) of 32 registers;
// each step then does 12 multiply-adds of 16 lanes for 13 loads, where AVX2 does 12 of 8 lanes for 8.
// The AVX-512 one is compiled for AVX-512 on its own (a target attribute) and chosen at run time when
// the CPU has it, so the rest of the build need not use AVX-512: Debian 12's GCC 12.2 miscompiles some
// constant vectors under -mavx512f (meson.build's probe), and this kernel holds no constant but zero.
constexpr int64_t kRowsNarrow = 6;
template <class T> void tile_narrow(int64_t depth, const T* A, int64_t a_row, int64_t a_col, const T* B, int64_t ldb,
                                    T* C, int64_t ldc, bool store) {
  tile<T, kRowsNarrow, 32>(depth, A, a_row, a_col, B, ldb, C, ldc, store);
}
// Only where the narrow kernel fuses its multiply-adds too (__FMA__, as -march=native gives on any CPU
// with AVX-512): a portable build's narrow kernel rounds each product, and the two would then differ.
#if defined(__x86_64__) && defined(__FMA__)
#define NG_GEMM_AVX512 1
constexpr int64_t kRowsWide = 12;
template <class T> [[gnu::target("avx512f")]] void tile_wide(int64_t depth, const T* A, int64_t a_row, int64_t a_col,
                                                             const T* B, int64_t ldb, T* C, int64_t ldc, bool store) {
  tile<T, kRowsWide, 64>(depth, A, a_row, a_col, B, ldb, C, ldc, store);
}
#endif

// Column panels of C are shared out among the threads, within each k-slice: every element of C is then
// computed by one thread, with the same additions in the same order as on one thread (bit-identical
// results for any thread count). Each thread packs the panels of B it uses; the padded rows of A are
// made once per k-slice and shared.
// Below kParallelFlops multiply-adds (M*N*K) one thread is as fast. Measured on the 2-core test machine,
// float32, best of 101 blocks (the machine was shared), 1 thread -> 2 threads: [64,64]@[64,64] (0.26M)
// 7.0 -> 5.1 us, [60,100]@[100,100]^T (0.6M) 19.7 -> 17.1 us, [60,784]@[784,100] (4.7M) 110 -> 69 us.
constexpr int64_t kParallelFlops = int64_t{1} << 18;

template <class T, int64_t kRows, class Tile> void gemm_tiled(int64_t M, int64_t N, int64_t K, const T* A,
                                                              int64_t a_row, int64_t a_col, const T* B, int64_t b_row,
                                                              int64_t b_col, T* C, bool overwrite, Tile tile_fn) {
  // A panel of B (depth x 16) is used as it is when its rows are contiguous, and otherwise copied
  // ("packed") into a contiguous buffer: for a transposed B, or zero-padded at the ragged right edge.
  // The ragged bottom edge (fewer than kRows rows left) likewise runs through the same tile on a
  // zero-padded copy of A, so there is only one inner loop to get right and fast.
  // Overwriting: the first k-slice stores its tiles into C, the later ones add to them (the same
  // additions in the same order as accumulating onto a C of zeros).
  if (overwrite && K == 0) std::fill_n(C, M * N, T(0));
  std::vector<T> a_padded(static_cast<std::size_t>(kRows * std::min(kDepth, K)));
  const int64_t full_rows = M - M % kRows;  // rows covered by whole tiles; the rest (< kRows) is padded
  const int64_t panels = (N + kCols - 1) / kCols;
  for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
    const int64_t depth = std::min(kDepth, K - k0);
    const T* A_slice = A + k0 * a_col;
    const bool store = overwrite && k0 == 0;
    if (full_rows < M) {  // padded once per k-slice, then reused by every column panel
      std::fill(a_padded.begin(), a_padded.end(), T(0));
      for (int64_t r = 0; r < M - full_rows; ++r)
        for (int64_t k = 0; k < depth; ++k) a_padded[r * depth + k] = A_slice[(full_rows + r) * a_row + k * a_col];
    }
    parallel_for(panels, M * N * K >= kParallelFlops, [&](int64_t panel) {
      thread_local std::vector<T> b_packed;  // one per thread, kept between calls
      b_packed.resize(static_cast<std::size_t>(kDepth * kCols));
      T c_padded[kRows * kCols];
      const int64_t j0 = panel * kCols, cols = std::min(kCols, N - j0);
      const T* b = B + k0 * b_row + j0 * b_col;
      int64_t ldb = b_row;
      if (cols < kCols || b_col != 1) {
        if (cols < kCols) std::fill_n(b_packed.begin(), depth * kCols, T(0));
        // k outer: each row of the panel is written whole (kCols contiguous values), read from `cols`
        // columns of b that each advance one step per k (for a transposed B, cols rows read in step)
        for (int64_t k = 0; k < depth; ++k)
          for (int64_t j = 0; j < cols; ++j) b_packed[k * kCols + j] = b[k * b_row + j * b_col];
        b = b_packed.data();
        ldb = kCols;
      }
      for (int64_t i0 = 0; i0 < full_rows; i0 += kRows) {
        T* c = C + i0 * N + j0;
        if (cols == kCols) {
          tile_fn(depth, A_slice + i0 * a_row, a_row, a_col, b, ldb, c, N, store);
          continue;
        }
        // a ragged right edge: the tile is stored into c_padded, whose first `cols` columns then go
        // into C (stored on the first slice of gemm_overwrite, else added)
        tile_fn(depth, A_slice + i0 * a_row, a_row, a_col, b, ldb, c_padded, kCols, true);
        for (int64_t r = 0; r < kRows; ++r)
          for (int64_t j = 0; j < cols; ++j)
            c[r * N + j] = store ? c_padded[r * kCols + j] : c[r * N + j] + c_padded[r * kCols + j];
      }
      if (full_rows < M) {
        tile_fn(depth, a_padded.data(), depth, int64_t{1}, b, ldb, c_padded, kCols, true);
        T* c = C + full_rows * N + j0;
        for (int64_t r = 0; r < M - full_rows; ++r)
          for (int64_t j = 0; j < cols; ++j)
            c[r * N + j] = store ? c_padded[r * kCols + j] : c[r * N + j] + c_padded[r * kCols + j];
      }
    });
  }
}

}  // namespace

bool gemm_wide_available() {
#ifdef NG_GEMM_AVX512
  if constexpr (kReferenceKernels) {
    return false;  // -Dreference_kernels=true leaves out the special-case fast paths, these tiles too
  } else {
    // __builtin_cpu_init first: this may run before main (a test's skip decorator asks at registration).
    static const bool available = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
    return available;
  }
#else
  return false;
#endif
}

const char* gemm_kernel_name() { return gemm_wide_available() ? "AVX-512, 12x16 tiles" : "6x16 tiles"; }

template <class T> void gemm_with(bool wide, int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row, int64_t a_col,
                                  const T* B, int64_t b_row, int64_t b_col, T* C, bool overwrite) {
#ifdef NG_GEMM_AVX512
  if (wide && gemm_wide_available()) {
    gemm_tiled<T, kRowsWide>(M, N, K, A, a_row, a_col, B, b_row, b_col, C, overwrite, tile_wide<T>);
    return;
  }
#endif
  (void)wide;
  gemm_tiled<T, kRowsNarrow>(M, N, K, A, a_row, a_col, B, b_row, b_col, C, overwrite, tile_narrow<T>);
}

template <class T> void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row, int64_t a_col, const T* B,
                             int64_t b_row, int64_t b_col, T* C) {
  if constexpr (kReferenceKernels)
    gemm_reference(M, N, K, A, a_row, a_col, B, b_row, b_col, C);
  else
    gemm_with(true, M, N, K, A, a_row, a_col, B, b_row, b_col, C);
}

template <class T> void gemm_overwrite(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row, int64_t a_col,
                                       const T* B, int64_t b_row, int64_t b_col, T* C) {
  if constexpr (kReferenceKernels) {
    std::fill_n(C, M * N, T(0));
    gemm_reference(M, N, K, A, a_row, a_col, B, b_row, b_col, C);
  } else {
    gemm_with(true, M, N, K, A, a_row, a_col, B, b_row, b_col, C, true);
  }
}

template void gemm_reference<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t,
                                    int64_t, float*);
template void gemm_reference<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t, const double*, int64_t,
                                     int64_t, double*);
template void gemm<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t, int64_t,
                          float*);
template void gemm<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t, const double*, int64_t, int64_t,
                           double*);
template void gemm_overwrite<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t,
                                    int64_t, float*);
template void gemm_overwrite<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t, const double*, int64_t,
                                     int64_t, double*);
template void gemm_with<float>(bool, int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t,
                               int64_t, float*, bool);
template void gemm_with<double>(bool, int64_t, int64_t, int64_t, const double*, int64_t, int64_t, const double*,
                                int64_t, int64_t, double*, bool);

}  // namespace ng::kernel
