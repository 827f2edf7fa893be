#include "reports/atomic_file.h"

#include <fmt/format.h>

#include <filesystem>
#include <system_error>

#include "core/atomic_file.h"
#include "core/errors.h"

namespace imbench::reports {

void write_text_atomically(const std::string& path, const std::string& text) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw UsageError(fmt::format("{}: is a directory, expected a file name", path));
  imbench::write_file_atomically(path, text);
}

}  // namespace imbench::reports
