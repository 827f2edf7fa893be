#pragma once
// Helpers shared by the test binaries: those of tests/test_basics.h
// (a temporary folder, exception messages) and a small synthetic data set.
#include <string>

#include "data/synthetic.h"
#include "tests/test_basics.h"

namespace imbench::testing_support {

/// Separable MNIST-shaped clusters (noise 0.2, seed 3).
inline data::Dataset toy(int64_t n, const std::string& split) {
  data::SyntheticOptions o;
  o.size = n;
  o.noise = 0.2;
  o.seed = 3;
  return data::make_synthetic(o, split);
}

}  // namespace imbench::testing_support
