#pragma once
/// Self-describing checkpoints.
///
/// One file per trained model:
///
///     IMBENCH-CHECKPOINT 1\n
///     meta <bytes>\n<JSON>\n          spec, training record, metrics, provenance
///     weights <bytes>\n<torch archive>\n
///     sha256 <hex of everything above>\n
///
/// The JSON is readable with `head`; `imbench info FILE` prints it. Loading
/// rebuilds the model from the file alone and rejects a truncated or
/// corrupted file (length and checksum), an unknown format version, and
/// weights whose names or shapes do not match the recorded architecture.
/// Files are written to a temporary name and renamed, so a crash never
/// leaves a half-written checkpoint under the final name.
#include <nlohmann/json.hpp>

#include <memory>

#include "models/family.h"

namespace imbench::models {

inline constexpr int kCheckpointFormatVersion = 1;

struct CheckpointMeta {
  ModelSpec spec;
  nlohmann::json training = nlohmann::json::object();  ///< dataset, split, preset, options, history
  nlohmann::json metrics = nlohmann::json::object();   ///< e.g. test_accuracy
  // Provenance, filled in by save_checkpoint.
  std::string imbench_version, git_revision, torch_version, created_utc, weights_sha256;

  nlohmann::json to_json() const;
  static CheckpointMeta from_json(const nlohmann::json& j);
};

/// Writes the checkpoint atomically (temporary file + rename). Fills the provenance fields.
void save_checkpoint(const std::string& path, TrainableModel& model, CheckpointMeta meta);

struct LoadedCheckpoint {
  std::unique_ptr<TrainableModel> model;
  CheckpointMeta meta;
};

/// A checkpoint's header and sections, parsed and verified (format version,
/// section lengths, checksum, metadata) without building the model.
struct ParsedCheckpoint {
  CheckpointMeta meta;
  std::string weights;  ///< the torch archive of the weights, as stored
};

/// Parses a whole checkpoint file held in memory; `name` (the file) is
/// named in every error. imbench::Error on any defect.
ParsedCheckpoint parse_checkpoint(const std::string& bytes, const std::string& name);

/// Rebuilds and loads the model on `device`. imbench::Error on any defect.
LoadedCheckpoint load_checkpoint(const std::string& path, torch::Device device = torch::kCPU);
/// Reads and verifies the metadata only.
CheckpointMeta read_checkpoint_meta(const std::string& path);
/// True if the file starts with the checkpoint magic line.
bool is_checkpoint_file(const std::string& path);

}  // namespace imbench::models
