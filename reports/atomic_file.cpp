#include "reports/atomic_file.h"

#include <H5Cpp.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <system_error>

#include "core/errors.h"
#include "reports/h5_util.h"

namespace fs = std::filesystem;

namespace imbench::reports {

void replace_file_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& write) {
  const fs::path target(path);
  const std::string tmp = path + fmt::format(".tmp-{}", ::getpid());
  auto remove_tmp = [&] {
    std::error_code ec;
    fs::remove(tmp, ec);
  };
  try {
    if (target.has_parent_path()) fs::create_directories(target.parent_path());
    write(tmp);
    // Flush before the rename, so that the rename never publishes a file whose contents are still in flight.
    if (const int fd = ::open(tmp.c_str(), O_RDONLY); fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
    fs::rename(tmp, target);
  } catch (const H5::Exception& e) {
    remove_tmp();
    throw Error(fmt::format("{}: HDF5 write failed: {}", path, h5_error_detail(e)));
  } catch (const fs::filesystem_error& e) {
    remove_tmp();
    throw Error(fmt::format("{}: cannot write: {}", path, e.code().message()));
  } catch (...) {
    remove_tmp();
    throw;
  }
}

void write_text_atomically(const std::string& path, const std::string& text) {
  if (fs::is_directory(fs::path(path))) throw UsageError(fmt::format("{}: is a directory, expected a file name", path));
  replace_file_atomically(path, [&](const std::string& tmp) {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    f.close();
    if (!f) throw Error(fmt::format("{}: cannot be written", path));
  });
}

}  // namespace imbench::reports
