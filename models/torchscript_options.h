#pragma once
/// How a TorchScript model is described (models/torchscript.h): one option
/// table from which the flags of `imbench eval` and `imbench attack` and the
/// keys of a matrix's [[models]] entry derive. Torch-free, so that the CLI's
/// option parser and the matrix reader can use it.
#include <cstdint>
#include <optional>
#include <vector>

#include "core/options.h"

namespace imbench::models {

/// Unset options come from the module's imbench_* attributes (input bounds
/// only come from there: imbench_bounds).
struct TorchScriptOptions {
  std::optional<std::vector<int64_t>> input_shape;  ///< one example, e.g. {1, 28, 28}
  std::optional<int64_t> num_classes;               ///< else imbench_num_classes, else one forward pass
  std::optional<bool> stochastic;                   ///< the module samples noise on every call
  std::optional<int64_t> samples;                   ///< draws averaged by the prediction rule
  /// Noise draws the module averages inside one call (a cost hint for EOT
  /// chunking; else imbench_internal_samples, else 1). Set in code or by the
  /// module attribute only: no flag or matrix key.
  std::optional<int64_t> internal_samples;

  static const OptionTable<TorchScriptOptions>& table();
  /// Whether any option is set.
  bool any() const { return input_shape || num_classes || stochastic || samples; }
};

}  // namespace imbench::models
