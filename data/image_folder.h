// image_folder.h: a dataset of image files sorted into one folder per class (torchvision's
// ImageFolder):
//
//   root/cat/001.png  root/cat/002.jpg  ...  root/dog/001.bmp  ...   -> classes() = {"cat", "dog"}
//
// Class names are the sub-folder names in sorted order; a class's label is its position. PNG, JPEG and
// BMP files are read with stb_image, converted to grayscale (channels = 1) or RGB (3), resized to
// height x width with stb_image_resize, and kept as bytes; other files are ignored.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"

namespace ng::data {

struct ImageFolderOptions {
  int64_t height = 28;
  int64_t width = 28;
  int channels = 1;  // 1 (grayscale) or 3 (RGB)
  Normalize normalize = {};
  // The largest image file accepted, in pixels (width x height, read from the file's header before
  // anything is decoded): 8192 x 8192 by default, 64 Mi pixels. Decoding may take up to 12 bytes per
  // allowed pixel (768 MiB at the default; measured peaks in image_folder.cpp): an image whose header
  // implies more, such as a 16-bit RGBA PNG of 8192 x 8192 (about 1 GiB), is refused. A larger file is an
  // Error naming it, rather than gigabytes of memory for one picture.
  int64_t max_image_pixels = int64_t{1} << 26;
};

class ImageFolder : public Dataset {
 public:
  // Reads every image now, so that a bad file is found at once: a missing root, a root without
  // class folders, a class folder without images, an image stb_image cannot read (with stb_image's
  // reason, or "corrupt or unsupported image data") or one larger than max_image_pixels is an Error
  // naming the folder or file.
  explicit ImageFolder(const std::string& root, ImageFolderOptions options = {});

  const std::vector<std::string>& classes() const { return classes_; }
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  // The file example `index` came from.
  const std::string& path(int64_t index) const;

  // input: float32 [C, H, W]
  Example get(int64_t index) const override;

 private:
  ImageFolderOptions options_;
  std::vector<std::string> classes_;
  std::vector<std::string> paths_;
  std::vector<int64_t> labels_;
  std::vector<uint8_t> pixels_;  // [N, C, H, W]
};

}  // namespace ng::data
