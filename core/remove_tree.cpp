#include "core/remove_tree.h"

#include <fmt/format.h>
#include <ftw.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include "core/errors.h"

namespace imbench {
namespace {
thread_local int first_errno = 0;

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  if (std::remove(path) != 0 && errno != ENOENT && first_errno == 0) first_errno = errno;
  return 0;  // go on: remove what can be removed
}
}  // namespace

bool remove_tree(const std::string& path, std::error_code& ec) {
  ec.clear();
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return true;
    ec.assign(errno, std::generic_category());
    return false;
  }
  first_errno = 0;
  if (::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && first_errno == 0) first_errno = errno;
  if (first_errno != 0) {
    ec.assign(first_errno, std::generic_category());
    return false;
  }
  return true;
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  if (!remove_tree(path, ec)) throw Error(fmt::format("{}: cannot remove: {}", path, ec.message()));
}

}  // namespace imbench
