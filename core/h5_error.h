#pragma once
/// One line for an HDF5 failure, shared by the HDF5 readers and writers of
/// data/ (your own test sets) and reports/ (results files). Header-only: core
/// itself does not link HDF5; include it only where H5Cpp.h is available (it
/// includes H5Cpp.h, so keep it out of public headers).
#include <H5Cpp.h>

#include <algorithm>
#include <string>

namespace imbench {

/// The innermost message of HDF5's error stack (e.g. "truncated file: eof =
/// ...", "bad heap free list"), or "" when the stack is empty.
inline std::string h5_innermost_error() {
  std::string innermost;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* err, void* data) -> herr_t {
        if (n == 0 && err->desc) *static_cast<std::string*>(data) = err->desc;
        return 0;
      },
      &innermost);
  return innermost;
}

/// The C++ API's message and the innermost message of HDF5's error stack,
/// which says more than "H5Fopen failed"; never the whole stack, never a line
/// break.
inline std::string h5_error_detail(const H5::Exception& e) {
  const std::string innermost = h5_innermost_error();
  std::string s = e.getDetailMsg();
  if (!innermost.empty()) s += ": " + innermost;
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

}  // namespace imbench
