#pragma once
/// Per-example attack records in HDF5 (torch-free). The layout (schema
/// "imbench-attack-records", version 1) is documented in docs/results-h5.md;
/// the benchmark harness extends it.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace imbench::reports {

/// One evaluated set of adversarial examples (a white-box run, or the same
/// examples transferred to another model).
struct AttackRecords {
  std::string name;                        ///< group name, e.g. "white-box" or "transfer-0"
  int64_t repeats = 1;                     ///< R
  std::vector<int64_t> index;              ///< dataset index of each example [N]
  std::vector<int64_t> label;              ///< [N]
  std::vector<int64_t> target;             ///< [N], empty when untargeted
  std::vector<uint8_t> clean_correct;      ///< [R * N], repeat-major
  std::vector<uint8_t> adversarial_correct;  ///< [R * N], repeat-major
  std::vector<float> linf, l2, l0;         ///< [N]
  std::vector<float> final_loss;           ///< [N]
  std::vector<int64_t> gradient_evaluations;  ///< [N]
  std::map<std::string, std::string> attributes;  ///< strings (JSON for structured values)
  std::map<std::string, double> summary;          ///< numbers: accuracies, seconds, images/s
};

/// Writes the groups and root attributes to `path` atomically: a temporary
/// file in the same folder, renamed over `path` only when complete, so an
/// existing file is never left half-written. Throws imbench::Error.
void write_attack_records(const std::string& path, const std::map<std::string, std::string>& root_attributes,
                          const std::vector<AttackRecords>& groups);

}  // namespace imbench::reports
