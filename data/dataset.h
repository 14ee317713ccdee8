// dataset.h: a Dataset is something with a size and an example at each index (PyTorch's map-style
// torch.utils.data.Dataset). A DataLoader (dataloader.h) asks it for batches of indices.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/tensor.h"

namespace ng::data {

struct Example {
  Tensor input;   // float32, e.g. [1, 28, 28] for an MNIST image
  int64_t label;  // class index
};

struct Batch {
  Tensor inputs;  // float32 [B, ...]: the examples' inputs stacked
  Tensor labels;  // int64 [B]
};

class Dataset {
 public:
  virtual ~Dataset();
  virtual int64_t size() const = 0;
  // The example at index 0 <= index < size().
  virtual Example get(int64_t index) const = 0;
  // The examples at `indices`, stacked. This default calls get() for each and copies; datasets that
  // hold their data in one array (MNIST) override it to fill the batch directly.
  virtual Batch get_batch(const std::vector<int64_t>& indices) const;

 protected:
  // An Error naming `dataset` unless 0 <= index < size().
  void check_index(const char* dataset, int64_t index) const;
};

}  // namespace ng::data
