#pragma once
/// Reader for the CIFAR-10 binary layout (`cifar-10-batches-bin`): records of
/// 1 label byte followed by 3072 pixel bytes (1024 R, 1024 G, 1024 B, each
/// 32x32 row-major). Any whole number of records is accepted, so partial
/// copies such as the project's exact subset load as they are.
#include <cstdint>
#include <string>
#include <vector>

namespace imbench::data {

inline constexpr std::size_t kCifarRecordBytes = 3073;
inline constexpr std::size_t kCifarImageBytes = 3072;

/// Labels (0-9) and images ([N, 3, 32, 32] bytes, row-major) of one batch file.
struct CifarBatch {
  std::vector<std::uint8_t> labels;
  std::vector<std::uint8_t> images;
  std::size_t size() const { return labels.size(); }
};

/// Reads one batch file. Throws imbench::Error naming the file when it is
/// missing, empty, not a whole number of 3073-byte records, or has a label
/// outside 0-9 (naming the record).
CifarBatch read_cifar_batch(const std::string& path);

/// Parses a batch already in memory; `name` is used in error messages.
CifarBatch parse_cifar_batch(const std::vector<std::uint8_t>& bytes, const std::string& name);

}  // namespace imbench::data
