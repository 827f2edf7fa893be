#pragma once
/// Datasets as tensors, the dataset registry, and where data lives on disk.
///
/// Images are float32 in [0, 1] with their natural shape ([N, 1, 28, 28]
/// for MNIST, [N, 3, 32, 32] for CIFAR-10); labels are int64 [N]. Tensors
/// are loaded on the CPU; callers move batches to their device.
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace imbench::data {

enum class Split { kTrain, kTest };
std::string to_string(Split split);
/// "train" or "test"; anything else is a UsageError.
Split parse_split(const std::string& name);

struct Dataset {
  std::string name;        ///< registry name, e.g. "mnist", or a file spec ("my.npz", data/user_data.h)
  std::string split;       ///< "train", "test", "validation", or a subset description
  torch::Tensor images;    ///< float32 [N, ...] in [0, 1], CPU
  torch::Tensor labels;    ///< int64 [N], CPU
  int64_t num_classes = 0;
  /// A file without a num_classes attribute: num_classes is the largest
  /// label + 1, a lower bound (a model with more outputs fits too).
  bool num_classes_from_labels = false;
  std::vector<std::string> class_names;
  /// Files of your own: what was read, e.g. "my.npz: images uint8 [100, 28, 28]
  /// scaled by 1/255 as one channel, labels int64 [100]; 10 classes (largest label + 1)".
  std::string source;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  /// Whether a model with `classes` outputs covers the labels: equal to
  /// num_classes, or at least it when num_classes_from_labels.
  bool classes_fit(int64_t classes) const {
    return classes == num_classes || (num_classes_from_labels && classes >= num_classes);
  }
  /// Shape of one example, e.g. {1, 28, 28}.
  std::vector<int64_t> example_shape() const;
  /// Examples [begin, end) as a view (no copy). Throws UsageError if out of range.
  Dataset slice(int64_t begin, int64_t end, const std::string& split_name) const;
  /// The first n examples ("the first N test images"); n <= 0 or n >= size() keeps all.
  Dataset first(int64_t n) const;
};

/// Training examples minus the last `validation_size`, and those last examples.
struct TrainValidation {
  Dataset train;
  Dataset validation;
};
/// Splits off the last `validation_size` training images (0 gives an empty
/// validation set). Throws UsageError if validation_size >= size().
TrainValidation split_validation(const Dataset& train, int64_t validation_size);

/// Where datasets are found. Empty fields fall back to the defaults below.
struct DataPaths {
  std::string data_dir;     ///< root with mnist/, fashion-mnist/, cifar-10-batches-bin/
  std::string cifar10_dir;  ///< a cifar-10-batches-bin folder, overrides data_dir
};

/// --data-dir, else $IMBENCH_DATA_DIR, else $XDG_CACHE_HOME/imbench, else
/// ~/.cache/imbench, else (no HOME) ./.imbench-data.
std::string resolve_data_dir(const std::string& data_dir_option);
/// --cifar10-dir, else $IMBENCH_CIFAR10_DIR, else <data dir>/cifar-10-batches-bin.
std::string resolve_cifar10_dir(const DataPaths& paths);

/// One registry entry: name -> description, shape, loader.
struct DatasetInfo {
  std::string name;
  std::string description;
  int64_t num_classes;
  std::vector<int64_t> example_shape;
  std::function<Dataset(Split, const DataPaths&)> load;
};

/// All registered datasets (mnist, fashion-mnist, cifar10, synthetic).
const std::vector<DatasetInfo>& dataset_registry();
std::vector<std::string> dataset_names();
/// Looks a dataset up by name; unknown names get a "did you mean" UsageError.
const DatasetInfo& find_dataset(const std::string& name);
/// Loads a split of a registered dataset, or a test set of your own when
/// `name` is a file spec (data/user_data.h: "my.h5", "my.npz:x,y",
/// "x.npy,y.npy"; Split::kTrain of a file is a UsageError). Missing data is
/// an imbench::Error that says how to fetch it.
Dataset load_dataset(const std::string& name, Split split, const DataPaths& paths = {});

/// Builds a dataset from raw bytes ([N, ...] uint8 images, N labels).
Dataset dataset_from_bytes(const std::string& name, const std::string& split, std::vector<int64_t> shape,
                           const std::vector<std::uint8_t>& images, const std::vector<std::uint8_t>& labels,
                           int64_t num_classes, std::vector<std::string> class_names);

/// Loads an MNIST-style pair of IDX files (images [N, H, W], labels [N]) and
/// checks that counts agree and labels are below num_classes.
Dataset load_idx_pair(const std::string& name, const std::string& split, const std::string& images_path,
                      const std::string& labels_path, int64_t num_classes, std::vector<std::string> class_names);

}  // namespace imbench::data
