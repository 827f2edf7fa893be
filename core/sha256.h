#pragma once
/// SHA-256 (FIPS 180-4), used to verify downloaded data and to checksum
/// checkpoints. Torch-free.
#include <cstddef>
#include <cstdint>
#include <string>

namespace imbench {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  /// Lower-case hex digest; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  void compress(const std::uint8_t* block);
  std::uint32_t state_[8];
  std::uint8_t buffer_[64];
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

/// SHA-256 of a byte string, as lower-case hex.
std::string sha256_hex(const std::string& bytes);
/// SHA-256 of a file's contents, as lower-case hex; throws Error if unreadable.
std::string sha256_file(const std::string& path);

}  // namespace imbench
