#pragma once
/// HDF5 helpers shared by the files of reports/ that read or write HDF5
/// (internal to reports/; includes H5Cpp.h, so keep it out of public headers).
#include <H5Cpp.h>
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/errors.h"

namespace imbench::reports::h5 {

/// A dataset of the given shape; deflate-compressed chunks unless empty.
template <typename T>
void write_dataset(H5::Group& g, const std::string& name, const std::vector<T>& v, const H5::PredType& type,
                   std::vector<hsize_t> dims) {
  hsize_t count = 1;
  for (auto d : dims) count *= d;
  if (count != v.size())
    throw Error(fmt::format("HDF5 dataset {}: {} values for a shape of {} elements", name, v.size(), count));
  H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
  H5::DSetCreatPropList props;
  if (count > 0) {
    props.setChunk(static_cast<int>(dims.size()), dims.data());
    props.setDeflate(4);
  }
  H5::DataSet ds = g.createDataSet(name, type, space, props);
  if (count > 0) ds.write(v.data(), type);
}

/// One line for an HDF5 failure: the C++ API's message and the innermost
/// message of HDF5's error stack (e.g. "truncated file: eof = ..."), which
/// says more than "H5Fopen failed".
inline std::string error_detail(const H5::Exception& e) {
  std::string innermost;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* err, void* data) -> herr_t {
        if (n == 0 && err->desc) *static_cast<std::string*>(data) = err->desc;
        return 0;
      },
      &innermost);
  std::string s = e.getDetailMsg();
  if (!innermost.empty()) s += ": " + innermost;
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

}  // namespace imbench::reports::h5
