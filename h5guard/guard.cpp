#include "h5guard/guard.h"

#include <H5Cpp.h>
#include <fmt/format.h>

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "core/errors.h"
#include "core/h5_error.h"

namespace imbench::h5guard {
namespace {

// A variable-length attribute or dataset with more elements than this is not
// read by the guard (the file is refused): results files hold a few short
// strings per object.
constexpr hssize_t kMaxElements = hssize_t{1} << 20;
// A global heap collection is at least 4096 bytes; more than this is refused.
constexpr std::uint64_t kMaxCollectionBytes = std::uint64_t{1} << 30;
// An object header of more chunks than this is refused (imbench's have one or two).
constexpr std::size_t kMaxHeaderChunks = 256;
// Datatypes nest (enum of integers, variable-length of characters) no deeper than this.
constexpr int kMaxTypeDepth = 8;

// The conversion "variable-length -> opaque of the same size" copies nothing:
// HDF5 hands it the raw on-disk elements, which are what the guard wants.
herr_t keep_raw_bytes(hid_t src, hid_t dst, H5T_cdata_t* cdata, std::size_t, std::size_t buf_stride, std::size_t,
                      void*, void*, hid_t) {
  switch (cdata->command) {
    case H5T_CONV_INIT:
      cdata->need_bkg = H5T_BKG_NO;
      return H5Tget_size(src) == H5Tget_size(dst) ? 0 : -1;
    case H5T_CONV_CONV:
      return buf_stride == 0 || buf_stride == H5Tget_size(src) ? 0 : -1;
    default:
      return 0;
  }
}

void register_raw_conversion() {
  static std::once_flag once;
  std::call_once(once, [] {
    const hid_t vlen = H5Tcopy(H5T_C_S1);
    H5Tset_size(vlen, H5T_VARIABLE);
    const hid_t opaque = H5Tcreate(H5T_OPAQUE, 16);
    H5Tset_tag(opaque, "imbench raw variable-length element");
    H5Tregister(H5T_PERS_SOFT, "imbench_vlen_raw", vlen, opaque, keep_raw_bytes);
    H5Tclose(opaque);
    H5Tclose(vlen);
  });
}

std::uint64_t read_le(const unsigned char* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

class Guard {
 public:
  // Sizes of offsets and lengths and the base address, from the superblock.
  Guard(std::string path, std::size_t sizeof_addr, std::size_t sizeof_size, std::uint64_t base)
      : path_(std::move(path)), sizeof_addr_(sizeof_addr), sizeof_size_(sizeof_size), base_(base) {
    if (sizeof_addr_ < 2 || sizeof_addr_ > 8 || sizeof_size_ < 2 || sizeof_size_ > 8)
      fail(fmt::format("offsets of {} bytes and lengths of {} bytes", sizeof_addr_, sizeof_size_));
    in_.open(path_, std::ios::binary);
    in_.seekg(0, std::ios::end);
    file_size_ = static_cast<std::uint64_t>(std::max<std::streamoff>(0, in_.tellg()));
    raw_ = H5Tcreate(H5T_OPAQUE, 4 + sizeof_addr_ + 4);
    H5Tset_tag(raw_, "imbench raw variable-length element");
  }
  ~Guard() { H5Tclose(raw_); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  const std::string& path() const { return path_; }

  // A dataset stored in its object header (compact layout) must hold the
  // bytes its shape and type need: libhdf5 1.10.8 copies shape x type bytes
  // out of a smaller buffer otherwise.
  void check_compact_storage(hid_t ds, const std::string& what) const {
    const hid_t dcpl = H5Dget_create_plist(ds);
    if (dcpl < 0) return;
    const H5D_layout_t layout = H5Pget_layout(dcpl);
    H5Pclose(dcpl);
    if (layout == H5D_CHUNKED) return check_chunks(ds, what);
    if (layout != H5D_COMPACT) return;
    const hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
    const hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    const std::size_t size = type >= 0 ? H5Tget_size(type) : 0;
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    const hsize_t stored = H5Dget_storage_size(ds);
    if (n < 0 || size == 0 || static_cast<std::uint64_t>(n) > stored / size)
      fail(fmt::format("{} stores {} bytes in its header, its shape and type need {} x {}", what, stored,
                       std::max<hssize_t>(n, 0), size));
  }

  // Chunks stored without a filter (none in the pipeline, or skipped by the
  // chunk's filter mask) must hold a whole chunk: libhdf5 1.10.8 copies a
  // chunk's worth of bytes out of a shorter one otherwise.
  void check_chunks(hid_t ds, const std::string& what) const {
    const hid_t dcpl = H5Dget_create_plist(ds);
    const hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
    std::vector<hsize_t> dims(32);
    const int rank = dcpl >= 0 ? H5Pget_chunk(dcpl, static_cast<int>(dims.size()), dims.data()) : -1;
    const int filters = dcpl >= 0 ? H5Pget_nfilters(dcpl) : -1;
    std::uint64_t need = type >= 0 ? H5Tget_size(type) : 0;
    for (int d = 0; d < rank && d < static_cast<int>(dims.size()); ++d)
      need = dims[static_cast<std::size_t>(d)] == 0 || need > (std::uint64_t{1} << 40) ? 0 : need * dims[d];
    hsize_t chunks = 0;
    const bool ok = dcpl >= 0 && space >= 0 && rank > 0 && filters >= 0 && need > 0 &&
                    H5Dget_num_chunks(ds, space, &chunks) >= 0;
    std::string failure;
    for (hsize_t i = 0; ok && i < chunks && i < (hsize_t{1} << 24) && failure.empty(); ++i) {
      unsigned mask = 0;
      haddr_t addr = 0;
      hsize_t size = 0;
      if (H5Dget_chunk_info(ds, space, i, nullptr, &mask, &addr, &size) < 0) break;
      const unsigned all = filters >= 32 ? ~0u : (1u << filters) - 1;
      const bool unfiltered = filters == 0 || (mask & all) == all;
      if (unfiltered && size < need)
        failure = fmt::format("{}: unfiltered chunk {} holds {} bytes, a chunk is {}", what, i, size, need);
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (!failure.empty()) fail(failure);
  }

  // Checks the variable-length values of one attribute or dataset.
  void check(hid_t obj, bool is_attribute, const std::string& what) {
    const hid_t type = is_attribute ? H5Aget_type(obj) : H5Dget_type(obj);
    if (type < 0) return;
    const std::size_t base_size = vlen_base_size(type, what);
    const bool is_string = H5Tget_class(type) == H5T_STRING;
    H5Tclose(type);
    if (base_size == 0) return;
    const hid_t space = is_attribute ? H5Aget_space(obj) : H5Dget_space(obj);
    const hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0) H5Sclose(space);
    if (n <= 0) return;
    if (n > kMaxElements) fail(fmt::format("{} holds {} variable-length values (at most {})", what, n, kMaxElements));
    const std::size_t element = 4 + sizeof_addr_ + 4;
    std::vector<unsigned char> buf(static_cast<std::size_t>(n) * element);
    const herr_t read = is_attribute ? H5Aread(obj, raw_, buf.data())
                                     : H5Dread(obj, raw_, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
    if (read < 0) fail(fmt::format("{}: its variable-length values cannot be checked", what));
    for (hssize_t i = 0; i < n; ++i) {
      const unsigned char* e = buf.data() + static_cast<std::size_t>(i) * element;
      const std::uint64_t length = read_le(e, 4);
      const std::uint64_t address = read_le(e + 4, sizeof_addr_);
      const std::uint64_t index = read_le(e + 4 + sizeof_addr_, 4);
      // A null value: HDF5 reads nothing, and hands a null pointer for a
      // string, which its C++ API then passes to strlen. imbench writes an
      // empty string as an empty heap object, never as a null one.
      if (address == 0 && is_string) fail(fmt::format("{} holds a null string", what));
      if (address == 0) continue;
      const auto& objects = collection(address, what);
      const auto it = objects.find(index);
      if (index == 0 || it == objects.end())
        fail(fmt::format("{}: heap object {} does not exist in the global heap at {}", what, index, address));
      if (it->second != length * base_size)
        fail(fmt::format("{}: heap object {} holds {} bytes, the value says {}", what, index, it->second,
                         length * base_size));
    }
  }

  // The object header at `address` (relative to the base address), parsed
  // from the file's bytes before libhdf5 decodes its messages: HDF5 1.10.8
  // copies attribute names, enum member names and attribute values without
  // bounds (H5O_attr_decode's strdup read past the header chunk of an
  // old-format file whose attribute name had lost its NUL byte). Every
  // chunk (continuations included) must lie within the file, every message
  // within its chunk, and every attribute, datatype, dataspace, layout and
  // symbol table message must hold what it declares. Old-format headers
  // (version 1) have no checksum, so this is their only check; version 2
  // headers are checked the same way.
  void check_object_header(std::uint64_t address, const std::string& what) {
    if (!checked_headers_.insert(address).second) return;
    const std::uint64_t at = base_ + address;
    if (at < address || at >= file_size_)
      fail(fmt::format("the object header of {} lies past the end of the file (address {})", what, address));
    std::vector<unsigned char> prefix(static_cast<std::size_t>(std::min<std::uint64_t>(file_size_ - at, 48)));
    read_at(at, prefix);
    struct Chunk {
      std::uint64_t start, size;
      bool continuation;
    };
    std::vector<Chunk> chunks;
    int version = 0;
    bool creation_order = false;
    if (prefix.size() >= 16 && prefix[0] == 1) {
      version = 1;
      chunks.push_back({at + 16, read_le(prefix.data() + 8, 4), false});
    } else if (prefix.size() >= 7 && std::memcmp(prefix.data(), "OHDR", 4) == 0 && prefix[4] == 2) {
      version = 2;
      const unsigned flags = prefix[5];
      creation_order = (flags & 0x04) != 0;
      std::size_t p = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
      const std::size_t width = std::size_t{1} << (flags & 0x03);
      if (p + width > prefix.size()) fail(fmt::format("the object header of {} is truncated", what));
      const std::uint64_t size = read_le(prefix.data() + p, width);
      chunks.push_back({at + p + width, size, false});
    } else {
      fail(fmt::format("{} has no object header of a known version at address {}", what, address));
    }
    const std::size_t message_header = version == 1 ? 8 : 4 + (creation_order ? 2 : 0);
    std::uint64_t total = 0;
    std::set<std::uint64_t> seen;
    // A chunked dataset's layout records the size of one value, which
    // libhdf5 1.10.8 uses for its chunk buffers, while it copies values of
    // its datatype's size: the two must agree (compared after the last chunk).
    std::optional<std::uint64_t> value_size, chunk_value_size;
    for (std::size_t c = 0; c < chunks.size(); ++c) {
      const Chunk chunk = chunks[c];
      if (chunk.start > file_size_ || chunk.size > file_size_ - chunk.start)
        fail(fmt::format("an object header chunk of {} ({} bytes at {}) lies past the end of the file", what,
                         chunk.size, chunk.start));
      total += chunk.size;
      if (total > file_size_ || !seen.insert(chunk.start).second)
        fail(fmt::format("the object header chunks of {} overlap", what));
      std::vector<unsigned char> bytes(static_cast<std::size_t>(chunk.size));
      read_at(chunk.start, bytes);
      std::size_t p = 0, end = bytes.size();
      if (version == 2 && chunk.continuation) {  // "OCHK", messages, checksum
        if (end < 8 || std::memcmp(bytes.data(), "OCHK", 4) != 0)
          fail(fmt::format("a continuation chunk of {} has no signature", what));
        p = 4;
        end -= 4;
      }
      while (end - p >= message_header) {
        const unsigned char* m = bytes.data() + p;
        const unsigned type = version == 1 ? static_cast<unsigned>(read_le(m, 2)) : m[0];
        const std::size_t size = static_cast<std::size_t>(read_le(m + (version == 1 ? 2 : 1), 2));
        const unsigned flags = version == 1 ? m[4] : m[3];
        p += message_header;
        if (size > end - p)
          fail(fmt::format("a message of {} ({} bytes) overruns its object header chunk", what, size));
        const unsigned char* data = bytes.data() + p;
        const bool shared = (flags & 0x02) != 0;  // a reference to a shared message, not the message
        if (type == 0x10) {                       // continuation: offset, length
          if (size < sizeof_addr_ + sizeof_size_)
            fail(fmt::format("a continuation message of {} is truncated", what));
          if (chunks.size() >= kMaxHeaderChunks)
            fail(fmt::format("the object header of {} has more than {} chunks", what, kMaxHeaderChunks));
          const std::uint64_t offset = read_le(data, sizeof_addr_);
          const std::uint64_t length = read_le(data + sizeof_addr_, sizeof_size_);
          if (base_ + offset < offset) fail(fmt::format("a continuation of {} lies past the end of the file", what));
          chunks.push_back({base_ + offset, length, true});
        } else if (type == 0x0C && !shared) {
          check_attribute_message(data, size, what);
        } else if (type == 0x03 && !shared) {
          value_size = datatype_length(data, size, 0, fmt::format("the datatype of {}", what)).second;
        } else if (type == 0x01 && !shared) {
          if (!dataspace_points(data, size)) fail(fmt::format("the dataspace of {} cannot be decoded", what));
        } else if (type == 0x08) {
          chunk_value_size = check_layout_message(data, size, what);
        } else if (type == 0x11) {  // an old-format group's symbol table: B-tree, local heap
          if (size < 2 * sizeof_addr_) fail(fmt::format("the symbol table message of {} is truncated", what));
          check_symbol_table(read_le(data, sizeof_addr_), read_le(data + sizeof_addr_, sizeof_addr_), what);
        }
        p += size;
      }
    }
    if (value_size && chunk_value_size && *value_size != *chunk_value_size)
      fail(fmt::format("the chunks of {} hold values of {} bytes, its datatype values of {}", what, *chunk_value_size,
                       *value_size));
  }

  // The object header address of a hard link's target, or nothing.
  static std::optional<std::uint64_t> link_address(hid_t group, const H5L_info_t* info) {
    if (info->type != H5L_TYPE_HARD) return std::nullopt;
#if H5_VERSION_GE(1, 12, 0)
    haddr_t address = HADDR_UNDEF;
    if (H5VLnative_token_to_addr(group, info->u.token, &address) < 0 || address == HADDR_UNDEF) return std::nullopt;
    return address;
#else
    (void)group;
    return info->u.address;
#endif
  }

  static std::optional<std::uint64_t> object_address(hid_t obj) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    haddr_t address = HADDR_UNDEF;
    if (H5Oget_info3(obj, &info, H5O_INFO_BASIC) < 0 || H5VLnative_token_to_addr(obj, info.token, &address) < 0 ||
        address == HADDR_UNDEF)
      return std::nullopt;
    return address;
#else
    H5O_info_t info;
    if (H5Oget_info2(obj, &info, H5O_INFO_BASIC) < 0 || info.addr == HADDR_UNDEF) return std::nullopt;
    return info.addr;
#endif
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(fmt::format("{}: damaged HDF5 file: {}; not read", path_, why));
  }

  // An attribute message: version 1 pads its name, datatype and dataspace to
  // 8 bytes, versions 2 and 3 do not (3 adds a character-set byte). The name
  // must end with its NUL byte inside the message, the datatype and
  // dataspace must fit, and so must the values they describe.
  void check_attribute_message(const unsigned char* m, std::size_t size, const std::string& what) {
    const auto bad = [&](const std::string& why) { fail(fmt::format("an attribute message of {} {}", what, why)); };
    if (size < 8) bad("is truncated");
    const unsigned version = m[0];
    if (version < 1 || version > 3) bad(fmt::format("has version {}", version));
    const unsigned flags = version >= 2 ? m[1] : 0;
    const std::size_t name = static_cast<std::size_t>(read_le(m + 2, 2));
    const std::size_t type = static_cast<std::size_t>(read_le(m + 4, 2));
    const std::size_t space = static_cast<std::size_t>(read_le(m + 6, 2));
    const auto padded = [&](std::size_t n) { return version == 1 ? (n + 7) / 8 * 8 : n; };
    std::size_t p = version == 3 ? 9 : 8;
    if (p > size || name == 0 || padded(name) > size - p) bad("has a name longer than the message");
    if (std::memchr(m + p, 0, name) == nullptr) bad("has a name without its terminating NUL byte");
    p += padded(name);
    if (padded(type) > size - p) bad("has a datatype longer than the message");
    const unsigned char* t = m + p;
    p += padded(type);
    if (padded(space) > size - p) bad("has a dataspace longer than the message");
    const unsigned char* s = m + p;
    p += padded(space);
    if (flags & 0x03) return;  // a shared datatype or dataspace: stored elsewhere
    const std::uint64_t element = datatype_length(t, type, 0, fmt::format("an attribute of {}", what)).second;
    const std::optional<std::uint64_t> count = dataspace_points(s, space);
    if (!count) bad("has a dataspace that cannot be decoded");
    if (*count != 0 && element > (size - p) / *count)
      bad(fmt::format("declares {} values of {} bytes in {} bytes", *count, element, size - p));
  }

  // A data layout message: the raw data a compact dataset stores in it must
  // fit in the message (libhdf5 1.10.8 copies the recorded size out of it),
  // and a chunked one's dimensions too. Returns a chunked layout's value size
  // (its last dimension).
  std::optional<std::uint64_t> check_layout_message(const unsigned char* m, std::size_t size,
                                                    const std::string& what) const {
    const auto bad = [&](const std::string& why) { fail(fmt::format("the layout message of {} {}", what, why)); };
    if (size < 2) bad("is truncated");
    const unsigned version = m[0];
    if (version == 1 || version == 2) {  // version, rank, class, 5 reserved, [address], dims (4 bytes each), [size, data]
      if (size < 8) bad("is truncated");
      const std::size_t rank = m[1], cls = m[2];
      std::size_t p = 8 + (cls == 0 ? 0 : sizeof_addr_) + rank * 4;
      if (rank > 33 || p > size) bad("is longer than the message");
      if (cls == 0) {
        if (size - p < 4 || read_le(m + p, 4) > size - p - 4) bad("stores more data than the message holds");
      }
      if (cls == 2 && rank >= 1) return read_le(m + 8 + sizeof_addr_ + (rank - 1) * 4, 4);
    } else if (version == 3) {  // version, class, then per class
      const unsigned cls = m[1];
      if (cls == 0) {  // compact: size (2 bytes), data
        if (size < 4 || read_le(m + 2, 2) > size - 4) bad("stores more data than the message holds");
      } else if (cls == 2) {  // chunked: rank, address, dims (4 bytes each; the last is the value size)
        if (size < 3) bad("is truncated");
        const std::size_t rank = m[2];
        if (rank < 1 || rank > 33 || 3 + sizeof_addr_ + rank * 4 > size) bad("is longer than the message");
        return read_le(m + 3 + sizeof_addr_ + (rank - 1) * 4, 4);
      }
    } else if (version == 4) {  // version, class, then per class; chunked: flags, rank, width, dims (width bytes each)
      if (m[1] == 2) {
        if (size < 5) bad("is truncated");
        const std::size_t rank = m[3], width = m[4];
        if (rank < 1 || rank > 33 || width < 1 || width > 8 || 5 + rank * width > size) bad("is longer than the message");
        return read_le(m + 5 + (rank - 1) * width, width);
      }
    } else {
      bad(fmt::format("has version {}", version));
    }
    return std::nullopt;
  }

  // An old-format group's symbol table: a version-1 B-tree whose keys and
  // leaves (symbol table nodes) name their links by offsets into a local
  // heap. libhdf5 1.10.8 reads those names with strlen and strcmp: each one
  // must end with its NUL byte inside the heap's data segment.
  void check_symbol_table(std::uint64_t btree, std::uint64_t heap, const std::string& what) {
    const auto bad = [&](const std::string& why) { fail(fmt::format("the symbol table of {} {}", what, why)); };
    // The local heap: "HEAP", version 0, 3 reserved, data size, free list offset, data address.
    std::vector<unsigned char> head(8 + 2 * sizeof_size_ + sizeof_addr_);
    if (base_ + heap < heap || base_ + heap > file_size_ || file_size_ - (base_ + heap) < head.size())
      bad("has its local heap past the end of the file");
    read_at(base_ + heap, head);
    if (std::memcmp(head.data(), "HEAP", 4) != 0 || head[4] != 0) bad("has no local heap where it says");
    const std::uint64_t data_size = read_le(head.data() + 8, sizeof_size_);
    const std::uint64_t data_at = base_ + read_le(head.data() + 8 + 2 * sizeof_size_, sizeof_addr_);
    if (data_size == 0 || data_at > file_size_ || data_size > file_size_ - data_at)
      bad("has a local heap whose data lies past the end of the file");
    std::vector<unsigned char> names(static_cast<std::size_t>(data_size));
    read_at(data_at, names);
    const auto name_at = [&](std::uint64_t offset) {
      if (offset >= names.size() || std::memchr(names.data() + offset, 0, names.size() - offset) == nullptr)
        bad(fmt::format("names a link at offset {} of its local heap ({} bytes) without a terminating NUL byte", offset,
                        names.size()));
    };
    // The B-tree: "TREE", type 0 (groups), level, entries, 2 siblings, then
    // keys (heap offsets) and children interleaved, one more key than children.
    std::vector<std::pair<std::uint64_t, int>> nodes{{btree, -1}};
    std::set<std::uint64_t> seen;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const auto [address, expected_level] = nodes[i];
      const std::uint64_t at = base_ + address;
      if (!seen.insert(address).second || seen.size() > 4096) bad("has a B-tree that loops or is too large");
      const std::size_t header = 8 + 2 * sizeof_addr_;
      if (at < address || at > file_size_ || file_size_ - at < header) bad("has a B-tree node past the end of the file");
      std::vector<unsigned char> node(header);
      read_at(at, node);
      if (std::memcmp(node.data(), "TREE", 4) != 0 || node[4] != 0) bad("has no group B-tree node where it says");
      const int level = node[5];
      const std::size_t entries = static_cast<std::size_t>(read_le(node.data() + 6, 2));
      if (expected_level >= 0 && level != expected_level) bad("has a B-tree node at the wrong level");
      const std::size_t length = header + (entries + 1) * sizeof_size_ + entries * sizeof_addr_;
      if (length > file_size_ - at) bad("has a B-tree node longer than the file");
      node.resize(length);
      read_at(at, node);
      std::size_t p = header;
      for (std::size_t e = 0; e <= entries; ++e) {
        name_at(read_le(node.data() + p, sizeof_size_));
        p += sizeof_size_;
        if (e == entries) break;
        const std::uint64_t child = read_le(node.data() + p, sizeof_addr_);
        p += sizeof_addr_;
        if (level > 0) nodes.emplace_back(child, level - 1);
        else check_symbol_node(child, name_at, bad);
      }
    }
  }

  // A symbol table node: "SNOD", version 1, reserved, count, then entries of
  // a name offset, an object header address, cache type, reserved, 16 bytes.
  template <typename NameAt, typename Bad>
  void check_symbol_node(std::uint64_t address, const NameAt& name_at, const Bad& bad) {
    const std::uint64_t at = base_ + address;
    const std::size_t entry = sizeof_size_ + sizeof_addr_ + 24;
    if (at < address || at > file_size_ || file_size_ - at < 8) bad("has a symbol table node past the end of the file");
    std::vector<unsigned char> head(8);
    read_at(at, head);
    if (std::memcmp(head.data(), "SNOD", 4) != 0 || head[4] != 1) bad("has no symbol table node where it says");
    const std::size_t count = static_cast<std::size_t>(read_le(head.data() + 6, 2));
    if (count * entry > file_size_ - at - 8) bad("has a symbol table node longer than the file");
    std::vector<unsigned char> entries(count * entry);
    read_at(at + 8, entries);
    for (std::size_t e = 0; e < count; ++e) name_at(read_le(entries.data() + e * entry, sizeof_size_));
  }

  // The number of points of an encoded dataspace (version 1 or 2), or nothing.
  std::optional<std::uint64_t> dataspace_points(const unsigned char* s, std::size_t size) const {
    if (size < 4) return std::nullopt;
    const unsigned version = s[0], rank = s[1];
    if ((version != 1 && version != 2) || rank > 32) return std::nullopt;
    if (version == 2 && s[3] == 2) return 0;  // the null dataspace
    const std::size_t dims = version == 1 ? 8 : 4;
    // The extents, then the maximum extents (flag 1), then (version 1, flag 2) a permutation.
    const std::size_t length = rank * sizeof_size_ * ((s[2] & 0x01) ? 2 : 1) + (version == 1 && (s[2] & 0x02) ? rank * 4 : 0);
    if (dims > size || length > size - dims) return std::nullopt;
    std::uint64_t n = 1;
    for (unsigned d = 0; d < rank; ++d) {
      const std::uint64_t extent = read_le(s + dims + d * sizeof_size_, sizeof_size_);
      if (extent != 0 && n > (std::uint64_t{1} << 62) / extent) return std::nullopt;
      n *= extent;
    }
    return n;
  }

  // An encoded datatype within `avail` bytes: returns its encoded length and
  // the size of one element. Member names (enum) must end with their NUL byte
  // inside the message; compound types (never in a results file; HDF5 1.10.8
  // copies their member names without bounds) are refused.
  std::pair<std::size_t, std::uint64_t> datatype_length(const unsigned char* t, std::size_t avail, int depth,
                                                        const std::string& what) const {
    const auto bad = [&](const std::string& why) { fail(fmt::format("{} {}", what, why)); };
    if (depth > kMaxTypeDepth) bad("nests too deeply");
    if (avail < 8) bad("is truncated");
    const unsigned cls = t[0] & 0x0F, version = t[0] >> 4;
    const std::uint64_t bits = read_le(t + 1, 3);
    const std::uint64_t element = read_le(t + 4, 4);
    if (version < 1 || version > 4) bad(fmt::format("has datatype version {}", version));
    if (element == 0) bad("declares values of 0 bytes");
    std::size_t p = 8;
    const auto need = [&](std::size_t n) {
      if (n > avail - p) bad("is longer than its message");
      p += n;
    };
    // Bit fields (offset and length in bits) must lie within the value:
    // HDF5's conversions read them without checking.
    const auto within = [&](std::uint64_t offset, std::uint64_t length, const char* field) {
      if (length == 0 || offset + length > element * 8)
        bad(fmt::format("has a {} of {} bits at bit {} in a {}-byte value", field, length, offset, element));
    };
    // Numbers of more than 16 bytes exist nowhere (imbench writes 1 to 8);
    // libhdf5 1.10.8 copied a float "of 553648132 bytes" out of a chunk of 28.
    if ((cls == 0 || cls == 1 || cls == 4) && element > 16) bad(fmt::format("declares numbers of {} bytes", element));
    switch (cls) {
      case 0:  // fixed-point and bitfield: bit offset, precision
      case 4:
        need(4);
        within(read_le(t + 8, 2), read_le(t + 10, 2), "precision");
        break;
      case 1:  // floating point: bit offset, precision, exponent and mantissa (location, size), bias
        need(12);
        within(read_le(t + 8, 2), read_le(t + 10, 2), "precision");
        within(t[12], t[13], "exponent");
        within(t[14], t[15], "mantissa");
        break;
      case 2: need(2); break;   // time
      case 3: break;            // string
      case 5: need(static_cast<std::size_t>(bits & 0xFF)); break;  // opaque: its tag
      case 7: break;            // reference
      case 8: {                 // enum: base type, names, values
        const auto base = datatype_length(t + p, avail - p, depth + 1, what);
        p += base.first;
        const std::size_t members = static_cast<std::size_t>(bits & 0xFFFF);
        for (std::size_t i = 0; i < members; ++i) {
          const void* nul = std::memchr(t + p, 0, avail - p);
          if (nul == nullptr) bad("has an enum member name without its terminating NUL byte");
          const std::size_t length = static_cast<std::size_t>(static_cast<const unsigned char*>(nul) - (t + p));
          const std::size_t stored = version >= 3 ? length + 1 : (length + 8) / 8 * 8;  // padded before version 3
          if (stored > avail - p) bad("has an enum member name without its terminating NUL byte");
          p += stored;
        }
        if (members > (avail - p) / base.second) bad("has enum values longer than its message");
        need(members * static_cast<std::size_t>(base.second));
        if (element != base.second)
          bad(fmt::format("is an enum of {} bytes over a base type of {}", element, base.second));
        break;
      }
      case 9: {  // variable-length: its base type; a value on disk is a length and a heap ID
        p += datatype_length(t + p, avail - p, depth + 1, what).first;
        const std::uint64_t heap_id = 4 + sizeof_addr_ + 4;
        if (element != heap_id)
          bad(fmt::format("is a variable-length type of {} bytes (its values take {} in the file)", element, heap_id));
        break;
      }
      case 10: {  // array: rank, dimensions (and permutation before version 3), base
        need(1);
        const std::size_t rank = t[p - 1];
        if (rank == 0 || rank > 32) bad(fmt::format("is an array of rank {}", rank));
        const std::size_t dims = version >= 3 ? p : p + 3;
        need(version >= 3 ? rank * 4 : 3 + rank * 8);
        std::uint64_t count = 1;
        for (std::size_t d = 0; d < rank && count <= element; ++d) count *= read_le(t + dims + 4 * d, 4);
        const auto base = datatype_length(t + p, avail - p, depth + 1, what);
        p += base.first;
        if (count > element || count * base.second != element)
          bad(fmt::format("is an array of {} bytes that does not hold its elements", element));
        break;
      }
      case 6:
        bad("is a compound type, which results files never hold");
        break;
      default:
        bad(fmt::format("has datatype class {}", cls));
        break;
    }
    return {p, element};
  }

  // 0 for a type without variable-length data; the size of one element of the
  // sequence (1 for strings) for a variable-length string or sequence.
  std::size_t vlen_base_size(hid_t type, const std::string& what) const {
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING && H5Tis_variable_str(type) > 0) {
      // The characters' type is stored in the file too; HDF5 sizes its
      // buffers by it (a damaged one asked for 21 GB).
      const hid_t super = H5Tget_super(type);
      const std::size_t size = super >= 0 ? H5Tget_size(super) : 0;
      if (super >= 0) H5Tclose(super);
      if (size != 1) fail(fmt::format("{} is a string of {}-byte characters", what, size));
      return 1;
    }
    if (cls == H5T_VLEN) {
      const hid_t super = H5Tget_super(type);
      const bool nested = super < 0 || H5Tdetect_class(super, H5T_VLEN) != 0 ||
                          (H5Tget_class(super) == H5T_STRING && H5Tis_variable_str(super) != 0) ||
                          H5Tdetect_class(super, H5T_STRING) != 0;
      const std::size_t size = super >= 0 ? H5Tget_size(super) : 0;
      if (super >= 0) H5Tclose(super);
      if (nested || size == 0) fail(fmt::format("{} has a nested variable-length type", what));
      return size;
    }
    if (H5Tdetect_class(type, H5T_VLEN) > 0 ||
        ((cls == H5T_COMPOUND || cls == H5T_ARRAY) && H5Tdetect_class(type, H5T_STRING) > 0 && has_vlen_string(type)))
      fail(fmt::format("{} has variable-length data inside a compound or array type", what));
    return 0;
  }

  static bool has_vlen_string(hid_t type) {
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING) return H5Tis_variable_str(type) > 0;
    bool found = false;
    if (cls == H5T_ARRAY || cls == H5T_VLEN) {
      const hid_t super = H5Tget_super(type);
      if (super >= 0) {
        found = has_vlen_string(super);
        H5Tclose(super);
      }
    } else if (cls == H5T_COMPOUND) {
      const int members = H5Tget_nmembers(type);
      for (int m = 0; m < members && !found; ++m) {
        const hid_t t = H5Tget_member_type(type, static_cast<unsigned>(m));
        if (t >= 0) {
          found = has_vlen_string(t);
          H5Tclose(t);
        }
      }
    }
    return found;
  }

  // The objects (index -> size) of the global heap collection at `address`,
  // parsed and checked the first time it is named.
  const std::map<std::uint64_t, std::uint64_t>& collection(std::uint64_t address, const std::string& what) {
    const auto cached = collections_.find(address);
    if (cached != collections_.end()) return cached->second;
    const std::uint64_t header = 8 + sizeof_size_;
    const std::uint64_t object_header = 8 + sizeof_size_;
    const std::uint64_t at = base_ + address;
    if (at < address || at >= file_size_ || file_size_ - at < header)
      fail(fmt::format("{}: a heap ID points past the end of the file (address {})", what, address));
    std::vector<unsigned char> head(header);
    read_at(at, head);
    if (std::memcmp(head.data(), "GCOL", 4) != 0 || head[4] != 1)
      fail(fmt::format("{}: no global heap collection at address {}", what, address));
    const std::uint64_t size = read_le(head.data() + 8, sizeof_size_);
    if (size < header || size > kMaxCollectionBytes || size > file_size_ - at)
      fail(fmt::format("the global heap collection at {} declares {} bytes ({} remain in the file)", address, size,
                       file_size_ - at));
    std::vector<unsigned char> bytes(size);
    read_at(at, bytes);
    std::map<std::uint64_t, std::uint64_t> objects;
    std::uint64_t p = header;
    while (p < size) {
      if (size - p < object_header) break;  // a tail too small for an object: free space
      const std::uint64_t index = read_le(bytes.data() + p, 2);
      const std::uint64_t length = read_le(bytes.data() + p + 8, sizeof_size_);
      const std::uint64_t remaining = size - p;
      if (index == 0) {  // the free space: its length covers its own header
        if (length != remaining)
          fail(fmt::format("the global heap collection at {}: free space of {} bytes where {} remain", address,
                           length, remaining));
        break;
      }
      const std::uint64_t aligned = length > remaining ? remaining + 1 : (length + 7) / 8 * 8;
      if (aligned > remaining - object_header)
        fail(fmt::format("the global heap collection at {}: object {} of {} bytes overruns the collection",
                         address, index, length));
      if (!objects.emplace(index, length).second)
        fail(fmt::format("the global heap collection at {}: object {} appears twice", address, index));
      p += object_header + aligned;
    }
    return collections_.emplace(address, std::move(objects)).first->second;
  }

  void read_at(std::uint64_t offset, std::vector<unsigned char>& out) {
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size()));
    if (static_cast<std::size_t>(in_.gcount()) != out.size())
      fail(fmt::format("cannot read {} bytes at offset {}", out.size(), offset));
  }

  std::string path_;
  std::size_t sizeof_addr_ = 8, sizeof_size_ = 8;
  std::uint64_t base_ = 0, file_size_ = 0;
  std::ifstream in_;
  hid_t raw_ = -1;
  std::map<std::uint64_t, std::map<std::uint64_t, std::uint64_t>> collections_;
  std::set<std::uint64_t> checked_headers_;
};

// HDF5's iteration callbacks are C: an exception must not unwind through
// them. A callback keeps the first failure and stops the iteration (-1); the
// walk throws it once HDF5 has returned.
struct Walk {
  Guard* guard;
  std::string object;
  std::optional<std::string> failure;
  // Object headers that a link has reached: a second link to one is refused.
  // libhdf5 1.10.8's H5Lvisit remembers only objects whose reference count
  // is above 1, so a damaged file with a group linking to itself and a
  // count of 1 made it walk "a/a/a/..." until memory ran out.
  std::set<std::uint64_t> linked;

  template <typename F>
  herr_t run(F&& f) {
    try {
      f();
      return 0;
    } catch (const std::exception& e) {
      failure = e.what();
      return -1;
    }
  }
  void rethrow() const {
    if (failure) throw Error(*failure);
  }
};

herr_t visit_attribute(hid_t loc, const char* name, const H5A_info_t*, void* data) {
  auto* walk = static_cast<Walk*>(data);
  const hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return 0;
  const herr_t r = walk->run([&] { walk->guard->check(a, true, fmt::format("attribute '{}' of '{}'", name, walk->object)); });
  H5Aclose(a);
  return r;
}

// Checks the attributes of `obj` and, for a dataset, its values.
void visit_object(Guard& guard, hid_t obj, const std::string& name) {
  // HDF5 1.10.8 builds a table of an object's attributes to iterate or open
  // them by index, and crashes freeing it when an attribute message cannot
  // be decoded. Looking up a name that no attribute has decodes every message
  // and fails cleanly instead.
  if (H5Aexists(obj, "\x01imbench: no attribute has this name") < 0)
    throw Error(fmt::format("{}: damaged HDF5 file: the attributes of '{}' cannot be decoded; not read",
                            guard.path(), name));
  Walk walk{&guard, name, std::nullopt, {}};
  hsize_t idx = 0;
  H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, visit_attribute, &walk);
  walk.rethrow();
  if (H5Iget_type(obj) == H5I_DATASET) {
    guard.check(obj, false, fmt::format("dataset '{}'", name));
    guard.check_compact_storage(obj, fmt::format("dataset '{}'", name));
  }
}

herr_t visit_link(hid_t group, const char* name, const H5L_info_t* info, void* data) {
  auto* walk = static_cast<Walk*>(data);
  if (info->type != H5L_TYPE_HARD) return 0;  // soft and external links: never followed
  // Its object header is checked before HDF5 opens it (and decodes its datatype).
  const std::optional<std::uint64_t> address = Guard::link_address(group, info);
  if (address && !walk->linked.insert(*address).second) {
    walk->failure = fmt::format(
        "{}: '/{}' links to an object that another link already reaches; imbench reads only HDF5 files that link "
        "each object once (libhdf5 can walk such a cycle forever); not read",
        walk->guard->path(), name);
    return -1;
  }
  if (address) {
    const herr_t r = walk->run([&] { walk->guard->check_object_header(*address, std::string("'/") + name + "'"); });
    if (r < 0) return r;
  }
  const hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
  if (obj < 0) return 0;
  const herr_t r = walk->run([&] { visit_object(*walk->guard, obj, std::string("/") + name); });
  H5Oclose(obj);
  return r;
}

// Why HDF5 stopped walking the groups, in one line.
std::string walk_failure() {
  std::string why = h5_innermost_error();
  std::replace(why.begin(), why.end(), '\n', ' ');
  return why.empty() ? "HDF5 error" : why;
}

// What the superblock says: sizes, the base address (where the signature
// is), the root group's object header and a superblock extension's.
struct Superblock {
  std::size_t sizeof_addr = 0, sizeof_size = 0;
  std::uint64_t base = 0;
  std::optional<std::uint64_t> root, extension;
};

// Nothing when the file has no HDF5 signature or a superblock version this
// does not know (HDF5 then refuses to open it too).
std::optional<Superblock> read_superblock(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(0, std::ios::end);
  const std::uint64_t size = static_cast<std::uint64_t>(std::max<std::streamoff>(0, in.tellg()));
  const auto read = [&](std::uint64_t at, std::size_t n) {
    std::vector<unsigned char> bytes(static_cast<std::size_t>(std::min<std::uint64_t>(n, size > at ? size - at : 0)));
    in.clear();
    in.seekg(static_cast<std::streamoff>(at));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    bytes.resize(static_cast<std::size_t>(std::max<std::streamsize>(0, in.gcount())));
    return bytes;
  };
  // The signature is at 0 or at 512 x a power of two (after a user block).
  static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  Superblock out;
  for (;; out.base = out.base == 0 ? 512 : out.base * 2) {
    if (out.base > size || size - out.base < 8) return std::nullopt;
    const auto head = read(out.base, 8);
    if (head.size() == 8 && std::memcmp(head.data(), signature, 8) == 0) break;
  }
  const auto sb = read(out.base, 128);
  if (sb.size() < 16) return std::nullopt;
  const unsigned version = sb[8];
  std::size_t root_at = 0, extension_at = 0;
  if (version <= 1) {  // versions and sizes, K values, flags, [K values], 4 addresses, the root's entry
    out.sizeof_addr = sb[13];
    out.sizeof_size = sb[14];
    root_at = (version == 0 ? 24 : 28) + 5 * out.sizeof_addr;  // the root entry's object header address
  } else if (version <= 3) {  // sizes, flags, base, extension, end of file, root header, checksum
    out.sizeof_addr = sb[9];
    out.sizeof_size = sb[10];
    extension_at = 12 + out.sizeof_addr;
    root_at = 12 + 3 * out.sizeof_addr;
  } else {
    return std::nullopt;
  }
  if (out.sizeof_addr < 2 || out.sizeof_addr > 8 || root_at + out.sizeof_addr > sb.size())
    return out;  // the Guard refuses the sizes; HDF5 reports a truncated superblock
  const std::uint64_t undefined =
      out.sizeof_addr == 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * out.sizeof_addr)) - 1;
  const auto address = [&](std::size_t offset) -> std::optional<std::uint64_t> {
    const std::uint64_t a = read_le(sb.data() + offset, out.sizeof_addr);
    return a == undefined ? std::nullopt : std::optional<std::uint64_t>(a);
  };
  out.root = address(root_at);
  if (extension_at != 0) out.extension = address(extension_at);
  return out;
}

}  // namespace

void check_file(const std::string& path) {
  register_raw_conversion();
  H5::Exception::dontPrint();
  const std::optional<Superblock> sb = read_superblock(path);
  if (!sb) return;  // no HDF5 file: the reader reports why
  Guard guard(path, sb->sizeof_addr, sb->sizeof_size, sb->base);
  // H5Fopen loads the root group's object header (and a superblock
  // extension's), allocating the size its prefix declares before any
  // checksum is verified (a damaged one asked for 8 GB): they are checked
  // before HDF5 sees the file.
  if (sb->root) guard.check_object_header(*sb->root, "'/'");
  if (sb->extension) guard.check_object_header(*sb->extension, "the superblock extension");
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return;  // the reader reports why
  const hid_t root = H5Gopen2(file, "/", H5P_DEFAULT);
  const auto close = [&] {
    if (root >= 0) H5Gclose(root);
    H5Fclose(file);
  };
  try {
    if (root >= 0) {
      const auto root_address = Guard::object_address(root);
      if (root_address) guard.check_object_header(*root_address, "'/'");
      visit_object(guard, root, "/");
      Walk walk{&guard, "/", std::nullopt, {}};
      if (root_address) walk.linked.insert(*root_address);
      const herr_t visited = H5Lvisit(root, H5_INDEX_NAME, H5_ITER_NATIVE, visit_link, &walk);
      walk.rethrow();
      // The reader must not open objects the guard has not checked: a
      // group whose links HDF5 cannot list (a damaged symbol table, say)
      // ends the read here.
      if (visited < 0)
        throw Error(fmt::format(
            "{}: cannot read the HDF5 file (truncated or damaged?): its groups cannot be walked: {}", path,
            walk_failure()));
    }
  } catch (...) {
    close();
    throw;
  }
  close();
}

}  // namespace imbench::h5guard
