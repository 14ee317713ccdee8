// test_dataloader.cpp: iterating over datasets: the DataLoader's epochs (every example once, seeded
// shuffles, the last partial batch), random_permutation, and Subset / random_split (index mapping,
// batches through the dataset's own get_batch, disjoint covering splits, bad indices and lengths).
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "normgrad.h"

using namespace ng;

namespace {

// Labels 0..n-1, input [2] = {i, -i}: a dataset whose batches show exactly which examples they hold.
struct RangeDataset : data::Dataset {
  int64_t n;
  explicit RangeDataset(int64_t size) : n(size) {}
  int64_t size() const override { return n; }
  data::Example get(int64_t i) const override {
    check_index("RangeDataset", i);
    return {tensor({static_cast<double>(i), -static_cast<double>(i)}), i};
  }
};

// The labels of one epoch, batch after batch.
std::vector<int64_t> epoch_labels(data::DataLoader& loader) {
  std::vector<int64_t> labels;
  for (const data::Batch& batch : loader)
    for (int64_t b = 0; b < batch.labels.numel(); ++b) labels.push_back(batch.labels.data<int64_t>()[b]);
  return labels;
}

// A RangeDataset that remembers the indices of every get_batch call, to see who assembles batches.
struct RecordingDataset : RangeDataset {
  using RangeDataset::RangeDataset;
  mutable std::vector<std::vector<int64_t>> batches_asked;
  data::Batch get_batch(const std::vector<int64_t>& indices) const override {
    batches_asked.push_back(indices);
    return RangeDataset::get_batch(indices);
  }
};

std::vector<int64_t> iota_vector(int64_t n) {
  std::vector<int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

std::vector<int64_t> sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

// ---- DataLoader -----------------------------------------------------------------------------------

TEST_CASE("a shuffled epoch yields every example exactly once, in batches of inputs matching labels") {
  RangeDataset dataset(103);
  data::DataLoader loader(dataset, {.batch_size = 10, .shuffle = true, .seed = 7});
  CHECK(loader.num_batches() == 11);
  std::vector<int64_t> seen;
  int64_t batches = 0;
  for (const data::Batch& batch : loader) {
    ++batches;
    CHECK(batch.inputs.shape() == Shape{batch.labels.numel(), 2});
    for (int64_t b = 0; b < batch.labels.numel(); ++b) {
      CHECK(batch.inputs.at({b, 0}) == batch.labels.at({b}));
      seen.push_back(batch.labels.data<int64_t>()[b]);
    }
  }
  CHECK(batches == 11);
  std::vector<int64_t> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> all(103);
  std::iota(all.begin(), all.end(), int64_t{0});
  CHECK(sorted == all);
  CHECK(seen != all);  // and it was shuffled
}

TEST_CASE("the same seed gives the same epochs; another seed or the next epoch gives another order") {
  RangeDataset dataset(50);
  data::DataLoader a(dataset, {.batch_size = 8, .shuffle = true, .seed = 1});
  data::DataLoader b(dataset, {.batch_size = 8, .shuffle = true, .seed = 1});
  data::DataLoader c(dataset, {.batch_size = 8, .shuffle = true, .seed = 2});
  std::vector<int64_t> a0 = epoch_labels(a), a1 = epoch_labels(a);
  CHECK(a0 == epoch_labels(b));
  CHECK(a1 == epoch_labels(b));
  CHECK(a0 != a1);
  CHECK(a0 != epoch_labels(c));
  CHECK(a.epochs_started() == 2);
}

TEST_CASE("without shuffle the examples come in order") {
  RangeDataset dataset(5);
  data::DataLoader loader(dataset, {.batch_size = 2, .shuffle = false});
  CHECK(epoch_labels(loader) == std::vector<int64_t>{0, 1, 2, 3, 4});
}

TEST_CASE("the last partial batch is kept, or dropped with drop_last") {
  RangeDataset dataset(10);
  for (bool drop_last : {false, true}) {
    CAPTURE(drop_last);
    data::DataLoader loader(dataset, {.batch_size = 4, .shuffle = true, .seed = 3, .drop_last = drop_last});
    std::vector<int64_t> sizes;
    for (const data::Batch& batch : loader) sizes.push_back(batch.inputs.size(0));
    CHECK(sizes == (drop_last ? std::vector<int64_t>{4, 4} : std::vector<int64_t>{4, 4, 2}));
    CHECK(loader.num_batches() == static_cast<int64_t>(sizes.size()));
  }
  CHECK_THROWS_WITH_AS(data::DataLoader(dataset, {.batch_size = 0}), doctest::Contains("batch_size 0"), Error);
}

// ---- random_permutation ---------------------------------------------------------------------------

TEST_CASE("random_permutation holds each of 0..n-1 once and depends on the seed alone") {
  for (int64_t n : {0, 1, 2, 57}) {
    CAPTURE(n);
    CHECK(sorted(data::random_permutation(n, 5)) == iota_vector(n));
  }
  manual_seed(1);  // the global generator plays no part
  const std::vector<int64_t> first = data::random_permutation(57, 5);
  manual_seed(2);
  CHECK(data::random_permutation(57, 5) == first);
  CHECK(data::random_permutation(57, 6) != first);
  CHECK(first != iota_vector(57));
}

// ---- Subset and random_split ----------------------------------------------------------------------

TEST_CASE("Subset: example i is the dataset's example indices[i]; repeats are allowed") {
  RangeDataset dataset(10);
  data::Subset subset(dataset, {7, 2, 2, 9});
  CHECK(subset.size() == 4);
  CHECK(subset.indices() == std::vector<int64_t>{7, 2, 2, 9});
  CHECK(&subset.dataset() == &dataset);
  for (int64_t i = 0; i < subset.size(); ++i) {
    const data::Example example = subset.get(i);
    CHECK(example.label == subset.indices()[static_cast<std::size_t>(i)]);
    CHECK(example.input.to_vector() == dataset.get(example.label).input.to_vector());
  }
  data::DataLoader loader(subset, {.batch_size = 3, .shuffle = false});
  CHECK(epoch_labels(loader) == std::vector<int64_t>{7, 2, 2, 9});
  data::Subset empty(dataset, {});
  CHECK(empty.size() == 0);
}

TEST_CASE("Subset batches come from the dataset's own get_batch at the mapped indices") {
  RecordingDataset dataset(10);
  data::Subset subset(dataset, {4, 8, 1});
  const data::Batch batch = subset.get_batch({2, 0});
  REQUIRE(dataset.batches_asked.size() == 1);
  CHECK(dataset.batches_asked[0] == std::vector<int64_t>{1, 4});
  CHECK(batch.inputs.shape() == Shape{2, 2});
  CHECK(batch.labels.to_vector() == std::vector<double>{1, 4});
  CHECK(batch.inputs.at({1, 1}) == -4);
}

TEST_CASE("Subset refuses indices outside the dataset or the subset, naming the index and the size") {
  RangeDataset dataset(5);
  CHECK_THROWS_WITH_AS(data::Subset(dataset, {0, 5}),
                       doctest::Contains("Subset: index 5 at position 1 is out of range for a dataset of 5 examples"),
                       Error);
  CHECK_THROWS_WITH_AS(data::Subset(dataset, {-1}), doctest::Contains("index -1 at position 0"), Error);
  data::Subset subset(dataset, {3, 4});
  CHECK_THROWS_WITH_AS(subset.get(2), doctest::Contains("Subset: index 2 is out of range for a dataset of 2 examples"),
                       Error);
  CHECK_THROWS_WITH_AS(subset.get_batch({0, -1}), doctest::Contains("Subset: index -1 is out of range"), Error);
}

TEST_CASE("random_split: disjoint subsets of the given lengths covering the dataset; the seed fixes the split") {
  RangeDataset dataset(20);
  const std::vector<data::Subset> parts = data::random_split(dataset, {12, 0, 8}, 3);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].size() == 12);
  CHECK(parts[1].size() == 0);
  CHECK(parts[2].size() == 8);
  std::vector<int64_t> all = parts[0].indices();
  all.insert(all.end(), parts[2].indices().begin(), parts[2].indices().end());
  CHECK(sorted(all) == iota_vector(20));                    // every example in exactly one part
  CHECK(parts[0].indices() != sorted(parts[0].indices()));  // and drawn at random, not cut in order

  CHECK(data::random_split(dataset, {12, 0, 8}, 3)[0].indices() == parts[0].indices());
  CHECK(data::random_split(dataset, {12, 0, 8}, 4)[0].indices() != parts[0].indices());
}

TEST_CASE("random_split refuses negative lengths and lengths that do not add up to the dataset's size") {
  RangeDataset dataset(10);
  CHECK_THROWS_WITH_AS(data::random_split(dataset, {3, 4}, 0),
                       doctest::Contains("random_split: lengths 3 + 4 = 7 do not add up to the dataset's 10 examples"),
                       Error);
  CHECK_THROWS_WITH_AS(data::random_split(dataset, {12, -2}, 0), doctest::Contains("length -2 is negative"), Error);
  CHECK_THROWS_WITH_AS(data::random_split(dataset, {}, 0), doctest::Contains("lengths (none) = 0"), Error);
}

TEST_CASE("DataLoader's defaults are PyTorch's: batches of one example, in dataset order, last batch kept") {
  const data::DataLoaderOptions defaults;
  CHECK(defaults.batch_size == 1);
  CHECK_FALSE(defaults.shuffle);
  CHECK_FALSE(defaults.drop_last);
}

// Issue 20, finding 14: the batch count is computed without overflow.
TEST_CASE("DataLoader with batch_size INT64_MAX: one batch of everything, not an endless loop") {
  RangeDataset dataset(5);
  for (bool drop_last : {false, true}) {
    CAPTURE(drop_last);
    data::DataLoader loader(dataset, {.batch_size = INT64_MAX, .drop_last = drop_last});
    CHECK(loader.num_batches() == (drop_last ? 0 : 1));
    int64_t batches = 0, examples = 0;
    for (const data::Batch& batch : loader) {
      ++batches;
      examples += batch.labels.numel();
    }
    CHECK(batches == loader.num_batches());
    CHECK(examples == (drop_last ? 0 : 5));
  }
  data::DataLoader loader(dataset, {.batch_size = 2});
  CHECK(loader.num_batches() == 3);
}
