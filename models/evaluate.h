#pragma once
/// Clean accuracy under a model's prediction rule.
#include <nlohmann/json.hpp>

#include <functional>

#include "data/dataset.h"
#include "models/model.h"

namespace imbench::models {

struct EvalOptions {
  int64_t batch_size = 1000;
  int64_t repeats = 1;     ///< passes with fresh samples (stochastic models; deterministic use 1)
  /// Called after every batch with the images evaluated so far and in all
  /// (examples x repeats); empty = silent.
  std::function<void(int64_t done, int64_t total)> progress;
};

struct EvalResult {
  int64_t examples = 0;
  std::vector<double> accuracy_per_repeat;
  double mean_accuracy = 0;
  double std_accuracy = 0;       ///< sample std over repeats (0 for one repeat)
  double worst_accuracy = 0;
  double seconds = 0;
  double images_per_second = 0;  ///< examples x repeats / seconds
  nlohmann::json to_json() const;
};

/// Accuracy of `model` on `dataset` in eval mode, batched, on the model's device.
EvalResult evaluate(Model& model, const data::Dataset& dataset, const EvalOptions& options = {});

}  // namespace imbench::models
