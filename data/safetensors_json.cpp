// safetensors_json.cpp: writes and parses the JSON header of a safetensors file. The grammar is the
// small part of JSON the format uses: objects, strings (with every JSON escape, \uXXXX included, as
// Python's json.dumps writes non-ASCII names), arrays of non-negative integers.
#include "data/safetensors_json.h"

#include <set>

#include "autograd/tensor.h"

namespace ng::data {

namespace {

// A JSON string literal: quotes and backslashes escaped, control characters as \u00XX; other bytes
// (UTF-8 included) as they are.
void append_string(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      out += "\\u00";
      out += hex[byte >> 4];
      out += hex[byte & 15];
    } else {
      out += c;
    }
  }
  out += '"';
}

void append_uints(std::string& out, const auto& values) {
  out += '[';
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(values[i]);
  }
  out += ']';
}

// Unicode code point -> UTF-8 bytes.
void append_utf8(std::string& out, uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

class HeaderParser {
 public:
  HeaderParser(std::string_view json, const std::string& context) : text_(json), context_(context) {}

  SafetensorsHeader parse() {
    SafetensorsHeader header;
    std::set<std::string> seen;
    parse_object([&](const std::string& key) {
      if (!seen.insert(key).second) fail("the name '" + key + "' appears twice");
      if (key == "__metadata__")
        header.metadata = parse_metadata();
      else
        header.tensors.push_back(parse_tensor(key));
    });
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the header object");
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(context_ + ": malformed JSON header at byte " + std::to_string(pos_) + ": " + what);
  }
  std::string found() const {
    return pos_ < text_.size() ? std::string(", found '") + text_[pos_] + "'" : ", found the end of the header";
  }
  void skip_space() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "'" + found());
  }

  // { "key": <value read by on_member(key)>, ... }
  template <class F> void parse_object(F&& on_member) {
    expect('{');
    if (consume('}')) return;
    do {
      std::string key = parse_string();
      expect(':');
      on_member(key);
    } while (consume(','));
    expect('}');
  }

  std::string parse_string() {
    expect('"');
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) fail("unterminated string");
      char c = text_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) fail("unterminated string");
      switch (char e = text_[pos_++]) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u':
          append_utf8(out, parse_code_point());
          break;
        default:
          fail(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  // After "\u": four hex digits, or a UTF-16 surrogate pair "XXXX\uYYYY" for code points above U+FFFF.
  uint32_t parse_code_point() {
    uint32_t unit = parse_hex4();
    if (unit >= 0xDC00 && unit <= 0xDFFF) fail("a low surrogate without a high one before it");
    if (unit < 0xD800 || unit > 0xDBFF) return unit;
    if (text_.substr(pos_, 2) != "\\u") fail("a high surrogate not followed by \\u and a low surrogate");
    pos_ += 2;
    uint32_t low = parse_hex4();
    if (low < 0xDC00 || low > 0xDFFF) fail("a high surrogate not followed by a low surrogate");
    return 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
  }
  uint32_t parse_hex4() {
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      char c = pos_ < text_.size() ? text_[pos_] : '\0';
      int digit = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
      if (digit < 0) fail("expected four hex digits after \\u");
      value = value * 16 + static_cast<uint32_t>(digit);
    }
    return value;
  }

  uint64_t parse_uint() {
    skip_space();
    std::size_t start = pos_;
    uint64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      auto digit = static_cast<uint64_t>(text_[pos_] - '0');
      if (value > (UINT64_MAX - digit) / 10) fail("integer too large");
      value = value * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) fail("expected a non-negative integer" + found());
    return value;
  }

  std::vector<uint64_t> parse_uint_array() {
    std::vector<uint64_t> values;
    expect('[');
    if (consume(']')) return values;
    do values.push_back(parse_uint());
    while (consume(','));
    expect(']');
    return values;
  }

  TensorEntry parse_tensor(const std::string& name) {
    TensorEntry entry;
    entry.name = name;
    std::set<std::string> seen;
    parse_object([&](const std::string& key) {
      if (!seen.insert(key).second) fail("'" + key + "' appears twice in the entry of tensor '" + name + "'");
      if (key == "dtype") {
        entry.dtype = parse_string();
      } else if (key == "shape") {
        for (uint64_t size : parse_uint_array()) {
          if (size > static_cast<uint64_t>(INT64_MAX))
            fail("a size in the shape of tensor '" + name + "' is too large");
          entry.shape.push_back(static_cast<int64_t>(size));
        }
      } else if (key == "data_offsets") {
        std::vector<uint64_t> offsets = parse_uint_array();
        if (offsets.size() != 2 || offsets[0] > offsets[1])
          fail("data_offsets of tensor '" + name + "' must be [begin, end] with begin <= end");
        entry.begin = offsets[0];
        entry.end = offsets[1];
      } else {
        fail("unknown key '" + key + "' in the entry of tensor '" + name + "' (expected dtype, shape, data_offsets)");
      }
    });
    if (seen.size() != 3) fail("the entry of tensor '" + name + "' needs dtype, shape and data_offsets");
    return entry;
  }

  std::map<std::string, std::string> parse_metadata() {
    std::map<std::string, std::string> metadata;
    parse_object([&](const std::string& key) {
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '"') fail("__metadata__ values must be strings; '" + key + "' is not");
      metadata[key] = parse_string();
    });
    return metadata;
  }

  std::string_view text_;
  const std::string& context_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string write_header_json(const SafetensorsHeader& header) {
  std::string out = "{";
  if (!header.metadata.empty()) {
    out += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : header.metadata) {
      if (!first) out += ',';
      first = false;
      append_string(out, key);
      out += ':';
      append_string(out, value);
    }
    out += '}';
  }
  for (const TensorEntry& entry : header.tensors) {
    if (out.size() > 1) out += ',';
    append_string(out, entry.name);
    out += ":{\"dtype\":";
    append_string(out, entry.dtype);
    out += ",\"shape\":";
    append_uints(out, entry.shape);
    out += ",\"data_offsets\":";
    append_uints(out, std::vector<uint64_t>{entry.begin, entry.end});
    out += '}';
  }
  return out + "}";
}

SafetensorsHeader parse_header_json(std::string_view json, const std::string& context) {
  return HeaderParser(json, context).parse();
}

}  // namespace ng::data
