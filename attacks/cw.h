#pragma once
#include "attacks/fgsm.h"

namespace imbench::attacks {

/// Carlini-Wagner L2 (Carlini and Wagner 2017): minimise over w
///   ||x(w) - x||_2^2 + c * max(-m(x(w)), -kappa),  x(w) = lo + (hi - lo)(tanh(w) + 1)/2,
/// with m the margin max_{j!=y} z_j - z_y (targeted: z_t - max_{j!=t} z_j),
/// by Adam, with a binary search over c per example, keeping per example the
/// smallest successful perturbation. For stochastic models z is the EOT
/// reduction (log mean softmax by default). A minimum-norm attack: it may run
/// with eps = inf; with a finite eps the result is projected onto the ball.
/// It always minimises the L2 norm; under a Linf threat model its result is
/// projected onto the Linf ball (a weaker Linf attack than PGD, reported for
/// comparison with papers that quote CW numbers).
struct CwOptions {
  int64_t steps = 1000;              ///< "steps" Adam iterations per search step (paper: up to 10000)
  int64_t binary_search_steps = 9;   ///< "binary_search_steps" (paper: 9)
  double learning_rate = 0.01;       ///< "learning_rate" Adam step (paper: 0.01)
  double initial_const = 1e-3;       ///< "initial_const" c_0 (paper: 1e-3)
  double confidence = 0.0;           ///< "confidence" kappa (paper: 0)
  bool abort_early = true;           ///< "abort_early": stop a search step when the objective stalls (checked every steps/10)
  static const OptionTable<CwOptions>& table();
  static CwOptions from_json(const nlohmann::json& j, OptionSpelling spelling = OptionSpelling::kKey);
  nlohmann::json to_json() const;
};

class CarliniWagnerL2 : public Attack {
 public:
  explicit CarliniWagnerL2(CwOptions o = {}) : o_(o) {}
  std::string name() const override { return "cw"; }
  nlohmann::json options_json() const override { return o_.to_json(); }
  LossKind loss_kind() const override { return LossKind::kMargin; }
  bool supports(Norm) const override { return true; }
  bool minimises_norm() const override { return true; }

 protected:
  torch::Tensor perturb(AttackContext& ctx) override;

 private:
  CwOptions o_;
};

}  // namespace imbench::attacks
