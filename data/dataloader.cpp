// dataloader.cpp: the epoch order (a seeded shuffle, random_permutation.h) and cutting it into batches.
#include "data/dataloader.h"

#include <algorithm>
#include <numeric>

#include "autograd/checked_size.h"
#include "data/random_permutation.h"

namespace ng::data {

DataLoader::DataLoader(const Dataset& dataset, DataLoaderOptions options) : dataset_(dataset), options_(options) {
  if (options_.batch_size <= 0)
    throw Error("DataLoader: batch_size " + std::to_string(options_.batch_size) + " must be >= 1");
}

// n / b batches, plus a last partial one unless drop_last: ceil(n / b) written without n + b - 1, which
// overflowed for batch_size = INT64_MAX (a negative count, and a loop that never ended).
int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_.size(), b = options_.batch_size;
  return n / b + (!options_.drop_last && n % b != 0);
}

DataLoader::Iterator DataLoader::begin() {
  if (options_.shuffle) {
    // Epoch e's stream: the seed mixed once, then e folded in.
    order_ = random_permutation(dataset_.size(), SplitMix64{options_.seed}.next() ^ static_cast<uint64_t>(epoch_));
  } else {
    order_.resize(static_cast<std::size_t>(dataset_.size()));
    std::iota(order_.begin(), order_.end(), int64_t{0});
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

// Batch `index` holds order_[first, last): first = index * b, last = min(first + b, n), the sum taken
// as first + min(b, n - first) so that it cannot pass n (first + b overflowed for b near 2^63).
Batch DataLoader::load_batch(int64_t index) const {
  const int64_t n = static_cast<int64_t>(order_.size()), b = options_.batch_size;
  const int64_t first = checked_size::mul(index, b, "DataLoader: batch_size " + std::to_string(b),
                                          "first example, batch index * batch_size");
  const int64_t last = first + std::min(b, n - first);
  return dataset_.get_batch(std::vector<int64_t>(order_.begin() + first, order_.begin() + last));
}

}  // namespace ng::data
