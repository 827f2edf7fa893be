#include "core/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "core/errors.h"
#include "core/interrupt.h"

namespace fs = std::filesystem;

namespace imbench {
namespace atomic_file_detail {
namespace {

std::string errno_text(int err) {
  if (err == ENOSPC || err == EDQUOT) return "disk full";
  return std::strerror(err);
}

// Testing hook (tests/cli_full_disk.sh, which needs no root with it):
// IMBENCH_FAIL_WRITE_STEP=N makes the N-th step that needs disk space (open,
// write, fsync, close; counted over the whole process) fail with ENOSPC, as
// a full disk would. Renames are not counted: they need no space. The same
// steps are the `write` events of IMBENCH_TEST_RAISE (core/interrupt.h).
bool injected_disk_full() {
  test_event(TestEvent::kWrite);
  static const long fail_at = [] {
    const char* v = std::getenv("IMBENCH_FAIL_WRITE_STEP");
    return v ? std::strtol(v, nullptr, 10) : 0L;
  }();
  static std::atomic<long> step{0};
  if (fail_at <= 0 || ++step != fail_at) return false;
  errno = ENOSPC;
  return true;
}

[[noreturn]] void fail(const std::string& path, int err) {
  throw Error(fmt::format("{}: write failed: {}", path, errno_text(err)));
}

std::string temporary_name(const std::string& path) { return path + fmt::format(".tmp-{}", ::getpid()); }

// Writes and flushes the temporary file of `path`; on failure removes it and throws.
void write_temporary(const std::string& path, std::string_view bytes) {
  const fs::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) throw Error(fmt::format("{}: write failed: {}", path, ec.message()));
  }
  const std::string tmp = temporary_name(path);
  if (injected_disk_full()) fail(path, errno);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, errno);
  auto give_up = [&](int err, bool close_fd) {
    if (close_fd) ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, err);
  };
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = injected_disk_full() ? -1 : ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      give_up(errno, true);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  // Flush before the rename, so that the rename never publishes a file whose
  // contents are still in flight (and a delayed-allocation ENOSPC shows here).
  if (injected_disk_full() || (::fsync(fd) != 0 && errno != EINVAL)) give_up(errno, true);
  if (injected_disk_full()) {
    ::close(fd);
    give_up(ENOSPC, false);
  }
  if (::close(fd) != 0) give_up(errno, false);
}

// Makes renames in the folder of `path` durable; a folder that cannot be synced is no error.
void sync_folder(const std::string& path) {
  const fs::path target(path);
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  if (const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Temporary files of `path` left by earlier processes that were killed
// mid-write (`PATH.tmp-PID` whose PID no longer exists on this machine): removed
// once `path` has been replaced, so that repeated kills do not fill the disk.
void remove_stale_temporaries(const std::string& path) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = target.filename().string() + ".tmp-";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::strtol(digits.c_str(), nullptr, 10);
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    std::error_code ignored;
    fs::remove(it->path(), ignored);
  }
}

}  // namespace
}  // namespace atomic_file_detail

void write_files_atomically(const std::vector<std::pair<std::string, std::string_view>>& files) {
  using namespace atomic_file_detail;
  auto remove_temporaries = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) ::unlink(temporary_name(files[i].first).c_str());
  };
  for (std::size_t i = 0; i < files.size(); ++i) {
    try {
      write_temporary(files[i].first, files[i].second);
    } catch (...) {
      remove_temporaries(0, i);
      throw;
    }
  }
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string& path = files[i].first;
    if (::rename(temporary_name(path).c_str(), path.c_str()) != 0) {
      const int err = errno;
      remove_temporaries(i, files.size());
      fail(path, err);
    }
    test_event(TestEvent::kSave);
  }
  for (const auto& [path, bytes] : files) {
    sync_folder(path);
    remove_stale_temporaries(path);
  }
}

void write_file_atomically(const std::string& path, std::string_view bytes) { write_files_atomically({{path, bytes}}); }

}  // namespace imbench
