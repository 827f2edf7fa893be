#include "models/evaluate.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "core/errors.h"
#include "core/interrupt.h"

namespace imbench::models {

nlohmann::json EvalResult::to_json() const {
  return {{"examples", examples},           {"accuracy_per_repeat", accuracy_per_repeat},
          {"mean_accuracy", mean_accuracy}, {"std_accuracy", std_accuracy},
          {"worst_accuracy", worst_accuracy}, {"seconds", seconds},
          {"images_per_second", images_per_second}};
}

EvalResult evaluate(Model& model, const data::Dataset& dataset, const EvalOptions& options) {
  if (options.batch_size < 1) throw UsageError("evaluation batch size must be >= 1");
  if (options.repeats < 1) throw UsageError("--repeats must be >= 1");
  if (dataset.size() == 0) throw UsageError(fmt::format("{} {}: no examples to evaluate", dataset.name, dataset.split));
  model.check_input(dataset.images.slice(0, 0, 1));
  if (!dataset.classes_fit(model.num_classes()))
    throw UsageError(fmt::format("{} has {} classes but {} outputs {}", dataset.name, dataset.num_classes,
                                 model.description(), model.num_classes()));
  model.set_training(false);
  const auto start = std::chrono::steady_clock::now();
  const int64_t repeats = model.is_stochastic() ? options.repeats : 1;
  const int64_t n = dataset.size();
  EvalResult r;
  r.examples = n;
  for (int64_t rep = 0; rep < repeats; ++rep) {
    auto correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(model.device()));
    for (int64_t b = 0; b < n; b += options.batch_size) {
      stop_point();
      const int64_t e = std::min(n, b + options.batch_size);
      auto x = dataset.images.slice(0, b, e).to(model.device());
      auto y = dataset.labels.slice(0, b, e).to(model.device());
      correct += model.predict(x).eq(y).sum();
      if (options.progress) options.progress(rep * n + e, repeats * n);
    }
    r.accuracy_per_repeat.push_back(static_cast<double>(correct.item<int64_t>()) / static_cast<double>(n));
  }
  double sum = 0, worst = 1;
  for (double a : r.accuracy_per_repeat) sum += a, worst = std::min(worst, a);
  r.mean_accuracy = sum / static_cast<double>(repeats);
  double var = 0;
  for (double a : r.accuracy_per_repeat) var += (a - r.mean_accuracy) * (a - r.mean_accuracy);
  r.std_accuracy = repeats > 1 ? std::sqrt(var / static_cast<double>(repeats - 1)) : 0.0;
  r.worst_accuracy = worst;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.images_per_second = static_cast<double>(n * repeats) / std::max(r.seconds, 1e-9);
  return r;
}

}  // namespace imbench::models
