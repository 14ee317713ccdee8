// atomic_file.cpp: a unique temporary file beside the target (after removing those that killed saves
// left), fsync, rename, fsync the folder (see atomic_file.h for what may be replaced and why).
#include "atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "tensor.h"

namespace ng {

namespace {

constexpr char kLetters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
constexpr int kSuffixLength = 6;

// "<name>.tmp-<pid>-" followed by 6 random letters and digits (62^6 = 5.7e10 names per process).
std::string temporary_name(const std::string& target) {
  std::random_device entropy;  // the kernel's randomness: differs between processes, even after fork
  std::string name = target + ".tmp-" + std::to_string(::getpid()) + "-";
  for (int i = 0; i < kSuffixLength; ++i) name += kLetters[entropy() % (sizeof kLetters - 1)];
  return name;
}

std::string folder_of(const std::string& path) {
  std::string folder = std::filesystem::path(path).parent_path().string();
  return folder.empty() ? "." : folder;
}

// The process id in a file name "<base>.tmp-<pid>-XXXXXX" that temporary_name(<base>) could have made,
// or 0 when `name` is anything else (a user's "<base>.tmp", the older "<base>.tmp-XXXXXX").
pid_t temporary_owner(const std::string& name, const std::string& base) {
  const std::string prefix = base + ".tmp-";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return 0;
  const std::string rest = name.substr(prefix.size());  // "<pid>-XXXXXX"
  const std::size_t dash = rest.find('-');
  if (dash == 0 || dash == std::string::npos || dash > 9 || rest[0] == '0' || rest.size() != dash + 1 + kSuffixLength)
    return 0;
  for (std::size_t i = 0; i < dash; ++i)
    if (!std::isdigit(static_cast<unsigned char>(rest[i]))) return 0;
  for (std::size_t i = dash + 1; i < rest.size(); ++i)
    if (!std::isalnum(static_cast<unsigned char>(rest[i]))) return 0;
  return static_cast<pid_t>(std::stol(rest.substr(0, dash)));
}

// Removes the temporaries that saves to `target` killed midway left behind: those whose process no
// longer exists (kill(pid, 0) fails with ESRCH). A living process's temporary may be a save in progress,
// so it stays, as does one whose process we may not signal (EPERM: it exists) and anything not named
// exactly as temporary_name makes them. Without this, every killed save of a 60 MB checkpoint would
// leave 60 MB more beside it, without bound. Best effort: a file that cannot be removed is left.
// Process ids are those of this machine (and pid namespace): a folder shared with another machine or
// container should not be saved to from both at once.
void remove_stale_temporaries(const std::string& target) {
  const std::string base = std::filesystem::path(target).filename().string();
  std::error_code error;
  for (std::filesystem::directory_iterator entry(folder_of(target), error), end; !error && entry != end;
       entry.increment(error)) {
    const pid_t owner = temporary_owner(entry->path().filename().string(), base);
    std::error_code unreadable;  // a temporary is a regular file, never a link, folder or anything else
    if (owner <= 0 || entry->symlink_status(unreadable).type() != std::filesystem::file_type::regular) continue;
    if (::kill(owner, 0) != 0 && errno == ESRCH) ::unlink(entry->path().c_str());
  }
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path, std::string op) : op_(std::move(op)), path_(path), target_(path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) == 0 && S_ISLNK(info.st_mode)) {
    std::error_code error;
    target_ = std::filesystem::canonical(path, error).string();
    if (error)
      throw Error(op_ + ": '" + path + "' is a symbolic link to a missing file (" + error.message() +
                  "); expected a link to a regular file, a regular file or a new name");
  }
  mode_t mode = 0666;  // a new file: as open(O_CREAT) would make it (the umask applies)
  bool replacing = false;
  if (::stat(target_.c_str(), &info) == 0) {
    replacing = true;
    if (!S_ISREG(info.st_mode))
      throw Error(op_ + ": '" + target_ + "' exists and is not a regular file (a device, folder or pipe); only a " +
                  "regular file or a new name is replaced");
    if ((info.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0 || ::access(target_.c_str(), W_OK) != 0)
      throw Error(op_ + ": '" + target_ + "' is read-only; refusing to replace it (make it writable first)");
    mode = info.st_mode & 07777;
  }
  remove_stale_temporaries(target_);
  for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
    temporary_ = temporary_name(target_);
    fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd_ < 0 && errno != EEXIST)
      throw Error(op_ + ": cannot create a temporary file in the folder '" + folder_of(target_) + "' to write '" +
                  path_ + "': " + std::strerror(errno));
  }
  if (fd_ < 0) throw Error(op_ + ": no free temporary name beside '" + target_ + "' after 100 tries");
  // An existing file's permissions carry over; open() left the umask's mark on the new one.
  if (replacing && ::fchmod(fd_, mode) != 0) fail("setting the permissions of", errno);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temporary_.empty()) ::unlink(temporary_.c_str());
}

void AtomicFile::fail(const std::string& what, int error_number) {
  const std::string reason = std::strerror(error_number);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(temporary_.c_str());
  temporary_.clear();
  throw Error(op_ + ": '" + path_ + "': " + what + " the temporary file failed: " + reason);
}

void AtomicFile::write(const void* data, std::size_t bytes) {
  if (fd_ < 0) throw Error(op_ + ": '" + path_ + "': write after the file was committed or failed");
  const char* next = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t written = ::write(fd_, next, bytes);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) fail("writing", written < 0 ? errno : ENOSPC);
    next += written;
    bytes -= static_cast<std::size_t>(written);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) throw Error(op_ + ": '" + path_ + "': commit after the file was committed or failed");
  if (::fsync(fd_) != 0) fail("syncing", errno);
  const int closed = ::close(fd_);
  fd_ = -1;
  if (closed != 0) fail("closing", errno);
  if (::rename(temporary_.c_str(), target_.c_str()) != 0) {
    const int error_number = errno;
    ::unlink(temporary_.c_str());
    temporary_.clear();
    throw Error(op_ + ": cannot rename the temporary file over '" + target_ + "': " + std::strerror(error_number));
  }
  temporary_.clear();
  // The rename is an entry in the folder: it reaches the disk when the folder is synced.
  const int folder = ::open(folder_of(target_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool synced = folder >= 0 && ::fsync(folder) == 0;
  const int error_number = errno;
  if (folder >= 0) ::close(folder);
  // Some file systems (certain FUSE, 9p and shared-folder mounts) cannot sync a folder and say so with
  // EINVAL; the file itself is complete and in place there, so that is not an error.
  if (!synced && folder >= 0 && (error_number == EINVAL || error_number == ENOTSUP)) return;
  if (!synced)
    throw Error(op_ + ": '" + target_ + "' is written, but syncing its folder failed: " + std::strerror(error_number));
}

void write_file_atomically(const std::string& path, std::string_view contents, const std::string& op) {
  AtomicFile file(path, op);
  file.write(contents.data(), contents.size());
  file.commit();
}

}  // namespace ng
