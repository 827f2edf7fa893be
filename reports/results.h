#pragma once
/// Benchmark-matrix results (schema "imbench-results", version 2): the data
/// model of `imbench run` (models, cells with per-example records, flags).
/// Torch-free: everything here works on plain vectors, so `imbench
/// report/compare/merge` and their tests build without LibTorch. The HDF5
/// layout is documented in docs/results-h5.md; the reader and writer are in
/// reports/results_io.h.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace imbench::reports {

inline constexpr const char* kResultsSchema = "imbench-results";
inline constexpr int kResultsSchemaVersion = 2;
/// Root attributes stored as int64 (version 2; strings in version 1).
inline constexpr const char* kIntegerRootAttributes[] = {"seed", "examples", "threads", "num_classes"};
/// Summary entries that are counts, stored as int64 (version 2; float64 in version 1).
inline constexpr const char* kCountSummaryEntries[] = {"attacked_examples"};

/// The outcome of one soundness check (docs/EVALUATION.md, checks 1-12).
struct Flag {
  int check = 0;          ///< number in docs/EVALUATION.md's table, 1-12
  std::string name;       ///< short name, e.g. "randomness", "gradient-health"
  bool failed = false;    ///< true: the check flags the result as unreliable
  std::string detail;     ///< one line: what was measured, e.g. "PGD worse than FGSM on 3 of 500 examples"
};

/// A model of the matrix as it was evaluated.
struct ModelInfo {
  std::string name;          ///< name in the matrix (HDF5-safe: [A-Za-z0-9_.-])
  std::string description;   ///< e.g. "SFNN 784-512-512-10 (sigmoid)"
  std::string provenance;    ///< file and how it was trained, one line
  std::string file_sha256;   ///< SHA-256 of the checkpoint / TorchScript file
  bool stochastic = false;
  std::string prediction_rule;       ///< e.g. "mean softmax over 32 samples" or "argmax of logits"
  std::string training_json = "{}";  ///< the checkpoint's training record (JSON), "{}" when unknown
  std::string paper_json = "{}";     ///< the paper's numbers for this model (JSON object of numbers in %), e.g.
                                     ///< {"clean_accuracy": 98.27, "robust_targeted": 0.0, "robust_untargeted": 0.0}
  double clean_accuracy = 0;         ///< on the matrix's examples (mean over repeats)
  std::vector<Flag> flags;           ///< model-level checks (1 randomness, 4 logits, 5 gradient health, 12 mode)
};

/// One cell: a model x attack x eps on the matrix's examples.
///
/// Attacks on one model with the same threat (norm, eps, targeted) form a
/// cascade group, run in the matrix's order. `adversarial_correct` is
/// CUMULATIVE: right on the adversarial examples of this attack AND of every
/// earlier attack of its group, per repeat. So the last cell of a group holds
/// the per-example worst case over its attacks. With cascade on, an example
/// already wrong in every repeat is not attacked again (`attacked` = 0).
struct CellResult {
  std::string id;          ///< unique group name "<model>.<attack>.<norm>-<eps>", e.g. "det.pgd.linf-0.3"
  std::string model;       ///< ModelInfo::name
  std::string attack;      ///< the attack entry's name in the matrix, e.g. "pgd", "cw-transfer"
  std::string attack_kind; ///< registry name: fgsm, pgd, cw, apgd-ce, ...
  std::string norm;        ///< "linf" or "l2"
  double eps = 0;          ///< may be +inf (unbounded)
  std::string eps_text;    ///< as written for people: "0.3", "8/255", "inf"
  bool targeted = false;
  std::string target_rule; ///< "none", "random", "least-likely", "next"
  std::string source_model;  ///< transfer attacks: the model the examples were crafted on; "" = white-box
  std::string group;       ///< cascade group id, e.g. "det.linf-0.3.untargeted"
  int64_t cascade_position = 0;  ///< 0-based order inside the group
  std::string threat_model;      ///< one line, e.g. "Linf eps=0.3 untargeted, inputs in [0, 1]"
  std::string hash;              ///< SHA-256 of config_json and the model files: resume key
  std::string config_json = "{}";///< the cell's full effective configuration (attack options, EOT, repeats, seed, ...)
  int64_t repeats = 1;           ///< R (1 for deterministic models)
  int64_t eot_samples = 1;       ///< S per gradient

  // Per-example records, N examples (the matrix's first N of the test split).
  std::vector<int64_t> index;             ///< [N] index in the split
  std::vector<int64_t> label;             ///< [N]
  std::vector<int64_t> target;            ///< [N] targeted only, else empty
  std::vector<uint8_t> attacked;          ///< [N] 1 = this attack ran on the example
  std::vector<uint8_t> clean_correct;     ///< [R * N] repeat-major
  std::vector<uint8_t> adversarial_correct;  ///< [R * N] repeat-major, cumulative (see above)
  std::vector<float> linf, l2, l0;        ///< [N] norms of x_adv - x (0 when not attacked)
  std::vector<float> final_loss;          ///< [N] the attack's loss at x_adv (NaN when not attacked)
  std::vector<int64_t> gradient_evaluations;  ///< [N]
  /// [R * N] repeat-major: the class the prediction rule gives the clean
  /// image in each repeat (clean_correct == (clean_prediction == label)).
  /// Empty when read from a version-1 file.
  std::vector<int64_t> clean_prediction;
  /// [R * N] repeat-major: the class predicted on THIS attack's x_adv in each
  /// repeat (not cumulative: adversarial_prediction == label is this attack's
  /// own outcome), -1 where the attack did not run (`attacked` = 0). Empty
  /// when read from a version-1 file.
  std::vector<int64_t> adversarial_prediction;

  // The adversarial examples themselves, when they were asked for
  // (`--save-adversarial`, `save_adversarial = true`): one row per attacked
  // example (M = the examples with attacked = 1), in index order.
  std::vector<int64_t> adversarial_shape;  ///< the shape of one example, e.g. {1, 28, 28}; empty: none saved
  std::vector<float> adversarial;          ///< [M * prod(adversarial_shape)] row-major
  std::vector<int64_t> adversarial_index;  ///< [M] index in the split of each row
  /// Set when the values stayed in a results file (`adversarial` is empty):
  /// write_results copies them from /cells/<id> of this file.
  std::string adversarial_file;
  bool has_adversarial() const { return !adversarial_shape.empty(); }
  /// Frees the values once they are in `file` (a results file holding this cell).
  void keep_adversarial_in(const std::string& file) {
    if (!has_adversarial()) return;
    std::vector<float>().swap(adversarial);
    adversarial_file = file;
  }

  /// Numbers: clean_accuracy, robust_accuracy (mean over repeats and
  /// examples), robust_accuracy_std (over repeats), robust_accuracy_worst
  /// (right in every repeat), attacked_examples, seconds, images_per_second,
  /// gradient_evaluations_per_second.
  std::map<std::string, double> summary;
  std::vector<Flag> flags;

  int64_t size() const { return static_cast<int64_t>(index.size()); }
  bool unreliable() const;
  /// Fills `summary`'s accuracy entries from the per-example records.
  void summarise();
};

/// A whole results file.
struct ResultFile {
  /// Root attributes as text: schema, schema_version, imbench_version,
  /// git_revision, torch_version, device, device_name, threads, date, seed,
  /// matrix_name, matrix_hash, config_json (the full effective matrix),
  /// shard ("all" or "i/n"), dataset, examples. The integer ones
  /// (kIntegerRootAttributes) are decimal integers here and int64 in the file.
  std::map<std::string, std::string> root;
  /// The schema version of the file this was read from (1 or 2); writing
  /// always writes kResultsSchemaVersion.
  int64_t read_version = kResultsSchemaVersion;
  std::vector<ModelInfo> models;
  std::vector<CellResult> cells;

  const CellResult* find_cell(const std::string& id) const;
  const ModelInfo* find_model(const std::string& name) const;
};

}  // namespace imbench::reports
