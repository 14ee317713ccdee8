// subset.h: part of a dataset as a dataset of its own (PyTorch's torch.utils.data.Subset and
// random_split), e.g. a held-out split for measuring accuracy:
//
//   std::vector<data::Subset> parts = data::random_split(folder, {800, 200}, /*seed=*/1);
//   data::DataLoader loader(parts[0], {.batch_size = 32});   // train on parts[0], test on parts[1]
//
// A Subset keeps a reference to the dataset and a list of its indices; no example is copied.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace ng::data {

class Subset : public Dataset {
 public:
  // Example i of the subset is example indices[i] of `dataset`, which must outlive the subset. Every
  // index must lie in 0..dataset.size()-1 (an Error naming the first that does not); repeats are allowed.
  Subset(const Dataset& dataset, std::vector<int64_t> indices);

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Example get(int64_t index) const override;
  // The dataset's own get_batch on the mapped indices, so a dataset's fast batching (MNIST's) still applies.
  Batch get_batch(const std::vector<int64_t>& indices) const override;

  const Dataset& dataset() const { return dataset_; }
  const std::vector<int64_t>& indices() const { return indices_; }

 private:
  const Dataset& dataset_;
  std::vector<int64_t> indices_;
};

// Splits `dataset` into subsets of the given lengths, which must be >= 0 and add up to dataset.size():
// a permutation of all indices drawn from `seed` alone (random_permutation.h), cut into consecutive
// pieces. Every example lands in exactly one subset; the same seed gives the same split.
std::vector<Subset> random_split(const Dataset& dataset, const std::vector<int64_t>& lengths, uint64_t seed);

}  // namespace ng::data
