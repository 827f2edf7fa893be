#include "data/user_data.h"

#include <H5Cpp.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>

#include "core/errors.h"
#include "core/h5_error.h"
#include "h5guard/guard.h"

namespace fs = std::filesystem;

namespace imbench::data {
namespace {

// .npy headers are a few hundred bytes; numpy's own limit for version 1 is 64 KiB.
constexpr std::uint64_t kMaxNpyHeader = 1 << 20;
// Elements per array: the same bound as the IDX reader, checked before multiplying.
constexpr std::uint64_t kMaxElements = std::uint64_t(1) << 40;
// Deflate cannot compress better than about 1032:1.
constexpr std::uint64_t kMaxDeflateRatio = 1100;

bool ends_with(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.rbegin(), suffix.rend(), s.rbegin(),
                    [](char want, char c) { return std::tolower(static_cast<unsigned char>(c)) == want; });
}
bool has_extension(const std::string& s, std::initializer_list<const char*> exts) {
  return std::any_of(exts.begin(), exts.end(), [&](const char* e) { return ends_with(s, e); });
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = s.find(',', start);
    out.push_back(s.substr(start, comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

const char* const kSpelling = "FILE.h5, FILE.hdf5 or FILE.npz (optionally FILE:X,Y to name the arrays) or X.npy,Y.npy";

// ------------------------------------------------------------------ arrays

// The element type of an array, always held in the host's (little-endian) byte order.
struct DType {
  char kind = 'f';  // 'f' float, 'i' signed integer, 'u' unsigned integer, 'b' bool, '?' other
  int size = 4;
  std::string raw;  // as the file spells it, for types imbench does not read
  std::string name() const {
    if (kind == 'b') return "bool";
    if (kind == '?') return raw.empty() ? "unknown" : raw;
    return fmt::format("{}{}", kind == 'f' ? "float" : kind == 'i' ? "int" : "uint", 8 * size);
  }
};

// An array's header: enough to validate it before its data is read.
struct ArrayHeader {
  std::string what;  // "x.npy", "my.npz: array x", "my.h5: dataset x"
  DType dtype;
  std::vector<int64_t> shape;
  std::uint64_t count = 1;
  std::uint64_t bytes() const { return count * static_cast<std::uint64_t>(dtype.size); }
};

std::string shape_text(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

void set_shape(ArrayHeader& h, const std::vector<std::uint64_t>& dims) {
  h.count = 1;
  h.shape.clear();
  for (auto d : dims) {
    if (d != 0 && h.count > kMaxElements / d)
      throw Error(fmt::format("{}: shape of {} dimensions is implausibly large", h.what, dims.size()));
    h.count *= d;
    h.shape.push_back(static_cast<int64_t>(d));
  }
}

// Images [N, C, H, W] or [N, H, W] of float32/float64/uint8, labels [N] of an integer type, N > 0 in both.
void check_headers(const ArrayHeader& x, const ArrayHeader& y) {
  const auto& t = x.dtype;
  if (!((t.kind == 'f' && (t.size == 4 || t.size == 8)) || (t.kind == 'u' && t.size == 1)))
    throw Error(
        fmt::format("{}: images of type {} are not supported; use float32 or float64 (in the model's input "
                    "box, [0, 1] for imbench checkpoints) or uint8 (scaled by 1/255)",
                    x.what, t.name()));
  if (y.dtype.kind != 'i' && y.dtype.kind != 'u')
    throw Error(fmt::format("{}: labels of type {} are not supported; use an integer type (int64, int32, uint8, ...)",
                            y.what, y.dtype.name()));
  if (x.shape.size() != 3 && x.shape.size() != 4)
    throw Error(fmt::format("{}: images of shape {}; expected [N, C, H, W] or [N, H, W]", x.what, shape_text(x.shape)));
  if (y.shape.size() != 1)
    throw Error(fmt::format("{}: labels of shape {}; expected [N]", y.what, shape_text(y.shape)));
  if (x.shape[0] != y.shape[0])
    throw Error(fmt::format("{} holds {} images but {} holds {} labels", x.what, x.shape[0], y.what, y.shape[0]));
  if (x.shape[0] == 0) throw Error(fmt::format("{}: no examples (N = 0)", x.what));
  for (std::size_t d = 1; d < x.shape.size(); ++d)
    if (x.shape[d] == 0) throw Error(fmt::format("{}: images of shape {} are empty", x.what, shape_text(x.shape)));
}

// An array's bytes (host order) with its header.
struct RawArray {
  ArrayHeader header;
  std::vector<std::uint8_t> bytes;
};

// The Dataset: images as float32 [N, C, H, W] (uint8 / 255), labels as int64, checked.
Dataset make_dataset(const std::string& spec, RawArray x, RawArray y, std::optional<int64_t> num_classes) {
  const auto& xh = x.header;
  const int64_t n = xh.shape[0];
  torch::Tensor images;
  auto raw = torch::from_blob(x.bytes.data(), xh.shape,
                              xh.dtype.kind == 'u' ? torch::kUInt8
                              : xh.dtype.size == 4 ? torch::kFloat32
                                                   : torch::kFloat64);
  if (xh.dtype.kind == 'u')
    images = raw.to(torch::kFloat32).div_(255.0);
  else if (xh.dtype.size == 4)
    images = raw.clone();  // from_blob does not own x.bytes
  else
    images = raw.to(torch::kFloat32);
  x.bytes = {};
  if (xh.dtype.kind == 'f') {
    const auto bad = torch::isfinite(images).reshape({n, -1}).logical_not().any(1).nonzero();
    if (bad.numel() > 0)
      throw Error(fmt::format("{}: image {} holds NaN or Inf ({} of {} images do); images must be finite", xh.what,
                              bad[0].item<int64_t>(), bad.size(0), n));
  }
  if (images.dim() == 3) images = images.unsqueeze(1);

  const auto& yh = y.header;
  auto labels = torch::empty({n}, torch::kInt64);
  auto* out = labels.data_ptr<int64_t>();
  const auto* p = y.bytes.data();
  const int s = yh.dtype.size;
  int64_t largest = 0;
  for (int64_t i = 0; i < n; ++i, p += s) {
    int64_t v = 0;
    if (yh.dtype.kind == 'u') {
      std::uint64_t u = 0;
      std::memcpy(&u, p, static_cast<std::size_t>(s));  // little-endian host: the low bytes
      if (u > static_cast<std::uint64_t>(std::numeric_limits<int64_t>::max()))
        throw Error(fmt::format("{}: label {} of example {} is out of range", yh.what, u, i));
      v = static_cast<int64_t>(u);
    } else if (s == 1) {
      int8_t t;
      std::memcpy(&t, p, 1);
      v = t;
    } else if (s == 2) {
      int16_t t;
      std::memcpy(&t, p, 2);
      v = t;
    } else if (s == 4) {
      int32_t t;
      std::memcpy(&t, p, 4);
      v = t;
    } else {
      std::memcpy(&v, p, 8);
    }
    if (v < 0) throw Error(fmt::format("{}: label {} of example {} is negative", yh.what, v, i));
    if (num_classes && v >= *num_classes)
      throw Error(fmt::format("{}: label {} of example {} is out of range 0-{} (num_classes = {})", yh.what, v, i,
                              *num_classes - 1, *num_classes));
    out[i] = v;
    largest = std::max(largest, v);
  }

  Dataset ds;
  ds.name = spec;
  ds.split = "test";
  ds.images = images.contiguous();
  ds.labels = labels;
  ds.num_classes = num_classes ? *num_classes : largest + 1;
  ds.num_classes_from_labels = !num_classes;
  ds.source = fmt::format("{}: images {} {}{}{}, labels {} {}; {}", spec, xh.dtype.name(), shape_text(xh.shape),
                          xh.dtype.kind == 'u' ? " scaled by 1/255" : "", xh.shape.size() == 3 ? " as one channel" : "",
                          yh.dtype.name(), shape_text(yh.shape),
                          num_classes ? fmt::format("{} classes (num_classes attribute)", *num_classes)
                                      : fmt::format("{} classes (largest label + 1)", largest + 1));
  return ds;
}

// ---------------------------------------------------------------- files

void check_regular_file(const std::string& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (!fs::exists(st)) throw Error(fmt::format("{}: no such file", path));
  if (fs::is_directory(st)) throw Error(fmt::format("{}: is a directory, expected a file", path));
  if (!fs::is_regular_file(st)) throw Error(fmt::format("{}: not a regular file", path));
}

std::uint64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  if (ec) throw Error(fmt::format("{}: cannot read its size ({})", path, ec.message()));
  return n;
}

// Reads `n` bytes at `offset`; the caller has checked that the file is long enough.
void read_at(std::ifstream& in, const std::string& path, std::uint64_t offset, std::uint8_t* out, std::uint64_t n) {
  in.clear();
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(n));
  if (static_cast<std::uint64_t>(in.gcount()) != n) throw Error(fmt::format("{}: read error or truncated file", path));
}

std::ifstream open_binary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open for reading", path));
  return in;
}

std::uint16_t le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[3]) << 24);
}

// ------------------------------------------------------------------ .npy

// The value after 'key': in a .npy header dict ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }").
std::string dict_value(const std::string& dict, const std::string& key, const std::string& what) {
  std::size_t pos = std::string::npos;
  for (const char q : {'\'', '"'}) {
    pos = dict.find(q + key + q);
    if (pos != std::string::npos) {
      pos += key.size() + 2;
      break;
    }
  }
  if (pos == std::string::npos) throw Error(fmt::format("{}: .npy header has no '{}' entry", what, key));
  pos = dict.find_first_not_of(" \t", pos);
  if (pos == std::string::npos || dict[pos] != ':') throw Error(fmt::format("{}: malformed .npy header", what));
  pos = dict.find_first_not_of(" \t", pos + 1);
  if (pos == std::string::npos) throw Error(fmt::format("{}: malformed .npy header", what));
  const char c = dict[pos];
  std::size_t end;
  if (c == '\'' || c == '"')
    end = dict.find(c, pos + 1) + 1;
  else if (c == '(')
    end = dict.find(')', pos) + 1;
  else if (c == '[')
    throw Error(fmt::format("{}: a structured array ('{}' is a list); save a plain array", what, key));
  else
    end = dict.find_first_of(",}", pos);
  if (end == std::string::npos || end == 0) throw Error(fmt::format("{}: malformed .npy header", what));
  std::string value = dict.substr(pos, end - pos);
  value.erase(value.find_last_not_of(" \t") + 1);
  return value;
}

// A .npy header from its first bytes; returns the header and sets `data_offset`.
ArrayHeader parse_npy_header(const std::uint8_t* p, std::uint64_t available, const std::string& what,
                             std::uint64_t& data_offset) {
  static const std::uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (available < 10)
    throw Error(fmt::format("{}: truncated .npy file ({} bytes, the header needs 10)", what, available));
  if (std::memcmp(p, kMagic, 6) != 0) throw Error(fmt::format("{}: not a .npy file (no \\x93NUMPY magic)", what));
  const int major = p[6];
  if (major < 1 || major > 3)
    throw Error(fmt::format("{}: .npy format version {}.{} is not supported", what, major, p[7]));
  const std::uint64_t prefix = major == 1 ? 10 : 12;
  if (available < prefix) throw Error(fmt::format("{}: truncated .npy header", what));
  const std::uint64_t len = major == 1 ? le16(p + 8) : le32(p + 8);
  if (len > kMaxNpyHeader)
    throw Error(fmt::format("{}: .npy header of {} bytes is implausibly large (at most {})", what, len, kMaxNpyHeader));
  if (available < prefix + len)
    throw Error(fmt::format("{}: truncated .npy header ({} bytes, {} declared)", what, available - prefix, len));
  const std::string dict(reinterpret_cast<const char*>(p + prefix), len);
  data_offset = prefix + len;

  ArrayHeader h;
  h.what = what;
  const std::string fortran = dict_value(dict, "fortran_order", what);
  if (fortran == "True")
    throw Error(
        fmt::format("{}: Fortran-ordered array (fortran_order: True); save it C-ordered, e.g. "
                    "numpy.save(path, numpy.ascontiguousarray(a))",
                    what));
  if (fortran != "False") throw Error(fmt::format("{}: malformed .npy header (fortran_order: {})", what, fortran));

  std::string descr = dict_value(dict, "descr", what);
  if (descr.size() < 4 || (descr.front() != '\'' && descr.front() != '"'))
    throw Error(fmt::format("{}: unsupported .npy dtype {}", what, descr));
  descr = descr.substr(1, descr.size() - 2);
  const char order = descr[0];
  const char kind = descr[1];
  int size = 0;
  try {
    size = std::stoi(descr.substr(2));
  } catch (const std::exception&) {
    throw Error(fmt::format("{}: unsupported .npy dtype '{}'", what, descr));
  }
  if (order == '>' && size > 1)
    throw Error(fmt::format(
        "{}: big-endian array ('{}'); save it little-endian, e.g. a.astype(a.dtype.newbyteorder('<'))", what, descr));
  if (order != '<' && order != '|' && order != '=' && order != '>')
    throw Error(fmt::format("{}: unsupported .npy dtype '{}'", what, descr));
  h.dtype.size = size;
  h.dtype.raw = descr;
  h.dtype.kind = (kind == 'f' || kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)
                     ? kind
                 : kind == 'b' && size == 1 ? 'b'
                                            : '?';
  if (h.dtype.kind == 'f' && size < 4) h.dtype.kind = '?';

  const std::string shape = dict_value(dict, "shape", what);
  if (shape.front() != '(') throw Error(fmt::format("{}: malformed .npy shape {}", what, shape));
  std::vector<std::uint64_t> dims;
  for (auto part : split_commas(shape.substr(1, shape.size() - 2))) {
    part.erase(std::remove_if(part.begin(), part.end(), [](unsigned char c) { return std::isspace(c) || c == 'L'; }),
               part.end());
    if (part.empty()) continue;  // "(3,)"
    if (!std::all_of(part.begin(), part.end(), [](unsigned char c) { return std::isdigit(c); }) || part.size() > 18)
      throw Error(fmt::format("{}: malformed .npy shape {}", what, shape));
    dims.push_back(std::stoull(part));
  }
  set_shape(h, dims);
  return h;
}

// A .npy file's header, checked against the file's length.
struct NpyFile {
  std::string path;
  ArrayHeader header;
  std::uint64_t data_offset = 0;
};

NpyFile open_npy(const std::string& path) {
  check_regular_file(path);
  const std::uint64_t size = file_size(path);
  auto in = open_binary(path);
  std::vector<std::uint8_t> head(static_cast<std::size_t>(std::min<std::uint64_t>(size, 12 + kMaxNpyHeader)));
  read_at(in, path, 0, head.data(), head.size());
  NpyFile f{path, {}, 0};
  f.header = parse_npy_header(head.data(), head.size(), path, f.data_offset);
  const std::uint64_t have = size - f.data_offset, want = f.header.bytes();
  if (have != want)
    throw Error(fmt::format("{}: {} .npy file: the header declares {} {} ({} data bytes) but the file holds {}", path,
                            have < want ? "truncated" : "oversized", f.header.dtype.name(), shape_text(f.header.shape),
                            want, have));
  return f;
}

std::vector<std::uint8_t> read_npy_data(const NpyFile& f) {
  auto in = open_binary(f.path);
  std::vector<std::uint8_t> data(static_cast<std::size_t>(f.header.bytes()));
  read_at(in, f.path, f.data_offset, data.data(), data.size());
  return data;
}

Dataset load_npy_pair(const FileDatasetSpec& s) {
  const NpyFile x = open_npy(s.path), y = open_npy(s.labels_path);
  check_headers(x.header, y.header);
  return make_dataset(s.spec, {x.header, read_npy_data(x)}, {y.header, read_npy_data(y)}, std::nullopt);
}

// ------------------------------------------------------------------ .npz

struct ZipMember {
  std::string name;
  int method = 0;  // 0 stored, 8 deflate
  std::uint32_t crc = 0;
  std::uint64_t compressed = 0, uncompressed = 0;
  std::uint64_t data_offset = 0;  // of the member's data (after its local header)
};

// The central directory of a zip archive (no zip64: numpy writes it only for members over 4 GiB).
std::vector<ZipMember> read_zip_directory(const std::string& path, std::ifstream& in, std::uint64_t size) {
  const std::uint64_t tail_size = std::min<std::uint64_t>(size, 22 + 65535);
  std::vector<std::uint8_t> tail(static_cast<std::size_t>(tail_size));
  read_at(in, path, size - tail_size, tail.data(), tail_size);
  std::optional<std::uint64_t> eocd;  // offset in tail
  for (std::uint64_t i = tail_size >= 22 ? tail_size - 22 + 1 : 0; i-- > 0;)
    if (le32(&tail[i]) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (!eocd)
    throw Error(fmt::format("{}: not a zip archive (an .npz is one, written by numpy.savez); truncated?", path));
  const std::uint8_t* e = &tail[*eocd];
  const std::uint64_t eocd_pos = size - tail_size + *eocd;
  const bool zip64_locator = *eocd >= 20 && le32(e - 20) == 0x07064b50;
  const std::uint16_t entries = le16(e + 10);
  const std::uint32_t cd_size = le32(e + 12), cd_offset = le32(e + 16);
  if (zip64_locator || entries == 0xffff || cd_size == 0xffffffffu || cd_offset == 0xffffffffu)
    throw Error(
        fmt::format("{}: a zip64 archive (members or archive over 4 GiB) is not supported; save smaller arrays, "
                    "or use .npy files or HDF5",
                    path));
  if (le16(e + 4) != 0 || le16(e + 6) != 0 || le16(e + 8) != entries)
    throw Error(fmt::format("{}: multi-disk zip archives are not supported", path));
  if (std::uint64_t(cd_offset) + cd_size > eocd_pos)
    throw Error(fmt::format("{}: corrupt zip archive (central directory beyond its end; truncated?)", path));
  std::vector<std::uint8_t> cd(cd_size);
  read_at(in, path, cd_offset, cd.data(), cd_size);
  std::vector<ZipMember> members;
  std::size_t pos = 0;
  for (std::uint16_t k = 0; k < entries; ++k) {
    if (pos + 46 > cd.size() || le32(&cd[pos]) != 0x02014b50)
      throw Error(fmt::format("{}: corrupt zip central directory (entry {})", path, k));
    const std::uint8_t* c = &cd[pos];
    const std::size_t name_len = le16(c + 28), extra_len = le16(c + 30), comment_len = le16(c + 32);
    if (pos + 46 + name_len + extra_len + comment_len > cd.size())
      throw Error(fmt::format("{}: corrupt zip central directory (entry {})", path, k));
    ZipMember m;
    m.name.assign(reinterpret_cast<const char*>(c + 46), name_len);
    if (le16(c + 8) & 1) throw Error(fmt::format("{}: member {} is encrypted", path, m.name));
    m.method = le16(c + 10);
    m.crc = le32(c + 16);
    const std::uint32_t csize = le32(c + 20), usize = le32(c + 24), local = le32(c + 42);
    if (csize == 0xffffffffu || usize == 0xffffffffu || local == 0xffffffffu)
      throw Error(
          fmt::format("{}: member {} needs zip64 (over 4 GiB), which is not supported; save smaller arrays, "
                      "or use .npy files or HDF5",
                      path, m.name));
    m.compressed = csize;
    m.uncompressed = usize;
    m.data_offset = local;  // the local header's offset until resolved
    members.push_back(m);
    pos += 46 + name_len + extra_len + comment_len;
  }
  return members;
}

// The member `name`.npy; an unknown name lists the arrays the archive holds.
ZipMember find_member(std::vector<ZipMember>& members, const std::string& path, const std::string& name,
                      std::ifstream& in, std::uint64_t size) {
  for (auto& m : members) {
    if (m.name != name + ".npy") continue;
    // The local header: its name and extra field (numpy adds a zip64 one) precede the data;
    // the sizes come from the central directory, which numpy always fills in.
    std::uint8_t local[30];
    if (m.data_offset + 30 > size) throw Error(fmt::format("{}: truncated zip archive (member {})", path, m.name));
    read_at(in, path, m.data_offset, local, 30);
    if (le32(local) != 0x04034b50) throw Error(fmt::format("{}: corrupt zip archive (member {})", path, m.name));
    ZipMember r = m;
    r.data_offset = m.data_offset + 30 + le16(local + 26) + le16(local + 28);
    if (r.data_offset + r.compressed > size)
      throw Error(fmt::format("{}: truncated zip archive: member {} needs {} bytes at offset {}, the file has {}", path,
                              m.name, r.compressed, r.data_offset, size));
    if (r.method != 0 && r.method != 8)
      throw Error(
          fmt::format("{}: member {} uses zip compression method {}; only stored (numpy.savez) and deflate "
                      "(numpy.savez_compressed) are supported",
                      path, m.name, r.method));
    if (r.method == 0 && r.compressed != r.uncompressed)
      throw Error(fmt::format("{}: corrupt zip archive (stored member {} has two sizes)", path, m.name));
    if (r.method == 8 && r.uncompressed > r.compressed * kMaxDeflateRatio + 1024)
      throw Error(fmt::format("{}: corrupt zip archive (member {} claims {} bytes from {} compressed)", path, m.name,
                              r.uncompressed, r.compressed));
    return r;
  }
  std::vector<std::string> found;
  for (const auto& m : members)
    found.push_back(ends_with(m.name, ".npy") ? m.name.substr(0, m.name.size() - 4) : m.name);
  throw Error(fmt::format("{}: no array '{}' (the archive holds: {}); name them with {}:X,Y", path, name,
                          found.empty() ? "nothing" : fmt::format("{}", fmt::join(found, ", ")), path));
}

// A member's bytes in two steps: the .npy header first (validated against the member's size), then the data.
class MemberReader {
 public:
  MemberReader(const std::string& path, std::ifstream& in, const ZipMember& m)
      : what_(fmt::format("{}: array {}", path, m.name.substr(0, m.name.size() - 4))), path_(path), in_(in), m_(m) {
    const std::uint64_t prefix = std::min<std::uint64_t>(m.uncompressed, 12 + kMaxNpyHeader);
    if (m.method == 0) {
      head_.resize(static_cast<std::size_t>(prefix));
      read_at(in, path, m.data_offset, head_.data(), prefix);
      header = parse_npy_header(head_.data(), prefix, what_, data_offset_);
      head_.resize(static_cast<std::size_t>(data_offset_));
    } else {
      compressed_.resize(static_cast<std::size_t>(m.compressed));  // bounded by the file's length
      read_at(in, path, m.data_offset, compressed_.data(), m.compressed);
      std::memset(&z_, 0, sizeof z_);
      if (inflateInit2(&z_, -MAX_WBITS) != Z_OK) throw Error(fmt::format("{}: zlib inflateInit2 failed", what_));
      z_open_ = true;
    }
    // The destructor does not run when the constructor throws: end the zlib stream here (found by fuzz_user_data).
    try {
      if (m.method != 0) {
        z_.next_in = compressed_.data();
        z_.avail_in = static_cast<uInt>(compressed_.size());
        head_.resize(static_cast<std::size_t>(prefix));
        inflate_into(head_.data(), prefix);
        header = parse_npy_header(head_.data(), prefix, what_, data_offset_);
      }
      const std::uint64_t have = m.uncompressed - std::min(m.uncompressed, data_offset_), want = header.bytes();
      if (have != want)
        throw Error(fmt::format("{}: the .npy header declares {} {} ({} data bytes) but the member holds {}", what_,
                                header.dtype.name(), shape_text(header.shape), want, have));
    } catch (...) {
      if (z_open_) inflateEnd(&z_);
      throw;
    }
  }
  ~MemberReader() {
    if (z_open_) inflateEnd(&z_);
  }
  MemberReader(const MemberReader&) = delete;
  MemberReader& operator=(const MemberReader&) = delete;

  ArrayHeader header;

  std::vector<std::uint8_t> data() {
    std::vector<std::uint8_t> out(static_cast<std::size_t>(header.bytes()));
    std::uint32_t crc = 0;
    if (m_.method == 0) {
      read_at(in_, path_, m_.data_offset + data_offset_, out.data(), out.size());
      crc = static_cast<std::uint32_t>(crc32(0, head_.data(), static_cast<uInt>(head_.size())));
      crc = crc32_of(crc, out.data(), out.size());
    } else {
      const std::uint64_t in_head = head_.size() - data_offset_;
      std::copy(head_.begin() + static_cast<std::ptrdiff_t>(data_offset_), head_.end(), out.begin());
      inflate_into(out.data() + in_head, out.size() - in_head);
      std::uint8_t extra;
      z_.next_out = &extra;
      z_.avail_out = 1;
      if (inflate(&z_, Z_FINISH) != Z_STREAM_END)
        throw Error(
            fmt::format("{}: corrupt deflate data (longer than its declared {} bytes)", what_, m_.uncompressed));
      crc = static_cast<std::uint32_t>(crc32(0, head_.data(), static_cast<uInt>(head_.size())));
      crc = crc32_of(crc, out.data() + in_head, out.size() - in_head);
    }
    if (crc != m_.crc) throw Error(fmt::format("{}: CRC-32 mismatch (corrupt archive)", what_));
    return out;
  }

 private:
  static std::uint32_t crc32_of(std::uint32_t crc, const std::uint8_t* p, std::uint64_t n) {
    for (std::uint64_t done = 0; done < n;) {
      const auto chunk = static_cast<uInt>(std::min<std::uint64_t>(n - done, 1u << 30));
      crc = static_cast<std::uint32_t>(crc32(crc, p + done, chunk));
      done += chunk;
    }
    return crc;
  }
  void inflate_into(std::uint8_t* out, std::uint64_t n) {
    while (n > 0) {
      const auto chunk = static_cast<uInt>(std::min<std::uint64_t>(n, 1u << 30));
      z_.next_out = out;
      z_.avail_out = chunk;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      const std::uint64_t got = chunk - z_.avail_out;
      out += got;
      n -= got;
      if (rc == Z_STREAM_END && n > 0)
        throw Error(
            fmt::format("{}: deflate data ends early (shorter than its declared {} bytes)", what_, m_.uncompressed));
      if (rc == Z_BUF_ERROR && z_.avail_in == 0) throw Error(fmt::format("{}: truncated deflate data", what_));
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        throw Error(fmt::format("{}: corrupt deflate data ({})", what_, z_.msg ? z_.msg : "zlib error"));
    }
  }

  std::string what_, path_;
  std::ifstream& in_;
  ZipMember m_;
  std::vector<std::uint8_t> compressed_, head_;
  std::uint64_t data_offset_ = 0;
  z_stream z_{};
  bool z_open_ = false;
};

Dataset load_npz(const FileDatasetSpec& s) {
  check_regular_file(s.path);
  const std::uint64_t size = file_size(s.path);
  auto in = open_binary(s.path);
  auto members = read_zip_directory(s.path, in, size);
  const ZipMember xm = find_member(members, s.path, s.x_name, in, size);
  const ZipMember ym = find_member(members, s.path, s.y_name, in, size);
  MemberReader x(s.path, in, xm), y(s.path, in, ym);
  check_headers(x.header, y.header);
  return make_dataset(s.spec, {x.header, x.data()}, {y.header, y.data()}, std::nullopt);
}

// ------------------------------------------------------------------ HDF5


std::vector<std::string> root_names(H5::H5File& f) {
  std::vector<std::string> names;
  const hsize_t n = f.getNumObjs();
  for (hsize_t i = 0; i < n && i < 50; ++i) names.push_back(f.getObjnameByIdx(i));
  return names;
}

struct H5Array {
  H5::DataSet set;
  ArrayHeader header;
};

H5Array open_h5_array(H5::H5File& f, const std::string& path, const std::string& name) {
  H5Array a;
  a.header.what = fmt::format("{}: dataset {}", path, name);
  bool exists = false;
  try {
    exists = f.nameExists(name) && f.childObjType(name) == H5O_TYPE_DATASET;
  } catch (const H5::Exception&) {  // a missing group on the path
  }
  if (!exists) {
    const auto names = root_names(f);
    throw Error(fmt::format("{}: no dataset '{}' (the file holds: {}); name them with {}:X,Y", path, name,
                            names.empty() ? "nothing" : fmt::format("{}", fmt::join(names, ", ")), path));
  }
  a.set = f.openDataSet(name);
  const H5::DataSpace space = a.set.getSpace();
  if (!space.isSimple()) throw Error(fmt::format("{}: not a simple array", a.header.what));
  const int rank = space.getSimpleExtentNdims();
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  space.getSimpleExtentDims(dims.data());
  set_shape(a.header, std::vector<std::uint64_t>(dims.begin(), dims.end()));
  const H5T_class_t cls = a.set.getTypeClass();
  const auto size = static_cast<int>(a.set.getDataType().getSize());
  a.header.dtype.size = size;
  if (cls == H5T_FLOAT && (size == 4 || size == 8))
    a.header.dtype.kind = 'f';
  else if (cls == H5T_INTEGER && (size == 1 || size == 2 || size == 4 || size == 8))
    a.header.dtype.kind = a.set.getIntType().getSign() == H5T_SGN_NONE ? 'u' : 'i';
  else
    a.header.dtype.kind = '?';
  return a;
}

// The data in host order (HDF5 converts byte order); contiguous data must be all there.
std::vector<std::uint8_t> read_h5_array(const H5Array& a) {
  const auto& h = a.header;
  const H5::DSetCreatPropList props = a.set.getCreatePlist();
  if (props.getLayout() == H5D_CONTIGUOUS && a.set.getStorageSize() != h.bytes())
    throw Error(fmt::format("{}: {} {} needs {} bytes but the file stores {} (truncated or never written)", h.what,
                            h.dtype.name(), shape_text(h.shape), h.bytes(), a.set.getStorageSize()));
  std::vector<std::uint8_t> out(static_cast<std::size_t>(h.bytes()));
  const bool u = h.dtype.kind == 'u';
  const H5::PredType* type = nullptr;
  switch (h.dtype.size) {
    case 1:
      type = u ? &H5::PredType::NATIVE_UINT8 : &H5::PredType::NATIVE_INT8;
      break;
    case 2:
      type = u ? &H5::PredType::NATIVE_UINT16 : &H5::PredType::NATIVE_INT16;
      break;
    case 4:
      type = h.dtype.kind == 'f' ? &H5::PredType::NATIVE_FLOAT
             : u                 ? &H5::PredType::NATIVE_UINT32
                                 : &H5::PredType::NATIVE_INT32;
      break;
    default:
      type = h.dtype.kind == 'f' ? &H5::PredType::NATIVE_DOUBLE
             : u                 ? &H5::PredType::NATIVE_UINT64
                                 : &H5::PredType::NATIVE_INT64;
  }
  a.set.read(out.data(), *type);
  return out;
}

// The integer attribute num_classes of the labels dataset, else of the file.
std::optional<int64_t> h5_num_classes(H5::H5File& f, const H5Array& y, const std::string& path) {
  for (const H5::H5Object* o : {static_cast<const H5::H5Object*>(&y.set), static_cast<const H5::H5Object*>(&f)}) {
    if (!o->attrExists("num_classes")) continue;
    const H5::Attribute attr = o->openAttribute("num_classes");
    if (attr.getTypeClass() != H5T_INTEGER || attr.getSpace().getSimpleExtentNpoints() != 1)
      throw Error(fmt::format("{}: attribute num_classes must be one integer", path));
    int64_t k = 0;
    attr.read(H5::PredType::NATIVE_INT64, &k);
    if (k < 1) throw Error(fmt::format("{}: attribute num_classes = {} must be >= 1", path, k));
    return k;
  }
  return std::nullopt;
}

Dataset load_hdf5(const FileDatasetSpec& s) {
  check_regular_file(s.path);
  h5guard::check_file(s.path);  // what libhdf5 1.10.8 would trust blindly
  H5::Exception::dontPrint();
  try {
    H5::H5File f(s.path, H5F_ACC_RDONLY);
    const H5Array x = open_h5_array(f, s.path, s.x_name);
    const H5Array y = open_h5_array(f, s.path, s.y_name);
    check_headers(x.header, y.header);
    const auto classes = h5_num_classes(f, y, s.path);
    return make_dataset(s.spec, {x.header, read_h5_array(x)}, {y.header, read_h5_array(y)}, classes);
  } catch (const H5::Exception& e) {
    throw Error(fmt::format("{}: cannot read as HDF5 ({})", s.path, h5_error_detail(e)));
  }
}

}  // namespace

bool is_file_dataset(const std::string& spec) {
  if (spec.find('/') != std::string::npos) return true;
  if (has_extension(spec, {".h5", ".hdf5", ".npz", ".npy"})) return true;
  const auto colon = spec.rfind(':');
  return colon != std::string::npos && has_extension(spec.substr(0, colon), {".h5", ".hdf5", ".npz"});
}

FileDatasetSpec parse_file_dataset(const std::string& spec) {
  FileDatasetSpec s;
  s.spec = spec;
  std::string base = spec;
  const auto colon = spec.rfind(':');
  std::optional<std::string> names;
  if (colon != std::string::npos && has_extension(spec.substr(0, colon), {".h5", ".hdf5", ".npz"})) {
    base = spec.substr(0, colon);
    names = spec.substr(colon + 1);
  }
  if (!names && has_extension(base, {".npy"})) {
    const auto parts = split_commas(base);
    if (parts.size() != 2 || !has_extension(parts[0], {".npy"}) || !has_extension(parts[1], {".npy"}))
      throw UsageError(
          fmt::format("dataset '{}': a .npy file holds one array; give the images and the labels as "
                      "X.npy,Y.npy",
                      spec));
    s.format = FileFormat::kNpyPair;
    s.path = parts[0];
    s.labels_path = parts[1];
    return s;
  }
  if (has_extension(base, {".h5", ".hdf5"}))
    s.format = FileFormat::kHdf5;
  else if (has_extension(base, {".npz"}))
    s.format = FileFormat::kNpz;
  else
    throw UsageError(
        fmt::format("dataset '{}': not a known file format; a test set of your own is {}", spec, kSpelling));
  s.path = base;
  if (names) {
    const auto parts = split_commas(*names);
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty() || parts[0] == parts[1])
      throw UsageError(
          fmt::format("dataset '{}': after ':' give the images' and the labels' names, e.g. {}:x,y", spec, base));
    s.x_name = parts[0];
    s.y_name = parts[1];
  }
  return s;
}

Dataset load_file_dataset(const std::string& spec) {
  const auto s = parse_file_dataset(spec);
  switch (s.format) {
    case FileFormat::kNpyPair:
      return load_npy_pair(s);
    case FileFormat::kNpz:
      return load_npz(s);
    case FileFormat::kHdf5:
      break;
  }
  return load_hdf5(s);
}

}  // namespace imbench::data
