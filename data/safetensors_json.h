// safetensors_json.h: the JSON header of a safetensors file (safetensors.h): a writer and a parser for
// exactly that shape of JSON, an object of tensor entries {"dtype", "shape", "data_offsets"} and an
// optional "__metadata__" object of strings. Not a general JSON library; used by safetensors.cpp only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ng::data {

struct TensorEntry {
  std::string name;
  std::string dtype;  // "F32", "F64", "I64" (the parser accepts any string; the caller checks)
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // data_offsets: byte range in the data section
};

struct SafetensorsHeader {
  std::vector<TensorEntry> tensors;  // in the order the JSON lists them
  std::map<std::string, std::string> metadata;
};

// {"__metadata__":{...},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},...} (no padding).
std::string write_header_json(const SafetensorsHeader& header);

// Parses `json`; a syntax error or an unexpected key is an Error that starts with `context` and
// names the byte where the header went wrong.
SafetensorsHeader parse_header_json(std::string_view json, const std::string& context);

}  // namespace ng::data
