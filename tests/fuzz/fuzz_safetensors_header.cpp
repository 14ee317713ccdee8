// fuzz_safetensors_header.cpp: libFuzzer target for the safetensors JSON header parser. Any input is
// parsed; what parses is written back and parsed again, and must come back the same (the writer and
// the parser agree on every header the parser accepts).
#include <cstdlib>
#include <string>
#include <string_view>

#include "autograd/tensor.h"
#include "data/safetensors_json.h"

namespace {

bool same(const ng::data::SafetensorsHeader& a, const ng::data::SafetensorsHeader& b) {
  if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) return false;
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const auto &x = a.tensors[i], &y = b.tensors[i];
    if (x.name != y.name || x.dtype != y.dtype || x.shape != y.shape || x.begin != y.begin || x.end != y.end)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  ng::data::SafetensorsHeader header;
  try {
    header = ng::data::parse_header_json(json, "fuzz");
  } catch (const ng::Error&) {
    return 0;
  }
  const std::string written = ng::data::write_header_json(header);
  ng::data::SafetensorsHeader again;
  try {
    again = ng::data::parse_header_json(written, "fuzz (written back)");
  } catch (const ng::Error&) {
    std::abort();  // the parser refused what the writer made of a header it had accepted
  }
  if (!same(header, again)) std::abort();
  return 0;
}
