// image_folder.cpp: walking the class folders and decoding, converting and resizing each image.
#include "data/image_folder.h"

#include <stb_image.h>
#include <stb_image_resize.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

namespace ng::data {

namespace fs = std::filesystem;

namespace {

bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

// The entries of `dir` that pass `keep`, sorted by name.
template <class Keep> std::vector<fs::path> sorted_entries(const fs::path& dir, Keep keep) {
  std::vector<fs::path> entries;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string()[0] != '.' && keep(entry)) entries.push_back(entry.path());
  std::sort(entries.begin(), entries.end());
  return entries;
}

// stb_image's reason for its last failure; it may have none to give.
std::string failure_reason() {
  const char* reason = stbi_failure_reason();
  return reason && *reason ? reason : "corrupt or unsupported image data";
}

// The whole file, refused before reading when it is over 2 GiB (stb_image takes an int length).
std::vector<stbi_uc> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error("ImageFolder: cannot open image '" + path + "': " + std::strerror(errno));
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error("ImageFolder: cannot read the size of image '" + path + "'");
  if (size > INT32_MAX) throw Error("ImageFolder: image '" + path + "' is larger than 2 GiB");
  std::vector<stbi_uc> file(static_cast<std::size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(file.data()), size))
    throw Error("ImageFolder: cannot read image '" + path + "': " + std::strerror(errno));
  return file;
}

// stb_image trusts a PNG chunk's length and allocates that much before reading it: a 100-byte file
// whose IDAT chunk claims 1.1 GB costs 1.1 GB (found by tests/fuzz/fuzz_image_folder). So a PNG's
// chunks are walked first: each one's length must fit in what is left of the file. Returns the first
// length that does not, or 0 when all fit (or the file is not a PNG).
uint64_t png_chunk_past_end(const std::vector<stbi_uc>& file) {
  static constexpr stbi_uc kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (file.size() < 8 || !std::equal(kSignature, kSignature + 8, file.begin())) return 0;
  // A chunk: 4-byte big-endian length, 4-byte type, `length` bytes of data, 4-byte CRC.
  for (std::size_t at = 8; at + 8 <= file.size();) {
    const uint64_t length =
        uint64_t{file[at]} << 24 | uint64_t{file[at + 1]} << 16 | uint64_t{file[at + 2]} << 8 | file[at + 3];
    if (length + 12 > file.size() - at) return length;
    if (std::equal(file.data() + at + 4, file.data() + at + 8, "IEND")) break;
    at += 12 + length;
  }
  return 0;
}

// A header may claim a width or height of 0 (found by tests/fuzz/fuzz_image_folder: a GIF of width 0),
// which the resizer cannot scale from (it asserts), so such an image is refused here.
void check_has_pixels(const std::string& path, int width, int height) {
  if (width <= 0 || height <= 0)
    throw Error("ImageFolder: image '" + path + "' is " + std::to_string(width) + "x" + std::to_string(height) +
                " pixels; expected at least 1x1");
}

// What decoding costs, measured with stb_image (VmHWM while stbi_load_from_memory runs, 2048 x 2048
// images of every kind below): the peak is `factor` times the decoded image at the file's own depth,
// width * height * max(channels in the file, channels asked for) * bytes per channel (2 for a 16-bit
// PNG: stb_image inflates and unfilters it at 16 bits, and only then converts to the 8 bits asked for).
//   PNG     2.0  (the inflated rows and the unfiltered image are alive together), 2.5 when interlaced
//           (plus one Adam7 pass image). 16-bit RGBA 8192 x 8192: 2 * 512 MiB = 1 GiB, as observed.
//   JPEG    1.5 baseline; progressive 4 (by the code: per component 2 bytes of coefficients and 1 of
//           samples, plus the output).
//   BMP     at most 1.3; other formats stb_image reads by content (GIF, ...) are not measured.
// decode_factor returns each format's worst case (2.5 for any PNG, 4 for any JPEG, 2 for the rest).
// The file's bytes come on top (held once here, and a PNG's image data once more inside stb_image).
double decode_factor(const std::vector<stbi_uc>& file) {
  static constexpr stbi_uc kPng[4] = {0x89, 'P', 'N', 'G'}, kJpeg[2] = {0xFF, 0xD8};
  if (file.size() >= 4 && std::equal(kPng, kPng + 4, file.begin())) return 2.5;
  if (file.size() >= 2 && std::equal(kJpeg, kJpeg + 2, file.begin())) return 4;
  return 2;
}

// Decoding may take at most this many bytes per pixel that max_image_pixels allows: 12 is the peak of
// the costliest 8-bit image (a progressive RGB JPEG, 4 * 3 bytes), so every 8-bit image within the
// pixel limit is decoded, 768 MiB at most at the default of 8192 x 8192, while a 16-bit image with
// as many pixels (an RGBA PNG: 2.5 * 4 * 2 = 20 bytes per pixel) is refused before it is decoded.
constexpr int64_t kDecodeBytesPerAllowedPixel = 12;

// Refuses, from the header alone, an image whose decoding would take more than the limit above.
void check_decode_memory(const std::string& path, const std::vector<stbi_uc>& file, int width, int height,
                         int channels_in_file, const ImageFolderOptions& options) {
  const int file_size = static_cast<int>(file.size());
  // stb_image decodes a 16-bit file at 16 bits and an HDR file (whatever its name) as 32-bit floats.
  const int64_t bytes_per_channel = stbi_is_hdr_from_memory(file.data(), file_size)      ? 4
                                    : stbi_is_16_bit_from_memory(file.data(), file_size) ? 2
                                                                                         : 1;
  const int64_t channels = std::max<int64_t>(channels_in_file, options.channels);
  // peak ~ factor * width * height * channels * bytes per channel (see decode_factor)
  const double needed = decode_factor(file) * static_cast<double>(width) * height * channels * bytes_per_channel;
  const double limit = static_cast<double>(options.max_image_pixels) * kDecodeBytesPerAllowedPixel;
  if (needed > limit)
    throw Error("ImageFolder: image '" + path + "' (" + std::to_string(file.size()) + " bytes, " +
                std::to_string(width) + "x" + std::to_string(height) + " pixels, " + std::to_string(channels) +
                " channels of " + std::to_string(8 * bytes_per_channel) + " bits) would take about " +
                std::to_string(static_cast<int64_t>(needed)) + " bytes to decode, more than the limit of " +
                std::to_string(static_cast<int64_t>(limit)) + " bytes (" + std::to_string(kDecodeBytesPerAllowedPixel) +
                " per pixel of max_image_pixels = " + std::to_string(options.max_image_pixels) + ")");
}

// One image file -> channels x height x width bytes, appended to `out`.
void load_image(const std::string& path, const ImageFolderOptions& options, std::vector<uint8_t>& out) {
  const std::vector<stbi_uc> file = read_file(path);
  const auto file_size = static_cast<int>(file.size());
  int width = 0, height = 0, channels_in_file = 0;
  // The size from the header first: a file claiming 30000 x 30000 pixels is refused before decoding.
  if (!stbi_info_from_memory(file.data(), file_size, &width, &height, &channels_in_file))
    throw Error("ImageFolder: cannot read image '" + path + "': " + failure_reason());
  check_has_pixels(path, width, height);
  if (static_cast<int64_t>(width) * height > options.max_image_pixels)
    throw Error("ImageFolder: image '" + path + "' is " + std::to_string(width) + "x" + std::to_string(height) +
                " pixels, more than max_image_pixels = " + std::to_string(options.max_image_pixels));
  check_decode_memory(path, file, width, height, channels_in_file, options);
  if (const uint64_t length = png_chunk_past_end(file))
    throw Error("ImageFolder: cannot read image '" + path + "': a PNG chunk claims " + std::to_string(length) +
                " bytes, more than the file holds (" + std::to_string(file.size()) + " bytes in all)");
  // stb_image converts to the number of channels asked for (gray <-> RGB) as it decodes.
  std::unique_ptr<stbi_uc, void (*)(void*)> decoded(
      stbi_load_from_memory(file.data(), file_size, &width, &height, &channels_in_file, options.channels),
      stbi_image_free);
  if (!decoded) throw Error("ImageFolder: cannot read image '" + path + "': " + failure_reason());
  check_has_pixels(path, width, height);

  // Resize to the fixed size; pixels are interleaved: [height, width, channels].
  const int out_height = static_cast<int>(options.height), out_width = static_cast<int>(options.width);
  std::vector<uint8_t> resized(static_cast<std::size_t>(out_height) * out_width * options.channels);
  if (width == out_width && height == out_height) {
    std::copy_n(decoded.get(), resized.size(), resized.begin());
  } else if (!stbir_resize_uint8(decoded.get(), width, height, 0, resized.data(), out_width, out_height, 0,
                                 options.channels)) {
    throw Error("ImageFolder: resizing '" + path + "' from " + std::to_string(width) + "x" + std::to_string(height) +
                " to " + std::to_string(out_width) + "x" + std::to_string(out_height) + " failed");
  }

  // [H, W, C] (interleaved, as files store them) -> [C, H, W] (planes, as convolutions and PyTorch expect).
  std::size_t base = out.size();
  out.resize(base + resized.size());
  const int64_t plane = static_cast<int64_t>(out_height) * out_width;
  for (int64_t c = 0; c < options.channels; ++c)
    for (int64_t i = 0; i < plane; ++i) out[base + c * plane + i] = resized[i * options.channels + c];
}

}  // namespace

ImageFolder::ImageFolder(const std::string& root, ImageFolderOptions options) : options_(options) {
  if (options_.channels != 1 && options_.channels != 3)
    throw Error("ImageFolder: channels = " + std::to_string(options_.channels) + "; expected 1 (grayscale) or 3 (RGB)");
  if (options_.height < 1 || options_.width < 1 || options_.height > 65536 || options_.width > 65536)
    throw Error("ImageFolder: size " + std::to_string(options_.height) + "x" + std::to_string(options_.width) +
                " is not between 1x1 and 65536x65536");
  if (options_.max_image_pixels < 1)
    throw Error("ImageFolder: max_image_pixels = " + std::to_string(options_.max_image_pixels) + "; expected >= 1");
  byte_to_float_table(options_.normalize);  // refuse a bad std now rather than at the first batch
  std::error_code error;
  if (!fs::is_directory(root, error)) throw Error("ImageFolder: the folder '" + root + "' does not exist");

  auto is_folder = [](const fs::directory_entry& e) { return e.is_directory(); };
  auto is_image = [](const fs::directory_entry& e) { return e.is_regular_file() && is_image_file(e.path()); };
  for (const fs::path& class_dir : sorted_entries(root, is_folder)) {
    std::vector<fs::path> images = sorted_entries(class_dir, is_image);
    if (images.empty())
      throw Error("ImageFolder: the class folder '" + class_dir.string() + "' holds no PNG, JPEG or BMP images");
    for (const fs::path& image : images) {
      load_image(image.string(), options_, pixels_);
      paths_.push_back(image.string());
      labels_.push_back(static_cast<int64_t>(classes_.size()));
    }
    classes_.push_back(class_dir.filename().string());
  }
  if (classes_.empty())
    throw Error("ImageFolder: the folder '" + root + "' has no sub-folders; expected one folder of images per class");
}

const std::string& ImageFolder::path(int64_t index) const {
  check_index("ImageFolder", index);
  return paths_[static_cast<std::size_t>(index)];
}

Example ImageFolder::get(int64_t index) const {
  check_index("ImageFolder", index);
  const int64_t image_size = options_.channels * options_.height * options_.width;
  const uint8_t* image = pixels_.data() + index * image_size;
  return {bytes_to_tensor(image, {options_.channels, options_.height, options_.width}, options_.normalize),
          labels_[static_cast<std::size_t>(index)]};
}

}  // namespace ng::data
