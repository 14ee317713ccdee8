// idx.cpp: read_idx, and reading a file that may be gzipped (zlib's inflate in gzip mode), never more
// of it than its IDX header accounts for, and a plain file checked against its size before reading.
#include "data/idx.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>
#include <optional>

#include "autograd/tensor.h"

namespace ng::data {

namespace {

// The bytes of an IDX file, handed out as the reader asks for them: decompressed with zlib when the
// file starts with the gzip magic bytes 1f 8b, as they are otherwise. The reader asks for the 4 bytes
// of the magic number first, then for the sizes, then for exactly the data the sizes imply (and one
// byte more, which must not exist), so a file can never make it inflate or hold more than that,
// whatever its gzip trailer claims: a gzip bomb stops after the bytes its header accounts for.
class IdxBytes {
 public:
  explicit IdxBytes(const std::string& path) : path_(path) {
    // Only a regular file: its size is known before reading (a pipe or FIFO has none, and opening a
    // FIFO would wait for a writer), so a header's claim can be checked against it.
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) throw Error("read_idx: cannot open '" + path + "': " + std::strerror(errno));
    if (S_ISDIR(info.st_mode)) throw Error("read_idx: '" + path + "' is a folder, not a file");
    if (!S_ISREG(info.st_mode))
      throw Error("read_idx: '" + path + "' is not a regular file (a pipe, FIFO, socket or device); expected an " +
                  "IDX file");
    in_.open(path, std::ios::binary);
    if (!in_) throw Error("read_idx: cannot open '" + path + "': " + std::strerror(errno));
    file_size_ = static_cast<uint64_t>(info.st_size);
    uint8_t magic[2] = {};
    gzipped_ = in_.read(reinterpret_cast<char*>(magic), 2) && magic[0] == 0x1f && magic[1] == 0x8b;
    in_.clear();
    in_.seekg(0);
    if (gzipped_) {
      // The compressed file is held whole (it is small beside what it inflates to); the inflated bytes
      // are produced only as the reader asks for them.
      // windowBits 15 + 16: a gzip header and trailer around the deflate data (RFC 1952), not zlib's.
      if (file_size_ > UINT32_MAX) throw Error("read_idx: '" + path + "' is larger than 4 GiB compressed");
      try {
        compressed_.resize(file_size_);
      } catch (const std::bad_alloc&) {
        throw Error("read_idx: out of memory for the " + std::to_string(file_size_) + " bytes of '" + path + "'");
      }
      if (!in_.read(reinterpret_cast<char*>(compressed_.data()), static_cast<std::streamsize>(file_size_)))
        throw Error("read_idx: cannot read '" + path + "': " + std::strerror(errno));
      if (inflateInit2(&stream_, 15 + 16) != Z_OK) throw Error("read_idx: cannot start zlib to read '" + path + "'");
      stream_.next_in = compressed_.data();
      stream_.avail_in = static_cast<uInt>(compressed_.size());
    }
  }
  ~IdxBytes() {
    if (gzipped_) inflateEnd(&stream_);
  }
  IdxBytes(const IdxBytes&) = delete;
  IdxBytes& operator=(const IdxBytes&) = delete;

  // How many bytes are left to read, when that is known without reading them: for a file that is not
  // gzipped, its size minus what was read. A gzip stream only tells by inflating.
  std::optional<uint64_t> bytes_left() const {
    if (gzipped_) return std::nullopt;
    return file_size_ - raw_offset_;
  }
  // At most how many bytes can still come: for a gzip file, its compressed size times 1032, deflate's
  // largest ratio (258-byte matches coded in 2 bits each), so a bomb's claim cannot make us reserve more.
  uint64_t most_bytes_left() const {
    return gzipped_ ? static_cast<uint64_t>(compressed_.size()) * 1032 : file_size_ - raw_offset_;
  }

  // Appends up to `count` bytes to `out` and returns how many; fewer only at the end of the data.
  // `out` grows 64 KiB at a time, so its memory follows the bytes that really come, not `count`.
  std::size_t read(std::vector<uint8_t>& out, std::size_t count) {
    std::size_t got = 0;
    while (got < count) {
      const std::size_t piece = std::min<std::size_t>(count - got, std::size_t{1} << 16), base = out.size();
      out.resize(base + piece);
      const std::size_t n = gzipped_ ? inflate_into(out.data() + base, piece) : copy_into(out.data() + base, piece);
      out.resize(base + n);
      got += n;
      if (n < piece) break;
    }
    return got;
  }

 private:
  std::size_t copy_into(uint8_t* destination, std::size_t count) {
    const auto wanted = static_cast<std::size_t>(std::min<uint64_t>(count, file_size_ - raw_offset_));
    in_.read(reinterpret_cast<char*>(destination), static_cast<std::streamsize>(wanted));
    const auto got = static_cast<std::size_t>(in_.gcount());
    if (got < wanted && in_.bad()) throw Error("read_idx: cannot read '" + path_ + "': " + std::strerror(errno));
    raw_offset_ += got;
    return got;
  }

  // A gzip file may hold several members one after another (`cat a.gz b.gz`); gzip -d reads them all
  // as one stream, and so does this. Anything else after a member is an error, not silently ignored.
  std::size_t inflate_into(uint8_t* destination, std::size_t count) {
    std::size_t got = 0;
    while (got < count && !finished_) {
      stream_.next_out = destination + got;
      stream_.avail_out = static_cast<uInt>(std::min<std::size_t>(count - got, 1u << 30));
      const int status = inflate(&stream_, Z_NO_FLUSH);
      got = static_cast<std::size_t>(stream_.next_out - destination);
      if (status == Z_STREAM_END) {
        if (stream_.avail_in == 0) {
          finished_ = true;
        } else if (stream_.avail_in >= 2 && stream_.next_in[0] == 0x1f && stream_.next_in[1] == 0x8b) {
          inflateReset(&stream_);  // the next member
        } else {
          throw Error("read_idx: '" + path_ + "' has " + std::to_string(stream_.avail_in) +
                      " bytes of trailing garbage after its gzip data; expected the file to end there or another "
                      "gzip member (1f 8b) to follow");
        }
      } else if (status == Z_BUF_ERROR || (status == Z_OK && stream_.avail_in == 0 && stream_.avail_out > 0)) {
        throw Error("read_idx: '" + path_ + "' is truncated: its gzip stream ends before the compressed data does");
      } else if (status != Z_OK) {
        const std::string reason = stream_.msg ? stream_.msg : "error";
        throw Error("read_idx: '" + path_ + "' is not a valid gzip file (zlib: " + reason + ")");
      }
    }
    return got;
  }

  std::string path_;
  std::ifstream in_;
  uint64_t file_size_ = 0;
  std::vector<uint8_t> compressed_;
  bool gzipped_ = false;
  uint64_t raw_offset_ = 0;
  z_stream stream_{};
  bool finished_ = false;
};

uint32_t big_endian_u32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  IdxBytes source(path);
  const std::string context = "read_idx: '" + path + "'";
  std::vector<uint8_t> header;
  if (source.read(header, 4) < 4)
    throw Error(context + " is truncated: " + std::to_string(header.size()) +
                " bytes, fewer than the 4 of the magic number");

  // Magic: 0x00 0x00 <type> <number of dimensions>.
  uint32_t magic = big_endian_u32(header.data());
  int ndim = header[3];
  if (header[0] != 0 || header[1] != 0 || header[2] != 0x08 || ndim == 0) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08X", magic);
    throw Error(context + ": wrong magic number " + hex +
                "; expected 0x000008NN (two zero bytes, type 0x08 = unsigned byte, NN >= 1 dimensions), e.g. 0x00000803"
                " for images, 0x00000801 for labels");
  }

  // The sizes, big-endian.
  const std::size_t header_size = 4 + 4 * static_cast<std::size_t>(ndim);
  if (source.read(header, header_size - 4) < header_size - 4)
    throw Error(context + " is truncated: " + std::to_string(header.size()) + " bytes, but its " +
                std::to_string(ndim) + " dimension sizes need " + std::to_string(header_size));
  IdxArray array;
  uint64_t count = 1;
  std::string dims_text;
  for (int d = 0; d < ndim; ++d) {
    uint32_t size = big_endian_u32(header.data() + 4 + 4 * d);
    array.dims.push_back(size);
    if (size != 0 && count > (uint64_t{1} << 40) / size)
      throw Error(context + ": its dimension sizes multiply to more than 2^40 values");
    count *= size;
    dims_text += (d ? " x " : "") + std::to_string(size);
  }

  // The values, then the check that nothing follows them. A file that is not gzipped is checked
  // against its size first, so that a header claiming 4 GiB over a short file fails before any of it
  // is read or allocated; a gzip stream fails as soon as its data ends, having held only what came.
  const std::string expected =
      ": its header says " + dims_text + " = " + std::to_string(count) + " bytes of data, but ";
  if (const std::optional<uint64_t> left = source.bytes_left()) {
    if (*left < count) throw Error(context + " is truncated" + expected + std::to_string(*left) + " follow");
    if (*left > count) throw Error(context + " has trailing bytes" + expected + "more follow");
  }
  try {
    // One allocation of what the header implies, bounded by what the file can still hold: growing 64 KiB at a
    // time would double the vector's capacity as it goes, and the copy from the old buffer to the new one
    // held both (Fashion-MNIST's 47 MB of training images peaked at 96 MB of memory).
    array.data.reserve(static_cast<std::size_t>(std::min<uint64_t>(count, source.most_bytes_left())));
    if (source.read(array.data, static_cast<std::size_t>(count)) < count)
      throw Error(context + " is truncated" + expected + std::to_string(array.data.size()) + " follow");
  } catch (const std::bad_alloc&) {
    throw Error(context + ": out of memory for its " + std::to_string(count) + " bytes of data (" + dims_text + ")");
  }
  std::vector<uint8_t> extra;
  if (source.read(extra, 1) != 0) throw Error(context + " has trailing bytes" + expected + "more follow");
  return array;
}

}  // namespace ng::data
