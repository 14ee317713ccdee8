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
}  // namespace

template <class T> Tiles<T> wide_tiles() {
  return {kRowsWide,
          {tile_width<T, 2, 64, WideTile, kRowsWide>(), tile_width<T, 1, 64, WideTile, kRowsWide>(),
           tile_width<T, 1, 32, WideTile, kRowsWide>()}};
}
template Tiles<float> wide_tiles<float>();
template Tiles<double> wide_tiles<double>();

}  // namespace ng::kernel
#endif
