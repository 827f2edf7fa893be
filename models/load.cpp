#include "models/load.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/errors.h"
#include "models/checkpoint.h"

namespace imbench::models {

LoadedModel load_model_file(const std::string& path, const TorchScriptOptions& ts, torch::Device device) {
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
  model.check_input(ds.images.slice(0, 0, std::min<int64_t>(1, ds.size())));
  if (model.num_classes() != ds.num_classes)
    throw UsageError(fmt::format("{} outputs {} classes but {} has {}", who, model.num_classes(), ds.name, ds.num_classes));
}

}  // namespace imbench::models
