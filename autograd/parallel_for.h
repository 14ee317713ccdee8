// parallel_for.h: the one loop through which kernels use threads, and the sizes from which they do
// (internal to normgrad, not installed; the user's side is parallel.h).
#pragma once

#include <cstdint>

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
// So the policy stays libgomp's default (its threads spin a while before they sleep): passive makes every
// region cost ~50 us. What no wait policy fixes is the last row: when another program holds the second
// core, one region in ten waits a whole scheduler time slice (4-6 ms) for the second thread, so kernels
// enter as few regions as they can (a convolution is one region per op, ops_conv.cpp), and on a busy
// machine OMP_NUM_THREADS=1 is faster (README, "Threads"). A pool whose caller does the work of a thread
// that has not started yet would remove that wait; it is the next step.
//
// body(i) for every i in [0, n): shared out among the threads by OpenMP when `threads` is true, else a
// plain loop on the calling thread. The test is made here rather than with the pragma's `if` clause,
// because OpenMP enters its runtime even for a region it then runs on one thread: 0.33 us of CPU time per
// loop (measured with GCC 12's libgomp), as much as a whole small op costs. Inside a parallel region
// already (a convolution shares out blocks of images, each of which runs a gemm), the loop runs on the
// calling thread: the threads are all busy, and a nested region would only add its cost.
template <class Body> void parallel_for(int64_t n, bool threads, Body&& body) {
#ifdef _OPENMP
  if (threads && omp_in_parallel()) threads = false;
#endif
  if (!threads || n < 2) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) body(i);
}

// Built with -Dreference_kernels=true: the plain loops instead of the fast paths (no threads, the
// textbook gemm, max pooling's general loop, std::exp and std::erf in float32 sigmoid, exp, erf,
// softmax and log_softmax), for a reader to step through. The kernels choose with
// `if constexpr (kernel::kReferenceKernels)` rather than #ifdef NG_REFERENCE_KERNELS: the compiler then
// reads both paths in either build, so a typo in the one not built still shows.
#ifdef NG_REFERENCE_KERNELS
constexpr bool kReferenceKernels = true;
#else
constexpr bool kReferenceKernels = false;
#endif

}  // namespace ng::kernel
