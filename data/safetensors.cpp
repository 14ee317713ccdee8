// safetensors.cpp: saving (atomically, through AtomicFile) and loading (every offset checked) of
// safetensors files. The JSON header is written and parsed by safetensors_json.cpp.
#include "data/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

#include "autograd/atomic_file.h"
#include "data/safetensors_json.h"

// The format stores little-endian numbers, and normgrad writes its tensors' bytes as they are in memory.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian machine");

namespace ng::data {

namespace {

const char* safetensors_dtype(Dtype dtype) {
  switch (dtype) {
    case float32:
      return "F32";
    case float64:
      return "F64";
    case int64:
      return "I64";
  }
  return "?";
}

Dtype dtype_from_code(const std::string& code, const std::string& context, const std::string& name) {
  if (code == "F32") return float32;
  if (code == "F64") return float64;
  if (code == "I64") return int64;
  throw Error(context + ": tensor '" + name + "' has dtype '" + code + "'; normgrad reads F32, F64 and I64");
}

// Bytes of a tensor of this shape and dtype, or an Error if that does not fit in 64 bits.
uint64_t byte_size(const Shape& shape, Dtype dtype, const std::string& context, const std::string& name) {
  uint64_t bytes = dtype_size(dtype);
  for (int64_t size : shape) {
    auto n = static_cast<uint64_t>(size);
    if (n != 0 && bytes > UINT64_MAX / n)
      throw Error(context + ": tensor '" + name + "' has an impossibly large shape");
    bytes *= n;
  }
  return bytes;
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  const std::string context = "save_safetensors: '" + path + "'";
  SafetensorsHeader header;
  header.metadata = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__") throw Error(context + ": '" + name + "' cannot be a tensor name");
    if (!names.insert(name).second) throw Error(context + ": the name '" + name + "' appears twice");
    if (!tensor.defined()) throw Error(context + ": tensor '" + name + "' is undefined; there is nothing to save");
    uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * dtype_size(tensor.dtype());
    header.tensors.push_back({name, safetensors_dtype(tensor.dtype()), tensor.shape(), offset, offset + bytes});
    offset += bytes;
  }
  std::string json = write_header_json(header);
  json.append((8 - json.size() % 8) % 8, ' ');  // pad so that the data starts 8-byte aligned

  // Written whole or not at all (autograd/atomic_file.h): a unique temporary file beside `path`,
  // synced, then renamed over it, so readers see the old checkpoint or the new one, never half.
  AtomicFile file(path, "save_safetensors");
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(json.size() >> (8 * i));  // little-endian
  file.write(length, 8);
  file.write(json.data(), json.size());
  for (const auto& [name, tensor] : tensors)
    file.write(tensor.raw_data(), static_cast<std::size_t>(tensor.numel()) * dtype_size(tensor.dtype()));
  file.commit();
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::string context = "load_safetensors: '" + path + "'";
  // Only a regular file is read: its size (from stat) bounds every length in the header. A pipe or FIFO
  // has no size and cannot seek (and opening a FIFO waits for a writer), a folder or device is not a
  // checkpoint; all are refused here, before opening.
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) throw Error(context + ": cannot open: " + std::strerror(errno));
  if (S_ISDIR(info.st_mode)) throw Error(context + ": is a folder, not a safetensors file");
  if (!S_ISREG(info.st_mode))
    throw Error(context + ": is not a regular file (a pipe, FIFO, socket or device, which has no size to check " +
                "the header against); expected a safetensors file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(context + ": cannot open: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  in.seekg(0);
  if (end < 0 || !in) throw Error(context + ": cannot read its size (seeking failed)");
  const auto file_size = static_cast<uint64_t>(end);

  // 8 bytes: N, the header length, little-endian.
  if (file_size < 8)
    throw Error(context + ": truncated: " + std::to_string(file_size) +
                " bytes, fewer than the 8 of the header length");
  unsigned char length[8] = {};
  if (!in.read(reinterpret_cast<char*>(length), 8)) throw Error(context + ": reading the header length failed");
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(length[i]) << (8 * i);
  if (header_size > file_size - 8)
    throw Error(context + ": the header length " + std::to_string(header_size) + " exceeds the " +
                std::to_string(file_size - 8) + " bytes after it (a truncated file, or not safetensors)");

  // N bytes of JSON.
  std::string json(header_size, '\0');
  if (!in.read(json.data(), static_cast<std::streamsize>(header_size)))
    throw Error(context + ": reading its " + std::to_string(header_size) + "-byte header failed");
  SafetensorsHeader header = parse_header_json(json, context);

  // The data: the tensors' byte ranges must tile it exactly, in offset order.
  const uint64_t data_size = file_size - 8 - header_size;
  std::stable_sort(header.tensors.begin(), header.tensors.end(),
                   [](const TensorEntry& a, const TensorEntry& b) { return a.begin < b.begin; });
  SafetensorsFile file;
  file.metadata = std::move(header.metadata);
  uint64_t data_end = 0;
  for (const TensorEntry& entry : header.tensors) {
    const std::string which = context + ": tensor '" + entry.name + "'";
    Dtype dtype = dtype_from_code(entry.dtype, context, entry.name);
    uint64_t bytes = byte_size(entry.shape, dtype, context, entry.name);
    if (entry.end - entry.begin != bytes)
      throw Error(which + " of shape " + shape_str(entry.shape) + " " + entry.dtype + " needs " +
                  std::to_string(bytes) + " bytes, but its data_offsets [" + std::to_string(entry.begin) + ", " +
                  std::to_string(entry.end) + "] hold " + std::to_string(entry.end - entry.begin));
    if (entry.begin != data_end)
      throw Error(which + " starts at data byte " + std::to_string(entry.begin) +
                  ", but the tensor before it ends at " + std::to_string(data_end) +
                  " (data_offsets must tile the data without gaps or overlaps)");
    if (entry.end > data_size)
      throw Error(context + ": truncated: tensor '" + entry.name + "' ends at data byte " + std::to_string(entry.end) +
                  ", but the file holds " + std::to_string(data_size) + " data bytes");
    Tensor tensor = empty(entry.shape, dtype);
    in.read(static_cast<char*>(tensor.mutable_raw_data()), static_cast<std::streamsize>(bytes));
    if (!in) throw Error(which + ": reading its data failed");
    data_end = entry.end;
    file.tensors.emplace_back(entry.name, std::move(tensor));
  }
  if (data_end != data_size)
    throw Error(context + ": " + std::to_string(data_size - data_end) +
                " bytes follow the last tensor's data; expected the file to end there");
  return file;
}

NamedTensors load_safetensors(const std::string& path) { return read_safetensors(path).tensors; }

}  // namespace ng::data
