// gemm_tile.h: the register tile behind gemm (gemm.cpp), in one place for the two files that compile it:
// gemm.cpp for the CPU the build targets (AVX2 with -march=native) and gemm_avx512.cpp, the one file built
// with -mavx512f (autograd/meson.build), whose tiles gemm chooses at run time on a CPU with AVX-512. Internal
// to autograd/.
//
// The tile's functions live in an unnamed namespace: each of the two files gets its own copy, compiled for
// its own instructions, and the linker can never swap one for the other. (What they use from the standard
// library, std::array's data(), compiles to the same code either way.)
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#if defined(__x86_64__) && (defined(__FMA__) || defined(__AVX512F__))
#include <immintrin.h>
#endif

namespace ng::kernel {

template <class T> using TileFn = void (*)(int64_t depth, const T* A, int64_t a_row, int64_t a_col, const T* B,
                                           int64_t ldb, T* C, int64_t ldc, bool store);

// A family of tiles: 1 .. `rows` rows, so that the last rows of C (when M is not a multiple of `rows`) run
// through a tile of their own height instead of a zero-padded full one; and three widths, widest first: two
// vectors (the full tile), one vector, and a narrower one where the family has it, so that a ragged right
// edge runs through the narrowest tile that holds it (the MLP's N = 100 = 3 x 32 + 4: 4 columns padded to
// 8, not 32).
template <class T> struct TileWidth {
  int64_t cols;
  const TileFn<T>* fns;  // fns[r]: r rows x cols (r = 1 .. rows)
};
// Copies a panel of a transposed B (its columns contiguous, b_col apart) into rows: packed[k*ld + j] =
// b[j*b_col + k] for k < depth, j < width. A family may have one of its own (AVX-512: 16 x 16 blocks
// turned around in registers); without one, gemm copies element by element.
template <class T> using PackTransposedFn = void (*)(int64_t depth, int64_t width, const T* b, int64_t b_col,
                                                     T* packed, int64_t ld);
template <class T> struct Tiles {
  int64_t rows;
  TileWidth<T> widths[3];
  PackTransposedFn<T> pack_transposed = nullptr;
};

// The AVX-512 family, 8 rows (gemm_avx512.cpp); only on x86-64, where that file has it.
template <class T> Tiles<T> wide_tiles();

namespace {

// A short vector of T that the compiler maps to one SIMD register (GCC/Clang vector extension):
// 32 bytes = 8 floats or 4 doubles, one AVX register; 64 bytes, one AVX-512 register.
template <class T, int Bytes> using Vec [[gnu::vector_size(Bytes)]] = T;

// acc += a * b rounded once: the fused multiply-add instruction, written out rather than left to the
// compiler, which may keep a multiply and an add apart (GCC's tuning for AMD's Zen splits a loop's lone
// multiply-add chain; clang at -O1 left a 1-row tile unfused). On x86-64 with FMA every tile then rounds
// alike, which is what lets the AVX2 and the AVX-512 tiles give the same bits. Elsewhere (a portable x86
// build, or another CPU) `acc += a * b` is left to the compiler, which may fuse it in one tile and not in
// another: the last digits of a row may then depend on which tile height computed it (M's remainder), never
// on the thread count.
// (The vectors go by reference: a function that passed them by value would be an ABI question in a
// portable build, which GCC warns about.)
template <class V> [[gnu::always_inline]] inline void multiply_add(V& acc, const V& a, const V& b) { acc += a * b; }
#if defined(__x86_64__) && defined(__FMA__)
[[gnu::always_inline]] inline void multiply_add(Vec<float, 32>& acc, const Vec<float, 32>& a, const Vec<float, 32>& b) {
  acc = _mm256_fmadd_ps(a, b, acc);
}
[[gnu::always_inline]] inline void multiply_add(Vec<double, 32>& acc, const Vec<double, 32>& a,
                                                const Vec<double, 32>& b) {
  acc = _mm256_fmadd_pd(a, b, acc);
}
#endif
#if defined(__AVX512F__)
[[gnu::always_inline]] inline void multiply_add(Vec<float, 64>& acc, const Vec<float, 64>& a, const Vec<float, 64>& b) {
  acc = _mm512_fmadd_ps(a, b, acc);
}
[[gnu::always_inline]] inline void multiply_add(Vec<double, 64>& acc, const Vec<double, 64>& a,
                                                const Vec<double, 64>& b) {
  acc = _mm512_fmadd_pd(a, b, acc);
}
#endif

// One tile: C[0:Rows, 0:Vecs*lanes] += A[0:Rows, 0:depth] @ B[0:depth, 0:Vecs*lanes], or = when `store`
// (the first k-slice of gemm_overwrite: C's old contents, maybe garbage, are never read). The Rows x Vecs
// accumulators live in vector registers for the whole k loop; each step loads the Vecs vectors of B's row k,
// broadcasts one element of A per row and multiplies the two. For every element of C the products are added
// in the order k = 0, 1, ..., each with one rounding, whatever the tile's shape or the vector width: every
// tile gives the same bits.
template <class T, int64_t Rows, int64_t Vecs, int Bytes>
[[gnu::always_inline]] inline void tile(int64_t depth, const T* A, int64_t a_row, int64_t a_col, const T* B,
                                        int64_t ldb, T* C, int64_t ldc, bool store) {
  using V = Vec<T, Bytes>;
  constexpr int64_t lanes = Bytes / static_cast<int64_t>(sizeof(T));
  V acc[Rows][Vecs] = {};
  for (int64_t k = 0; k < depth; ++k) {
    V b[Vecs];
    for (int64_t v = 0; v < Vecs; ++v) __builtin_memcpy(&b[v], B + k * ldb + v * lanes, sizeof(V));
    for (int64_t r = 0; r < Rows; ++r) {
      // broadcast to every lane: a - 0 is a for every a (0 + a is not: 0 + -0 = +0, so the compiler keeps the add)
      const V a = A[r * a_row + k * a_col] - V{};
      for (int64_t v = 0; v < Vecs; ++v) multiply_add(acc[r][v], a, b[v]);
    }
  }
  for (int64_t r = 0; r < Rows; ++r)
    for (int64_t v = 0; v < Vecs; ++v) {
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

// The table of a family's tiles of one width, indexed by rows (Kernel<T, rows, Vecs, Bytes>::run).
template <class T, int64_t Vecs, int Bytes, template <class, int64_t, int64_t, int> class Kernel, int64_t... R>
constexpr std::array<TileFn<T>, sizeof...(R) + 1> tile_table(std::integer_sequence<int64_t, R...>) {
  return {nullptr, &Kernel<T, R + 1, Vecs, Bytes>::run...};
}
template <class T, int64_t Vecs, int Bytes, template <class, int64_t, int64_t, int> class Kernel, int64_t Rows>
TileWidth<T> tile_width() {
  static constexpr auto fns = tile_table<T, Vecs, Bytes, Kernel>(std::make_integer_sequence<int64_t, Rows>());
  return {Vecs * Bytes / static_cast<int64_t>(sizeof(T)), fns.data()};
}

}  // namespace
}  // namespace ng::kernel
