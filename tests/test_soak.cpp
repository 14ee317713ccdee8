// test_soak.cpp: a short soak. A BatchNorm MLP trains for 2,000 SGD steps; after a warm-up (500 steps,
// 1,000 under AddressSanitizer), neither the process's resident memory (from /proc/self/statm) nor the
// number of live graph nodes and buffers may grow: every step must give back all it took. The figures
// are printed.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <memory>

#include "normgrad.h"

using namespace ng;

// AddressSanitizer holds freed memory in a quarantine (256 MB) before reusing it, so resident memory
// would climb whatever the program does; without it the sanitizer build measures what the program
// itself holds. (Use after free is still checked by every other test program.)
extern "C" const char* __asan_default_options() { return "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"; }

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
constexpr bool kAddressSanitizer = __has_feature(address_sanitizer);
#else
constexpr bool kAddressSanitizer = false;
#endif

// Resident memory in bytes: /proc/self/statm's second field counts pages.
int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t total_pages = 0, resident_pages = 0;
  statm >> total_pages >> resident_pages;
  return resident_pages * sysconf(_SC_PAGESIZE);
}

}  // namespace

TEST_CASE("2,000 steps of a BatchNorm MLP: resident memory and live nodes stay flat after warm-up") {
  manual_seed(3);
  nn::Sequential net{
      std::make_shared<nn::Linear>(32, 64, false), std::make_shared<nn::BatchNorm1d>(64), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(64, 32, false), std::make_shared<nn::BatchNorm1d>(32), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(32, 10)};
  optim::SGD sgd(net.parameters(), {.lr = 0.05, .momentum = 0.9});
  // A fixed pool of batches (fresh data every step would only add the generator's cost).
  std::vector<Tensor> inputs, targets;
  for (int b = 0; b < 8; ++b) {
    inputs.push_back(randn({16, 32}));
    targets.push_back(argmax(slice(inputs.back(), 1, 0, 10), 1));  // a learnable rule: the largest of 10
  }

  // Under AddressSanitizer its quarantine and allocator caches fill up during the first ~1,000 steps.
  constexpr int kSteps = 2000, kWarmUp = kAddressSanitizer ? 1000 : 500;
  int64_t rss_at_warm_up = 0, rss_max = 0, nodes_at_warm_up = 0, storages_at_warm_up = 0;
  int64_t nodes_max = 0, storages_max = 0, graph_at_warm_up = 0, graph_min = INT64_MAX, graph_max = 0;
  double first_loss = 0, last_loss = 0;
  for (int step = 1; step <= kSteps; ++step) {
    sgd.zero_grad();
    Tensor loss = nn::cross_entropy(net(inputs[step % 8]), targets[step % 8]);
    const int64_t graph_nodes = live_nodes();  // the step's graph, built and not yet freed
    loss.backward();
    sgd.step();
    (step == 1 ? first_loss : last_loss) = loss.item();
    loss = Tensor();  // the graph goes with it
    if (step == kWarmUp) {
      rss_at_warm_up = resident_bytes();
      nodes_at_warm_up = live_nodes();
      storages_at_warm_up = live_storages();
      graph_at_warm_up = graph_nodes;
    }
    if (step >= kWarmUp) {
      graph_min = std::min(graph_min, graph_nodes);
      graph_max = std::max(graph_max, graph_nodes);
      rss_max = std::max(rss_max, resident_bytes());
      nodes_max = std::max(nodes_max, live_nodes());
      storages_max = std::max(storages_max, live_storages());
    }
  }
  MESSAGE("resident memory at step " << kWarmUp << ": " << rss_at_warm_up / 1024 << " KiB, largest up to step "
                                     << kSteps << ": " << rss_max / 1024 << " KiB; live nodes " << nodes_at_warm_up
                                     << " -> at most " << nodes_max << ", live buffers " << storages_at_warm_up
                                     << " -> at most " << storages_max << "; nodes in each step's graph " << graph_min
                                     << " to " << graph_max << "; loss " << first_loss << " -> " << last_loss);
  CHECK(last_loss < first_loss);  // it trained
  CHECK(graph_at_warm_up > 0);
  CHECK(graph_min == graph_at_warm_up);  // every step builds the same graph and frees all of it
  CHECK(graph_max == graph_at_warm_up);
  CHECK(nodes_max == nodes_at_warm_up);
  CHECK(storages_max == storages_at_warm_up);
  // 256 KiB of slack for the allocator's own bookkeeping: a leak of one activation per step (1,000 x
  // 16 x 64 floats = 4 MiB) would pass it many times over, and a leaked node or buffer is caught by
  // the counts above.
  CHECK(rss_max - rss_at_warm_up <= 256 * 1024);
}
