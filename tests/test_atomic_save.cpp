// test_atomic_save.cpp: saving a checkpoint (every saver goes through autograd/atomic_file.h) when
// other processes save the same path at once, when a save is killed, and when the target is not an
// ordinary writable file: a device, a symbolic link, a read-only file, or a name beside a user's own
// "<path>.tmp".
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "normgrad.h"
#include "temp_dir.h"

using namespace ng;
using test_files::TempDir;
namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// Two different checkpoints of different sizes, so that a torn mix of them cannot pass for either.
data::NamedTensors checkpoint(double value, int64_t n) { return {{"w", full({n}, value)}, {"b", full({3}, -value)}}; }

// The names in `dir`, sorted.
std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Runs `body` in a child process; returns its pid. The child leaves with _exit (no doctest teardown).
template <class Body> pid_t spawn(Body body) {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int status = 0;
    try {
      body();
    } catch (...) {
      status = 1;
    }
    _exit(status);
  }
  return pid;
}

int exit_status(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("two processes saving one path at once each publish a whole file, and a reader only ever sees whole ones") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  // The two files each would write alone, to compare with.
  data::save_safetensors(dir / "a.ref", checkpoint(1.0, 300000));
  data::save_safetensors(dir / "b.ref", checkpoint(2.0, 200000));
  const std::string a = read_text(dir / "a.ref"), b = read_text(dir / "b.ref");
  fs::remove(dir / "a.ref");
  fs::remove(dir / "b.ref");
  // Made before fork: the children only save (no computation, hence no thread pool, after a fork).
  const data::NamedTensors checkpoint_a = checkpoint(1.0, 300000), checkpoint_b = checkpoint(2.0, 200000);
  data::save_safetensors(path, checkpoint_a);

  constexpr int kSaves = 40;
  const pid_t writer_a = spawn([&] {
    for (int i = 0; i < kSaves; ++i) data::save_safetensors(path, checkpoint_a);
  });
  const pid_t writer_b = spawn([&] {
    for (int i = 0; i < kSaves; ++i) data::save_safetensors(path, checkpoint_b);
  });
  int reads = 0, torn = 0, status_a = -1, status_b = -1;
  for (int running = 2; running > 0; ++reads) {
    const std::string seen = read_text(path);
    torn += seen != a && seen != b;
    if (reads % 20 == 0) data::load_safetensors(path);  // and the loader accepts what is there
    for (auto [pid, status] : {std::pair{writer_a, &status_a}, {writer_b, &status_b}}) {
      int wait_status = 0;
      if (*status < 0 && waitpid(pid, &wait_status, WNOHANG) == pid) {
        *status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128;
        --running;
      }
    }
  }
  CHECK(status_a == 0);
  CHECK(status_b == 0);
  MESSAGE(reads << " reads while two processes saved " << kSaves << " times each");
  CHECK(torn == 0);
  const std::string last = read_text(path);
  CHECK((last == a || last == b));
  CHECK(names_in(dir.path) == std::vector<std::string>{"model.safetensors"});  // no temporary left
}

TEST_CASE("a save killed midway leaves the old file whole; what it leaves beside it is a named temporary") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  data::save_safetensors(path, checkpoint(1.0, 1000));
  const std::string old_file = read_text(path);
  const data::NamedTensors big = checkpoint(2.0, 1 << 20);
  std::string new_file;
  for (int round = 0; round < 10; ++round) {
    const pid_t saver = spawn([&] {
      for (;;) data::save_safetensors(path, big);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + 7 * round));
    kill(saver, SIGKILL);
    exit_status(saver);
    const std::string seen = read_text(path);
    if (seen != old_file) {
      if (new_file.empty()) new_file = seen;
      CHECK(seen == new_file);
      CHECK(data::load_safetensors(path)[0].second.numel() == 1 << 20);
    }
  }
  for (const std::string& name : names_in(dir.path))
    if (name != "model.safetensors") CHECK(name.rfind("model.safetensors.tmp-", 0) == 0);
}

TEST_CASE("a user's own file named <path>.tmp is never touched") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  write_text(path + ".tmp", "my notes");
  data::save_safetensors(path, checkpoint(1.0, 10));
  data::save_safetensors(path, checkpoint(2.0, 10));
  CHECK(read_text(path + ".tmp") == "my notes");
  CHECK(data::load_safetensors(path)[0].second.at({0}) == 2.0);
  CHECK(names_in(dir.path) == std::vector<std::string>{"model.safetensors", "model.safetensors.tmp"});
}

TEST_CASE("a device is never replaced by a regular file: saving to /dev/full is refused") {
  REQUIRE(fs::is_character_file("/dev/full"));
  CHECK_THROWS_WITH_AS(data::save_safetensors("/dev/full", checkpoint(1.0, 10)),
                       doctest::Contains("'/dev/full' exists and is not a regular file"), Error);
  CHECK(fs::is_character_file("/dev/full"));
  TempDir dir;
  fs::create_directory(dir.path / "folder");
  CHECK_THROWS_WITH_AS(data::save_safetensors(dir / "folder", checkpoint(1.0, 10)),
                       doctest::Contains("is not a regular file"), Error);
  CHECK(fs::is_directory(dir.path / "folder"));
}

TEST_CASE("saving through a symbolic link replaces the file it points to, and the link stays a link") {
  TempDir dir;
  fs::create_directory(dir.path / "real");
  const std::string target = dir / "real/model.safetensors", link = dir / "latest.safetensors";
  data::save_safetensors(target, checkpoint(1.0, 10));
  fs::create_symlink(target, link);
  data::save_safetensors(link, checkpoint(2.0, 10));
  CHECK(fs::is_symlink(link));
  CHECK(data::load_safetensors(target)[0].second.at({0}) == 2.0);
  CHECK(names_in(dir.path / "real") == std::vector<std::string>{"model.safetensors"});

  fs::remove(target);  // now the link points at nothing
  CHECK_THROWS_WITH_AS(data::save_safetensors(link, checkpoint(3.0, 10)),
                       doctest::Contains("is a symbolic link to a missing file"), Error);
  CHECK(fs::is_symlink(link));
}

TEST_CASE("a read-only file is refused, as opening it for writing would be (even for root); permissions carry over") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  data::save_safetensors(path, checkpoint(1.0, 10));
  const std::string before = read_text(path);
  fs::permissions(path, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);  // 0444
  CHECK_THROWS_WITH_AS(data::save_safetensors(path, checkpoint(2.0, 10)), doctest::Contains("is read-only"), Error);
  CHECK(read_text(path) == before);
  CHECK(names_in(dir.path) == std::vector<std::string>{"model.safetensors"});

  const auto mode = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read;  // 0640
  fs::permissions(path, mode);
  data::save_safetensors(path, checkpoint(2.0, 10));
  CHECK(fs::status(path).permissions() == mode);
  CHECK(data::load_safetensors(path)[0].second.at({0}) == 2.0);

  // 0666 is also what a new file asks for before the umask: an existing 0666 file must stay 0666.
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                            fs::perms::group_write | fs::perms::others_read | fs::perms::others_write);
  const mode_t old_umask = ::umask(022);
  data::save_safetensors(path, checkpoint(3.0, 10));
  ::umask(old_umask);
  CHECK((fs::status(path).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::group_write |
         fs::perms::others_read | fs::perms::others_write));
}

TEST_CASE("every saver goes through the same atomic write: write_dot refuses a device too") {
  Tensor x = ng::randn({2}).requires_grad_();
  CHECK_THROWS_WITH_AS(ng::write_dot((x * 2.0).sum(), "/dev/full"), doctest::Contains("write_dot: '/dev/full'"), Error);
  CHECK(fs::is_character_file("/dev/full"));
}

TEST_CASE("a save removes the temporaries that killed saves of the same name left, and keeps a living process's") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  data::save_safetensors(path, checkpoint(1.0, 10));
  // A process that has ended (reaped, so its id names no process now) and this one, which is alive.
  const pid_t dead = spawn([] {});
  REQUIRE(exit_status(dead) == 0);
  REQUIRE(kill(dead, 0) != 0);
  const std::string dead_temporary = path + ".tmp-" + std::to_string(dead) + "-aB3dE9";
  const std::string live_temporary = path + ".tmp-" + std::to_string(getpid()) + "-Xy7Qz2";
  // Not temporaries of this name: the old unnumbered form, another target's, and a user's own file.
  const std::string old_form = path + ".tmp-aB3dE9";
  const std::string other_target = dir / ("other.safetensors.tmp-" + std::to_string(dead) + "-aB3dE9");
  const std::string users_file = path + ".tmp-" + std::to_string(dead) + "-notes";
  for (const std::string& name : {dead_temporary, live_temporary, old_form, other_target, users_file})
    write_text(name, "half a checkpoint");

  data::save_safetensors(path, checkpoint(2.0, 10));
  CHECK_FALSE(fs::exists(dead_temporary));
  CHECK(fs::exists(live_temporary));
  CHECK(fs::exists(old_form));
  CHECK(fs::exists(other_target));
  CHECK(fs::exists(users_file));
  CHECK(data::load_safetensors(path)[0].second.at({0}) == 2.0);
  CHECK(names_in(dir.path).size() == 5);  // the four kept above and the checkpoint: nothing else left
}

TEST_CASE("killed saves do not pile up temporaries: each save clears those of saves killed before it") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  const data::NamedTensors big = checkpoint(2.0, 1 << 20);
  data::save_safetensors(path, checkpoint(1.0, 1000));
  for (int round = 0; round < 8; ++round) {
    const pid_t saver = spawn([&] {
      for (;;) data::save_safetensors(path, big);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + 5 * round));
    kill(saver, SIGKILL);
    exit_status(saver);
    // What the killed save left is "<name>.tmp-<pid>-XXXXXX", the id of the process that wrote it.
    const std::string left_by_it = "model.safetensors.tmp-" + std::to_string(saver) + "-";
    for (const std::string& name : names_in(dir.path))
      if (name != "model.safetensors") CHECK((name.rfind(left_by_it, 0) == 0 && name.size() == left_by_it.size() + 6));
    data::save_safetensors(path, checkpoint(1.0, 1000));
    CHECK(names_in(dir.path) == std::vector<std::string>{"model.safetensors"});
  }
}
