// gemm_avx512.cpp: gemm's AVX-512 tiles (gemm_tile.h), the one file of normgrad compiled with -mavx512f
// (autograd/meson.build); gemm.cpp calls wide_tiles() only when the CPU has AVX-512.
//
// 8 rows of 2 vectors: 16 accumulators of the 32 registers (8 x 32 floats, 8 x 16 doubles). Each k step does
// 16 multiply-adds for 10 loads (2 vectors of B, 8 broadcasts of A), where the earlier 12 x 16 tile did 12
// for 13 loads and waited on the loads. Measured on the test machine, float32, one thread, on
// [32,144] @ [144,980] (a convolution's gemm): 12 x 16 tiles 197 GFLOP/s, 12 x 32 238, 8 x 32 243, 6 x 64
// 237; 8 x 32 also pads the fewest rows for the small M of the models here (32, 60, 100). Its narrowest
// width is one AVX (32-byte) vector, for ragged right edges.
//
// Why one file and not the whole build: Debian 12's GCC 12.2 miscompiles some constant vectors under
// -mavx512f (meson.build's probe turns AVX-512 off for the rest of the build); this file holds no constant
// vector but zero, and tests/test_fast_paths.cpp holds its tiles to the AVX2 ones bit for bit.
#include "gemm_tile.h"

#include <type_traits>

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__FMA__)
namespace ng::kernel {

namespace {
constexpr int64_t kRowsWide = 8;
template <class T, int64_t Rows, int64_t Vecs, int Bytes> struct WideTile {
  static void run(int64_t depth, const T* A, int64_t a_row, int64_t a_col, const T* B, int64_t ldb, T* C, int64_t ldc,
                  bool store) {
    tile<T, Rows, Vecs, Bytes>(depth, A, a_row, a_col, B, ldb, C, ldc, store);
  }
};

// out[k*ldo + j] = in[j*ldi + k] for j, k < 16: a 16 x 16 block of floats turned around in registers, in
// three rounds that each swap ever larger pieces (the shuffles' controls are immediates, not constant
// vectors): unpack_ps interleaves single floats of row pairs, unpack_pd pairs of floats of those, and two
// rounds of shuffle_f32x4 move the 128-bit quarters (4 floats) into place.
// (GCC 12's avx512fintrin.h warns that the unpack intrinsics read an uninitialized value: its own
// _mm512_undefined_ps placeholder, GCC bug 105593, fixed in GCC 13; the pragma keeps the build quiet.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // (clang has no such warning, and would warn about the unknown name)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
void transpose16(const float* in, int64_t ldi, float* out, int64_t ldo) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(in + i * ldi);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
  }
  for (int h = 0; h < 16; h += 8)
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(out + i * ldo, r[i]);
}
#pragma GCC diagnostic pop

// The float family's PackTransposedFn (gemm_tile.h): 16 x 16 blocks, then the edges element by element. The
// MLP's linear layers (y = x @ W^T) pack W this way; element by element took 13 of the 58 us of the
// [60,784] @ [784,100] product on the test machine.
void pack_transposed_float(int64_t depth, int64_t width, const float* b, int64_t b_col, float* packed, int64_t ld) {
  int64_t j = 0;
  for (; j + 16 <= width; j += 16) {
    int64_t k = 0;
    for (; k + 16 <= depth; k += 16) transpose16(b + j * b_col + k, b_col, packed + k * ld + j, ld);
    for (; k < depth; ++k)
      for (int64_t jj = j; jj < j + 16; ++jj) packed[k * ld + jj] = b[jj * b_col + k];
  }
  for (; j < width; ++j)
    for (int64_t k = 0; k < depth; ++k) packed[k * ld + j] = b[j * b_col + k];
}

}  // namespace

template <class T> Tiles<T> wide_tiles() {
  Tiles<T> tiles{kRowsWide,
                 {tile_width<T, 2, 64, WideTile, kRowsWide>(), tile_width<T, 1, 64, WideTile, kRowsWide>(),
                  tile_width<T, 1, 32, WideTile, kRowsWide>()}};
  if constexpr (std::is_same_v<T, float>) tiles.pack_transposed = pack_transposed_float;
  return tiles;
}
template Tiles<float> wide_tiles<float>();
template Tiles<double> wide_tiles<double>();

}  // namespace ng::kernel
#endif
