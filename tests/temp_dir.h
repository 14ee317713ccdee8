// temp_dir.h: test helpers for tests that write files: a temporary folder removed at the end of the
// test, and doctest's Contains for an expected message built at run time (a path in it, say).
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <random>
#include <string>

namespace test_files {

// A fresh folder under the system's temp folder, removed with everything in it when the test ends.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device entropy;
    path = std::filesystem::temp_directory_path() /
           ("normgrad_test_" + std::to_string(entropy()) + std::to_string(entropy()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // dir / "name": the path of a file in the folder, as a string.
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// doctest's Contains keeps a copy of the text, so it may be built from a temporary string.
inline doctest::Contains contains(const std::string& text) { return doctest::Contains(text.c_str()); }

}  // namespace test_files
