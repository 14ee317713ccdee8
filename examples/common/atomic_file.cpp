// atomic_file.cpp: the examples' files go through the library's AtomicFile (see atomic_file.h).
#include "atomic_file.h"

#include "autograd/atomic_file.h"
#include "autograd/tensor.h"

namespace examples {

void write_file_atomically(const std::string& path, const std::string& contents) {
  ng::write_file_atomically(path, contents, "write_file_atomically");  // ng::Error is a std::runtime_error
}

}  // namespace examples
