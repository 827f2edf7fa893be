#include "data/synthetic.h"

#include <ATen/CPUGeneratorImpl.h>

#include "core/errors.h"

namespace imbench::data {

Dataset make_synthetic(const SyntheticOptions& o, const std::string& split) {
  if (o.size <= 0 || o.num_classes < 2 || o.example_shape.empty() || o.noise < 0)
    throw UsageError("synthetic data: size must be > 0, classes >= 2, a non-empty shape and noise >= 0");
  int64_t dim = 1;
  for (auto d : o.example_shape) dim *= d;
  // Centres from the seed alone, so train and test sets with different
  // sample seeds share them.
  auto centre_gen = at::detail::createCPUGenerator(o.seed);
  auto centres = torch::rand({o.num_classes, dim}, centre_gen) * 0.6 + 0.2;
  auto sample_gen = at::detail::createCPUGenerator(o.seed * 7919 + static_cast<uint64_t>(o.size) +
                                                   (split == "train" ? 0 : 1000003));
  auto labels = torch::arange(o.size, torch::kLong).remainder(o.num_classes);
  auto noise = torch::randn({o.size, dim}, sample_gen) * o.noise;
  auto images = (centres.index_select(0, labels) + noise).clamp(0.0, 1.0);
  std::vector<int64_t> shape{o.size};
  shape.insert(shape.end(), o.example_shape.begin(), o.example_shape.end());
  Dataset ds;
  ds.name = "synthetic";
  ds.split = split;
  ds.images = images.reshape(shape).contiguous();
  ds.labels = labels;
  ds.num_classes = o.num_classes;
  for (int64_t c = 0; c < o.num_classes; ++c) ds.class_names.push_back("class" + std::to_string(c));
  return ds;
}

}  // namespace imbench::data
