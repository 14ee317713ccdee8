// parallel.h: how many threads the kernels may use (OpenMP's setting; one thread when normgrad was built
// without OpenMP, or with -Dreference_kernels=true).
//
// The kernels that pay for a second core (gemm, conv's im2col, large elementwise ops and reductions, max
// pooling, BatchNorm's per-channel loops, the optimizers' updates) run their plain loop through
// kernel::parallel_for (parallel_for.h, internal), which small inputs skip and larger ones share out among
// a pool of threads (thread_pool.h) that started once and wait between loops.
//
// The default is every core, or OMP_NUM_THREADS when it is set (the OpenMP convention, as PyTorch).
// Results are bit-identical for any thread count: a loop is split only where every output element is
// computed by one thread in the same order as on one thread, and a sum over many elements is cut at
// fixed boundaries (parallel_for.h) whose partial sums are added in a fixed order.
#pragma once

#include <cstdint>

namespace ng {

// Threads for the ops started from the calling thread, as omp_set_num_threads: unlike
// torch.set_num_threads, which is process-wide, a std::thread started later keeps the default.
// n >= 1; anything else is an ng::Error. Without OpenMP the call is checked and has no effect.
void set_num_threads(int n);

// The threads an op started from the calling thread may use: 1 without OpenMP.
int get_num_threads();

}  // namespace ng
