#pragma once
/// A guard against a libhdf5 bug: HDF5 1.10.8 (Debian bookworm) trusts the
/// heap IDs of variable-length data and the object sizes of a global heap
/// collection (H5HG_read, H5HG__cache_heap_deserialize check them only with
/// assertions), so a results file with a damaged heap ID or global heap reads
/// out of bounds and usually crashes. A damaged file must give one line, not
/// a segmentation fault.
///
/// The guard walks every attribute and dataset of the file and reads each
/// variable-length value in its raw on-disk form (length, heap address,
/// object index: a conversion function registered with H5Tregister copies
/// those bytes instead of following them), then checks each heap ID against
/// the global heap collection it names, parsed by imbench from the file's
/// bytes: the collection's signature, version and size, every object inside
/// it, and an object of exactly the recorded length at the recorded index.
/// Only then may libhdf5 follow the IDs.
#include <string>

namespace imbench::reports {

/// Throws imbench::Error ("PATH: damaged HDF5 file: ...") when a heap ID or
/// a global heap collection of PATH is inconsistent, or the file holds a
/// variable-length type the guard cannot check (nested, or inside a compound
/// or array: results files never have one). HDF5 errors while walking (a
/// truncated file, say) are left to the reader that follows, which reports
/// them as usual.
void check_hdf5_global_heap(const std::string& path);

}  // namespace imbench::reports
