// gemm.cpp: C += A @ B (and C = A @ B), a plain reference loop and a register-tiled fast version
// (see gemm.h).
#include "gemm.h"

#include <algorithm>
#include <vector>

#include "gemm_tile.h"
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

constexpr int64_t kDepth = 256;  // k-slice: kDepth x N of B is reused across all row tiles

// The two families (gemm_tile.h). AVX2 (or whatever the build targets): 6 rows of 2 vectors, 12 accumulators
// + 2 for B of 16 registers (6 x 16 floats), compiled here. AVX-512: 8 rows of 2 vectors (8 x 32 floats),
// compiled in gemm_avx512.cpp, the one file built for AVX-512, and chosen at run time when the CPU has it.
constexpr int64_t kRowsNarrow = 6;
template <class T, int64_t Rows, int64_t Vecs, int Bytes> struct NarrowTile {
  static void run(int64_t depth, const T* A, int64_t a_row, int64_t a_col, const T* B, int64_t ldb, T* C, int64_t ldc,
                  bool store) {
    tile<T, Rows, Vecs, Bytes>(depth, A, a_row, a_col, B, ldb, C, ldc, store);
  }
};
template <class T> Tiles<T> narrow_tiles() {
  const TileWidth<T> one_vector = tile_width<T, 1, 32, NarrowTile, kRowsNarrow>();
  return {kRowsNarrow, {tile_width<T, 2, 32, NarrowTile, kRowsNarrow>(), one_vector, one_vector}};
}
// Only where the narrow kernel fuses its multiply-adds too (__FMA__, as -march=native gives on any CPU
// with AVX-512): a portable build's narrow kernel rounds each product, and the two would then differ.
#if defined(__x86_64__) && defined(__FMA__)
#define NG_GEMM_AVX512 1
#endif
constexpr int64_t kMaxRows = 8, kMaxCols = 32;  // the largest tile of any family (floats), for c_padded

// Column panels of C are shared out among the threads, each panel through all its k-slices: every element
// of C is then computed by one thread, with the same additions in the same order as on one thread
// (bit-identical results for any thread count). Each thread packs the panels of B it uses.
// Below kParallelFlops multiply-adds (M*N*K) one thread is as fast. Measured on the 2-core test machine,
// float32, best of 101 blocks (the machine was shared), 1 thread -> 2 threads: [64,64]@[64,64] (0.26M)
// 7.0 -> 5.1 us, [60,100]@[100,100]^T (0.6M) 19.7 -> 17.1 us, [60,784]@[784,100] (4.7M) 110 -> 69 us.
constexpr int64_t kParallelFlops = int64_t{1} << 18;
// ... when the two cores are close. When the machine put them far apart (cores_far, thread_pool.h), the
// worker pays that distance for every line of A, B and C it must fetch from the caller's cache, and a small
// product loses: on the 2-core test machine
// with its cores on two dies (340-400 ns), the MLP step at 2 threads took 210 us sharing out products from
// 2^18 multiply-adds (its [60,100] @ [100,100] ones, 0.6M, among them), 164-172 us from 2^22 (only the
// [60,784] @ [784,100] ones, 4.7M), 187 us sharing out none, and 182-186 us on one thread. On one die the
// small products gain (7.8 -> 4.6 us each).
constexpr int64_t kParallelFlopsFar = int64_t{1} << 22;

template <class T> void gemm_tiled(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row, int64_t a_col,
                                   const T* B, int64_t b_row, int64_t b_col, T* C, bool overwrite, Tiles<T> tiles) {
  // A panel of B (depth x cols) is used as it is when its rows are contiguous, and otherwise copied
  // ("packed") into a contiguous buffer: for a transposed B, or zero-padded at the ragged right edge,
  // where the panel is as narrow as the family allows. The last rows of C (fewer than tiles.rows) run
  // through the tile of their height.
  // Overwriting: the first k-slice stores its tiles into C, the later ones add to them (the same
  // additions in the same order as accumulating onto a C of zeros).
  if (overwrite && K == 0) std::fill_n(C, M * N, T(0));
  const int64_t cols = tiles.widths[0].cols, panels = (N + cols - 1) / cols;
  const bool share = worth_sharing(M * N * K, kParallelFlops, kParallelFlopsFar);
  // With fewer panels than kChunksPerThread per thread, whole panels do not share out evenly: with the
  // AVX-512 tiles (32 columns) the MLP's N = 100 is three full panels and one of 4 columns, so on two
  // threads one took two full panels and the other a full one and the narrow one, and waited. Then the
  // rows are cut into one part per thread too (at a multiple of the tile's height, so that every row goes
  // through the same tile as before: the same bits), and the work items are (part, panel), the first part
  // of every panel first; on two threads the caller takes the first part of every panel and the worker
  // the second (the caller takes items from the front, the workers from the back). A panel of a
  // transposed B is then packed by every thread that uses it, which is why this is kept to few panels; on
  // one thread nothing changes. Nor when the cores are far apart (cores_far): every thread then reads all
  // of B, not only its own panels, much of it across the dies; on the 2-core test machine with its cores
  // on two dies the MLP step without BN took 168-170 us with the rows cut against 163-167 us without.
  const int count = threads_for(panels * 2, share);  // (the items are at least 2 per panel when cut)
  const int64_t row_parts = count > 1 && panels < kChunksPerThread * count && !cores_far()
                                ? std::clamp<int64_t>(M / tiles.rows, 1, count)
                                : 1;
  // part_rows = ceil(M / row_parts), rounded up to a multiple of the tile's height
  const int64_t part_rows = ((M + row_parts - 1) / row_parts + tiles.rows - 1) / tiles.rows * tiles.rows;
  // One parallel region per gemm: a thread takes a panel of C (or a part of its rows) through every
  // k-slice, so it stays in its cache from the first slice to the last (and the threads are woken once,
  // not once per slice).
  parallel_for(row_parts * panels, share, [&](int64_t item) {
    thread_local std::vector<T> b_packed;  // one per thread, kept between calls
    b_packed.resize(static_cast<std::size_t>(kDepth * kMaxCols));
    T c_padded[kMaxRows * kMaxCols];
    const int64_t panel = item % panels, i_begin = item / panels * part_rows, i_end = std::min(M, i_begin + part_rows);
    if (i_begin >= i_end) return;  // (rounding the parts up to whole tiles may leave the last one empty)
    const int64_t j0 = panel * cols, width = std::min(cols, N - j0);  // columns of C in this panel
    TileWidth<T> tw = tiles.widths[0];
    for (const TileWidth<T>& narrower : tiles.widths)
      if (narrower.cols >= width) tw = narrower;  // the narrowest that holds the panel
    const int64_t panel_cols = tw.cols;           // the tile's columns (>= width)
    if (width < panel_cols) std::fill_n(b_packed.begin(), std::min(K, kDepth) * panel_cols, T(0));  // the padding
    for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
      const int64_t depth = std::min(kDepth, K - k0);
      const T* A_slice = A + k0 * a_col;
      const bool store = overwrite && k0 == 0;
      const T* b = B + k0 * b_row + j0 * b_col;
      int64_t ldb = b_row;
      if (width < panel_cols || b_col != 1) {
        // k outer: each row of the panel is written whole (contiguous values), read from `width` columns
        // of b that each advance one step per k (for a transposed B, `width` rows read in step)
        if (b_row == 1 && tiles.pack_transposed)  // a transposed B, and the family has its own copy
          tiles.pack_transposed(depth, width, b, b_col, b_packed.data(), panel_cols);
        else
          for (int64_t k = 0; k < depth; ++k)
            for (int64_t j = 0; j < width; ++j) b_packed[k * panel_cols + j] = b[k * b_row + j * b_col];
        b = b_packed.data();
        ldb = panel_cols;
      }
      for (int64_t i0 = i_begin; i0 < i_end; i0 += tiles.rows) {
        const int64_t rows = std::min(tiles.rows, i_end - i0);
        T* c = C + i0 * N + j0;
        if (width == panel_cols) {
          tw.fns[rows](depth, A_slice + i0 * a_row, a_row, a_col, b, ldb, c, N, store);
          continue;
        }
        // a ragged right edge: the tile is stored into c_padded, whose first `width` columns then go
        // into C (stored on the first slice of gemm_overwrite, else added)
        tw.fns[rows](depth, A_slice + i0 * a_row, a_row, a_col, b, ldb, c_padded, panel_cols, true);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < width; ++j)
            c[r * N + j] = store ? c_padded[r * panel_cols + j] : c[r * N + j] + c_padded[r * panel_cols + j];
      }
    }
  });
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

template <class T>
void transpose_copy(int64_t rows, int64_t cols, const T* src, int64_t ld_src, T* dst, int64_t ld_dst) {
#ifdef NG_GEMM_AVX512
  if (!kReferenceKernels && gemm_wide_available())
    if (const PackTransposedFn<T> pack = wide_tiles<T>().pack_transposed) {
      // pack's packed[k*ld + j] = b[j*b_col + k]: k runs along src's rows (c), j down its columns (r)
      pack(cols, rows, src, ld_src, dst, ld_dst);
      return;
    }
#endif
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ld_dst + r] = src[r * ld_src + c];
}
template void transpose_copy<float>(int64_t, int64_t, const float*, int64_t, float*, int64_t);
template void transpose_copy<double>(int64_t, int64_t, const double*, int64_t, double*, int64_t);

const char* gemm_kernel_name() { return gemm_wide_available() ? "AVX-512, 8x32 tiles" : "6x16 tiles"; }

template <class T> void gemm_with(bool wide, int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row, int64_t a_col,
                                  const T* B, int64_t b_row, int64_t b_col, T* C, bool overwrite) {
#ifdef NG_GEMM_AVX512
  if (wide && gemm_wide_available()) {
    gemm_tiled<T>(M, N, K, A, a_row, a_col, B, b_row, b_col, C, overwrite, wide_tiles<T>());
    return;
  }
#endif
  (void)wide;
  gemm_tiled<T>(M, N, K, A, a_row, a_col, B, b_row, b_col, C, overwrite, narrow_tiles<T>());
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
