#pragma once
/// Bounds on the files imbench reads, checked before anything is allocated:
/// a reader names what it expects and the largest size it accepts, and gets
/// one clear Error for a missing file, a directory, a device or FIFO
/// (`/dev/zero` would otherwise be read without end), an empty file or a file
/// over the bound. Torch-free.
#include <cstdint>
#include <string>

namespace imbench {

inline constexpr std::uint64_t kKiB = 1024, kMiB = 1024 * kKiB, kGiB = 1024 * kMiB;

/// Largest files of each kind imbench reads (documented in docs/limits.md).
inline constexpr std::uint64_t kMaxMatrixFileBytes = 1 * kMiB;       ///< a matrix TOML file
inline constexpr std::uint64_t kMaxCheckpointBytes = 4 * kGiB;       ///< a whole checkpoint
inline constexpr std::uint64_t kMaxCheckpointMetaBytes = 64 * kMiB;  ///< its JSON section
inline constexpr std::uint64_t kMaxDataFileBytes = 4 * kGiB;         ///< an IDX / CIFAR file, raw or unpacked

/// The size of `path` after checking that it is a regular file of at most
/// `max_bytes` bytes. `what` names the expected kind ("matrix file",
/// "checkpoint") in the message: "PATH: is a directory, expected a matrix
/// file". Error otherwise.
std::uint64_t check_input_file(const std::string& path, const std::string& what, std::uint64_t max_bytes);

/// 1536 -> "1.5 KiB", 4294967296 -> "4 GiB".
std::string byte_size_text(std::uint64_t bytes);

}  // namespace imbench
