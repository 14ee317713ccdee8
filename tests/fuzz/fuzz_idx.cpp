// fuzz_idx.cpp: libFuzzer target for read_idx. Each input is read twice: as a raw file, and gzipped
// by zlib. The two must agree (the same array, or both refused with an ng::Error): the gzip path may
// neither accept nor lose anything the raw path does not. An input that starts with 1f 8b is itself
// read as a gzip file, so the fuzzer also mutates gzip headers, members and trailers.
#include <zlib.h>

#include <cstdlib>
#include <optional>
#include <vector>

#include "autograd/tensor.h"
#include "data/idx.h"
#include "fuzz_file.h"

namespace {

std::vector<uint8_t> gzip(const uint8_t* data, std::size_t size) {
  z_stream stream{};
  // A 512-byte window and the least memory: a valid gzip stream at a fraction of the default's set-up cost.
  if (deflateInit2(&stream, 1, Z_DEFLATED, 9 + 16, 1, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::vector<uint8_t> out(deflateBound(&stream, size) + 32);
  stream.next_in = const_cast<Bytef*>(data);
  stream.avail_in = static_cast<uInt>(size);
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  if (deflate(&stream, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

std::optional<ng::data::IdxArray> read(const std::string& path) {
  try {
    return ng::data::read_idx(path);
  } catch (const ng::Error&) {
    return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string raw_path = (fuzz::scratch_folder() / "input.idx").string();
  const std::string gzip_path = (fuzz::scratch_folder() / "input.idx.gz").string();
  fuzz::write_file(raw_path, data, size);
  const std::optional<ng::data::IdxArray> raw = read(raw_path);

  const bool is_gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  if (is_gzip) return 0;  // read as gzip above; gzipping it again would only test zlib
  const std::vector<uint8_t> compressed = gzip(data, size);
  fuzz::write_file(gzip_path, compressed.data(), compressed.size());
  const std::optional<ng::data::IdxArray> gzipped = read(gzip_path);
  if (raw.has_value() != gzipped.has_value()) std::abort();
  if (raw && (raw->dims != gzipped->dims || raw->data != gzipped->data)) std::abort();
  if (raw) {  // what was accepted is what the header says
    uint64_t count = 1;
    for (int64_t d : raw->dims) count *= static_cast<uint64_t>(d);
    if (raw->data.size() != count) std::abort();
  }
  return 0;
}
