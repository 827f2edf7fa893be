#pragma once
/// The Attack interface (a template method, after Foolbox 3) and its result.
///
/// `Attack::run` is not virtual. It validates the inputs, copies them to the
/// model's device, freezes the parameters and puts the model in eval mode
/// (RAII guards), chooses targets, seeds the generators, calls the
/// subclass's `perturb`, projects the result onto the eps-ball and the
/// input box, re-evaluates it under the model's prediction rule R times with
/// fresh samples, and fills an AttackResult. Subclasses hold only their
/// optimisation loop. An attack that fails to fool the model is data, not an
/// exception.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>
#include <string>

#include "attacks/gradient.h"
#include "attacks/registry.h"
#include "attacks/threat_model.h"
#include "models/model.h"

namespace imbench::attacks {

/// Options every attack run takes (besides the attack's own).
struct RunOptions {
  EotOptions eot;              ///< EOT samples per gradient (deterministic models: 1)
  int64_t repeats = 1;         ///< R: evaluations of x_adv with fresh samples (deterministic models: 1)
  uint64_t seed = 0;           ///< random starts, random targets, model sampling
  torch::Tensor targets;       ///< for TargetRule::kGiven: int64 [N]
  /// false: skip the clean predictions (clean_correct stays undefined), for
  /// callers that evaluated the clean inputs once already (the harness).
  bool evaluate_clean = true;
  void validate() const;
};

struct AttackResult {
  torch::Tensor x_adv;              ///< [N, ...] on the model's device, inside the eps-ball and the box
  torch::Tensor targets;            ///< int64 [N]; undefined when untargeted
  torch::Tensor clean_correct;      ///< bool [R, N]: prediction rule on x is right, per repeat
  torch::Tensor adversarial_correct;  ///< bool [R, N]: prediction rule on x_adv is right, per repeat
  torch::Tensor clean_prediction;  ///< int64 [R, N]: the prediction rule's class on x, per repeat (with clean_correct)
  torch::Tensor adversarial_prediction;  ///< int64 [R, N]: the prediction rule's class on x_adv, per repeat
  torch::Tensor success;            ///< bool [R, N]: untargeted: x_adv misclassified; targeted: predicted as target
  torch::Tensor linf, l2, l0;       ///< [N] norms of x_adv - x (l0: changed pixels, |d| > 1e-6)
  torch::Tensor final_loss;         ///< [N] the attack's loss at x_adv (maximised; see describe())
  torch::Tensor gradient_evaluations;  ///< int64 [N]
  double seconds = 0;
  int64_t eot_samples = 1;          ///< samples per gradient actually drawn
  int64_t repeats = 1;              ///< R actually used

  int64_t size() const { return x_adv.size(0); }
  /// Mean over repeats and examples of adversarial_correct (robust accuracy).
  double robust_accuracy() const;
  double clean_accuracy() const;
  /// Std over repeats of the per-repeat robust accuracy (0 for one repeat).
  double robust_accuracy_std() const;
  /// Share of examples robust in every repeat.
  double robust_accuracy_worst() const;
};

/// Everything a subclass's optimisation loop may use.
struct AttackContext {
  models::Model& model;
  torch::Tensor x;        ///< clean inputs on the model's device (never modified)
  torch::Tensor y;        ///< labels [N]
  torch::Tensor targets;  ///< [N] or undefined
  ThreatModel threat;
  GradientOracle& oracle;
  bool targeted() const { return targets.defined(); }
  /// Projects x_adv onto the eps-ball around x and the input box.
  torch::Tensor project(const torch::Tensor& x_adv) const;
};

class Attack {
 public:
  virtual ~Attack() = default;
  /// Registry name, e.g. "pgd".
  virtual std::string name() const = 0;
  /// Options as JSON, as given (defaults filled in).
  virtual nlohmann::json options_json() const = 0;
  /// Options as used at this threat model, with eps-dependent defaults
  /// resolved (PGD's step size); what results and reports record.
  virtual nlohmann::json effective_options(const ThreatModel&) const { return options_json(); }
  /// The loss the attack maximises, for reports.
  virtual LossKind loss_kind() const = 0;
  /// Whether the attack supports a norm.
  virtual bool supports(Norm norm) const = 0;
  /// Minimum-norm attacks (CW) may run with eps = infinity.
  virtual bool minimises_norm() const { return false; }

  /// The template method described above. x: [N, input_shape...] in the
  /// model's input box; y: int64 [N].
  AttackResult run(models::Model& model, const torch::Tensor& x, const torch::Tensor& y, const ThreatModel& threat,
                   const RunOptions& options);

 protected:
  /// The optimisation loop: returns candidate adversarial inputs [N, ...].
  virtual torch::Tensor perturb(AttackContext& ctx) = 0;
};

/// Projection of x_adv onto {x' : ||x' - x|| <= eps} intersected with [lower, upper].
torch::Tensor project_to_threat(const torch::Tensor& x_adv, const torch::Tensor& x, const ThreatModel& threat);
/// The shape [N, 1, ..., 1] that broadcasts a per-example value [N] over a batch like x.
std::vector<int64_t> per_example_shape(const torch::Tensor& x);

/// Per-example norms of d [N, ...]: Linf, L2, L0.
torch::Tensor linf_norm(const torch::Tensor& d);
torch::Tensor l2_norm(const torch::Tensor& d);
torch::Tensor l0_norm(const torch::Tensor& d);

/// Targets for a rule: random other class (seeded), least likely under the
/// prediction rule, next class (y + 1 mod C), or given.
torch::Tensor choose_targets(models::Model& model, const torch::Tensor& x, const torch::Tensor& y, TargetRule rule,
                             const RunOptions& options);

// The registry (name -> traits, option table, factory) is in attacks/registry.h.

}  // namespace imbench::attacks
