// thread_pool.cpp: the pool of worker threads behind kernel::parallel_for (see thread_pool.h for why it
// exists). Standard library only: std::thread and a few atomics, no lock on the way of a loop.
//
// One loop at a time owns the pool (owner_, a mutex taken with try_lock; a second thread's loop runs alone).
// The loop's state is one 64-bit word, claim_ = (generation, back, front): the chunks not yet taken are
// [front, back). The caller writes the loop's function and size, then publishes a new generation in claim_;
// everyone (the caller and any worker awake to see it) takes chunks by compare-and-swap on claim_, the
// caller from the front (0, 1, 2, ...) and the workers from the back (chunks - 1, chunks - 2, ...), and
// counts each finished chunk in done_. The caller, out of chunks, waits until done_ = chunks: it waits only
// for chunks a worker has taken, never for a worker that has not woken up (that one finds the generation
// exhausted, or a newer one).
//
// Why front and back: so that the same thread runs the same part of a loop from one call to the next. Two
// threads meet near the middle every time, so the caller keeps computing the first half of, say, a gemm's
// panels or an optimizer's parameters, and the worker the second half, and each finds its half in its own
// cache at the next call. Taking chunks in turn from one end instead sent them to whichever thread came
// first, and the data after them: on the 2-core test machine, whose two cores are sometimes on different
// dies (a cache line from one core to the other and back then takes 340-400 ns instead of 80-100; the
// hypervisor moves them), a [100,60]@[60,784] gemm took 40 us on 2 threads against 43 on 1, and the MLP's
// training step 237 us against 195.
//
// Why the word holds the generation too: a worker that was preempted between reading claim_ and swapping
// it cannot take a chunk of a later loop by mistake, because its swap compares all three fields and fails.
// And a successful swap means the chunk was not yet done, so the caller is still waiting and the loop's
// function and size (written before the generation was published) are still valid.
//
// How far apart the caller's and a worker's cores are: every kMeasureEvery, at the start of a loop while the
// workers are awake, the caller hands a counter (ping_) to a worker and back kTrips times, and keeps the
// median round trip (cores_round_trip_ns, thread_pool.h). gemm shares out only larger products when the
// cores are far apart (gemm.cpp). A worker that does not answer within kMaxWait (descheduled, or about to
// sleep) leaves the last measurement as it was; a late answer is harmless, as every ping has its own number.
//
// Between loops a worker spins for kSpinTime before it sleeps (std::atomic::wait, a futex on Linux): a
// training step runs its loops microseconds apart, and waking a sleeping thread costs the caller a system
// call and the worker tens of microseconds.
#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ng::kernel {

namespace {

// How long an idle worker keeps checking for the next loop before it sleeps. libgomp's default spins for
// a comparable time (GOMP_SPINCOUNT, 300,000 checks); a loop that comes later than this pays for a wake-up.
constexpr std::chrono::microseconds kSpinTime{1000};

// The core distance's measurement (see the top of this file): 8 round trips every 100 ms, a few microseconds
// in all, given up after 200 us without an answer.
constexpr std::chrono::milliseconds kMeasureEvery{100};
constexpr int kTrips = 8;
constexpr std::chrono::microseconds kMaxWait{200};
constexpr std::chrono::milliseconds kFarValidFor{250};  // how long a "far" reading is believed (cores_far)

thread_local bool t_in_chunk = false;

// steady_clock's time in nanoseconds: the measurement's time stamps, kept in one atomic integer.
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Marks the thread as running a chunk for as long as it lives (also when a chunk throws).
struct InChunk {
  InChunk() { t_in_chunk = true; }
  ~InChunk() { t_in_chunk = false; }
};

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// claim_ = generation (bits 40..63) | back (bits 20..39) | front (bits 0..19); chunks [front, back) are left.
constexpr uint64_t kField = (uint64_t{1} << 20) - 1;
constexpr int64_t kMaxChunks = static_cast<int64_t>(kField);
constexpr uint64_t kFront = 1, kBack = uint64_t{1} << 20;  // one chunk, in the front and back fields
uint64_t generation_of(uint64_t w) { return w >> 40; }
int64_t back_of(uint64_t w) { return static_cast<int64_t>((w >> 20) & kField); }
int64_t front_of(uint64_t w) { return static_cast<int64_t>(w & kField); }

class Pool {
 public:
  // Never destroyed: its workers sleep in a wait when the program exits, and exit ends them.
  static Pool& instance() {
    static Pool* pool = new Pool;
    return *pool;
  }

  void run(int64_t n, int64_t chunks, int threads, RangeCall call, void* body) {
    std::unique_lock<std::mutex> owner(owner_, std::try_to_lock);
    if (!owner.owns_lock()) {  // another thread's loop has the pool: this one runs alone
      const InChunk in_chunk;
      call(body, 0, n);
      return;
    }
    if (static_cast<int>(workers_.size()) < threads - 1) {  // new workers: not yet running to answer a ping
      while (static_cast<int>(workers_.size()) < threads - 1) workers_.emplace_back([this] { work(); });
    } else {
      measure_round_trip();
    }
    helpers_allowed_.store(threads - 1, std::memory_order_relaxed);
    n_ = n;
    chunks_ = chunks;
    call_ = call;
    body_ = body;
    done_.store(0, std::memory_order_relaxed);
    const uint64_t generation = (generation_of(claim_.load(std::memory_order_relaxed)) + 1) & ((uint64_t{1} << 24) - 1);
    claim_.store(generation << 40 | static_cast<uint64_t>(chunks) * kBack, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) claim_.notify_all();
    // The caller's share: a chunk that throws is noted and the rest still run (the workers may be in the
    // middle of theirs), and the first exception is thrown once every chunk is done.
    std::exception_ptr error;
    {
      const InChunk in_chunk;
      for (int64_t c; (c = take_chunk(generation, true)) >= 0;) {
        try {
          run_chunk(c);
        } catch (...) {
          if (!error) error = std::current_exception();
          done_.fetch_add(1, std::memory_order_release);
        }
      }
    }
    for (int spins = 0; done_.load(std::memory_order_acquire) < chunks; ++spins)
      if (spins < 4096)
        cpu_relax();
      else
        std::this_thread::yield();
    if (error) std::rethrow_exception(error);
  }

  int64_t round_trip_ns() const { return round_trip_ns_.load(std::memory_order_relaxed); }
  int64_t measured_at_ns() const { return measured_at_ns_.load(std::memory_order_relaxed); }

 private:
  // ping_ odd: the caller's question; the next even number: a worker's answer. Called by the caller, which
  // owns the pool, so only one measurement runs at a time.
  void measure_round_trip() {
    using Clock = std::chrono::steady_clock;
    const int64_t now = now_ns();
    const auto awake = static_cast<int64_t>(workers_.size()) - sleepers_.load(std::memory_order_seq_cst);
    if (awake < 1 || now - measured_at_ns() < std::chrono::nanoseconds(kMeasureEvery).count())
      return;  // no worker to answer, or measured lately
    measured_at_ns_.store(now, std::memory_order_relaxed);
    uint64_t p = ping_.load(std::memory_order_acquire);
    if (p & 1) {  // the last measurement's question went unanswered: answer it here, or see a worker's answer
      ping_.compare_exchange_strong(p, p + 1, std::memory_order_acq_rel);
      p = ping_.load(std::memory_order_acquire);
    }
    int64_t trips[kTrips];
    for (int trip = 0; trip < kTrips; ++trip, p += 2) {
      const auto start = Clock::now();
      ping_.store(p + 1, std::memory_order_release);
      // (the clock is read every 64 polls only, so that reading it adds little to the trip)
      for (int polls = 1; ping_.load(std::memory_order_acquire) != p + 2; ++polls)
        if (polls % 64 == 0 && Clock::now() - start > kMaxWait) return;  // no answer: keep the last measurement
      trips[trip] = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
    }
    std::nth_element(trips, trips + kTrips / 2, trips + kTrips);
    round_trip_ns_.store(trips[kTrips / 2], std::memory_order_relaxed);  // the median trip
  }

  // A worker between loops answers the caller's ping, if one is waiting.
  void answer_ping() {
    uint64_t p = ping_.load(std::memory_order_relaxed);
    if (p & 1) ping_.compare_exchange_strong(p, p + 1, std::memory_order_acq_rel, std::memory_order_relaxed);
  }

  // Takes the first chunk left of `generation` (`front`, the caller) or the last (a worker), or returns -1
  // when none is left (or a newer loop has begun).
  int64_t take_chunk(uint64_t generation, bool front) {
    uint64_t w = claim_.load(std::memory_order_acquire);
    while (generation_of(w) == generation && front_of(w) < back_of(w))
      if (claim_.compare_exchange_weak(w, front ? w + kFront : w - kBack, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
        return front ? front_of(w) : back_of(w) - 1;
    return -1;
  }

  // Chunk c is [n*c/chunks, n*(c+1)/chunks): fixed by n and chunks, whoever runs it.
  void run_chunk(int64_t c) {
    const int64_t chunks = chunks_;
    call_(body_, n_ * c / chunks, n_ * (c + 1) / chunks);
    done_.fetch_add(1, std::memory_order_release);
  }

  void work() {
    uint64_t seen = 0;  // the last generation this worker looked at
    for (;;) {
      // Spin a while for a new generation, then sleep until one is published.
      uint64_t w = claim_.load(std::memory_order_acquire);
      const auto until = std::chrono::steady_clock::now() + kSpinTime;
      for (int i = 0; generation_of(w) == seen; ++i) {
        if (i % 256 == 255 && std::chrono::steady_clock::now() > until) {
          sleepers_.fetch_add(1, std::memory_order_seq_cst);
          w = claim_.load(std::memory_order_seq_cst);
          if (generation_of(w) == seen) claim_.wait(w, std::memory_order_seq_cst);
          sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        } else {
          answer_ping();
          cpu_relax();
        }
        w = claim_.load(std::memory_order_acquire);
      }
      seen = generation_of(w);
      // Only threads - 1 workers take part in a loop started with `threads`.
      int allowed = helpers_allowed_.load(std::memory_order_relaxed);
      bool joined = false;
      while (allowed > 0 && !(joined = helpers_allowed_.compare_exchange_weak(allowed, allowed - 1))) {
      }
      if (!joined) continue;
      const InChunk in_chunk;
      for (int64_t c; (c = take_chunk(seen, false)) >= 0;)
        run_chunk(c);  // a worker's chunk must not throw (as in OpenMP)
    }
  }

  std::mutex owner_;                  // held by the caller of the loop in progress
  std::vector<std::thread> workers_;  // under owner_
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<int> helpers_allowed_{0};
  alignas(64) std::atomic<uint64_t> ping_{0};  // on a cache line of its own: the measurement times its trips
  alignas(64) std::atomic<int64_t> round_trip_ns_{0};
  std::atomic<int64_t> measured_at_ns_{0};  // now_ns() at the last measurement's start
  int64_t n_ = 0;  // the loop's size, chunks, function and body, written before claim_ is published
  int64_t chunks_ = 0;
  RangeCall call_ = nullptr;
  void* body_ = nullptr;
};

}  // namespace

void pool_run(int64_t n, int64_t chunks, int threads, RangeCall call, void* body) {
  chunks = std::min(chunks, std::min(n, kMaxChunks));
  if (threads < 2 || chunks < 2 || t_in_chunk) {
    const InChunk in_chunk;
    call(body, 0, n);
    return;
  }
  Pool::instance().run(n, chunks, threads, call, body);
}

bool in_pool_chunk() { return t_in_chunk; }

int64_t cores_round_trip_ns() { return Pool::instance().round_trip_ns(); }

namespace {
std::atomic<int> g_cores_far_override{-1};  // set_cores_far_for_tests: -1 measured, 0 close, 1 far
}

// Far only on a recent measurement: loops that far cores keep on one thread never reach the pool, which
// measures only when a loop does. Once the reading is older than kFarValidFor, loops are shared out as on
// close cores again, the pool measures anew, and the reading follows the machine back to one die.
bool cores_far() {
  const int forced = g_cores_far_override.load(std::memory_order_relaxed);
  if (forced >= 0) return forced == 1;
  const Pool& pool = Pool::instance();
  return pool.round_trip_ns() >= kFarRoundTripNs &&
         now_ns() - pool.measured_at_ns() < std::chrono::nanoseconds(kFarValidFor).count();
}

void set_cores_far_for_tests(int far) { g_cores_far_override.store(far, std::memory_order_relaxed); }

}  // namespace ng::kernel
