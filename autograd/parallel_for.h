// parallel_for.h: the one loop through which kernels use threads, and the sizes from which they do
// (internal to normgrad, not installed; the user's side is parallel.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "thread_pool.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ng::kernel {

// Loops over at least kParallelElements elements (elementwise ops, sums, pooling, BatchNorm, optimizer
// updates) are shared out among threads; shorter ones stay on one thread. Measured on the 2-core test
// machine, float32 add, best of 101 blocks (the machine was shared), 1 thread -> 2 threads: 2^13 elements
// 1.13 -> 1.13 us, 2^14 2.5 -> 2.2 us, 2^15 4.6 -> 3.8 us, 2^16 9.1 -> 6.3 us, 2^18 110 -> 27 us. From 2^15
// on the second thread saves more than it costs to wake it.
constexpr int64_t kParallelElements = int64_t{1} << 15;

// ... when the cores are close. When the pool measured them far apart (cores_far, thread_pool.h: on the test
// machine, two dies), from kParallelElementsFar on: the worker then pays 340-400 ns per cache line it takes
// over from the caller. Measured there on the tiny GPT's step at 2 threads, whose activations are [512, 64]
// (2^15 elements): 2,718 us sharing out from 2^15, 2,633-2,643 from 2^17 (one thread: 2,650-2,700); the
// MLP's SGD update of its [100, 784] weight (78,400 elements) still gains, so the bound is 2^16.
constexpr int64_t kParallelElementsFar = int64_t{1} << 16;

// Whether a loop of `work` is worth sharing out: from `close` on when the cores are close, from `far` on when
// the pool measured them far apart (cores_far). The distance is asked for only when the answer matters.
inline bool worth_sharing(int64_t work, int64_t close, int64_t far) {
  return work >= close && (work >= far || !cores_far());
}
// ... for a loop over n elements.
inline bool share_elements(int64_t n) { return worth_sharing(n, kParallelElements, kParallelElementsFar); }

// A sum of many elements is cut into pieces of kSumChunk elements, each summed on its own, and the pieces'
// sums are added in order. The boundaries depend only on the size, never on the thread count, so the
// result is the same for any number of threads.
constexpr int64_t kSumChunk = int64_t{1} << 14;

// What a parallel region costs (an empty `parallel for` over 2 iterations, 2 threads, GCC 12's libgomp with
// its default wait policy; median and 90th percentile of 2000 regions, each after a serial gap; measured on
// the 2-core test machine, 2026-12-04):
//   gap (us)                      0      20     100    500    2000
//   idle machine                  0.45   0.45   0.44   1.0    1.2      (p90 under 1.4 us)
//   OMP_WAIT_POLICY=passive       40     53     54     44     46
//   a busy program on the other   0.43   0.43   0.46   1.2    5.7      (p90: 0.45, 0.45, 1.2, 3989, 6001)
// libgomp's policies offer no way out of the last row: passive makes every region cost ~50 us, and the
// default's spinning does not help when another program holds the second core, because OpenMP's static
// schedule hands each thread its share up front and the region waits, a whole scheduler time slice, for a
// thread that has work assigned but no core to run it on. So the loops run on a pool of our own
// (thread_pool.h): the caller and the workers take chunks one at a time, and a worker that has not woken up
// finds nothing left to take, so the caller never waits for it. The same measurement with the pool (median
// and 90th percentile, us; pool_run over 2 chunks; load average 6-7 from compilers on both cores, where
// libgomp's default was 0.5 / 16,000 at a gap of 20 us and 14,000 / 18,000 at 2000 us):
//   gap (us)                      0      20     100    500    2000
//   pool, busy machine            0.06   0.31   0.30   0.34   0.66
//                        (p90)    0.07   0.31   0.32   1.8    3.6
// (the smallest are loops whose caller ran both chunks before the worker was scheduled).
// OpenMP still holds the thread count: omp_get_max_threads is the calling thread's setting, from
// ng::set_num_threads or OMP_NUM_THREADS (parallel.h).
//
// body(i) for every i in [0, n): cut into at most kChunksPerThread chunks per thread and shared out through
// the pool when `threads` is true, else a plain loop on the calling thread. Inside a chunk already (a
// convolution shares out blocks of images, each of which runs a gemm), the loop runs on the calling thread:
// the threads are all busy, and a nested loop would only add its cost. Which thread runs i never changes
// what body(i) computes, so the result is the same for any thread count.
constexpr int64_t kChunksPerThread = 4;

// How many threads parallel_for(n, threads, ...) runs on, called from here (1 inside a chunk already).
inline int threads_for(int64_t n, bool threads) {
#ifdef _OPENMP
  if (threads && n >= 2 && !in_pool_chunk()) return omp_get_max_threads();
#endif
  (void)n, (void)threads;
  return 1;
}

template <class Body> void parallel_for(int64_t n, bool threads, Body&& body) {
  const int count = threads_for(n, threads);
  if (count < 2) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
  using B = std::remove_reference_t<Body>;
  pool_run(
      n, std::min<int64_t>(n, kChunksPerThread * count), count,
      [](void* b, int64_t begin, int64_t end) {
        B& f = *static_cast<B*>(b);
        for (int64_t i = begin; i < end; ++i) f(i);
      },
      const_cast<void*>(static_cast<const void*>(&body)));
}

// Built with -Dreference_kernels=true: the plain loops instead of the fast paths (no threads, the
// textbook gemm, max pooling's general loop, in-order sums, std::exp and std::erf in float32 sigmoid, exp,
// erf, gelu, softmax, log_softmax, logsumexp and attention's softmax), for a reader to step through. The kernels choose
// with `if constexpr (kernel::kReferenceKernels)` rather than #ifdef NG_REFERENCE_KERNELS: the compiler then reads both
// paths in either build, so a typo in the one not built still shows.
#ifdef NG_REFERENCE_KERNELS
constexpr bool kReferenceKernels = true;
#else
constexpr bool kReferenceKernels = false;
#endif

}  // namespace ng::kernel
