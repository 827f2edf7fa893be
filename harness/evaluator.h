#pragma once
/// The cell evaluator: the one place imbench evaluates attacks. `imbench run`
/// calls it for every cell of a matrix, `imbench attack` for the one-cell
/// matrix its flags describe. Given a model (with its clean predictions), an
/// attack entry, a threat model (norm, eps, targeting), the run's settings
/// and, for transfer, the model the attack is crafted on, it attacks the
/// examples batch by batch with per-batch seeds derived from the master seed,
/// re-evaluates the adversarial examples R times on the evaluated model, runs
/// the soundness checks of harness/checks.h, and returns a CellResult (the
/// imbench-results schema). It holds no scheduling, resume or file I/O: the
/// runner does.
#include <functional>
#include <set>
#include <string>

#include "data/dataset.h"
#include "harness/checks.h"
#include "harness/matrix.h"
#include "models/load.h"
#include "reports/results.h"

namespace imbench::harness {

/// Seeds derived from the master seed and a stable name (a model, a cell id):
/// adding cells or models never changes the seeds of the others.
uint64_t derive_seed(uint64_t master, const std::string& id);

/// A model ready to be evaluated: loaded, hashed, and its clean predictions
/// taken once (R repeats with fresh samples for a stochastic model).
struct EvaluatedModel {
  std::string name;
  models::LoadedModel loaded;
  std::string sha256;
  torch::Tensor clean;   ///< bool [R, N] on the CPU: the prediction rule right on the clean examples
  torch::Tensor clean_prediction;  ///< int64 [R, N] on the CPU: the prediction rule's classes on the clean examples
  int64_t repeats = 1;   ///< R
  models::Model& model() const { return *loaded.model; }
};

/// One cell: an attack entry at one threat of a cascade job.
struct CellTask {
  const JobPlan* job = nullptr;
  const CellPlan* plan = nullptr;
  EvaluatedModel* target = nullptr;             ///< the evaluated model
  EvaluatedModel* source = nullptr;             ///< transfer: the model the attack runs on; nullptr: white-box
  const reports::CellResult* previous = nullptr;  ///< the cell before it in its cascade group, if any
  std::string hash;                             ///< the resume key recorded with the result
  std::string seed_id;                          ///< the cell's seeds derive from this id ("" = the cell id)
  bool probe = false;                           ///< run the kCellProbe checks on this cell (probed_cells; --audit: every cell)
  /// Keep the adversarial examples in the result (float32, one row per
  /// attacked example); changes no number, so it is not part of `hash`.
  bool save_adversarial = false;
};

/// The cells that get the default probes (kCellProbe), chosen from the whole
/// plan so that shards agree: per model, norm and targeting, the job with
/// the smallest finite eps (where most examples survive), and in it the
/// first white-box iterative gradient attack (PGD or APGD in most matrices:
/// the cheapest to rerun, and the attack the probes are designed around).
/// One probed cell per threat family keeps the default checks within a
/// quarter of a matrix's time; --audit probes every cell.
std::set<std::string> probed_cells(const std::vector<JobPlan>& jobs);

class CellEvaluator {
 public:
  /// Called between batches: (cell id, examples done, examples to do).
  using Progress = std::function<void(const std::string& what, int64_t done, int64_t total)>;

  /// `examples`: the evaluated examples (already cut to the first N).
  CellEvaluator(const data::Dataset& examples, torch::Device device, EvaluationSettings settings, Progress progress = {});

  /// Puts the model in eval mode and takes its clean predictions.
  /// `who` names the model in errors ("model 'det'", "--transfer-to x.ckpt").
  EvaluatedModel prepare(const std::string& name, models::LoadedModel loaded, std::string sha256,
                         const std::string& who) const;
  /// Clean accuracy, description and the model-level checks (kModel; kModelAudit with --audit).
  reports::ModelInfo describe(EvaluatedModel& model, const std::string& paper_json) const;
  /// Runs one cell.
  reports::CellResult evaluate(const CellTask& task) const;

  const EvaluationSettings& settings() const { return settings_; }

 private:
  attacks::ThreatModel threat_of(const JobPlan& job, models::Model& m) const;

  const data::Dataset& ds_;
  torch::Device device_;
  EvaluationSettings settings_;
  Progress progress_;
};

}  // namespace imbench::harness
