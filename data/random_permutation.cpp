// random_permutation.cpp: splitmix64 and a Fisher-Yates shuffle driven by it.
#include "data/random_permutation.h"

#include <numeric>
#include <utility>

namespace ng::data {

uint64_t SplitMix64::next() {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Rejects the few values that would make `% n` favour small numbers: 2^64 is rarely a multiple of n.
uint64_t SplitMix64::below(uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = next();
  while (x >= limit);
  return x % n;
}

std::vector<int64_t> random_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  // Fisher-Yates: position i takes a uniformly chosen element of order[0..i], so every permutation is
  // equally likely.
  SplitMix64 rng{seed};
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

}  // namespace ng::data
