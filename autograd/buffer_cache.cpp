// buffer_cache.cpp: the kept buffers behind Storage (see buffer_cache.h): large ones in one cache for all
// threads, small ones in each thread's lists.
#include "buffer_cache.h"

#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace ng::buffer_cache {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kKeep = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kKeep = false;
#else
constexpr bool kKeep = true;
#endif
#else
constexpr bool kKeep = true;
#endif

constexpr std::align_val_t kAlign{64};
constexpr std::size_t kPage = 4096;

struct Cache {
  std::mutex mutex;
  std::unordered_map<std::size_t, std::vector<void*>> free;  // kept buffers by (rounded) size
  std::size_t bytes = 0;                                     // their sum
  int64_t reused = 0;
};
// Never destroyed: a tensor held in a static may give its buffer back after every other static is gone.
Cache& cache() {
  static Cache* const c = new Cache;
  return *c;
}

// Frees every kept buffer (the caller holds the mutex).
void free_all(Cache& c) {
  for (auto& [size, buffers] : c.free)
    for (void* data : buffers) ::operator delete(data, kAlign);
  c.free.clear();
  c.bytes = 0;
}

// ---- small buffers: each thread's lists, one per power of two ----
// Class c holds buffers of 64 << c bytes (c = 0 .. kSmallClasses - 1).
constexpr int kSmallClasses = 10;
static_assert(kSmallMaxBytes == std::size_t{64} << (kSmallClasses - 1));

constexpr std::size_t class_bytes(int c) { return std::size_t{64} << c; }
int small_class(std::size_t bytes) {  // the smallest class that holds `bytes` (<= kSmallMaxBytes)
  int c = 0;
  while (class_bytes(c) < bytes) ++c;
  return c;
}

struct SmallCache {
  void* kept[kSmallClasses][kSmallPerClass];
  int count[kSmallClasses] = {};
  std::size_t bytes = 0;
  int64_t reused = 0;
  void free_all() {
    for (int c = 0; c < kSmallClasses; ++c) {
      for (int i = 0; i < count[c]; ++i) ::operator delete(kept[c][i], kAlign);
      count[c] = 0;
    }
    bytes = 0;
  }
  ~SmallCache();
};
// Set when this thread's lists are gone (at its exit): a tensor freed after that, say one held in a
// thread_local made before the lists, goes straight back to the system. A bool needs no destructor, so it
// is still there. (A static destroyed after main on the main thread finds the lists gone too, unless the
// main thread never had any: then its buffer makes them, and stays in them until the process ends.)
thread_local bool t_small_gone = false;
SmallCache::~SmallCache() {
  free_all();
  t_small_gone = true;
}
SmallCache* small_cache() {
  if (t_small_gone) return nullptr;
  thread_local SmallCache c;
  return &c;
}

// (Never above kMaxBytes: such a buffer could not be kept anyway, and rounding a size near SIZE_MAX up would
// wrap around.)
bool kept_size(std::size_t bytes) { return kKeep && bytes >= kMinBytes && bytes <= kMaxBytes; }
std::size_t rounded(std::size_t bytes) { return (bytes + kPage - 1) / kPage * kPage; }

}  // namespace

void* take(std::size_t bytes) {
  if (kKeep && bytes <= kSmallMaxBytes) {
    const int c = small_class(bytes);
    bytes = class_bytes(c);  // allocated at the class's size, so that any size of the class can reuse it
    if (SmallCache* s = small_cache(); s && s->count[c] > 0) {
      s->bytes -= bytes;
      ++s->reused;
      return s->kept[c][--s->count[c]];
    }
  } else if (kept_size(bytes)) {
    bytes = rounded(bytes);
    Cache& c = cache();
    std::lock_guard lock(c.mutex);
    auto it = c.free.find(bytes);
    if (it != c.free.end() && !it->second.empty()) {
      void* data = it->second.back();
      it->second.pop_back();
      c.bytes -= bytes;
      ++c.reused;
      return data;
    }
  }
  return ::operator new(bytes == 0 ? 1 : bytes, kAlign, std::nothrow);
}

void give_back(void* data, std::size_t bytes) noexcept {
  if (kKeep && bytes <= kSmallMaxBytes) {
    const int c = small_class(bytes);
    if (SmallCache* s = small_cache(); s && s->count[c] < kSmallPerClass) {
      s->kept[c][s->count[c]++] = data;
      s->bytes += class_bytes(c);
      return;
    }
  } else if (kept_size(bytes)) {
    bytes = rounded(bytes);
    Cache& c = cache();
    std::lock_guard lock(c.mutex);
    // Full: the kept buffers are freed first, so that the cache follows what the program does now (after
    // an evaluation at another batch size, the training step's sizes take over again).
    if (c.bytes + bytes > kMaxBytes) free_all(c);
    try {  // a new list or a longer one may need memory: then this buffer is freed instead
      c.free[bytes].push_back(data);
      c.bytes += bytes;
      return;
    } catch (const std::bad_alloc&) {
    }
  }
  ::operator delete(data, kAlign);
}

bool keeps_buffers() { return kKeep; }

std::size_t cached_bytes() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  return c.bytes;
}

int64_t reused() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  return c.reused;
}

std::size_t small_cached_bytes() {
  const SmallCache* s = small_cache();
  return s ? s->bytes : 0;
}

int64_t small_reused() {
  const SmallCache* s = small_cache();
  return s ? s->reused : 0;
}

void clear() {
  if (SmallCache* s = small_cache()) s->free_all();
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  free_all(c);
}

}  // namespace ng::buffer_cache
