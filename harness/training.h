#pragma once
/// Training a model family into a checkpoint: shared by `imbench train` and
/// by `imbench run` (which trains the matrix's models when their checkpoints
/// are missing).
#include <nlohmann/json.hpp>

#include <optional>
#include <ostream>
#include <string>

#include "data/dataset.h"
#include "models/family.h"
#include "models/train.h"

namespace imbench::harness {

/// A family, dataset and preset with overrides, resolved into a spec and options.
struct TrainPlan {
  std::string family, dataset, preset;
  models::ModelSpec spec;
  models::TrainOptions options;
};

/// Builds the plan: the paper architecture for the dataset, the
/// architecture options of `overrides` (hidden, activation), the preset, then
/// the other overrides: keys of models::TrainOptions::table() and of the
/// family's hyper-parameters (models::training_option_keys() lists them
/// all). A number for a per-layer hyper-parameter applies to every layer.
/// Errors (OptionErrors: unknown keys with "did you mean", options that do
/// not apply to the family, wrong types, values out of bounds) name the
/// option as `context` spells it: "models[0].train.epochs" from a matrix,
/// "--epochs" from `imbench train`.
TrainPlan plan_training(const std::string& family, const std::string& dataset, const std::string& preset,
                        const nlohmann::json& overrides,
                        const OptionContext& context = {"training option", "", OptionSpelling::kKey});

struct TrainOutcome {
  double test_accuracy = 0;
  std::optional<double> mean_field_test_accuracy;
  models::TrainResult result;
};

/// Where training into `checkpoint` keeps its resumable state: CHECKPOINT.train-state.
std::string training_state_path(const std::string& checkpoint);

/// What train_to_checkpoint(plan, paths, path, ...) would do, without
/// training or writing anything (`--dry-run`): loads the data (a missing
/// dataset fails here), builds the model and prints the model, the data
/// sizes, the effective options, the epochs and batches, whether a training
/// state next to `path` would be resumed, and the checkpoint it would write.
void describe_training(const TrainPlan& plan, const data::DataPaths& paths, const std::string& path, std::ostream& out);

/// Trains, evaluates on the full test split and writes the checkpoint
/// atomically to `path`, recording how the model was trained. Prints what
/// it does to `out`; progress goes to stderr unless quiet. Resumable: the
/// state is kept in training_state_path(path) at the end of every epoch (see
/// models::train); re-running the same training after a kill continues
/// from it, and the file is removed once the checkpoint is written.
TrainOutcome train_to_checkpoint(const TrainPlan& plan, const data::DataPaths& paths, const std::string& path,
                                 std::ostream& out, bool quiet);

}  // namespace imbench::harness
