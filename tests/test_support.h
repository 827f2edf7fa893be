#pragma once
// Helpers shared by the test binaries: a temporary folder, exception
// messages, and a small synthetic data set.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "data/synthetic.h"

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
    std::filesystem::remove_all(path, ec);
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

/// Separable MNIST-shaped clusters (noise 0.2, seed 3).
inline data::Dataset toy(int64_t n, const std::string& split) {
  data::SyntheticOptions o;
  o.size = n;
  o.noise = 0.2;
  o.seed = 3;
  return data::make_synthetic(o, split);
}

}  // namespace imbench::testing_support
