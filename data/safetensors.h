// safetensors.h: reading and writing the safetensors format (Hugging Face's; PyTorch, JAX and numpy
// programs read it), which normgrad uses for checkpoints (nn/checkpoint.h, optim/checkpoint.h).
//
// A file is
//   8 bytes        N, the length of the header, unsigned little-endian
//   N bytes        a JSON object: {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...,
//                  optionally "__metadata__": {"<key>": "<string>", ...}}, padded with spaces
//   the rest       the tensors' bytes, little-endian, row-major; data_offsets count from here
// normgrad reads and writes the dtypes F32, F64 and I64 (float32, float64, int64).
//
// Saving writes a unique temporary file in the same folder, syncs it and renames it over `path`
// (autograd/atomic_file.h), so a save that fails or is killed halfway leaves the previous file
// untouched, and two processes saving one path at once each leave a whole file (the last one wins).
// A symbolic link is followed; a read-only file, a device or a folder at `path` is refused.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace ng::data {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using Metadata = std::map<std::string, std::string>;

// Names must be unique, non-empty and not "__metadata__"; every tensor must be defined.
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});

// The tensors in the order of their data in the file (for files written here: the order saved).
// Any defect (missing file, truncation, a malformed header, an unsupported dtype, offsets that do not
// tile the data) is an Error naming the file and the defect.
NamedTensors load_safetensors(const std::string& path);

struct SafetensorsFile {
  NamedTensors tensors;
  Metadata metadata;
};
// The tensors and the "__metadata__" strings.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace ng::data
