// thread_pool.h: the threads behind kernel::parallel_for (internal to normgrad, not installed). A loop is cut
// into chunks; the calling thread and the pool's workers take chunks one at a time until none is left, and
// the caller then waits only for chunks a worker has already started, never for a worker that has not woken
// up yet. That is the point of having a pool of our own rather than OpenMP's `parallel for`, whose static
// schedule gives every thread its share up front: on a machine where another program holds the second core,
// one region in ten waited a whole scheduler time slice (4-6 ms) for a thread that had work assigned but no
// core to run it on (measurements in parallel_for.h). Here such a worker simply finds no chunk left.
//
// Which thread runs a chunk never changes what it computes, so results stay bit-identical for any thread
// count, and the number of threads is still OpenMP's setting (ng::set_num_threads, OMP_NUM_THREADS).
#pragma once

#include <cstdint>

namespace ng::kernel {

// call(body, begin, end) for every chunk [begin, end) of [0, n) cut into `chunks` ranges of (nearly) equal
// size, on the calling thread and up to threads - 1 of the pool's workers. Called from a thread that is
// running a chunk already, or while another thread's loop holds the pool, it runs every chunk on the calling
// thread: correct, only not shared out.
using RangeCall = void (*)(void* body, int64_t begin, int64_t end);
void pool_run(int64_t n, int64_t chunks, int threads, RangeCall call, void* body);

// True on a thread that is running a chunk of pool_run (the caller's or a worker's): a loop started from
// there runs on that thread alone (every thread is busy already).
bool in_pool_chunk();

// How far apart the cores of the pool's caller and worker are: the median of a few round trips of a cache
// line between them, in nanoseconds, measured at most every 100 ms while loops run (thread_pool.cpp); 0 until
// a first measurement. On the 2-core test machine 70-120 ns when the hypervisor put both cores on one die,
// 340-400 ns on two. Only the decision to share out a loop may depend on it, never what a loop computes.
int64_t cores_round_trip_ns();

// The cores are far apart: a round trip of kFarRoundTripNs or more, measured in the last 250 ms (the test
// machine's two cases, 70-120 and 340-400 ns, lie well on either side). Loops then need more work to be
// shared out (parallel_for.h, gemm.cpp).
constexpr int64_t kFarRoundTripNs = 200;
bool cores_far();

// For tests of the threads: 0 makes cores_far() false and 1 true whatever was measured (so that a test of
// 1 against 2 threads shares out every loop it can, on any machine); -1 goes back to the measurement.
void set_cores_far_for_tests(int far);

}  // namespace ng::kernel
