#pragma once
/// Loading any model imbench evaluates: an imbench checkpoint or a
/// TorchScript file, with one line saying where it came from; and the check
/// that a model fits a dataset.
#include <memory>
#include <string>

#include "data/dataset.h"
#include "models/model.h"
#include "models/torchscript.h"

namespace imbench::models {

/// A loaded model with its provenance.
struct LoadedModel {
  std::unique_ptr<Model> model;
  std::string provenance;           ///< "<file>: trained on mnist with preset paper (seed 0), imbench ..."
  std::string training_json = "{}"; ///< the checkpoint's training record without its epoch history
};

/// An imbench checkpoint (recognised by its header) or a TorchScript file.
/// TorchScript options given for a checkpoint are a UsageError: a checkpoint
/// records them.
LoadedModel load_model_file(const std::string& path, const TorchScriptOptions& torchscript, torch::Device device);

/// Throws UsageError (naming `who`) unless the model takes the dataset's
/// examples and outputs one logit per class of it.
void check_model_fits(Model& model, const data::Dataset& ds, const std::string& who);

}  // namespace imbench::models
