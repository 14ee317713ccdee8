// test_thread_pool.cpp: the pool behind kernel::parallel_for (autograd/thread_pool.h). Every index of a loop
// runs exactly once, whoever takes its chunk; a loop inside a chunk runs on that thread; an exception from the
// caller's chunk reaches the caller and leaves the pool usable; loops started from several threads at once
// are all complete; the pool measures how far apart its cores are. Runs under ThreadSanitizer in CI
// (.ci/run), which checks the pool's memory ordering.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "autograd/parallel_for.h"
#include "autograd/thread_pool.h"
#include "test_helpers.h"

namespace {

using ng::kernel::pool_run;

// Runs pool_run over [0, n) in `chunks` chunks on `threads` threads and returns how many indices did not
// run exactly once (0 when the loop was right).
int wrong_visits(int64_t n, int64_t chunks, int threads) {
  std::vector<std::atomic<int>> count(static_cast<std::size_t>(n));
  struct Body {
    std::vector<std::atomic<int>>* count;
  } body{&count};
  pool_run(
      n, chunks, threads,
      [](void* b, int64_t begin, int64_t end) {
        auto& c = *static_cast<Body*>(b)->count;
        for (int64_t i = begin; i < end; ++i) c[static_cast<std::size_t>(i)].fetch_add(1);
      },
      &body);
  int wrong = 0;
  for (auto& c : count) wrong += c.load() != 1;
  return wrong;
}

}  // namespace

TEST_CASE("pool_run: every index runs exactly once, for any size, chunk count and thread count") {
  for (int64_t n : {0, 1, 2, 3, 7, 64, 1000, 4099})
    for (int64_t chunks : {1, 2, 3, 8, 100})
      for (int threads : {1, 2, 3, 4}) {
        CAPTURE(n);
        CAPTURE(chunks);
        CAPTURE(threads);
        CHECK(wrong_visits(n, chunks, threads) == 0);
      }
}

TEST_CASE("pool_run: many loops back to back, as a training step runs them, each complete") {
  for (int round = 0; round < 2000; ++round) {
    REQUIRE(wrong_visits(64, 8, 2) == 0);
  }
}

TEST_CASE("parallel_for: a loop inside a chunk runs on that thread, and in_pool_chunk says so" *
          doctest::skip(two_threads_unavailable())) {
  const int before = ng::get_num_threads();
  ng::set_num_threads(2);  // whatever OMP_NUM_THREADS says: the outer loop must be shared out
  CHECK_FALSE(ng::kernel::in_pool_chunk());
  std::vector<std::atomic<int>> inner_seen_chunk(64);
  std::vector<std::atomic<int>> count(64 * 32);
  ng::kernel::parallel_for(64, true, [&](int64_t i) {
    inner_seen_chunk[static_cast<std::size_t>(i)] = ng::kernel::in_pool_chunk() ? 1 : 0;
    const std::thread::id outer = std::this_thread::get_id();
    ng::kernel::parallel_for(32, true, [&](int64_t j) {
      if (std::this_thread::get_id() == outer) count[static_cast<std::size_t>(i * 32 + j)].fetch_add(1);
    });
  });
  int wrong = 0, not_in_chunk = 0;
  for (auto& c : count) wrong += c.load() != 1;
  for (auto& s : inner_seen_chunk) not_in_chunk += s.load() != 1;
  CHECK(wrong == 0);
  CHECK(not_in_chunk == 0);
  CHECK_FALSE(ng::kernel::in_pool_chunk());
  ng::set_num_threads(before);
}

TEST_CASE("pool_run: an exception from a chunk reaches the caller, and the pool works afterwards") {
  // Thrown on the caller's thread: with threads = 1 every chunk is the caller's. With 2 threads the throwing
  // chunk may land on a worker, which (as in OpenMP) must not throw, so that case is not run.
  struct Body {
    int64_t bad;
  } body{3};
  CHECK_THROWS_AS(pool_run(
                      8, 8, 1,
                      [](void* b, int64_t begin, int64_t end) {
                        for (int64_t i = begin; i < end; ++i)
                          if (i == static_cast<Body*>(b)->bad) throw std::runtime_error("chunk failed");
                      },
                      &body),
                  std::runtime_error);
  CHECK_FALSE(ng::kernel::in_pool_chunk());
  // With 2 threads, only chunks on the caller's thread throw; the others run to the end. A chunk takes about
  // 100 us, so the caller takes some of the 8 in practice on every attempt; one thrown attempt in 20 is
  // required (a caller preempted for the whole loop 20 times in a row would fail it).
  struct CallerBody {
    std::thread::id caller;
    std::atomic<int> ran{0};
  } caller_body{std::this_thread::get_id()};
  int thrown = 0;
  for (int attempt = 0; attempt < 20; ++attempt) {
    caller_body.ran = 0;
    try {
      pool_run(
          64, 8, 2,
          [](void* b, int64_t begin, int64_t end) {
            auto* cb = static_cast<CallerBody*>(b);
            cb->ran.fetch_add(static_cast<int>(end - begin));
            // ~100 us per chunk, so that a worker cannot take every chunk before the caller takes one
            const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
            while (std::chrono::steady_clock::now() < until) {
            }
            if (std::this_thread::get_id() == cb->caller) throw std::runtime_error("caller's chunk failed");
          },
          &caller_body);
    } catch (const std::runtime_error&) {
      ++thrown;
    }
    CHECK(caller_body.ran.load() == 64);  // every chunk ran, the throwing ones included, before pool_run returned
  }
  CHECK(thrown > 0);
  CHECK(wrong_visits(100, 8, 2) == 0);
}

TEST_CASE("pool_run: loops started from several threads at once all complete (one at a time owns the pool)") {
  std::vector<std::thread> users;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    users.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        wrong += wrong_visits(257, 8, 2);
      }
    });
  for (std::thread& u : users) u.join();
  CHECK(wrong.load() == 0);
}

// The pool measures how far apart its caller's and worker's cores are (cores_round_trip_ns), at most every
// 100 ms, while loops run and the worker is awake to answer. After loops back to back it has a measurement:
// a cache line's round trip, more than 0, and below 200 us, after which a trip is given up. (On a busy
// machine, where the worker may not get a core in time, measurements are given up, so the loops go on for
// up to 20 s.)
TEST_CASE("pool_run: the pool measures the distance between its threads' cores" *
          doctest::skip(two_threads_unavailable())) {
  const auto start = std::chrono::steady_clock::now();
  int64_t round_trip = 0;
  while (round_trip == 0 && std::chrono::steady_clock::now() - start < std::chrono::seconds(20)) {
    REQUIRE(wrong_visits(64, 8, 2) == 0);
    round_trip = ng::kernel::cores_round_trip_ns();
  }
  CHECK(round_trip > 0);
  CHECK(round_trip < 200000);
}

TEST_CASE("cores_far: a test can hold it either way, and then give it back to the measurement") {
  ng::kernel::set_cores_far_for_tests(1);
  CHECK(ng::kernel::cores_far());
  ng::kernel::set_cores_far_for_tests(0);
  CHECK_FALSE(ng::kernel::cores_far());
  ng::kernel::set_cores_far_for_tests(-1);
  // measured again: far only when the last measurement said so
  CHECK((!ng::kernel::cores_far() || ng::kernel::cores_round_trip_ns() >= ng::kernel::kFarRoundTripNs));
}
