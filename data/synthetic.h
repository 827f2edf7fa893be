#pragma once
/// Synthetic classification data for tests and smoke runs: one Gaussian
/// cluster per class around a random centre, clipped to [0, 1]. With the
/// default spread the classes are (almost surely) linearly separable.
#include "data/dataset.h"

namespace imbench::data {

struct SyntheticOptions {
  int64_t size = 1000;                          ///< number of examples
  int64_t num_classes = 10;
  std::vector<int64_t> example_shape{1, 28, 28};
  double noise = 0.1;                           ///< per-pixel std of each cluster
  uint64_t seed = 0;                            ///< same seed, same data (class centres depend on the seed only)
};

/// Deterministic for a given options value; labels cycle 0..C-1.
Dataset make_synthetic(const SyntheticOptions& options, const std::string& split = "train");

}  // namespace imbench::data
