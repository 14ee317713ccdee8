// fuzz_image_folder.cpp: libFuzzer target for image decoding as ImageFolder does it. Each input is
// written as the one image of a one-class folder and read by ImageFolder (stb_image's header check
// against max_image_pixels, decoding, conversion, resizing): it is refused with an ng::Error or gives
// one [1, 8, 8] image with every value in [0, 1].
#include <cstdlib>
#include <filesystem>

#include "data/image_folder.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::filesystem::path root = fuzz::scratch_folder() / "images";
  std::filesystem::create_directories(root / "class");
  fuzz::write_file((root / "class" / "image.png").string(), data, size);
  // A small limit keeps each run fast; the limit's check itself is what is being exercised.
  const ng::data::ImageFolderOptions options{.height = 8, .width = 8, .max_image_pixels = 1 << 20};
  try {
    const ng::data::ImageFolder folder(root.string(), options);
    const ng::Tensor image = folder.get(0).input;
    if (folder.size() != 1 || image.shape() != ng::Shape{1, 8, 8}) std::abort();
    for (double v : image.to_vector())
      if (!(v >= 0.0 && v <= 1.0)) std::abort();
  } catch (const ng::Error&) {
  }
  return 0;
}
