// mnist.cpp: finding and checking the four MNIST files, and turning their bytes into batches.
#include "data/mnist.h"

#include <filesystem>

namespace ng::data {

namespace fs = std::filesystem;

std::string default_fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }

namespace {

// dir/name.gz or dir/name, whichever exists (the gzipped one first, as distributed); "" if neither.
std::string find_file(const std::string& dir, const std::string& name) {
  std::error_code error;
  for (const std::string& candidate : {name + ".gz", name}) {
    fs::path path = fs::path(dir) / candidate;
    if (fs::is_regular_file(path, error)) return path.string();
  }
  return "";
}

std::string require_file(const std::string& dir, const std::string& name) {
  std::error_code error;
  if (!fs::is_directory(dir, error))
    throw Error("MNIST: the folder '" + dir + "' does not exist. Fashion-MNIST's default folder " +
                default_fashion_mnist_dir() + " comes from Debian: apt-get install dataset-fashion-mnist");
  std::string path = find_file(dir, name);
  if (path.empty())
    throw Error("MNIST: the folder '" + dir + "' holds neither " + name + ".gz nor " + name +
                "; expected the four MNIST-format files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)");
  return path;
}

}  // namespace

bool MNIST::available(const std::string& dir) {
  for (const char* name :
       {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
    if (find_file(dir, name).empty()) return false;
  return true;
}

MNIST::MNIST(const std::string& dir, bool train, Normalize normalize)
    : pixel_to_float_(byte_to_float_table(normalize)) {
  std::string prefix = train ? "train" : "t10k";
  std::string images_path = require_file(dir, prefix + "-images-idx3-ubyte");
  std::string labels_path = require_file(dir, prefix + "-labels-idx1-ubyte");
  images_ = read_idx(images_path);
  labels_ = read_idx(labels_path);
  if (images_.dims.size() != 3)
    throw Error("MNIST: '" + images_path + "' has " + std::to_string(images_.dims.size()) +
                " dimensions; expected 3 (images x height x width)");
  if (labels_.dims.size() != 1)
    throw Error("MNIST: '" + labels_path + "' has " + std::to_string(labels_.dims.size()) +
                " dimensions; expected 1 (one label per image)");
  if (images_.dims[0] != labels_.dims[0])
    throw Error("MNIST: '" + images_path + "' holds " + std::to_string(images_.dims[0]) + " images but '" +
                labels_path + "' holds " + std::to_string(labels_.dims[0]) + " labels; expected one label per image");
}

// input: [1, H, W], one image of the batch below
Example MNIST::get(int64_t index) const {
  Batch batch = get_batch({index});
  return {batch.inputs.reshape({1, height(), width()}), batch.labels.data<int64_t>()[0]};
}

// indices: B image numbers -> inputs [B, 1, H, W], labels [B]
Batch MNIST::get_batch(const std::vector<int64_t>& indices) const {
  auto batch_size = static_cast<int64_t>(indices.size());
  int64_t pixels = height() * width();
  Tensor inputs = empty({batch_size, 1, height(), width()}, float32);
  Tensor labels = empty({batch_size}, int64);
  float* out = inputs.mutable_data<float>();
  int64_t* label_out = labels.mutable_data<int64_t>();
  for (int64_t b = 0; b < batch_size; ++b) {
    int64_t index = indices[b];
    check_index("MNIST", index);
    const uint8_t* image = images_.data.data() + index * pixels;
    float* out_b = out + b * pixels;
    for (int64_t i = 0; i < pixels; ++i) out_b[i] = pixel_to_float_[image[i]];
    label_out[b] = labels_.data[static_cast<std::size_t>(index)];
  }
  return {inputs, labels};
}

}  // namespace ng::data
