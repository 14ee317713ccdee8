// dataloader.cpp: the epoch order (a seeded Fisher-Yates shuffle) and cutting it into batches.
#include "data/dataloader.h"

#include <algorithm>
#include <numeric>

namespace ng::data {

namespace {

// splitmix64 (Steele, Lea, Flood): a tiny generator whose every output is a well-mixed function of
// its state, so nearby seeds (seed, epoch 0 / epoch 1) still give unrelated streams.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n): rejects the few values that would make `% n` favour small numbers.
  uint64_t below(uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
  }
};

}  // namespace

DataLoader::DataLoader(const Dataset& dataset, DataLoaderOptions options) : dataset_(dataset), options_(options) {
  if (options_.batch_size <= 0)
    throw Error("DataLoader: batch_size " + std::to_string(options_.batch_size) + " must be >= 1");
}

int64_t DataLoader::num_batches() const {
  int64_t n = dataset_.size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

DataLoader::Iterator DataLoader::begin() {
  order_.resize(static_cast<std::size_t>(dataset_.size()));
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (options_.shuffle) {
    // Fisher-Yates: position i takes a uniformly chosen element of order_[0..i], so every
    // permutation is equally likely.
    SplitMix64 rng{SplitMix64{options_.seed}.next() ^ static_cast<uint64_t>(epoch_)};
    for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng.below(i)]);
  }
  ++epoch_;
  return Iterator(this, 0);
}

DataLoader::Iterator DataLoader::end() const { return Iterator(this, num_batches()); }

DataLoader::Iterator::Iterator(const DataLoader* loader, int64_t index) : loader_(loader), index_(index) {
  if (index_ < loader_->num_batches()) batch_ = loader_->load_batch(index_);
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  ++index_;
  batch_ = index_ < loader_->num_batches() ? loader_->load_batch(index_) : Batch{};
  return *this;
}

Batch DataLoader::load_batch(int64_t index) const {
  int64_t first = index * options_.batch_size;
  int64_t last = std::min<int64_t>(first + options_.batch_size, static_cast<int64_t>(order_.size()));
  return dataset_.get_batch(std::vector<int64_t>(order_.begin() + first, order_.begin() + last));
}

}  // namespace ng::data
