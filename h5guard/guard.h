#pragma once
/// The HDF5 guard: libhdf5 1.10.8 (Debian bookworm) trusts much of what it
/// decodes from a file, so a damaged or crafted HDF5 file read out of bounds
/// and crashed imbench (found by fuzz_results, fuzz/regressions/). imbench
/// checks those structures itself, from the file's bytes, before HDF5 uses
/// them; a damaged file gives one line, never a segmentation fault. Results
/// files (reports/) and test sets of your own in HDF5 (data/) both pass here
/// before they are read.
///
/// - Object headers (version 1, which nothing checksums, and 2): before HDF5
///   opens an object, every chunk and continuation lies within the file and
///   every message within its chunk; attribute names end with their NUL byte
///   inside the message and their datatype, dataspace and values fit;
///   datatypes are sized as HDF5 will copy them (variable-length values 4 +
///   address + 4 bytes, enums as their base, arrays as base x dims, bit
///   fields within the value; enum member names end inside the type;
///   compound types are refused); dataspaces hold their extents; a compact
///   layout's data fits its message; an old-format group's symbol table
///   (B-tree and symbol table nodes) names links by local-heap offsets that
///   end with a NUL inside the heap.
/// - Variable-length values: each is read in its raw on-disk form (length,
///   heap address, object index: a conversion registered with H5Tregister
///   copies those bytes instead of following them) and checked against the
///   global heap collection it names, parsed by imbench (signature, version,
///   size, every object, an object of exactly the recorded length at the
///   recorded index); strings are never null and have 1-byte characters.
/// - Attribute messages are all decoded before HDF5 builds the table it
///   crashed on; chunks stored without a filter hold a whole chunk; a compact
///   dataset stores what its shape needs.
/// - A file whose groups HDF5 cannot walk to the end is refused: the reader
///   must not open what the guard has not checked.
#include <string>

namespace imbench::h5guard {

/// Throws imbench::Error ("PATH: damaged HDF5 file: ...; not read") when a
/// structure above is inconsistent or the file holds a type the guard cannot
/// check (compound, nested variable-length: results files and test sets never
/// have one), and ("PATH: cannot read the HDF5 file (truncated or
/// damaged?): its groups cannot be walked: ...") when HDF5 stops walking its
/// groups. A file HDF5 cannot open at all is left to the reader that
/// follows, which reports why as usual.
void check_file(const std::string& path);

}  // namespace imbench::h5guard
