#pragma once
/// HDF5 helpers shared by the files of reports/ that read or write HDF5
/// (internal to reports/; includes H5Cpp.h, so keep it out of public headers).
#include <H5Cpp.h>
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/h5_error.h"

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


}  // namespace imbench::reports::h5
