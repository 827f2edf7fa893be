#pragma once
/// Reader and writer for the IDX format of MNIST and Fashion-MNIST
/// (LeCun's format: magic 0x00 0x00 <type> <ndims>, big-endian u32 dims,
/// then the data). Only unsigned-byte data (type 0x08) is supported, which
/// is what every MNIST-family file uses. Files ending in `.gz` or starting
/// with the gzip magic are decompressed transparently.
#include <cstdint>
#include <string>
#include <vector>

namespace imbench::data {

/// An IDX array of unsigned bytes: dims (e.g. {60000, 28, 28}) and the data, row-major.
struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> values;
};

/// Reads and validates an IDX file. Throws imbench::Error naming the file and
/// the problem: missing, bad magic, unsupported type, zero/too many dims,
/// size not matching the header (truncated or trailing bytes), corrupt gzip.
IdxArray read_idx(const std::string& path);

/// Parses an IDX image already in memory; `name` is used in error messages.
IdxArray parse_idx(const std::vector<std::uint8_t>& bytes, const std::string& name);

/// Writes an uncompressed IDX file of unsigned bytes (tests, synthetic data).
void write_idx(const std::string& path, const IdxArray& array);

/// Reads a whole file, gunzipping it when it is gzip-compressed.
std::vector<std::uint8_t> read_file_bytes(const std::string& path);

}  // namespace imbench::data
