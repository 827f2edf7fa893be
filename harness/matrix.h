#pragma once
/// Benchmark matrices: a TOML file naming models, attacks, eps lists and the
/// evaluation settings, and its expansion into cascade jobs and cells.
///
/// A matrix file (see benchmarks/matrices/*.toml and docs/matrix.md):
///
///     name = "quick"
///     dataset = "mnist"          # evaluated on the first `examples` test images
///     examples = 500
///     seed = 0
///     [[models]]
///     name = "det"
///     family = "det"             # train with `preset` when `checkpoint` is missing
///     preset = "quick"
///     checkpoint = "checkpoints/det-mnist-quick.ckpt"
///     [[attacks]]
///     name = "pgd"
///     norm = "linf"
///     eps = [0.1, "8/255"]
///     options = { steps = 40 }
///
/// Errors name the file, the line and the key.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/torchscript_options.h"

namespace imbench::harness {

/// A model of the matrix: an imbench checkpoint (trained from `family` and
/// `preset` when the file is missing) or a TorchScript file.
struct MatrixModel {
  std::string name;
  std::string checkpoint;   ///< imbench checkpoint path (relative paths: to the working directory)
  std::string torchscript;  ///< TorchScript path (alternative to checkpoint)
  std::string family;       ///< set: train when the checkpoint is missing
  std::string preset = "quick";
  nlohmann::json train = nlohmann::json::object();  ///< overrides of the preset (epochs, batch_size, ...)
  /// TorchScript description: input_shape, num_classes, stochastic, samples
  /// (imbench_* module attributes otherwise).
  models::TorchScriptOptions torchscript_options;
  nlohmann::json paper = nlohmann::json::object();  ///< the paper's numbers for the report, in %
  int line = 0;
  std::string described_as;  ///< how messages name the model ("" = "model '<name>'"); not part of the matrix

  nlohmann::json to_json() const;
  /// The file the model is read from.
  const std::string& file() const { return checkpoint.empty() ? torchscript : checkpoint; }
};

/// An attack entry: one registered attack with its options, run at every eps.
struct MatrixAttack {
  std::string name;      ///< label, unique in the matrix
  std::string kind;      ///< registry name (default: name)
  nlohmann::json options = nlohmann::json::object();
  std::string norm = "linf";
  std::vector<double> eps;
  std::vector<std::string> eps_text;  ///< as written ("8/255")
  bool targeted = false;
  std::string target_rule = "random";
  std::optional<int64_t> eot;          ///< key eot_samples: EOT samples for stochastic models (default: the matrix's)
  std::string source;                  ///< key source_model: transfer: craft on this model, evaluate on the others
  std::vector<std::string> models;     ///< evaluate on these models only (default: all but the source)
  int line = 0;
  /// Seeds of the attack's cells derive from this id instead of the cell id
  /// ("" = the cell id). `imbench attack` gives its white-box and transfer
  /// cells one id, so the transfer cells see the white-box adversarial examples.
  std::string seed_id;
  /// Save this attack's adversarial examples in the results file (unset: the
  /// matrix's save_adversarial). Not part of to_json() (the cell's
  /// configuration): it changes no number.
  std::optional<bool> save_adversarial;

  nlohmann::json to_json() const;
};

struct Matrix {
  std::string path;          ///< file it was read from
  std::string name;
  std::string description;
  std::string dataset = "mnist";
  std::string split = "test";  ///< "test" or "train"
  int64_t examples = 1000;   ///< first N of the split (0 = all)
  uint64_t seed = 0;         ///< master seed
  std::string device = "cpu";
  int64_t batch_size = 1000;
  bool cascade = true;       ///< later attacks of a group only on examples still robust
  int64_t eot = 16;          ///< key eot_samples: EOT samples per gradient for stochastic models
  std::string eot_reduction = "prediction-rule";
  int64_t repeats = 10;      ///< evaluation repeats R for stochastic models
  int64_t audit_examples = 100;  ///< examples the --audit checks use
  /// Examples the default probes of a stochastic model's white-box cells use
  /// (EOT doubled, noise frozen; checks 2 and 3); 0 = off.
  int64_t probe_examples = 32;
  /// Square's query budget in the black-box probe (check 9); 0 = off.
  int64_t probe_queries = 500;
  /// Save every cell's adversarial examples in the results file (attacks may
  /// override it). Recorded in to_json() but not in hash(): it changes no number.
  bool save_adversarial = false;
  std::vector<MatrixModel> models;
  std::vector<MatrixAttack> attacks;
  /// Notes for the user found while reading (deprecated keys), "file:line: ..."; not part of the matrix.
  std::vector<std::string> warnings;

  /// The full effective configuration (every default filled in).
  nlohmann::json to_json() const;
  /// SHA-256 of to_json(): identifies the matrix in results files.
  std::string hash() const;
  const MatrixModel& model(const std::string& name) const;
  /// Whether the cells of `attack` keep their adversarial examples.
  bool saves_adversarial(const MatrixAttack& attack) const {
    return attack.save_adversarial.value_or(save_adversarial);
  }
};

/// Parses a matrix file; UsageError "<file>:<line>: <key>: <problem>".
Matrix parse_matrix_file(const std::string& path);
Matrix parse_matrix_text(const std::string& text, const std::string& source_name);

/// One cell of a job: an attack at the job's eps.
struct CellPlan {
  std::string id;             ///< "<model>.<attack>.<norm>-<eps>", HDF5-safe
  const MatrixAttack* attack = nullptr;
  int64_t position = 0;       ///< order in the cascade
};

/// A cascade group: one model, one threat (norm, eps, targeted, rule), its attacks in matrix order.
struct JobPlan {
  std::string group;          ///< "<model>.<norm>-<eps>.<untargeted|targeted-rule>"
  const MatrixModel* model = nullptr;
  std::string norm;
  double eps = 0;
  std::string eps_text;
  bool targeted = false;
  std::string target_rule = "none";
  std::vector<CellPlan> cells;
};

/// Jobs in a fixed order (models, then norms, eps and targeting in order of first appearance).
std::vector<JobPlan> plan_jobs(const Matrix& matrix);

/// "i/n" -> {i, n} with 1 <= i <= n; UsageError otherwise.
std::pair<int64_t, int64_t> parse_shard(const std::string& text);
/// Whether job `index` belongs to shard i of n (round robin).
inline bool in_shard(std::size_t index, std::pair<int64_t, int64_t> shard) {
  return static_cast<int64_t>(index % static_cast<std::size_t>(shard.second)) == shard.first - 1;
}

}  // namespace imbench::harness
