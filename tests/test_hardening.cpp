// test_hardening.cpp: what a hostile or unlucky user tries, each with the answer they should get:
// shapes whose element or byte count overflows, an allocation the system refuses, gzip bombs and odd
// gzip files, corrupt and huge images, and the activations and losses at their edges (NaN, -1000,
// zero classes). The size bombs are built in memory (a hand-made deflate stream), never as big files.
#include <doctest/doctest.h>
#include <stb_image_write.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "normgrad.h"
#include "temp_dir.h"
#include "test_helpers.h"

using namespace ng;
using test_files::contains;
using test_files::TempDir;

// Under AddressSanitizer an allocation too large for it aborts the program unless it may return null;
// normgrad allocates with nothrow new, so null is what it turns into an Error.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

namespace {

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// ---- gzip files made in memory --------------------------------------------------------------------

// One gzip member holding `bytes`, made by zlib (windowBits 15 + 16: gzip framing).
std::vector<uint8_t> gzip_member(const std::vector<uint8_t>& bytes) {
  z_stream stream{};
  REQUIRE(deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<uint8_t> out(deflateBound(&stream, bytes.size()) + 32);
  stream.next_in = const_cast<Bytef*>(bytes.data());
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// An IDX file's bytes: 00 00 08 <ndim>, big-endian sizes, then `values`.
std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  std::vector<uint8_t> bytes{0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int shift : {24, 16, 8, 0}) bytes.push_back(static_cast<uint8_t>(d >> shift));
  bytes.insert(bytes.end(), values.begin(), values.end());
  return bytes;
}

// Deflate bits, least significant first; Huffman codes go most significant bit first (RFC 1951, 3.1.1).
struct BitWriter {
  std::vector<uint8_t> bytes;
  uint64_t pending = 0;
  int count = 0;
  void bits(uint32_t value, int n) {
    pending |= uint64_t{value} << count;
    count += n;
    for (; count >= 8; count -= 8, pending >>= 8) bytes.push_back(static_cast<uint8_t>(pending));
  }
  static uint32_t reversed(uint32_t value, int n) {
    uint32_t out = 0;
    for (int i = 0; i < n; ++i) out |= ((value >> i) & 1u) << (n - 1 - i);
    return out;
  }
  void code(uint32_t value, int n) { bits(reversed(value, n), n); }
  void finish() {
    if (count > 0) bytes.push_back(static_cast<uint8_t>(pending));
    pending = 0;
    count = 0;
  }
};

// CRC-32 of n zero bytes, by doubling with zlib's crc32_combine (no n-byte buffer needed).
uLong crc_of_zeros(uint64_t n) {
  const Bytef zero = 0;
  uLong result = crc32(0, nullptr, 0), power = crc32(0, &zero, 1);  // CRCs of no bytes and of 2^0 zeros
  for (uint64_t chunk = 1; n > 0; chunk <<= 1, n >>= 1) {
    if (n & 1) result = crc32_combine(result, power, static_cast<z_off_t>(chunk));
    power = crc32_combine(power, power, static_cast<z_off_t>(chunk));
  }
  return result;
}

// A valid gzip file of `prefix` followed by 1 + 258 k zero bytes, in one fixed-Huffman deflate block:
// the literal 0, then k copies of "repeat 258 bytes from distance 1" (13 bits each, 1 : 159).
std::vector<uint8_t> gzip_bomb(const std::vector<uint8_t>& prefix, uint64_t k) {
  BitWriter deflate_bits;
  deflate_bits.bits(1, 1);  // BFINAL
  deflate_bits.bits(1, 2);  // BTYPE 01: fixed Huffman codes
  auto literal = [&](uint8_t v) {
    if (v < 144)
      deflate_bits.code(0x30 + v, 8);
    else
      deflate_bits.code(0x190 + (v - 144), 9);
  };
  for (uint8_t v : prefix) literal(v);
  literal(0);
  // Length symbol 285 = 258 bytes (codes 280-287 are 11000000 + n, 8 bits), then distance code 0 =
  // distance 1 (5 bits 00000): 13 bits, the first 8 reversed since Huffman codes go high bit first.
  const uint32_t repeat_bits = BitWriter::reversed(0xC5, 8);
  for (uint64_t i = 0; i < k; ++i) deflate_bits.bits(repeat_bits, 13);
  deflate_bits.code(0, 7);  // end of block (symbol 256)
  deflate_bits.finish();

  const uint64_t zeros = 1 + 258 * k;
  const uLong crc = crc32_combine(crc32(0, prefix.data(), static_cast<uInt>(prefix.size())), crc_of_zeros(zeros),
                                  static_cast<z_off_t>(zeros));
  const uint64_t size = prefix.size() + zeros;
  std::vector<uint8_t> file{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};  // magic, deflate, no flags, no time, Unix
  file.reserve(file.size() + deflate_bits.bytes.size() + 8);
  for (uint8_t byte : deflate_bits.bytes) file.push_back(byte);
  for (int i = 0; i < 4; ++i) file.push_back(static_cast<uint8_t>(crc >> (8 * i)));
  for (int i = 0; i < 4; ++i) file.push_back(static_cast<uint8_t>(size >> (8 * i)));  // mod 2^32
  return file;
}

// The process's peak resident memory (VmHWM) in bytes, after resetting it to the current one.
void reset_peak_memory() { std::ofstream("/proc/self/clear_refs") << "5"; }
int64_t peak_memory() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return -1;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
constexpr bool kAddressSanitizer = __has_feature(address_sanitizer);
#else
constexpr bool kAddressSanitizer = false;
#endif

// While alive, the process may map at most 64 GiB more than it has (RLIMIT_AS), so that a 4 TiB
// allocation fails even where the kernel overcommits memory.
struct AddressSpaceCap {
  rlimit old_limit{};
  AddressSpaceCap() {
    getrlimit(RLIMIT_AS, &old_limit);
    if (kAddressSanitizer) return;
    std::ifstream statm("/proc/self/statm");
    int64_t total_pages = 0;
    statm >> total_pages;
    rlimit capped = old_limit;
    capped.rlim_cur = static_cast<rlim_t>(total_pages * sysconf(_SC_PAGESIZE) + (int64_t{64} << 30));
    setrlimit(RLIMIT_AS, &capped);
  }
  ~AddressSpaceCap() { setrlimit(RLIMIT_AS, &old_limit); }
};

}  // namespace

// ---- element and byte counts ----------------------------------------------------------------------
TEST_SUITE("sizes") {
  const int64_t two_32 = int64_t{1} << 32;

  TEST_CASE("a shape whose element count overflows is an Error naming the shape, before any use") {
    CHECK_THROWS_WITH_AS(ones({two_32, two_32}).sum(),
                         doctest::Contains("shape [4294967296, 4294967296] has too many elements"), Error);
    CHECK_THROWS_WITH_AS(zeros({two_32, two_32}).at({1, 1}),
                         doctest::Contains("shape [4294967296, 4294967296] has too many elements"), Error);
    CHECK_THROWS_WITH_AS(empty({two_32, two_32, two_32}, int64), doctest::Contains("too many elements"), Error);
  }

  TEST_CASE("a shape whose byte count passes 2^48 is refused, whatever the dtype") {
    for (Dtype dtype : {float32, float64, int64}) {
      CAPTURE(dtype_name(dtype));
      CHECK_THROWS_WITH_AS(zeros({int64_t{1} << 62}, dtype), doctest::Contains("[4611686018427387904]"), Error);
      CHECK_THROWS_WITH_AS(zeros({int64_t{1} << 62}, dtype), doctest::Contains("too many elements"), Error);
    }
    CHECK_THROWS_WITH_AS(zeros({int64_t{1} << 47}), doctest::Contains("exceeds the limit of 2^48 bytes"), Error);
  }

  TEST_CASE("a zero size makes an empty tensor, but every other size is still held to the per-tensor limit") {
    Tensor t = zeros({0, int64_t{1} << 20, 3});
    CHECK(t.numel() == 0);
    CHECK(t.sum().item() == 0.0);
    // As PyTorch ("stride calculation overflowed"): the strides of [0, 2^62, 2^62] overflow, and transpose or
    // cat of such a shape would compute with them.
    CHECK_THROWS_WITH_AS(zeros({0, int64_t{1} << 62, int64_t{1} << 62}), doctest::Contains("too many elements"), Error);
    CHECK_THROWS_WITH_AS(zeros({0, -1}), doctest::Contains("empty: negative size in shape [0, -1]"), Error);
  }

  TEST_CASE("reshape to a shape whose element count overflows is an Error, with no overflow on the way") {
    Tensor x = ones({2, 3});
    CHECK_THROWS_WITH_AS(reshape(x, {two_32, two_32 + 1, 4}),
                         doctest::Contains("reshape: shape [4294967296, 4294967297, 4] has too many elements"), Error);
    CHECK_THROWS_WITH_AS(reshape(x, {-1, two_32, two_32}),
                         doctest::Contains("reshape: shape [-1, 4294967296, 4294967296] has too many elements"), Error);
    CHECK(reshape(x, {3, -1}).shape() == Shape{3, 2});  // the ordinary case still works
  }

  TEST_CASE("an allocation the system refuses is an Error saying how many bytes were asked for") {
    // 2^40 float32 = 4 TiB: under the 2^48 limit, over any memory this test runs on. A system that
    // overcommits memory might still hand it out, so outside AddressSanitizer (which refuses it itself,
    // and needs its own address space unlimited) the address space is capped for the call.
    AddressSpaceCap cap;
    CHECK_THROWS_WITH_AS(zeros({int64_t{1} << 40}),
                         doctest::Contains("empty: shape [1099511627776] float32: cannot allocate 4398046511104 bytes"),
                         Error);
    CHECK(zeros({1000}).sum().item() == 0.0);  // and the next allocation works
  }
}

// ---- activations and losses at their edges --------------------------------------------------------
TEST_SUITE("edges") {
  TEST_CASE("relu passes a NaN through, as PyTorch does: a NaN is never hidden") {
    for (Dtype dtype : {float32, float64}) {
      CAPTURE(dtype_name(dtype));
      std::vector<double> values(37, -1.0);  // long enough for the vectorized loop and its tail
      values[0] = values[17] = values[36] = std::nan("");
      values[5] = 2.0;
      const std::vector<double> out = relu(tensor(values, dtype)).to_vector();
      CHECK(std::isnan(out[0]));
      CHECK(std::isnan(out[17]));
      CHECK(std::isnan(out[36]));
      CHECK(out[1] == 0.0);
      CHECK(out[5] == 2.0);
    }
  }

  TEST_CASE("sigmoid rounds as the exact function does at the ends: sigmoid(-1000) = 0, sigmoid(1000) = 1") {
    for (Dtype dtype : {float32, float64}) {
      CAPTURE(dtype_name(dtype));
      const std::vector<double> out = sigmoid(tensor(std::vector<double>(19, -1000.0), dtype)).to_vector();
      for (double v : out) CHECK(v == 0.0);
      CHECK(sigmoid(tensor({1000.0, 200.0}, dtype)).to_vector() == std::vector<double>{1.0, 1.0});
    }
    // e^-200 = 1.4e-87 is below float's smallest number (1.4e-45): float32 rounds it to 0.
    CHECK(sigmoid(tensor({-200.0}, float32)).item() == 0.0);
  }

  TEST_CASE("cross_entropy on logits with no classes says so") {
    Tensor targets = from_vector<int64_t>({0, 0}, {2});
    CHECK_THROWS_WITH_AS(nn::cross_entropy(zeros({2, 0}), targets), doctest::Contains("logits have 0 classes"), Error);
    CHECK_THROWS_WITH_AS(nn::nll_loss(zeros({2, 0}), targets), doctest::Contains("log_probs have 0 classes"), Error);
  }
}

// ---- gzip -------------------------------------------------------------------------------------------
TEST_SUITE("gzip") {
  TEST_CASE("the hand-made gzip bomb is valid gzip: it inflates to the bytes it claims") {
    // Checked on a small one with zlib itself, so the bombs below are known to be honest files.
    const std::vector<uint8_t> prefix = idx_bytes({2, 3}, {});
    const std::vector<uint8_t> small = gzip_bomb(prefix, 2);  // 8 + 1 + 516 bytes
    std::vector<uint8_t> out(1000);
    z_stream stream{};
    REQUIRE(inflateInit2(&stream, 15 + 16) == Z_OK);
    stream.next_in = const_cast<Bytef*>(small.data());
    stream.avail_in = static_cast<uInt>(small.size());
    stream.next_out = out.data();
    stream.avail_out = static_cast<uInt>(out.size());
    CHECK(inflate(&stream, Z_FINISH) == Z_STREAM_END);  // Z_STREAM_END also means the CRC and size matched
    CHECK(stream.total_out == prefix.size() + 517);
    CHECK(std::equal(prefix.begin(), prefix.end(), out.begin()));
    CHECK(std::all_of(out.begin() + static_cast<std::ptrdiff_t>(prefix.size()),
                      out.begin() + static_cast<std::ptrdiff_t>(stream.total_out), [](uint8_t v) { return v == 0; }));
    inflateEnd(&stream);
  }

  TEST_CASE("a 1 GiB gzip bomb stops at the bytes its IDX header implies: no gigabyte is ever held") {
    TempDir dir;
    const uint64_t k = (uint64_t{1} << 30) / 258;  // 1 GiB of zeros, 6.8 MB on disk

    SUBCASE("a wrong magic number is found in the first 4 bytes") {
      write_file(dir / "bomb.gz", gzip_bomb({0, 0, 0x0C, 3, 0, 0, 0, 10, 0, 0, 0, 10}, k));
      reset_peak_memory();
      const int64_t before = peak_memory();
      CHECK_THROWS_WITH_AS(data::read_idx(dir / "bomb.gz"), doctest::Contains("wrong magic number 0x00000C03"), Error);
      CHECK(peak_memory() - before < (int64_t{64} << 20));
    }
    SUBCASE("a header claiming 10 x 10 reads 100 bytes, then finds more") {
      write_file(dir / "bomb.gz", gzip_bomb(idx_bytes({10, 10}, {}), k));
      reset_peak_memory();
      const int64_t before = peak_memory();
      CHECK_THROWS_WITH_AS(data::read_idx(dir / "bomb.gz"),
                           doctest::Contains("has trailing bytes: its header says 10 x 10 = 100 bytes of data"), Error);
      CHECK(peak_memory() - before < (int64_t{64} << 20));
    }
  }

  TEST_CASE("a gzip trailer claiming 4 GiB is not trusted: the file is refused, nothing is allocated for it") {
    TempDir dir;
    std::vector<uint8_t> file = gzip_member(idx_bytes({4, 5}, std::vector<uint8_t>(20, 7)));
    for (std::size_t i = file.size() - 4; i < file.size(); ++i) file[i] = 0xFF;  // ISIZE = 2^32 - 1
    write_file(dir / "liar.gz", file);
    reset_peak_memory();
    const int64_t before = peak_memory();
    CHECK_THROWS_WITH_AS(data::read_idx(dir / "liar.gz"), doctest::Contains("liar.gz' is not a valid gzip file"),
                         Error);
    CHECK(peak_memory() - before < (int64_t{64} << 20));
  }

  TEST_CASE("a multi-member gzip is read whole, as gzip -d reads it") {
    TempDir dir;
    std::vector<uint8_t> values(60);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>(3 * i);
    const std::vector<uint8_t> whole = idx_bytes({6, 10}, values);
    // Members split inside the header and inside the data, and an empty member.
    std::vector<uint8_t> file;
    for (auto [from, to] : {std::pair{0, 6}, {6, 6}, {6, 30}, {30, static_cast<int>(whole.size())}}) {
      const std::vector<uint8_t> member = gzip_member(std::vector<uint8_t>(whole.begin() + from, whole.begin() + to));
      file.insert(file.end(), member.begin(), member.end());
    }
    write_file(dir / "members.gz", file);
    const data::IdxArray array = data::read_idx(dir / "members.gz");
    CHECK(array.dims == std::vector<int64_t>{6, 10});
    CHECK(array.data == values);
  }

  TEST_CASE("garbage after the gzip data is an error, not silently ignored") {
    TempDir dir;
    std::vector<uint8_t> file = gzip_member(idx_bytes({2, 2}, {1, 2, 3, 4}));
    const std::size_t gzip_size = file.size();
    for (char c : std::string("garbage")) file.push_back(static_cast<uint8_t>(c));
    write_file(dir / "tail.gz", file);
    CHECK_THROWS_WITH_AS(data::read_idx(dir / "tail.gz"),
                         doctest::Contains("has 7 bytes of trailing garbage after its gzip data"), Error);
    file.resize(gzip_size + 1);  // one stray byte
    write_file(dir / "tail.gz", file);
    CHECK_THROWS_WITH_AS(data::read_idx(dir / "tail.gz"), doctest::Contains("trailing garbage"), Error);
    file.resize(gzip_size);  // and without it the same file reads
    write_file(dir / "tail.gz", file);
    CHECK(data::read_idx(dir / "tail.gz").data == std::vector<uint8_t>{1, 2, 3, 4});
  }
}

// ---- images -----------------------------------------------------------------------------------------
TEST_SUITE("images") {
  TEST_CASE("a corrupt PNG in an ImageFolder is an error with a reason") {
    TempDir dir;
    std::filesystem::create_directories(dir.path / "a");
    // The PNG signature, then nonsense.
    write_file(dir / "a/1.png", {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 1, 2, 3, 4, 5, 6, 7, 8, 9});
    const std::string message = error_message([&] { data::ImageFolder folder(dir.path.string()); });
    CHECK(message.find("cannot read image '" + (dir / "a/1.png") + "': ") != std::string::npos);
    const std::string reason = message.substr(message.find("': ") + 3);
    CAPTURE(message);
    CHECK(reason.size() >= 4);  // stb_image's reason, or "corrupt or unsupported image data"
  }

  TEST_CASE("an image of width 0 is refused, not handed to the resizer (which asserts)") {
    // Found by tests/fuzz/fuzz_image_folder: a 35-byte GIF (named .png, as the fuzzer names every
    // input) whose screen and image are 0 pixels wide.
    TempDir dir;
    std::filesystem::create_directories(dir.path / "a");
    const std::vector<uint8_t> gif{0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x00, 0x00, 0x02, 0x00, 0x80, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x2c, 0x00, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x51, 0x00, 0x3b};
    write_file(dir / "a/zero.png", gif);  // ImageFolder goes by extension, stb_image by content
    CHECK_THROWS_WITH_AS(data::ImageFolder(dir.path.string()), doctest::Contains("pixels; expected at least 1x1"),
                         Error);
  }

  TEST_CASE("a PNG chunk claiming more bytes than the file holds is refused before stb_image allocates them") {
    // Found by tests/fuzz/fuzz_image_folder: a 4 x 3 gray PNG of 76 bytes whose IDAT chunk claims
    // 1,152,270,944 bytes; stb_image allocated them all before finding the file too short.
    TempDir dir;
    std::filesystem::create_directories(dir.path / "a");
    const std::vector<uint8_t> png{0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49,
                                   0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x03, 0x08, 0x00,
                                   0x00, 0x00, 0x00, 0x91, 0x9f, 0xf1, 0x1a, 0x44, 0xae, 0x42, 0x60, 0x49, 0x44,
                                   0x41, 0x54, 0x78, 0x5e, 0x63, 0x64, 0x10, 0x11, 0x11, 0x61, 0x0c, 0x00, 0x12,
                                   0x2c, 0x20, 0x02, 0x00, 0x09, 0x38, 0x01, 0x5b, 0xc8, 0x2f, 0x0d, 0xc0, 0x00,
                                   0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
    write_file(dir / "a/bomb.png", png);
    reset_peak_memory();
    const int64_t before = peak_memory();
    CHECK_THROWS_WITH_AS(data::ImageFolder(dir.path.string()),
                         doctest::Contains("a PNG chunk claims 1152270944 bytes, more than the file holds (76 bytes"),
                         Error);
    CHECK(peak_memory() - before < (int64_t{64} << 20));
  }

  TEST_CASE("an image larger than max_image_pixels is refused from its header, before it is decoded") {
    TempDir dir;
    std::filesystem::create_directories(dir.path / "a");
    // A PNG whose header says 30000 x 30000 gray pixels (900 MB decoded) and whose data is missing: the
    // size is what the error names, so the header was read and nothing was decoded.
    std::vector<uint8_t> png{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (uint32_t side : {30000u, 30000u})
      for (int shift : {24, 16, 8, 0}) png.push_back(static_cast<uint8_t>(side >> shift));
    for (uint8_t v : {8, 0, 0, 0, 0}) png.push_back(v);  // 8 bits, gray, deflate, no filter, no interlace
    const uint32_t crc = static_cast<uint32_t>(crc32(0, png.data() + 12, 17));
    for (int shift : {24, 16, 8, 0}) png.push_back(static_cast<uint8_t>(crc >> shift));
    // The start of an IDAT chunk: where the header ends for a reader (stb_image looks for a palette
    // chunk up to there).
    for (uint8_t v : std::initializer_list<uint8_t>{0, 0, 0x10, 0, 'I', 'D', 'A', 'T', 0x78, 0x9c}) png.push_back(v);
    write_file(dir / "a/huge.png", png);
    CHECK_THROWS_WITH_AS(data::ImageFolder(dir.path.string()),
                         doctest::Contains("is 30000x30000 pixels, more than max_image_pixels = 67108864"), Error);

    // The limit is an option: a real 40 x 30 image passes at 1200 pixels and is refused at 1199.
    std::filesystem::remove(dir / "a/huge.png");
    std::vector<uint8_t> gray(40 * 30, 128);
    REQUIRE(stbi_write_png((dir / "a/small.png").c_str(), 40, 30, 1, gray.data(), 40));
    CHECK(data::ImageFolder(dir.path.string(), {.max_image_pixels = 1200}).size() == 1);
    CHECK_THROWS_WITH_AS(data::ImageFolder(dir.path.string(), {.max_image_pixels = 1199}),
                         doctest::Contains("is 40x30 pixels, more than max_image_pixels = 1199"), Error);
  }
}

// ---- files that are not what their header says, or not files ---------------------------------------
namespace {

// A PNG chunk: 4-byte big-endian length, type, data, CRC-32 of type and data.
void png_chunk(std::vector<uint8_t>& png, const char* type, const std::vector<uint8_t>& data) {
  for (int shift : {24, 16, 8, 0}) png.push_back(static_cast<uint8_t>(data.size() >> shift));
  const std::size_t start = png.size();
  png.insert(png.end(), type, type + 4);
  png.insert(png.end(), data.begin(), data.end());
  const auto crc = static_cast<uint32_t>(crc32(0, png.data() + start, static_cast<uInt>(png.size() - start)));
  for (int shift : {24, 16, 8, 0}) png.push_back(static_cast<uint8_t>(crc >> shift));
}

// A 16-bit RGBA PNG of width x height whose IDAT holds `rows` rows of zeros (each a filter byte 0 and
// 8 bytes per pixel), zlib-compressed: all of them for a whole image, fewer for one that only has a header.
std::vector<uint8_t> png_rgba16(uint32_t width, uint32_t height, uint32_t rows) {
  std::vector<uint8_t> png{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, header;
  for (uint32_t side : {width, height})
    for (int shift : {24, 16, 8, 0}) header.push_back(static_cast<uint8_t>(side >> shift));
  for (uint8_t v : {16, 6, 0, 0, 0}) header.push_back(v);  // 16 bits, RGBA, deflate, no filter, no interlace
  png_chunk(png, "IHDR", header);
  const std::vector<uint8_t> raw(static_cast<std::size_t>(rows) * (1 + 8 * width), 0);
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> compressed(size);
  REQUIRE(compress(compressed.data(), &size, raw.data(), static_cast<uLong>(raw.size())) == Z_OK);
  compressed.resize(size);
  png_chunk(png, "IDAT", compressed);
  png_chunk(png, "IEND", {});
  return png;
}

}  // namespace

TEST_SUITE("not what it claims") {
  TEST_CASE("a 16-bit PNG is refused from its header when decoding it would take more than the limit") {
    // 8192 x 8192 RGBA at 16 bits is max_image_pixels exactly, but stb_image decodes it at 16 bits and
    // holds the inflated rows and the image together: 2.5 * 4 * 2 bytes per pixel, 1.25 GiB, over the
    // 12 bytes per allowed pixel (768 MiB). The file is 2 rows of data and a header: the error must
    // come from the header, before stb_image allocates anything.
    TempDir dir;
    std::filesystem::create_directories(dir.path / "a");
    write_file(dir / "a/deep.png", png_rgba16(8192, 8192, 2));
    reset_peak_memory();
    const int64_t before = peak_memory();
    const std::string message = error_message([&] { data::ImageFolder folder(dir.path.string()); });
    CAPTURE(message);
    const std::string named = dir / "a/deep.png";
    CHECK(message.find(named) != std::string::npos);
    CHECK(message.find("8192x8192 pixels, 4 channels of 16 bits) would take about 1342177280 bytes to decode, more "
                       "than the limit of 805306368 bytes (12 per pixel of max_image_pixels = 67108864)") !=
          std::string::npos);
    CHECK(peak_memory() - before < (int64_t{64} << 20));

    // The bound at its edge, on a real image: 4 x 3 RGBA at 16 bits needs 2.5 * 12 * 4 * 2 = 240 bytes,
    // which 20 allowed pixels (240 bytes) cover and 19 (228 bytes) do not.
    std::filesystem::remove(dir / "a/deep.png");
    write_file(dir / "a/small.png", png_rgba16(4, 3, 3));
    CHECK(data::ImageFolder(dir.path.string(), {.max_image_pixels = 20}).size() == 1);
    CHECK_THROWS_WITH_AS(data::ImageFolder(dir.path.string(), {.max_image_pixels = 19}),
                         doctest::Contains("would take about 240 bytes to decode, more than the limit of 228 bytes"),
                         Error);
  }

  TEST_CASE("load_safetensors refuses a FIFO (no size, no seeking) with an Error naming it, without waiting") {
    TempDir dir;
    const std::string fifo = dir / "model.safetensors";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    // No writer is ever opened: reading would block forever, so the refusal must come before opening.
    CHECK_THROWS_WITH_AS(data::load_safetensors(fifo),
                         contains("load_safetensors: '" + fifo + "': is not a regular file"), Error);
    CHECK_THROWS_WITH_AS(data::load_safetensors("/dev/null"), doctest::Contains("is not a regular file"), Error);
  }

  TEST_CASE("an IDX header claiming 4 GiB with no data after it fails at once with an Error, allocating nothing") {
    TempDir dir;
    const std::vector<uint8_t> header = idx_bytes({1, 65536, 65536}, {});  // 16 bytes: 4 GiB of data claimed
    REQUIRE(header.size() == 16);
    write_file(dir / "claims.idx", header);
    write_file(dir / "claims.idx.gz", gzip_member(header));
    for (const std::string& path : {dir / "claims.idx", dir / "claims.idx.gz"}) {
      CAPTURE(path);
      reset_peak_memory();
      const int64_t before = peak_memory();
      const auto start = std::chrono::steady_clock::now();
      CHECK_THROWS_WITH_AS(data::read_idx(path),
                           contains("read_idx: '" + path +
                                    "' is truncated: its header says 1 x 65536 x 65536 = "
                                    "4294967296 bytes of data, but 0 follow"),
                           Error);
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
      CHECK(peak_memory() - before < (int64_t{64} << 20));
    }
    // A raw file shorter than its header says is found from the file's size, before any data is read.
    std::vector<uint8_t> short_file = idx_bytes({1, 65536, 65536}, std::vector<uint8_t>(1000, 9));
    write_file(dir / "short.idx", short_file);
    CHECK_THROWS_WITH_AS(data::read_idx(dir / "short.idx"),
                         doctest::Contains("4294967296 bytes of data, but 1000 follow"), Error);
  }

  TEST_CASE("an IDX file of 4 GiB that is 1 byte short is refused from its size, without reading the 4 GiB") {
    // A sparse file (its 4 GiB are a hole, no disk used): header + 2^32 - 1 bytes. Reading it through
    // would take a minute and 8 GiB of memory, and end in std::bad_alloc where memory is short.
    TempDir dir;
    const std::string path = dir / "sparse.idx";
    write_file(path, idx_bytes({1, 65536, 65536}, {}));
    std::filesystem::resize_file(path, 16 + (uint64_t{1} << 32) - 1);
    reset_peak_memory();
    const int64_t before = peak_memory();
    const auto start = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH_AS(data::read_idx(path), doctest::Contains("4294967296 bytes of data, but 4294967295 follow"),
                         Error);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
    CHECK(peak_memory() - before < (int64_t{64} << 20));
    std::filesystem::resize_file(path, 16 + (uint64_t{1} << 32) + 1);  // and one byte too many
    CHECK_THROWS_WITH_AS(data::read_idx(path),
                         doctest::Contains("has trailing bytes: its header says 1 x 65536 x 65536"), Error);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
  }

  TEST_CASE("read_idx refuses a FIFO with an Error naming it, without waiting for a writer") {
    TempDir dir;
    const std::string fifo = dir / "labels.idx";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_WITH_AS(data::read_idx(fifo), contains("read_idx: '" + fifo + "' is not a regular file"), Error);
  }
}
