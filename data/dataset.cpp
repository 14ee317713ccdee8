// dataset.cpp: the default get_batch, which stacks single examples.
#include "data/dataset.h"

#include <cstring>

namespace ng::data {

Dataset::~Dataset() = default;

void Dataset::check_index(const char* dataset, int64_t index) const {
  if (index < 0 || index >= size())
    throw Error(std::string(dataset) + ": index " + std::to_string(index) + " is out of range for a dataset of " +
                std::to_string(size()) + " examples");
}

// get(i).input: [...] for each i -> inputs: [B, ...], labels: [B]
Batch Dataset::get_batch(const std::vector<int64_t>& indices) const {
  auto batch_size = static_cast<int64_t>(indices.size());
  Tensor labels = empty({batch_size}, int64);
  Tensor inputs;
  Shape example_shape;
  for (int64_t b = 0; b < batch_size; ++b) {
    Example example = get(indices[b]);
    if (example.input.dtype() != float32)
      throw Error("Dataset::get_batch: example " + std::to_string(indices[b]) + " has dtype " +
                  dtype_name(example.input.dtype()) + "; expected float32");
    if (b == 0) {
      example_shape = example.input.shape();
      Shape batch_shape = example_shape;
      batch_shape.insert(batch_shape.begin(), batch_size);
      inputs = empty(batch_shape, float32);
    } else if (example.input.shape() != example_shape) {
      throw Error("Dataset::get_batch: example " + std::to_string(indices[b]) + " has shape " +
                  shape_str(example.input.shape()) + ", but the first example of the batch has " +
                  shape_str(example_shape));
    }
    int64_t n = example.input.numel();
    std::memcpy(inputs.mutable_data<float>() + b * n, example.input.data<float>(),
                static_cast<std::size_t>(n) * sizeof(float));
    labels.mutable_data<int64_t>()[b] = example.label;
  }
  if (!inputs.defined()) inputs = empty({0}, float32);
  return {inputs, labels};
}

}  // namespace ng::data
