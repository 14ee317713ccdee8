// args.cpp: parsing and checking command-line options (see args.h).
#include "args.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace examples {

ArgParser::ArgParser(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void ArgParser::option(const std::string& name, const std::string& value_name, const std::string& help,
                       const std::string& default_value) {
  options_.push_back({name, value_name, help, default_value});
}

ArgParser::Option* ArgParser::lookup(const std::string& name) {
  for (Option& o : options_)
    if (o.name == name) return &o;
  return nullptr;
}

const ArgParser::Option& ArgParser::find(const std::string& name) const {
  for (const Option& o : options_)
    if (o.name == name) return o;
  throw std::logic_error("ArgParser: option --" + name + " was never declared");
}

bool ArgParser::parse(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage().c_str(), stdout);
      return false;
    }
    if (arg.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + arg + "' (options start with --)");
    const std::size_t equals = arg.find('=');
    const std::string name = arg.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
    Option* option = lookup(name);
    if (!option) throw UsageError("unknown option --" + name);
    if (equals != std::string::npos) {
      option->value = arg.substr(equals + 1);
    } else {
      if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value (" + option->value_name + ")");
      option->value = argv[++i];
    }
    option->given = true;
  }
  return true;
}

std::string ArgParser::usage() const {
  std::ostringstream out;
  out << "usage: " << program_ << " [options]\n\n" << summary_ << "\n\noptions:\n";
  auto line = [&out](std::string head, const std::string& help) {
    if (head.size() < 24) head.resize(24, ' ');
    out << head << " " << help << "\n";
  };
  for (const Option& o : options_)
    line("  --" + o.name + " " + o.value_name, o.help + (o.value.empty() ? "" : " (default: " + o.value + ")"));
  line("  --help", "show this help and exit");
  return out.str();
}

std::string ArgParser::get(const std::string& name) const { return find(name).value; }
bool ArgParser::given(const std::string& name) const { return find(name).given; }

int64_t ArgParser::get_int(const std::string& name, int64_t min, int64_t max) const {
  const std::string& text = find(name).value;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || value < min || value > max)
    throw UsageError("--" + name + ": expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                     ", got '" + text + "'");
  return value;
}

std::vector<double> ArgParser::get_positive_list(const std::string& name) const {
  const std::string& text = find(name).value;
  std::vector<double> values;
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    char* end = nullptr;
    const double value = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !std::isfinite(value) || value <= 0)
      throw UsageError("--" + name + ": expected positive numbers separated by commas (e.g. 0.5,5,20), got '" + text +
                       "'");
    values.push_back(value);
  }
  if (values.empty()) throw UsageError("--" + name + ": expected at least one number, got nothing");
  return values;
}

std::string ArgParser::get_choice(const std::string& name, const std::vector<std::string>& choices) const {
  const std::string& value = find(name).value;
  std::string listed;
  for (const std::string& c : choices) {
    if (c == value) return value;
    listed += (listed.empty() ? "" : "|") + c;
  }
  throw UsageError("--" + name + ": expected " + listed + ", got '" + value + "'");
}

}  // namespace examples
