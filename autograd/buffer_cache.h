// buffer_cache.h: where tensors' memory comes from. Storage (tensor.h) takes its bytes here and gives them
// back here; freed buffers, large and small, are kept for reuse instead of going back to the system
// (internal to autograd/, declared here so that tests can see the cache at work).
//
// Why: a training step frees and makes the same large buffers every step (activations, gradients, the
// columns of a convolution). glibc's malloc serves a large request with fresh pages from the system (mmap,
// above its mmap threshold) or returns the free top of its heap to the system (above its trim threshold),
// and every fresh page costs a page fault when first touched: about 20% of a small CNN's step here
// (train_step_cnn_BN 6.9 -> 5.7 ms with glibc told to keep its memory). Keeping the freed buffers and
// handing one back when the same size is asked for again removes those faults.
//
// What is kept: buffers of at least kMinBytes (smaller ones malloc serves from its heap without faults),
// rounded up to whole 4 KB pages so that nearby sizes share, up to kMaxBytes in all. When a freed buffer
// would pass that, the kept ones are freed first and it is kept instead: the cache follows the sizes the
// program uses now.
//
// Small buffers (up to kSmallMaxBytes) are kept too, for another reason: cost per op. A 64-byte aligned
// allocation (operator new with an alignment) is served by glibc's memalign, which (in Debian 12's glibc
// 2.36) bypasses malloc's per-thread cache (tcache): it carves an aligned piece out of a larger chunk and
// frees the rest, and every free then merges chunks on the heap. Measured on one thread, forward and
// backward: batch norm built from primitive ops on a [60, 100] batch 22.9 -> 17.7 us, the fused one 8.2 ->
// 7.3 us, the MLP training step 168 -> 163 us. So each thread keeps a few freed small buffers of each size
// class (the powers of two from 64 bytes to kSmallMaxBytes, kSmallPerClass of each) and hands them back
// with no lock and no search; a buffer freed on another thread goes to that thread's lists. (Between kSmallMaxBytes and
// kMinBytes, buffers go to the system and back: a memalign there is rare next to the work on that many bytes.)
//
// Built with AddressSanitizer, nothing is kept, large or small, so that it still sees every free.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ng::buffer_cache {

constexpr std::size_t kMinBytes = std::size_t{64} << 10;
constexpr std::size_t kMaxBytes = std::size_t{64} << 20;
constexpr std::size_t kSmallMaxBytes = std::size_t{32} << 10;
constexpr int kSmallPerClass = 32;

// At least `bytes` bytes, 64-byte aligned; nullptr when the system refuses.
void* take(std::size_t bytes);
// Gives back a buffer from take(bytes), with the same `bytes`.
void give_back(void* data, std::size_t bytes) noexcept;

// Whether this build keeps buffers at all (not under AddressSanitizer).
bool keeps_buffers();
// What the cache holds now, and how many take() calls it served (for tests): the large buffers, and the
// calling thread's small ones.
std::size_t cached_bytes();
int64_t reused();
std::size_t small_cached_bytes();
int64_t small_reused();
// Frees every kept large buffer, and the calling thread's small ones.
void clear();

}  // namespace ng::buffer_cache
