#pragma once
/// The soundness checks of docs/EVALUATION.md (numbers 1-12 there), in one
/// table. Every check is a function of the same shape, `void(CheckContext&)`,
/// registered with its number, name and stage; the cell evaluator runs the
/// checks of a stage with `run_checks`, and each check appends its verdict to
/// `CheckContext::flags` (a reports::Flag lands in the results file and the
/// report). Adding a check is one function and one row of `check_registry()`.
///
/// Stages (the cost class):
///   kModel       per model, on its first 100 examples, every run (cheap)
///   kBatch       per cell, on every attacked batch (`batch` set); called once
///                more with `batch == nullptr` when the cell ends, to flag
///   kCellProbe   per white-box cell of a stochastic model, every run, on the
///                first `probe_examples` examples the cell attacked (cheap
///                reruns of the cell's attack: EOT doubled, noise frozen)
///   kCrossCell   on a whole results file, after the cells (and after merge)
///   kModelAudit  per model, with --audit (an attack per model)
///   kCellAudit   per white-box cell, with --audit (several attacks per cell)
#include <torch/torch.h>

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "attacks/attack.h"
#include "harness/matrix.h"
#include "reports/results.h"

namespace imbench::harness {

/// The evaluation settings every cell of a run shares (a matrix's top-level keys).
struct EvaluationSettings {
  uint64_t seed = 0;          ///< master seed
  int64_t batch_size = 1000;
  bool cascade = true;
  int64_t eot = 16;           ///< EOT samples per gradient for stochastic models
  attacks::EotReduction eot_reduction = attacks::EotReduction::kPredictionRule;
  int64_t repeats = 10;       ///< evaluation repeats R for stochastic models
  int64_t audit_examples = 100;
  int64_t probe_examples = 32;  ///< examples of the kCellProbe checks (0 = off)
  int64_t probe_queries = 500;  ///< Square's queries in the black-box probe (check 9; 0 = off)
  bool audit = false;         ///< also run the kModelAudit and kCellAudit checks

  static EvaluationSettings of(const Matrix& matrix, bool audit);
};

enum class CheckStage { kModel, kBatch, kCellProbe, kCrossCell, kModelAudit, kCellAudit };
std::string to_string(CheckStage stage);

/// One attacked batch of a cell, for kBatch checks.
struct CheckBatch {
  torch::Tensor x;            ///< the clean inputs given to the attack
  torch::Tensor x_before;     ///< a copy taken before the attack ran
  torch::Tensor y;
  torch::Tensor x_adv;
  torch::Tensor adversarial_correct;  ///< bool [R, n] on the evaluated model
  const attacks::RunOptions* run = nullptr;  ///< as the attack ran (seed included)
};

/// What a check sees. Fields a stage does not provide stay null / undefined.
struct CheckContext {
  const EvaluationSettings* settings = nullptr;
  uint64_t seed = 0;                   ///< the check's own seed (per model or per cell)
  // Per model and per cell.
  models::Model* model = nullptr;      ///< the evaluated model
  int64_t repeats = 1;                 ///< R for this model
  torch::Tensor x, y;                  ///< kModel(Audit): its first examples; kCellProbe/kCellAudit: the first attacked ones
  // Per cell.
  const MatrixAttack* attack = nullptr;
  const attacks::ThreatModel* threat = nullptr;
  models::Model* source = nullptr;     ///< the model the attack ran on (the evaluated one unless transfer)
  bool transfer = false;
  const CheckBatch* batch = nullptr;   ///< kBatch: the batch; nullptr: the cell is done, flag now
  /// kBatch: counters a check keeps across the batches of one cell, by check number.
  std::map<int, std::array<int64_t, 4>> tally;
  /// kCellProbe: the cell's own outcome on `x` (bool [R, n]: right per repeat), so probes rerun only their variant.
  torch::Tensor cell_correct;
  /// kCellAudit: the attack's robust accuracy on `x`, computed once by the first check that needs it.
  std::optional<double> audit_accuracy;
  // Cross-cell.
  reports::ResultFile* file = nullptr;
  /// Output: the verdicts.
  std::vector<reports::Flag> flags;
};

struct Check {
  int number = 0;            ///< in docs/EVALUATION.md's table
  std::string name;          ///< the flag's name, e.g. "gradient-health"
  CheckStage stage = CheckStage::kModel;
  std::string summary;       ///< one line: what it measures and when it flags
  std::function<void(CheckContext&)> run;
};

/// Every check, in the order they run within a stage.
const std::vector<Check>& check_registry();
/// Runs the registered checks of one stage on the context (appending to ctx.flags).
void run_checks(CheckStage stage, CheckContext& ctx);
/// The kCrossCell checks on a whole file (replacing their earlier flags).
void apply_cross_cell_checks(reports::ResultFile& file);

/// A stochastic model with its noise frozen: every call draws the same noise
/// for the same batch (check 3, the fixed-noise control).
class FixedNoiseModel : public models::Model {
 public:
  FixedNoiseModel(models::Model& inner, uint64_t noise_seed) : inner_(inner), seed_(noise_seed) {}
  torch::Tensor logits(const torch::Tensor& x) override;
  bool is_stochastic() const override { return false; }
  int64_t num_classes() const override { return inner_.num_classes(); }
  std::vector<int64_t> input_shape() const override { return inner_.input_shape(); }
  models::InputBounds input_bounds() const override { return inner_.input_bounds(); }
  std::string description() const override { return inner_.description() + " (noise frozen)"; }
  torch::Device device() const override { return inner_.device(); }
  void to(torch::Device device) override { inner_.to(device); }
  void set_training(bool training) override { inner_.set_training(training); }
  std::vector<torch::Tensor> parameters() override { return inner_.parameters(); }

 private:
  models::Model& inner_;
  uint64_t seed_;
};

// The model-level checks, also usable alone (the table's rows call them).
/// Check 1: five clean passes; flags a model that behaves stochastically
/// but is evaluated as deterministic (no EOT, one repeat).
reports::Flag check_randomness(models::Model& model, const torch::Tensor& x);
/// Check 4: flags outputs that look like probabilities (rows in [0, 1] summing to 1).
reports::Flag check_logits(models::Model& model, const torch::Tensor& x);
/// Check 5: share of NaN/Inf gradient entries and of all-zero example gradients.
reports::Flag check_gradient_health(models::Model& model, const torch::Tensor& x, const torch::Tensor& y,
                                    const attacks::EotOptions& eot);
/// Check 12: eval mode (no dropout/batch-norm updates) and sampling on for stochastic models.
reports::Flag check_model_mode(models::Model& model);
/// Check 11 for one batch, also usable alone: ||x_adv - x|| <= eps + 1e-6,
/// x_adv in the box and finite, the attack input unchanged. Returns the
/// number of violating examples.
int64_t count_invalid(const torch::Tensor& x_adv, const torch::Tensor& x, const torch::Tensor& x_before,
                      const attacks::ThreatModel& threat);

}  // namespace imbench::harness
