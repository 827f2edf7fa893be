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
///
/// Before HDF5 opens an object, the guard also parses its object header
/// (version 1 or 2) from the file's bytes: every chunk and continuation
/// within the file, every message within its chunk, every attribute message's
/// name ending with its NUL byte inside the message and its datatype,
/// dataspace and values fitting, every datatype's enum member names ending
/// inside it (libhdf5 1.10.8 copies these names with strdup and the values
/// without bounds; the oldest format has no checksums to stop a damaged
/// header). A file whose groups HDF5 cannot walk to the end is refused: the
/// reader must not open what the guard has not checked.
#include <string>

namespace imbench::reports {

/// Throws imbench::Error ("PATH: damaged HDF5 file: ...") when a heap ID, a
/// global heap collection or an object header of PATH is inconsistent, or
/// the file holds a type the guard cannot check (a compound type, or a
/// nested variable-length one: results files never have one); and ("PATH:
/// cannot read the HDF5 file (truncated or damaged?): ...") when its groups
/// cannot be walked. A file HDF5 cannot open is left to the reader that
/// follows, which reports why as usual.
void check_hdf5_global_heap(const std::string& path);

}  // namespace imbench::reports
