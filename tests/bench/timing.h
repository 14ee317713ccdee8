// timing.h: the timing method and CSV row shared by normgrad's benchmark (bench.cpp) and the libtorch
// reference (libtorch_reference.cpp), so that both sides of every ratio are measured the same way.
// Standard library only: the reference program does not link normgrad.
//
// Method: warm up for 0.2 s; batch calls into blocks of at least 0.2 ms (a block of one call would
// mostly time the clock); time blocks for total_s seconds and at least min_blocks blocks; report the
// median, 10th and 90th percentile of the time per call. The median, not the mean, because other
// processes on the machine add long outliers.
//
// CSV columns: bench,threads,median_us,p10_us,p90_us,inner,blocks,derived   (derived: GFLOP/s, GB/s or a note)
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace bench_timing {

using Clock = std::chrono::steady_clock;
inline double seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

struct Stats {
  double median, p10, p90;  // seconds per call
  long inner;               // calls per timed block
  long blocks;              // timed blocks
};

// Linear-interpolation percentile of a sample, q in [0, 100] (numpy's default method).
inline double percentile(std::vector<double> sample, double q) {
  std::sort(sample.begin(), sample.end());
  const double at = q / 100.0 * static_cast<double>(sample.size() - 1);
  const auto lo = static_cast<std::size_t>(at);
  const std::size_t hi = std::min(lo + 1, sample.size() - 1);
  return sample[lo] + (sample[hi] - sample[lo]) * (at - static_cast<double>(lo));
}

inline Stats time_calls(const std::function<void()>& call, double total_s = 2.0, double min_block_s = 2e-4,
                        long min_blocks = 20) {
  const auto warm_start = Clock::now();
  long warm_calls = 0;
  while (seconds(warm_start, Clock::now()) < 0.2) {
    call();
    ++warm_calls;
  }
  const double per_call = 0.2 / static_cast<double>(warm_calls);
  const long inner = std::max(1L, static_cast<long>(min_block_s / per_call) + 1);
  const long max_blocks = 100000;
  std::vector<double> per_call_s;
  const auto start = Clock::now();
  while (static_cast<long>(per_call_s.size()) < max_blocks &&
         (static_cast<long>(per_call_s.size()) < min_blocks || seconds(start, Clock::now()) < total_s)) {
    const auto block_start = Clock::now();
    for (long i = 0; i < inner; ++i) call();
    per_call_s.push_back(seconds(block_start, Clock::now()) / static_cast<double>(inner));
  }
  return {percentile(per_call_s, 50), percentile(per_call_s, 10), percentile(per_call_s, 90), inner,
          static_cast<long>(per_call_s.size())};
}

// Times step(x, y) over the pairs (xs[k], ys[k]), taken in turn and cycled, for total_s seconds: a training
// step on one mini-batch after another. Tensor is ng::Tensor or torch::Tensor (both programs use it).
template <class Tensor, class Step>
Stats time_cycled(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, Step step, double total_s = 4.0) {
  std::size_t k = 0;
  return time_calls(
      [&] {
        const std::size_t i = k++ % xs.size();
        step(xs[i], ys[i]);
      },
      total_s);
}

// The command line both programs take:  PROGRAM OUT.csv [--threads=1,2] [--only=TEXT]
// --only runs the cases whose name contains TEXT. Cases timed together on shared data are asked for by the
// group's common prefix ("add_1elem"), and the group runs when TEXT names any of its cases.
struct Options {
  std::string out_path;
  std::vector<int> threads{1, 2};
  std::string only;
  bool wanted(const std::string& name) const {
    return name.find(only) != std::string::npos || only.find(name) != std::string::npos;
  }
};

inline Options parse_options(int argc, char** argv, const char* default_out) {
  Options options;
  options.out_path = default_out;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--threads=", 0) == 0) {
      options.threads.clear();
      std::size_t from = 10;
      while (from < arg.size()) {
        const std::size_t comma = std::min(arg.find(',', from), arg.size());
        const int n = std::atoi(arg.substr(from, comma - from).c_str());
        if (n < 1) {
          std::fprintf(stderr, "%s: bad thread count in '%s'; expected --threads=1,2 (positive numbers)\n", argv[0],
                       arg.c_str());
          std::exit(2);
        }
        options.threads.push_back(n);
        from = comma + 1;
      }
    } else if (arg.rfind("--only=", 0) == 0) {
      options.only = arg.substr(7);
    } else if (arg.rfind("--", 0) == 0) {
      std::fprintf(stderr, "%s: unknown option '%s'; expected OUT.csv [--threads=1,2] [--only=TEXT]\n", argv[0],
                   arg.c_str());
      std::exit(2);
    } else {
      options.out_path = arg;
    }
  }
  return options;
}

// Writes the CSV header on construction and one row per report(), flushed at once (a run stopped halfway
// keeps its finished rows); also prints each row readably.
class Report {
 public:
  explicit Report(const std::string& path) : out_(path) {
    if (!out_) {
      std::fprintf(stderr, "cannot write the benchmark table to '%s'\n", path.c_str());
      std::exit(2);
    }
    out_ << "bench,threads,median_us,p10_us,p90_us,inner,blocks,derived\n";
  }
  void operator()(const std::string& name, int threads, const Stats& s, const std::string& derived = "") {
    char line[512];
    std::snprintf(line, sizeof line, "%s,%d,%.4f,%.4f,%.4f,%ld,%ld,%s", name.c_str(), threads, s.median * 1e6,
                  s.p10 * 1e6, s.p90 * 1e6, s.inner, s.blocks, derived.c_str());
    out_ << line << "\n";
    out_.flush();
    std::printf("%-32s %d thr  median %10.3f us  [p10 %10.3f, p90 %10.3f]  %s\n", name.c_str(), threads, s.median * 1e6,
                s.p10 * 1e6, s.p90 * 1e6, derived.c_str());
    std::fflush(stdout);
  }

 private:
  std::ofstream out_;
};

// "GFLOP/s=..." for a product that does `flop` floating-point operations per call.
inline std::string gflops(double flop, const Stats& s) {
  char text[64];
  std::snprintf(text, sizeof text, "GFLOP/s=%.2f", flop / s.median / 1e9);
  return text;
}

// How long a cache line takes to go from one core to another and back: two threads hand a counter to each
// other 20,000 times (median of 5 runs, ns per round trip). It says where the machine put the two cores,
// which the 2-thread times depend on: on the 2-core test machine 70-120 ns (cores on one die) or 340-400 ns
// (different dies; a virtual machine's cores move between the two without notice). Data one thread wrote
// and the other reads pays that price per cache line, so every 2-thread ratio is worse in the second case.
inline double core_round_trip_ns() {
  constexpr long kTrips = 20000;
  std::vector<double> runs;
  for (int run = 0; run < 5; ++run) {
    alignas(64) std::atomic<long> turn{0};
    std::thread other([&] {
      for (long i = 0; i < kTrips; ++i) {
        while (turn.load(std::memory_order_acquire) != 2 * i + 1) {
        }
        turn.store(2 * i + 2, std::memory_order_release);
      }
    });
    while (turn.load(std::memory_order_acquire) != 0) {
    }
    const auto start = Clock::now();
    for (long i = 0; i < kTrips; ++i) {
      turn.store(2 * i + 1, std::memory_order_release);
      while (turn.load(std::memory_order_acquire) != 2 * i + 2) {
      }
    }
    runs.push_back(seconds(start, Clock::now()) / kTrips * 1e9);
    other.join();
  }
  return percentile(runs, 50);
}

}  // namespace bench_timing
