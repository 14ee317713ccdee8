// idx.h: reading IDX files, the format of MNIST and Fashion-MNIST (LeCun et al., "THE MNIST DATABASE").
//
// An IDX file is
//   4 bytes   magic: 0x00 0x00, a type code (0x08 = unsigned byte), the number of dimensions d
//   4*d bytes the size of each dimension, 32-bit big-endian
//   the rest  the values in row-major order
// e.g. train-images-idx3-ubyte: magic 0x00000803 (2051), then 60000, 28, 28, then 47,040,000 pixels.
// The files are usually distributed gzipped; read_idx decompresses (with zlib) any file that starts
// with the gzip magic bytes 1f 8b, and reads any other file as it is. A gzip file may hold several
// members (as gzip -d reads them); anything else after the gzip data is an error. Decompression stops
// at the size the IDX header implies (a wrong magic number is found in the first 4 bytes), so a
// "gzip bomb" costs no more memory than an honest file of the size its header claims.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ng::data {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. {60000, 28, 28}
  std::vector<uint8_t> data;  // prod(dims) bytes, row-major
};

// Only the unsigned-byte type (0x08) is read, the only one MNIST uses. A missing file, a wrong magic
// number, a truncated file (or trailing bytes after the data) or a corrupt gzip stream (or garbage after
// it) is an Error
// naming the file and the defect.
IdxArray read_idx(const std::string& path);

}  // namespace ng::data
