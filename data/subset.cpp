// subset.cpp: Subset maps its indices onto the dataset's; random_split cuts a seeded permutation.
#include "data/subset.h"

#include <string>
#include <utility>

#include "data/random_permutation.h"

namespace ng::data {

Subset::Subset(const Dataset& dataset, std::vector<int64_t> indices) : dataset_(dataset), indices_(std::move(indices)) {
  for (std::size_t i = 0; i < indices_.size(); ++i)
    if (indices_[i] < 0 || indices_[i] >= dataset_.size())
      throw Error("Subset: index " + std::to_string(indices_[i]) + " at position " + std::to_string(i) +
                  " is out of range for a dataset of " + std::to_string(dataset_.size()) + " examples");
}

Example Subset::get(int64_t index) const {
  check_index("Subset", index);
  return dataset_.get(indices_[static_cast<std::size_t>(index)]);
}

// indices into the subset -> the same positions of the dataset -> inputs [B, ...], labels [B]
Batch Subset::get_batch(const std::vector<int64_t>& indices) const {
  std::vector<int64_t> in_dataset(indices.size());
  for (std::size_t b = 0; b < indices.size(); ++b) {
    check_index("Subset", indices[b]);
    in_dataset[b] = indices_[static_cast<std::size_t>(indices[b])];
  }
  return dataset_.get_batch(in_dataset);
}

std::vector<Subset> random_split(const Dataset& dataset, const std::vector<int64_t>& lengths, uint64_t seed) {
  int64_t total = 0;
  std::string sum_text;
  for (int64_t length : lengths) {
    if (length < 0)
      throw Error("random_split: length " + std::to_string(length) + " is negative; expected lengths >= 0");
    total += length;
    sum_text += (sum_text.empty() ? "" : " + ") + std::to_string(length);
  }
  if (total != dataset.size())
    throw Error("random_split: lengths " + (lengths.empty() ? std::string("(none)") : sum_text) + " = " +
                std::to_string(total) + " do not add up to the dataset's " + std::to_string(dataset.size()) +
                " examples");
  const std::vector<int64_t> order = random_permutation(dataset.size(), seed);
  std::vector<Subset> parts;
  auto first = order.begin();
  for (int64_t length : lengths) {
    parts.emplace_back(dataset, std::vector<int64_t>(first, first + length));
    first += length;
  }
  return parts;
}

}  // namespace ng::data
