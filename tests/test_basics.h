#pragma once
// Torch-free helpers shared by the test binaries: a temporary folder and
// exception messages. tests/test_support.h adds the torch-based ones.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <exception>
#include <filesystem>
#include <string>

#include "core/remove_tree.h"

namespace imbench::testing_support {

/// A fresh folder under the system temp dir, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() / fmt::format("imbench-test-{}-{}", ::getpid(), counter++);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    remove_tree(path.string(), ec);  // not std::filesystem::remove_all: core/remove_tree.h
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

/// Runs f, expects an exception of type E and returns its message; any
/// other outcome is a test failure.
template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected exception not thrown";
  return "";
}

}  // namespace imbench::testing_support
