#pragma once
/// The model zoo: trained checkpoints kept in the repository (zoo/) with a
/// manifest (zoo/manifest.json) recording, per model, the file, family,
/// dataset, preset, seed, how it was trained (epochs, early stop, time,
/// images/s, threads, imbench revision, the command that retrains it), its
/// test metrics under the paper's protocol and the file's SHA-256. Models
/// too large to ship are listed with shipped = false and a path outside
/// the zoo folder (their matrices train them when missing).
#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace imbench::harness {

struct ZooAddOptions {
  std::string manifest = "zoo/manifest.json";
  int64_t passes = 10;        ///< test passes with fresh samples (stochastic models)
  uint64_t seed = 0;          ///< seeds the evaluation's samples
  int64_t batch_size = 1000;
  data::DataPaths paths;
};

/// Evaluates each checkpoint on its dataset's whole test split (stochastic
/// models: `passes` passes with fresh samples under the prediction rule,
/// mean and sample std, and the mean-field prediction) and adds or replaces
/// its manifest entry. The manifest is rewritten atomically.
void zoo_add(const std::vector<std::string>& checkpoints, const ZooAddOptions& options, std::ostream& out);

/// Checks every entry: shipped files exist, match their SHA-256, and stay
/// under the size caps (8 MB a file, 40 MB the zoo); files not shipped are
/// checked when present. imbench::Error naming the first defect.
void zoo_verify(const std::string& manifest, std::ostream& out);

/// Reads a manifest (imbench::Error naming the file on any defect).
nlohmann::json read_zoo_manifest(const std::string& path);

inline constexpr int64_t kZooFileCap = 8'000'000, kZooTotalCap = 40'000'000;

}  // namespace imbench::harness
