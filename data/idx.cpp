#include "data/idx.h"

#include <fmt/format.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "core/errors.h"
#include "core/input_file.h"

namespace imbench::data {
namespace {

std::vector<std::uint8_t> gunzip_file(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw Error(fmt::format("{}: cannot open for reading", path));
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> chunk(1 << 20);
  for (;;) {
    const int n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const std::string why = gzerror(f, &code);
      gzclose(f);
      throw Error(fmt::format("{}: corrupt gzip data ({})", path, why));
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > kMaxDataFileBytes) {
      gzclose(f);
      throw Error(fmt::format("{}: unpacks to more than {}, more than a data file may be", path,
                              byte_size_text(kMaxDataFileBytes)));
    }
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
  // zlib reports a stream cut short only at close time (Z_BUF_ERROR).
  const int rc = gzclose(f);
  if (rc == Z_BUF_ERROR) throw Error(fmt::format("{}: truncated gzip stream", path));
  if (rc != Z_OK) throw Error(fmt::format("{}: corrupt gzip data (zlib code {})", path, rc));
  return out;
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         std::uint32_t(p[3]);
}

}  // namespace

std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  check_input_file(path, "data file", kMaxDataFileBytes);  // a regular file of bounded size
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open for reading", path));
  unsigned char magic[2] = {0, 0};
  in.read(reinterpret_cast<char*>(magic), 2);
  const bool gz = in.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  if (gz) return gunzip_file(path);
  in.clear();
  in.seekg(0);
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(fmt::format("{}: read error", path));
  return bytes;
}

IdxArray parse_idx(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  if (bytes.size() < 4)
    throw Error(fmt::format("{}: truncated IDX file ({} bytes, the header alone needs 4)", name, bytes.size()));
  if (bytes[0] != 0 || bytes[1] != 0)
    throw Error(fmt::format("{}: bad IDX magic number 0x{:02x}{:02x}{:02x}{:02x} (expected 0x0000TTNN)", name,
                            bytes[0], bytes[1], bytes[2], bytes[3]));
  if (bytes[2] != 0x08)
    throw Error(fmt::format("{}: unsupported IDX data type 0x{:02x} (only unsigned bytes, 0x08, are supported)", name,
                            bytes[2]));
  const int ndims = bytes[3];
  if (ndims < 1 || ndims > 4) throw Error(fmt::format("{}: IDX header declares {} dimensions (expected 1 to 4)", name, ndims));
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(ndims);
  if (bytes.size() < header)
    throw Error(fmt::format("{}: truncated IDX header ({} bytes, {} needed for {} dimensions)", name, bytes.size(),
                            header, ndims));
  IdxArray out;
  std::uint64_t count = 1;
  for (int d = 0; d < ndims; ++d) {
    const std::uint32_t n = be32(&bytes[4 + 4 * d]);
    if (n == 0) throw Error(fmt::format("{}: IDX dimension {} is zero", name, d));
    // Checked before multiplying so the product cannot wrap around.
    if (count > (std::uint64_t(1) << 40) / n) throw Error(fmt::format("{}: IDX dimensions are implausibly large", name));
    count *= n;
    out.dims.push_back(n);
  }
  const std::uint64_t have = bytes.size() - header;
  if (have != count)
    throw Error(fmt::format("{}: {} IDX file: header says {} ({} data bytes) but the file holds {} data bytes", name,
                            have < count ? "truncated" : "oversized", fmt::join(out.dims, "x"), count, have));
  out.values.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return out;
}

IdxArray read_idx(const std::string& path) { return parse_idx(read_file_bytes(path), path); }

void write_idx(const std::string& path, const IdxArray& array) {
  std::uint64_t count = 1;
  for (auto d : array.dims) count *= static_cast<std::uint64_t>(d);
  if (array.dims.empty() || array.dims.size() > 4 || count != array.values.size())
    throw Error(fmt::format("{}: write_idx: dims {} do not match {} values", path, fmt::join(array.dims, "x"),
                            array.values.size()));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(fmt::format("{}: cannot open for writing", path));
  const unsigned char head[4] = {0, 0, 0x08, static_cast<unsigned char>(array.dims.size())};
  out.write(reinterpret_cast<const char*>(head), 4);
  for (auto d : array.dims) {
    const auto v = static_cast<std::uint32_t>(d);
    const unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                                static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
    out.write(reinterpret_cast<const char*>(b), 4);
  }
  out.write(reinterpret_cast<const char*>(array.values.data()), static_cast<std::streamsize>(array.values.size()));
  if (!out) throw Error(fmt::format("{}: write failed", path));
}

}  // namespace imbench::data
