// parallel.h: how many threads the kernels may use (OpenMP underneath; one thread when normgrad was built
// without it, or with -Dreference_kernels=true).
//
// The kernels that pay for a second core (gemm, conv's im2col, large elementwise ops and reductions, max
// pooling, BatchNorm's per-channel loops, the optimizers' updates) run their plain loop through
// parallel_for below, a `#pragma omp parallel for` that small inputs skip: below the sizes given next to
// each threshold, starting the threads costs more than they save.
//
// The default is every core, or OMP_NUM_THREADS when it is set (the OpenMP convention, as PyTorch).
// Results are bit-identical for any thread count: a loop is split only where every output element is
// computed by one thread in the same order as on one thread, and a sum over many elements is cut at
// fixed boundaries (kernel::kSumChunk) whose partial sums are added in a fixed order.
#pragma once

#include <cstdint>

namespace ng {

// Threads for the ops started from the calling thread (as omp_set_num_threads and torch.set_num_threads).
// n >= 1; anything else is an ng::Error. Without OpenMP the call is checked and has no effect.
void set_num_threads(int n);

// The threads an op started from the calling thread may use: 1 without OpenMP.
int get_num_threads();

}  // namespace ng

namespace ng::kernel {

// Loops over at least kParallelElements elements (elementwise ops, sums, pooling, BatchNorm, optimizer
// updates) are shared out among threads; shorter ones stay on one thread. Measured on the 2-core test
// machine (median of 5, float32 add, 1 thread -> 2 threads): 2^14 elements 2.3 -> 2.6 us, 2^16
// 8.5 -> 5.9 us, 2^20 100 -> 60 us.
constexpr int64_t kParallelElements = int64_t{1} << 15;

// A sum of many elements is cut into pieces of kSumChunk elements, each summed on its own, and the pieces'
// sums are added in order. The boundaries depend only on the size, never on the thread count, so the
// result is the same for any number of threads.
constexpr int64_t kSumChunk = int64_t{1} << 14;

// body(i) for every i in [0, n): shared out among the threads by OpenMP when `threads` is true, else a
// plain loop on the calling thread. The test is made here rather than with the pragma's `if` clause,
// because OpenMP enters its runtime even for a region it then runs on one thread: 0.33 us of CPU time per
// loop (measured with GCC 12's libgomp), as much as a whole small op costs.
template <class Body> void parallel_for(int64_t n, bool threads, Body&& body) {
  if (!threads) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) body(i);
}

// Built with -Dreference_kernels=true: the plain loops instead of the fast paths (no threads, the
// textbook gemm, max pooling's general loop, std::exp in float32 sigmoid), for a reader to step through.
#ifdef NG_REFERENCE_KERNELS
constexpr bool kReferenceKernels = true;
#else
constexpr bool kReferenceKernels = false;
#endif

}  // namespace ng::kernel
