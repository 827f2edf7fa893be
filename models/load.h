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

/// Throws UsageError (naming `who` and the dataset, a file spec for a test set
/// of your own) unless the model takes the dataset's examples (both shapes
/// in the message), outputs one logit per class of it
/// (data::Dataset::classes_fit) and every pixel lies in its input box.
void check_model_fits(Model& model, const data::Dataset& ds, const std::string& who);

/// "" or one warning line (without "warning: ") when `loaded` is an imbench
/// checkpoint trained on another dataset than `ds`: a registry name other
/// than the recorded one, or any file of your own (naming both). A warning,
/// not an error: evaluating across datasets is a legitimate experiment, and
/// check_model_fits already refuses what cannot work.
std::string dataset_mismatch(const LoadedModel& loaded, const data::Dataset& ds, const std::string& who);

}  // namespace imbench::models
