// dataloader.h: iterates over a Dataset in batches (PyTorch's torch.utils.data.DataLoader, single
// process). Each range-for over a DataLoader is one epoch:
//
//   data::DataLoader loader(train_set, {.batch_size = 64, .shuffle = true, .seed = 1});
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (const data::Batch& batch : loader) { ... batch.inputs [64, 1, 28, 28], batch.labels [64] ... }
//
// With shuffle, epoch e visits the examples in a permutation drawn from (seed, e) alone: the same
// seed gives the same sequence of epochs on every run and machine, and no other random numbers
// (model initialization, dropout) are disturbed.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace ng::data {

struct DataLoaderOptions {
  int64_t batch_size = 1;  // PyTorch's defaults: one example per batch, in order
  bool shuffle = false;
  uint64_t seed = 0;
  bool drop_last = false;  // drop the last batch when it is smaller than batch_size
};

class DataLoader {
 public:
  // Keeps a reference to `dataset`, which must outlive the loader.
  DataLoader(const Dataset& dataset, DataLoaderOptions options = {});

  int64_t num_batches() const;
  // Epochs started so far (each begin() starts one).
  int64_t epochs_started() const { return epoch_; }

  class Iterator {
   public:
    const Batch& operator*() const { return batch_; }
    const Batch* operator->() const { return &batch_; }
    Iterator& operator++();
    bool operator!=(const Iterator& other) const { return index_ != other.index_; }

   private:
    friend class DataLoader;
    Iterator(const DataLoader* loader, int64_t index);
    const DataLoader* loader_;
    int64_t index_;  // which batch of the epoch
    Batch batch_;
  };

  // Starts a new epoch: draws its order and loads its first batch.
  Iterator begin();
  Iterator end() const;

 private:
  Batch load_batch(int64_t index) const;

  const Dataset& dataset_;
  DataLoaderOptions options_;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;  // this epoch's permutation of 0..size-1
};

}  // namespace ng::data
