// fuzz_file.h: the fuzz targets' scratch folder. The readers under test take paths, so each input is
// written to a file in one folder per process and read back through the real code path. The folder
// is made under $TMPDIR (scripts/fuzz.sh and meson point it into the build folder, since libFuzzer
// ends a timed run with _Exit, which skips the removal at exit).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace fuzz {

inline const std::filesystem::path& scratch_folder() {
  static const std::filesystem::path folder = [] {
    std::string name = (std::filesystem::temp_directory_path() / "normgrad_fuzz_XXXXXX").string();
    if (!mkdtemp(name.data())) std::abort();
    std::atexit([] { std::filesystem::remove_all(scratch_folder()); });
    return std::filesystem::path(name);
  }();
  return folder;
}

inline void write_file(const std::string& path, const uint8_t* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) std::abort();
}

}  // namespace fuzz
