// args.h: command-line options for the examples: --name VALUE or --name=VALUE, and --help.
//
// Each option is declared with a default and a line of help; parse() reads argv, get_*() convert and
// check the values. Anything wrong (an unknown option, a missing value, "abc" where a number belongs)
// throws UsageError with a message naming the option and what was expected; run_main() prints it and
// exits with code 2, the convention for bad usage.
#pragma once

#include <cstdint>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace examples {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ArgParser {
 public:
  ArgParser(std::string program, std::string summary);

  // Declares --name; `value_name` stands for the value in the help ("--steps N").
  void option(const std::string& name, const std::string& value_name, const std::string& help,
              const std::string& default_value);

  // Reads the arguments. Returns false when --help (or -h) was given: the usage has been printed to stdout.
  bool parse(int argc, const char* const* argv);
  std::string usage() const;

  std::string get(const std::string& name) const;
  bool given(const std::string& name) const;  // on the command line, not defaulted
  int64_t get_int(const std::string& name, int64_t min, int64_t max) const;
  // "0.5,5,20" -> {0.5, 5, 20}; each value must be finite and > 0.
  std::vector<double> get_positive_list(const std::string& name) const;
  // The value, which must be one of `choices`.
  std::string get_choice(const std::string& name, const std::vector<std::string>& choices) const;

 private:
  struct Option {
    std::string name, value_name, help, value;
    bool given = false;
  };
  const Option& find(const std::string& name) const;
  Option* lookup(const std::string& name);

  std::string program_, summary_;
  std::vector<Option> options_;
};

// The body of every example's main(): returns what `run` returns (the exit code), or turns an exception
// into a message on stderr: a UsageError with a pointer to --help and exit code 2, any other error
// with exit code 1.
//   int main(int argc, char** argv) { return run_main("bn_paper", [&] { ...; return 0; }); }
template <class Run> int run_main(const char* program, Run&& run) {
  try {
    return run();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s\nRun `%s --help` for the options.\n", program, e.what(), program);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what());
    return 1;
  }
}

}  // namespace examples
