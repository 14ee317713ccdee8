// test_data.cpp: the IDX reader (on raw and gzipped files the test writes, and on each kind of damaged
// file), MNIST-format folders, the transforms, ImageFolder on PNGs the test writes, and the real
// Fashion-MNIST when Debian's dataset-fashion-mnist is installed. (DataLoader and Subset:
// test_dataloader.cpp.)
#include <doctest/doctest.h>
#include <stb_image_write.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "normgrad.h"
#include "temp_dir.h"
#include "test_requirements.h"

using namespace ng;
using test_files::contains;
using test_files::TempDir;
namespace fs = std::filesystem;

namespace {

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  gzclose(file);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// An IDX file's bytes: 00 00 08 <ndim>, big-endian sizes, then `values`.
std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  std::vector<uint8_t> bytes{0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int shift : {24, 16, 8, 0}) bytes.push_back(static_cast<uint8_t>(d >> shift));
  bytes.insert(bytes.end(), values.begin(), values.end());
  return bytes;
}

std::vector<uint8_t> iota_bytes(std::size_t n, uint8_t start = 0) {
  std::vector<uint8_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

// Five 4x3 "images" with pixel (i, r, c) = 12 i + 3 r + c, labels 4, 3, 2, 1, 0; gzipped or raw.
void write_small_mnist(const TempDir& dir, const std::string& prefix, bool gzipped) {
  auto write = gzipped ? write_gzip : write_file;
  std::string ext = gzipped ? ".gz" : "";
  write(dir / (prefix + "-images-idx3-ubyte" + ext), idx_bytes({5, 4, 3}, iota_bytes(60)));
  write(dir / (prefix + "-labels-idx1-ubyte" + ext), idx_bytes({5}, {4, 3, 2, 1, 0}));
}

}  // namespace

// ---- IDX ------------------------------------------------------------------------------------------

TEST_CASE("read_idx reads the sizes and the bytes of a raw IDX file") {
  TempDir dir;
  write_file(dir / "a-idx3-ubyte", idx_bytes({3, 2, 2}, iota_bytes(12, 100)));
  data::IdxArray array = data::read_idx(dir / "a-idx3-ubyte");
  CHECK(array.dims == std::vector<int64_t>{3, 2, 2});
  CHECK(array.data == iota_bytes(12, 100));
}

TEST_CASE("read_idx reads a gzipped IDX file to the same array as the raw one") {
  TempDir dir;
  std::vector<uint8_t> values(5000);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>(i * 7 % 251);
  write_gzip(dir / "a.gz", idx_bytes({50, 100}, values));
  REQUIRE(read_file(dir / "a.gz")[0] == 0x1f);  // really gzipped
  data::IdxArray array = data::read_idx(dir / "a.gz");
  CHECK(array.dims == std::vector<int64_t>{50, 100});
  CHECK(array.data == values);
}

TEST_CASE("read_idx names the file and the defect of a damaged file") {
  TempDir dir;
  std::vector<uint8_t> good = idx_bytes({3, 2, 2}, iota_bytes(12));
  auto error_of = [&](const std::string& name, std::vector<uint8_t> bytes, bool gzipped = false) {
    std::string path = dir / name;
    (gzipped ? write_gzip : write_file)(path, bytes);
    try {
      data::read_idx(path);
    } catch (const Error& e) {
      std::string message = e.what();
      CHECK(message.find(path) != std::string::npos);
      return message;
    }
    FAIL("read_idx accepted " << name);
    return std::string();
  };

  std::vector<uint8_t> wrong_type = good;
  wrong_type[2] = 0x0C;  // int32 values
  CHECK(error_of("type", wrong_type).find("wrong magic number 0x00000C03") != std::string::npos);
  CHECK(error_of("text", {'h', 'e', 'l', 'l', 'o', '!'}).find("wrong magic number") != std::string::npos);
  CHECK(error_of("empty", {}).find("truncated") != std::string::npos);

  std::vector<uint8_t> short_data(good.begin(), good.end() - 2);
  CHECK(error_of("short", short_data).find("truncated: its header says 3 x 2 x 2 = 12 bytes of data, but 10 follow") !=
        std::string::npos);
  CHECK(error_of("short.gz", short_data, true).find("truncated") != std::string::npos);

  std::vector<uint8_t> short_header(good.begin(), good.begin() + 10);  // 3 sizes need 12 header bytes
  CHECK(error_of("short_header", short_header).find("truncated") != std::string::npos);

  std::vector<uint8_t> trailing = good;
  trailing.push_back(0);
  CHECK(error_of("trailing", trailing).find("trailing bytes") != std::string::npos);

  CHECK_THROWS_WITH_AS(data::read_idx(dir / "missing"), doctest::Contains("cannot open"), Error);
}

TEST_CASE("read_idx refuses a truncated or corrupt gzip stream") {
  TempDir dir;
  std::vector<uint8_t> values(4000);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>(i * i % 253);
  write_gzip(dir / "whole.gz", idx_bytes({4000}, values));
  std::vector<uint8_t> compressed = read_file(dir / "whole.gz");

  write_file(dir / "cut.gz", std::vector<uint8_t>(compressed.begin(), compressed.begin() + compressed.size() / 2));
  CHECK_THROWS_WITH_AS(data::read_idx(dir / "cut.gz"), doctest::Contains("cut.gz' is truncated"), Error);

  std::vector<uint8_t> corrupt = compressed;
  for (std::size_t i = 10; i < corrupt.size(); ++i) corrupt[i] = 0xFF;  // the deflate data and the trailer
  write_file(dir / "corrupt.gz", corrupt);
  CHECK_THROWS_WITH_AS(data::read_idx(dir / "corrupt.gz"), doctest::Contains("corrupt.gz' is not a valid gzip file"),
                       Error);
}

// ---- MNIST format ---------------------------------------------------------------------------------

TEST_CASE("MNIST reads a folder of MNIST-format files, gzipped or not, into [B, 1, H, W] batches") {
  for (bool gzipped : {true, false}) {
    CAPTURE(gzipped);
    TempDir dir;
    write_small_mnist(dir, "train", gzipped);
    write_small_mnist(dir, "t10k", !gzipped);
    CHECK(data::MNIST::available(dir.path.string()));
    for (bool train : {true, false}) {
      data::MNIST mnist(dir.path.string(), train);
      CHECK(mnist.size() == 5);
      CHECK(mnist.height() == 4);
      CHECK(mnist.width() == 3);
      data::Batch batch = mnist.get_batch({3, 0});
      CHECK(batch.inputs.shape() == Shape{2, 1, 4, 3});
      CHECK(batch.labels.dtype() == int64);
      CHECK(batch.labels.to_vector() == std::vector<double>{1, 4});
      CHECK(batch.inputs.at({0, 0, 2, 1}) ==
            doctest::Approx((12 * 3 + 3 * 2 + 1) / 255.0));  // image 3, row 2, column 1
      CHECK(batch.inputs.at({1, 0, 0, 0}) == 0);
    }
  }
}

TEST_CASE("MNIST batches equal the stacked single examples, normalized") {
  TempDir dir;
  write_small_mnist(dir, "train", true);
  data::MNIST mnist(dir.path.string(), true, {.mean = 0.5, .std = 0.25});
  data::Batch batch = mnist.get_batch({4, 1, 2});
  data::Example example = mnist.get(1);
  CHECK(example.input.shape() == Shape{1, 4, 3});
  CHECK(example.label == 3);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 3; ++c) {
      CHECK(batch.inputs.at({1, 0, r, c}) == example.input.at({0, r, c}));
      // pixel 12 + 3r + c of image 1: ((12 + 3r + c) / 255 - 0.5) / 0.25
      CHECK(example.input.at({0, r, c}) == doctest::Approx(((12 + 3 * r + c) / 255.0 - 0.5) / 0.25).epsilon(1e-6));
    }
  CHECK_THROWS_WITH_AS(mnist.get_batch({5}), doctest::Contains("index 5 is out of range"), Error);
}

TEST_CASE("MNIST errors name the folder or the file and what was wrong") {
  TempDir dir;
  std::string missing = dir / "no-such-folder";
  CHECK_FALSE(data::MNIST::available(missing));
  CHECK_THROWS_WITH_AS(data::MNIST{missing}, contains("'" + missing + "' does not exist"), Error);
  CHECK_THROWS_WITH_AS(data::MNIST{missing}, doctest::Contains("apt-get install dataset-fashion-mnist"), Error);

  write_small_mnist(dir, "train", false);
  CHECK_FALSE(data::MNIST::available(dir.path.string()));  // no t10k files
  CHECK_THROWS_WITH_AS(data::MNIST(dir.path.string(), false), doctest::Contains("t10k-images-idx3-ubyte"), Error);

  write_file(dir / "train-labels-idx1-ubyte", idx_bytes({4}, {0, 1, 2, 3}));
  CHECK_THROWS_WITH_AS(data::MNIST(dir.path.string()),
                       contains("holds 5 images but '" + (dir / "train-labels-idx1-ubyte") + "' holds 4 labels"),
                       Error);
  write_file(dir / "train-labels-idx1-ubyte", idx_bytes({5, 1, 1}, {0, 1, 2, 3, 4}));
  CHECK_THROWS_WITH_AS(data::MNIST(dir.path.string()), doctest::Contains("expected 1 (one label per image)"), Error);
  write_file(dir / "train-images-idx3-ubyte", idx_bytes({60}, iota_bytes(60)));
  CHECK_THROWS_WITH_AS(data::MNIST(dir.path.string()), doctest::Contains("expected 3 (images x height x width)"),
                       Error);
}

TEST_CASE("Fashion-MNIST from dataset-fashion-mnist: 60000 + 10000 images, labels 0..9, pixels in [0, 1]" *
          doctest::skip(fashion_mnist_missing())) {
  const std::string dir = data::default_fashion_mnist_dir();
  for (auto [train, size] : {std::pair{true, int64_t{60000}}, std::pair{false, int64_t{10000}}}) {
    data::MNIST mnist(dir, train);
    CHECK(mnist.size() == size);
    std::vector<int64_t> all(static_cast<std::size_t>(size));
    std::iota(all.begin(), all.end(), int64_t{0});
    data::Batch batch = mnist.get_batch(all);
    CHECK(batch.inputs.shape() == Shape{size, 1, 28, 28});
    const float* pixels = batch.inputs.data<float>();
    auto [lowest, highest] = std::minmax_element(pixels, pixels + batch.inputs.numel());
    CHECK(*lowest == 0.0f);
    CHECK(*highest == 1.0f);
    std::vector<int64_t> per_class(10, 0);
    const int64_t* labels = batch.labels.data<int64_t>();
    auto [min_label, max_label] = std::minmax_element(labels, labels + size);
    REQUIRE(*min_label == 0);
    REQUIRE(*max_label == 9);
    for (int64_t i = 0; i < size; ++i) ++per_class[static_cast<std::size_t>(labels[i])];
    for (int64_t count : per_class) CHECK(count == size / 10);  // Fashion-MNIST is balanced
  }
}

// ---- transforms -----------------------------------------------------------------------------------

TEST_CASE("bytes_to_tensor scales bytes to [0, 1], then normalizes by mean and std") {
  std::vector<uint8_t> bytes{0, 51, 255, 102};
  Tensor unit = data::bytes_to_tensor(bytes.data(), {2, 2});
  CHECK(unit.dtype() == float32);
  CHECK(unit.shape() == Shape{2, 2});
  CHECK(unit.at({0, 0}) == 0);
  CHECK(unit.at({0, 1}) == doctest::Approx(0.2));  // 51 / 255
  CHECK(unit.at({1, 0}) == 1);
  CHECK(unit.at({1, 1}) == doctest::Approx(0.4));
  Tensor normalized = data::bytes_to_tensor(bytes.data(), {4}, {.mean = 0.5, .std = 0.25});
  // (0 - 0.5) / 0.25 = -2, (0.2 - 0.5) / 0.25 = -1.2, (1 - 0.5) / 0.25 = 2
  CHECK(normalized.at({0}) == doctest::Approx(-2));
  CHECK(normalized.at({1}) == doctest::Approx(-1.2));
  CHECK(normalized.at({2}) == doctest::Approx(2));
  CHECK(data::normalize(tensor({1.5, 0.5}, float64), {.mean = 0.5, .std = 2}).to_vector() ==
        std::vector<double>{0.5, 0});
  CHECK_THROWS_WITH_AS(data::normalize(unit, {.mean = 0, .std = 0}), doctest::Contains("std"), Error);
}

// ---- ImageFolder ----------------------------------------------------------------------------------

TEST_CASE("ImageFolder reads one class per sorted sub-folder, images as [C, H, W] in [0, 1]") {
  TempDir dir;
  fs::create_directories(dir.path / "b_dog");
  fs::create_directories(dir.path / "a_cat");
  std::vector<uint8_t> gray = iota_bytes(16, 10);  // 4x4, pixel (r, c) = 10 + 4r + c
  REQUIRE(stbi_write_png((dir / "a_cat/1.png").c_str(), 4, 4, 1, gray.data(), 4));
  REQUIRE(stbi_write_png((dir / "a_cat/0.png").c_str(), 4, 4, 1, gray.data(), 4));
  std::vector<uint8_t> flat(8 * 8, 200);  // 8x8, all 200: any resize keeps it 200
  REQUIRE(stbi_write_png((dir / "b_dog/x.png").c_str(), 8, 8, 1, flat.data(), 8));
  write_file(dir / "b_dog/notes.txt", {'h', 'i'});  // not an image: ignored

  data::ImageFolder folder(dir.path.string(), {.height = 4, .width = 4});
  CHECK(folder.classes() == std::vector<std::string>{"a_cat", "b_dog"});
  REQUIRE(folder.size() == 3);
  CHECK(folder.path(0) == dir / "a_cat/0.png");
  data::Example cat = folder.get(1), dog = folder.get(2);
  CHECK(cat.label == 0);
  CHECK(dog.label == 1);
  CHECK(cat.input.shape() == Shape{1, 4, 4});
  CHECK(cat.input.at({0, 2, 3}) == doctest::Approx((10 + 4 * 2 + 3) / 255.0));
  for (double v : dog.input.to_vector()) CHECK(v == doctest::Approx(200 / 255.0));

  data::DataLoader loader(folder, {.batch_size = 3, .shuffle = false});
  for (const data::Batch& batch : loader) CHECK(batch.inputs.shape() == Shape{3, 1, 4, 4});
}

TEST_CASE("ImageFolder with channels = 3 stores RGB as three planes") {
  TempDir dir;
  fs::create_directories(dir.path / "only");
  // 2x2 pixels, interleaved as files store them: pixel i = (10 + i, 20 + i, 30 + i)
  const std::vector<uint8_t> rgb{10, 20, 30, 11, 21, 31, 12, 22, 32, 13, 23, 33};
  REQUIRE(stbi_write_png((dir / "only/a.png").c_str(), 2, 2, 3, rgb.data(), 6));
  data::ImageFolder folder(dir.path.string(), {.height = 2, .width = 2, .channels = 3});
  Tensor image = folder.get(0).input;
  REQUIRE(image.shape() == Shape{3, 2, 2});
  CHECK(image.at({0, 1, 0}) == doctest::Approx(12 / 255.0));  // red of pixel 2 (row 1, column 0)
  CHECK(image.at({1, 0, 1}) == doctest::Approx(21 / 255.0));  // green of pixel 1
  CHECK(image.at({2, 1, 1}) == doctest::Approx(33 / 255.0));  // blue of pixel 3
}

TEST_CASE("ImageFolder errors name the file or folder") {
  TempDir dir;
  const std::string missing = dir / "none";
  CHECK_THROWS_WITH_AS(data::ImageFolder{missing}, contains("'" + missing + "' does not exist"), Error);
  CHECK_THROWS_WITH_AS(data::ImageFolder(dir.path.string()), doctest::Contains("has no sub-folders"), Error);
  fs::create_directories(dir.path / "empty");
  CHECK_THROWS_WITH_AS(data::ImageFolder(dir.path.string()),
                       doctest::Contains("empty' holds no PNG, JPEG or BMP images"), Error);
  write_file(dir / "empty/broken.png", {'n', 'o', 't', ' ', 'a', ' ', 'p', 'n', 'g'});
  try {
    data::ImageFolder folder(dir.path.string());
    FAIL("an unreadable image was accepted");
  } catch (const Error& e) {
    std::string message = e.what();
    CHECK(message.find("cannot read image '" + (dir / "empty/broken.png") + "'") != std::string::npos);
    CHECK(message.size() > message.find("': ") + 3);  // followed by stb_image's reason
  }
  CHECK_THROWS_WITH_AS(data::ImageFolder(dir.path.string(), {.channels = 2}), doctest::Contains("channels = 2"), Error);
}
