// idx.cpp: read_idx, and reading a file that may be gzipped (zlib's inflate in gzip mode).
#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "autograd/tensor.h"

namespace ng::data {

namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) throw Error("read_idx: '" + path + "' is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("read_idx: cannot open '" + path + "': " + std::strerror(errno));
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Inflates a whole gzip stream held in memory.
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& compressed, const std::string& path) {
  z_stream stream{};
  // windowBits 15 + 16: a gzip header and trailer around the deflate data (RFC 1952), not zlib's.
  if (inflateInit2(&stream, 15 + 16) != Z_OK) throw Error("read_idx: cannot start zlib to read '" + path + "'");
  std::vector<uint8_t> out;
  // The gzip trailer's last 4 bytes hold the uncompressed size mod 2^32: a good first guess, but only
  // a guess (a damaged file can claim 4 GiB), so it is capped at deflate's largest ratio, 1032:1.
  std::size_t n = compressed.size();
  if (n >= 4) {
    const std::size_t claimed = compressed[n - 4] | compressed[n - 3] << 8 | compressed[n - 2] << 16 |
                                uint32_t{compressed[n - 1]} << 24;
    out.reserve(std::min(claimed, n * 1032));
  }
  stream.next_in = const_cast<Bytef*>(compressed.data());
  stream.avail_in = static_cast<uInt>(n);
  uint8_t chunk[1 << 16];
  int status = Z_OK;
  while (status == Z_OK) {
    stream.next_out = chunk;
    stream.avail_out = sizeof chunk;
    status = inflate(&stream, Z_NO_FLUSH);
    out.insert(out.end(), chunk, chunk + (sizeof chunk - stream.avail_out));
  }
  std::string message = stream.msg ? stream.msg : "";
  inflateEnd(&stream);
  if (status == Z_BUF_ERROR)
    throw Error("read_idx: '" + path + "' is truncated: its gzip stream ends before the compressed data does");
  if (status != Z_STREAM_END)
    throw Error("read_idx: '" + path + "' is not a valid gzip file (zlib: " + (message.empty() ? "error" : message) +
                ")");
  return out;
}

uint32_t big_endian_u32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// The file's bytes, decompressed if it starts with the gzip magic bytes 1f 8b.
std::vector<uint8_t> read_maybe_gzipped(const std::string& path) {
  std::vector<uint8_t> bytes = read_file(path);
  bool gzipped = bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
  return gzipped ? gunzip(bytes, path) : bytes;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  std::vector<uint8_t> bytes = read_maybe_gzipped(path);
  const std::string context = "read_idx: '" + path + "'";
  if (bytes.size() < 4)
    throw Error(context + " is truncated: " + std::to_string(bytes.size()) +
                " bytes, fewer than the 4 of the magic number");

  // Magic: 0x00 0x00 <type> <number of dimensions>.
  uint32_t magic = big_endian_u32(bytes.data());
  int ndim = bytes[3];
  if (bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || ndim == 0) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08X", magic);
    throw Error(context + ": wrong magic number " + hex +
                "; expected 0x000008NN (two zero bytes, type 0x08 = unsigned byte, NN >= 1 dimensions), e.g. 0x00000803"
                " for images, 0x00000801 for labels");
  }

  // The sizes, big-endian.
  std::size_t header_size = 4 + 4 * static_cast<std::size_t>(ndim);
  if (bytes.size() < header_size)
    throw Error(context + " is truncated: " + std::to_string(bytes.size()) + " bytes, but its " + std::to_string(ndim) +
                " dimension sizes need " + std::to_string(header_size));
  IdxArray array;
  uint64_t count = 1;
  std::string dims_text;
  for (int d = 0; d < ndim; ++d) {
    uint32_t size = big_endian_u32(bytes.data() + 4 + 4 * d);
    array.dims.push_back(size);
    if (size != 0 && count > (uint64_t{1} << 40) / size)
      throw Error(context + ": its dimension sizes multiply to more than 2^40 values");
    count *= size;
    dims_text += (d ? " x " : "") + std::to_string(size);
  }

  // The values.
  uint64_t data_size = bytes.size() - header_size;
  if (data_size != count)
    throw Error(context + (data_size < count ? " is truncated" : " has trailing bytes") + ": its header says " +
                dims_text + " = " + std::to_string(count) + " bytes of data, but " + std::to_string(data_size) +
                " follow");
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header_size));
  array.data = std::move(bytes);
  return array;
}

}  // namespace ng::data
