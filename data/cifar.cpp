#include "data/cifar.h"

#include <fmt/format.h>

#include "core/errors.h"
#include "data/idx.h"

namespace imbench::data {

CifarBatch parse_cifar_batch(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  if (bytes.empty()) throw Error(fmt::format("{}: empty CIFAR-10 batch file", name));
  if (bytes.size() % kCifarRecordBytes != 0)
    throw Error(fmt::format("{}: size {} bytes is not a whole number of 3073-byte CIFAR-10 records "
                            "(truncated or not a CIFAR-10 binary batch)",
                            name, bytes.size()));
  const std::size_t n = bytes.size() / kCifarRecordBytes;
  CifarBatch out;
  out.labels.resize(n);
  out.images.resize(n * kCifarImageBytes);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* rec = &bytes[i * kCifarRecordBytes];
    if (rec[0] > 9) throw Error(fmt::format("{}: record {} has label {} (expected 0-9)", name, i, rec[0]));
    out.labels[i] = rec[0];
    std::copy(rec + 1, rec + kCifarRecordBytes, out.images.begin() + static_cast<std::ptrdiff_t>(i * kCifarImageBytes));
  }
  return out;
}

CifarBatch read_cifar_batch(const std::string& path) { return parse_cifar_batch(read_file_bytes(path), path); }

}  // namespace imbench::data
