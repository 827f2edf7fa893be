#pragma once
/// Shared by the libFuzzer targets in fuzz/: the input as a temporary file
/// (for readers that take a path) and the rule for exceptions.
///
/// A reader may reject any input, but only with imbench's own errors
/// (imbench::Error, imbench::UsageError: one line naming the file or option).
/// Every other exception escapes the target and libFuzzer reports it as a
/// crash, like a sanitizer finding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/errors.h"

namespace imbench::fuzz {

/// A file in $TMPDIR (default /tmp) unique to this process, with a given
/// suffix; removed at exit.
class TempFile {
 public:
  explicit TempFile(const std::string& suffix) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir && *dir ? dir : "/tmp") + "/imbench-fuzz-" + std::to_string(getpid()) + suffix;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  /// Replaces the file's contents with `size` bytes at `data`.
  const std::string& write(const std::uint8_t* data, std::size_t size) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
      std::perror(path_.c_str());
      std::abort();
    }
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Runs `f`; imbench's own errors are an accepted answer, anything else escapes.
template <typename F>
void expect_imbench_errors_only(F&& f) {
  try {
    f();
  } catch (const imbench::Error&) {
  } catch (const imbench::UsageError&) {
  }
}

}  // namespace imbench::fuzz
