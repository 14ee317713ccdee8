// atomic_file.h: writing a whole file so that readers never see half of it.
//
// The text goes to a unique temporary file beside <path> first, which is then synced and renamed over
// <path> (normgrad's autograd/atomic_file.h): a rename within a folder is atomic, so a plot viewer or a
// script reading metrics.csv while training runs sees either the previous complete file or the new one,
// and a crash leaves no truncated file behind.
#pragma once

#include <string>

namespace examples {

// Throws std::runtime_error naming the path when the file cannot be written.
void write_file_atomically(const std::string& path, const std::string& contents);

}  // namespace examples
