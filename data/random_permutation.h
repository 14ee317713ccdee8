// random_permutation.h: seeded shuffles for the DataLoader's epochs and random_split, independent of
// the global generator (ng::manual_seed) so that drawing them disturbs no other random numbers.
#pragma once

#include <cstdint>
#include <vector>

namespace ng::data {

// splitmix64 (Steele, Lea, Flood): a tiny generator whose every output is a well-mixed function of
// its state, so nearby seeds (seed, epoch 0 / epoch 1) still give unrelated streams.
struct SplitMix64 {
  uint64_t state;
  uint64_t next();
  // Uniform in [0, n), n >= 1.
  uint64_t below(uint64_t n);
};

// A permutation of 0, 1, ..., n-1, each equally likely, drawn from `seed` alone: the same seed gives
// the same permutation on every run and machine.
std::vector<int64_t> random_permutation(int64_t n, uint64_t seed);

}  // namespace ng::data
