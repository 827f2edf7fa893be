#pragma once
/// Test sets of your own: an HDF5 file, a NumPy .npz archive or a pair of
/// .npy files, read into a Dataset and validated like the built-in readers.
///
/// One spelling, the same for `--dataset` and a matrix's `dataset = "..."`:
///
///     my.h5, my.hdf5            HDF5 datasets x [N, ...] and y [N]
///     my.h5:images,labels       other dataset names (HDF5 paths such as grp/x allowed)
///     my.npz                    arrays x and y (numpy.savez or numpy.savez_compressed)
///     my.npz:images,labels      other array names
///     images.npy,labels.npy     images and labels in two .npy files
///
/// A spec is a file when it ends in .h5, .hdf5, .npz or .npy (before an
/// optional ":X,Y") or contains '/'; anything else is a registry name.
///
/// Images: float32 or float64 (in the model's input box, [0, 1] for imbench
/// checkpoints), or uint8 (scaled by 1/255); shape [N, C, H, W] or [N, H, W]
/// (one channel). Labels: any integer type, shape [N], >= 0. NumPy arrays
/// must be little-endian and C-ordered; zip64 archives are refused. The
/// number of classes is the integer attribute `num_classes` (HDF5: of the
/// labels dataset or the file), else the largest label + 1, a lower bound
/// that a model with more outputs also fits (Dataset::classes_fit).
///
/// Every header is checked before any data is allocated: bounded header
/// sizes, the data length against the declared shape (a truncated file is
/// an Error naming it), equal N, N > 0, finite images, labels in range.
/// The Dataset is named by the spec as written; its split is "test".
#include <string>

#include "data/dataset.h"

namespace imbench::data {

enum class FileFormat { kHdf5, kNpz, kNpyPair };

/// A parsed file spec.
struct FileDatasetSpec {
  std::string spec;  ///< as written
  FileFormat format = FileFormat::kHdf5;
  std::string path;          ///< the file; for a .npy pair the images file
  std::string labels_path;   ///< .npy pair: the labels file
  std::string x_name = "x";  ///< HDF5 dataset / .npz array of the images
  std::string y_name = "y";  ///< ... and of the labels
};

/// Whether `spec` names a file rather than a registered dataset.
bool is_file_dataset(const std::string& spec);
/// Parses a file spec; a malformed one (unknown extension, one .npy file,
/// names not "X,Y") is a UsageError naming the spec.
FileDatasetSpec parse_file_dataset(const std::string& spec);
/// Reads and validates a file spec (errors: imbench::Error naming the file).
Dataset load_file_dataset(const std::string& spec);

}  // namespace imbench::data
