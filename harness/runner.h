#pragma once
/// `imbench run`: evaluates a benchmark matrix cell by cell into an HDF5
/// results file that is rewritten atomically after every cell, so a crash or
/// kill loses at most the cell in progress and a re-run resumes.
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "data/dataset.h"
#include "models/model.h"
#include "models/torchscript.h"

namespace imbench::harness {

struct RunRequest {
  std::string matrix_path;
  std::string out;                    ///< "" = results/<matrix name>[-shard-i-of-n].h5
  std::string report;                 ///< "" = the output path with .md; "-" = no report
  std::string shard;                  ///< "" = all cells; "i/n" = every n-th job starting at i
  bool audit = false;                 ///< also run the expensive soundness checks
  std::optional<std::string> device;  ///< overrides the matrix's device
  std::string data_dir, cifar10_dir;
  bool quiet = false;                 ///< no live progress line
};

/// Runs (or resumes) the matrix; returns the exit code (0).
int run_matrix(const RunRequest& request, std::ostream& out);

/// An imbench checkpoint or a TorchScript file, with one line saying where it came from.
struct LoadedModel {
  std::unique_ptr<models::Model> model;
  std::string provenance;
  std::string training_json = "{}";
};
LoadedModel load_model_file(const std::string& path, const models::TorchScriptOptions& torchscript,
                            torch::Device device);

/// Throws UsageError (naming `who`) unless the model takes the dataset's
/// examples and outputs one logit per class of it.
void check_model_fits(models::Model& model, const data::Dataset& ds, const std::string& who);

}  // namespace imbench::harness
