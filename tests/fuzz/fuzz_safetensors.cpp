// fuzz_safetensors.cpp: libFuzzer target for the safetensors loader. Any input is loaded as a file;
// what loads is saved again (through the atomic writer) and loaded back, and must match: the same
// names in the same order, dtypes, shapes, bytes and metadata.
#include <cstdlib>
#include <cstring>

#include "data/safetensors.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string path = (fuzz::scratch_folder() / "input.safetensors").string();
  const std::string resaved = (fuzz::scratch_folder() / "resaved.safetensors").string();
  fuzz::write_file(path, data, size);
  ng::data::SafetensorsFile file;
  try {
    file = ng::data::read_safetensors(path);
  } catch (const ng::Error&) {
    return 0;
  }
  ng::data::save_safetensors(resaved, file.tensors, file.metadata);  // must not throw: it loaded
  const ng::data::SafetensorsFile back = ng::data::read_safetensors(resaved);
  if (back.metadata != file.metadata || back.tensors.size() != file.tensors.size()) std::abort();
  for (std::size_t i = 0; i < file.tensors.size(); ++i) {
    const auto& [name, tensor] = file.tensors[i];
    const auto& [back_name, back_tensor] = back.tensors[i];
    if (name != back_name || tensor.dtype() != back_tensor.dtype() || tensor.shape() != back_tensor.shape())
      std::abort();
    const std::size_t bytes = static_cast<std::size_t>(tensor.numel()) * ng::dtype_size(tensor.dtype());
    if (bytes != 0 && std::memcmp(tensor.raw_data(), back_tensor.raw_data(), bytes) != 0) std::abort();
  }
  return 0;
}
