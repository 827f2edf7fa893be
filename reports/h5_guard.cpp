#include "reports/h5_guard.h"

#include <H5Cpp.h>
#include <fmt/format.h>

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "core/errors.h"

namespace imbench::reports {
namespace {

// A variable-length attribute or dataset with more elements than this is not
// read by the guard (the file is refused): results files hold a few short
// strings per object.
constexpr hssize_t kMaxElements = hssize_t{1} << 20;
// A global heap collection is at least 4096 bytes; more than this is refused.
constexpr std::uint64_t kMaxCollectionBytes = std::uint64_t{1} << 30;

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
  Guard(std::string path, hid_t file) : path_(std::move(path)) {
    const hid_t fcpl = H5Fget_create_plist(file);
    hsize_t userblock = 0;
    if (fcpl < 0 || H5Pget_sizes(fcpl, &sizeof_addr_, &sizeof_size_) < 0 || H5Pget_userblock(fcpl, &userblock) < 0)
      ok_ = false;
    if (fcpl >= 0) H5Pclose(fcpl);
    base_ = userblock;
    if (ok_ && (sizeof_addr_ < 2 || sizeof_addr_ > 8 || sizeof_size_ < 2 || sizeof_size_ > 8))
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

  bool ok() const { return ok_; }
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
      if (address == 0) continue;  // a null value: HDF5 reads nothing
      const auto& objects = collection(address, what);
      const auto it = objects.find(index);
      if (index == 0 || it == objects.end())
        fail(fmt::format("{}: heap object {} does not exist in the global heap at {}", what, index, address));
      if (it->second != length * base_size)
        fail(fmt::format("{}: heap object {} holds {} bytes, the value says {}", what, index, it->second,
                         length * base_size));
    }
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(fmt::format("{}: damaged HDF5 file: {}; not read", path_, why));
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
  bool ok_ = true;
  std::ifstream in_;
  hid_t raw_ = -1;
  std::map<std::uint64_t, std::map<std::uint64_t, std::uint64_t>> collections_;
};

// HDF5's iteration callbacks are C: an exception must not unwind through
// them. A callback keeps the first failure and stops the iteration (-1); the
// walk throws it once HDF5 has returned.
struct Walk {
  Guard* guard;
  std::string object;
  std::optional<std::string> failure;

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
  Walk walk{&guard, name, std::nullopt};
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
  const hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
  if (obj < 0) return 0;
  const herr_t r = walk->run([&] { visit_object(*walk->guard, obj, std::string("/") + name); });
  H5Oclose(obj);
  return r;
}

}  // namespace

void check_hdf5_global_heap(const std::string& path) {
  register_raw_conversion();
  H5::Exception::dontPrint();
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return;  // the reader reports why
  const auto close_file = [&] { H5Fclose(file); };
  try {
    Guard guard(path, file);
    if (guard.ok()) {
      const hid_t root = H5Gopen2(file, "/", H5P_DEFAULT);
      if (root >= 0) {
        try {
          visit_object(guard, root, "/");
          Walk walk{&guard, "/", std::nullopt};
          H5Lvisit(root, H5_INDEX_NAME, H5_ITER_NATIVE, visit_link, &walk);
          walk.rethrow();
        } catch (...) {
          H5Gclose(root);
          throw;
        }
        H5Gclose(root);
      }
    }
  } catch (...) {
    close_file();
    throw;
  }
  close_file();
}

}  // namespace imbench::reports
