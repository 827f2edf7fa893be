#include "models/load.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/errors.h"
#include "core/input_file.h"
#include "models/checkpoint.h"

namespace imbench::models {

LoadedModel load_model_file(const std::string& path, const TorchScriptOptions& ts, torch::Device device) {
  // Bounded before any reader sees it: a directory, a device or an empty file
  // is named as such, not as a TorchScript file that failed to load.
  const auto size = check_input_file(path, "model file (imbench checkpoint or TorchScript)", kMaxCheckpointBytes);
  if (size == 0) throw Error(fmt::format("{}: the file is empty, not an imbench checkpoint or TorchScript file", path));
  // The smallest zip archive (TorchScript's container) is its 22-byte end record.
  if (size < 22 && !is_checkpoint_file(path))
    throw Error(fmt::format("{}: {} bytes, too short to be an imbench checkpoint or TorchScript file", path, size));
  if (is_checkpoint_file(path)) {
    if (ts.any()) {
      std::vector<std::string> flags;
      for (const auto& o : TorchScriptOptions::table().describe()) flags.push_back(o.flag());
      throw UsageError(fmt::format("{} apply to TorchScript models only; an imbench checkpoint records them",
                                   fmt::join(flags, "/")));
    }
    auto loaded = load_checkpoint(path, device);
    const auto& t = loaded.meta.training;
    LoadedModel m;
    m.provenance = fmt::format("{}: trained on {} with preset {} (seed {}), imbench {} ({})", path, t.value("dataset", "?"),
                               t.value("preset", "?"),
                               t.contains("options") ? t["options"].value("seed", uint64_t{0}) : 0,
                               loaded.meta.imbench_version, loaded.meta.git_revision);
    auto record = t;
    record.erase("result");  // the epoch history is in the checkpoint; keep result files small
    record["test_accuracy"] = loaded.meta.metrics.value("test_accuracy", -1.0);
    m.training_json = record.dump();
    m.model = std::move(loaded.model);
    return m;
  }
  LoadedModel m;
  auto model = TorchScriptModel::load(path, ts, device);
  m.provenance = path + ": TorchScript module";
  if (model->uses_own_sample_logits()) m.provenance += ", EOT and prediction through its own sample_logits(x, S)";
  m.model = std::move(model);
  return m;
}

void check_model_fits(Model& model, const data::Dataset& ds, const std::string& who) {
  const auto shape = model.input_shape();
  const auto example = ds.example_shape();
  if (shape != example)
    throw UsageError(fmt::format("{} takes examples of shape [{}] but {} holds examples of shape [{}]", who,
                                 fmt::join(shape, ", "), ds.name, fmt::join(example, ", ")));
  if (!ds.classes_fit(model.num_classes())) {
    if (ds.num_classes_from_labels)
      throw UsageError(fmt::format("{} outputs {} classes but {} has labels up to {}", who, model.num_classes(),
                                   ds.name, ds.num_classes - 1));
    throw UsageError(fmt::format("{} outputs {} classes but {} has {}", who, model.num_classes(), ds.name, ds.num_classes));
  }
  if (ds.size() == 0) return;
  const auto box = model.input_bounds();
  const double lo = ds.images.min().item<double>(), hi = ds.images.max().item<double>();
  if (lo < box.lower || hi > box.upper)
    throw UsageError(fmt::format(
        "{} takes inputs in [{}, {}] but the images of {} span [{}, {}]{}", who, box.lower, box.upper, ds.name, lo, hi,
        ds.source.empty() ? "" : " (float images are used as they are; uint8 is scaled by 1/255)"));
}

std::string dataset_mismatch(const LoadedModel& loaded, const data::Dataset& ds, const std::string& who) {
  const auto record = nlohmann::json::parse(loaded.training_json, nullptr, false);
  if (!record.is_object() || !record.contains("dataset") || !record["dataset"].is_string()) return "";
  const std::string trained = record["dataset"];
  if (!ds.source.empty())
    return fmt::format(
        "{} was trained on {}; evaluating it on your file {} (make sure its images are preprocessed "
        "like {}'s)",
        who, trained, ds.name, trained);
  if (trained != ds.name) return fmt::format("{} was trained on {} but is evaluated on {}", who, trained, ds.name);
  return "";
}

}  // namespace imbench::models
