// mnist.h: MNIST-format datasets of 28x28 grayscale images in 10 classes: Fashion-MNIST (Xiao et al.
// 2017; clothing), by default from Debian's package dataset-fashion-mnist, or the original MNIST
// digits, or any folder of files in that format:
//
//   train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]    (60000 images for Fashion-MNIST)
//   t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]     (10000)
//
// The images stay bytes in memory (47 MB for the training set; as float32 it would be 188 MB); each
// batch is converted as it is loaded (transforms.h).
#pragma once

#include <array>
#include <string>

#include "data/dataset.h"
#include "data/idx.h"
#include "data/transforms.h"

namespace ng::data {

// "/usr/share/datasets/fashion-mnist", where `apt-get install dataset-fashion-mnist` puts the files.
std::string default_fashion_mnist_dir();

class MNIST : public Dataset {
 public:
  // The training files (train = true) or the test files ("t10k") of `dir`. A missing folder or file,
  // a malformed file, or image and label counts that differ is an Error naming the file.
  explicit MNIST(const std::string& dir, bool train = true, Normalize normalize = {});

  // Whether `dir` holds all four files (gzipped or not), so that tests and examples can skip politely.
  static bool available(const std::string& dir = default_fashion_mnist_dir());

  int64_t size() const override { return images_.dims[0]; }
  int64_t height() const { return images_.dims[1]; }
  int64_t width() const { return images_.dims[2]; }

  // input: float32 [1, H, W], (pixel / 255 - mean) / std
  Example get(int64_t index) const override;
  // inputs: float32 [B, 1, H, W], labels: int64 [B]
  Batch get_batch(const std::vector<int64_t>& indices) const override;

 private:
  IdxArray images_;  // [N, H, W]
  IdxArray labels_;  // [N]
  std::array<float, 256> pixel_to_float_;
};

}  // namespace ng::data
