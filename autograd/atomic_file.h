// atomic_file.h: writing a file whole or not at all, the one way every normgrad saver writes files
// (safetensors checkpoints, write_dot, the examples' figures and tables).
//
// The bytes go to a temporary file beside the target, named "<name>.tmp-<pid>-XXXXXX": the saving
// process's id and a random suffix (created with O_EXCL, as mkstemp does, so no other file is ever
// truncated and two processes saving the same path never share one). Then:
//   fsync(temporary)   the data is on disk before any name points at it (a power loss cannot leave the
//                      new name over unwritten blocks)
//   rename(temporary, target)   atomic within a folder: readers see the old file or the new one
//   fsync(folder)      the rename itself is on disk
// Two saves racing on one path each publish a whole file; the last rename wins.
//
// What may be replaced:
//   - a new name, or an existing regular file that is writable (a read-only file, mode 0444, is refused,
//     as opening it for writing would be, even for root). The new file keeps the old one's permissions.
//   - a symbolic link is followed: the file it points to is replaced, atomically, beside itself, and the
//     link stays a link. A link to a missing file is refused.
//   - anything else (a device such as /dev/full, a folder, a pipe) is refused: it is never replaced by
//     a regular file.
// Every failure (full disk, missing folder, permissions) is an Error naming `op`, the path and the reason,
// and removes the temporary file. A save killed midway (kill -9, power loss) leaves the target as it was
// and may leave a "<name>.tmp-<pid>-XXXXXX" beside it: nothing reads those, and the next save to that
// name removes every one whose process no longer exists (kill(pid, 0) fails with ESRCH), so they do not
// pile up; a living process's temporary is never touched. They can also be deleted by hand
// (rm <name>.tmp-*) whenever no save to that name is running.
//
// POSIX (open, fsync, rename): the one file of autograd/ that uses the operating system directly.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ng {

class AtomicFile {
 public:
  // Checks what `path` is (see above) and creates the temporary file. `op` prefixes every error message.
  AtomicFile(const std::string& path, std::string op);
  // Removes the temporary file unless commit() has published it.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t bytes);
  // fsync, close, rename over the target, fsync the folder.
  void commit();

  // The file that commit() replaces (the symbolic link's target when `path` is a link).
  const std::string& target() const { return target_; }

 private:
  [[noreturn]] void fail(const std::string& what, int error_number);
  std::string op_, path_, target_, temporary_;
  int fd_ = -1;
};

// AtomicFile for a string held in memory.
void write_file_atomically(const std::string& path, std::string_view contents, const std::string& op);

}  // namespace ng
