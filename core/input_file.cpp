#include "core/input_file.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "core/errors.h"

namespace imbench {

std::uint64_t check_input_file(const std::string& path, const std::string& what, std::uint64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw Error(fmt::format("{}: file not found", path));
    throw Error(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  }
  if (S_ISDIR(st.st_mode)) throw Error(fmt::format("{}: is a directory, expected a {}", path, what));
  if (!S_ISREG(st.st_mode))
    throw Error(fmt::format("{}: not a regular file (a device, FIFO or socket), expected a {}", path, what));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > max_bytes)
    throw Error(fmt::format("{}: {} is larger than a {} may be ({})", path, byte_size_text(size), what,
                            byte_size_text(max_bytes)));
  return size;
}

std::string byte_size_text(std::uint64_t bytes) {
  static const char* const kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} bytes", bytes);
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 4) v /= 1024, ++unit;
  return fmt::format("{:.3g} {}", v, kUnits[unit]);
}

}  // namespace imbench
