#pragma once
#include "attacks/pgd.h"

namespace imbench::attacks {

/// Auto-PGD (Croce and Hein 2020, the core of AutoAttack), Linf and L2:
/// momentum steps x_{k+1} = P(x_k + a (z_{k+1} - x_k) + (1 - a)(x_k - x_{k-1})),
/// z_{k+1} = P(x_k + eta d(grad)), with a step size eta (initially 2 eps) halved
/// at checkpoints w_j = ceil(p_j N), p_0 = 0, p_1 = 0.22,
/// p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), when fewer than rho of
/// the steps since the last checkpoint raised the loss, or when neither eta
/// nor the best loss changed; the iterate then restarts from the best point.
/// Per example the returned point is, across iterations and restarts, the
/// highest-loss adversarial point found, or the highest-loss point when none
/// was adversarial (the step-size schedule follows the loss alone, as in
/// AutoAttack). "apgd-ce" uses the
/// cross-entropy, "apgd-dlr" the DLR loss (targeted DLR when targeted: as in
/// AutoAttack's APGD-T it raises z_t against z_y to cause a misclassification;
/// use apgd-ce or pgd to reach a given target class).
struct ApgdOptions {
  int64_t steps = 100;       ///< "steps" (AutoAttack: 100)
  int64_t restarts = 1;      ///< "restarts"
  double rho = 0.75;         ///< "rho" checkpoint condition (AutoAttack: 0.75)
  double momentum = 0.75;    ///< "momentum" a (AutoAttack: 0.75)
  bool random_start = true;  ///< "random_start" uniform start in the ball (AutoAttack: true)
  LossKind loss = LossKind::kCrossEntropy;
  /// The options; the loss is no option (the attack's name fixes it).
  static const OptionTable<ApgdOptions>& table();
  static ApgdOptions from_json(const nlohmann::json& j, LossKind loss, const std::string& name,
                               OptionSpelling spelling = OptionSpelling::kKey);
  nlohmann::json to_json() const;
};

class Apgd : public Attack {
 public:
  Apgd(ApgdOptions o, std::string name) : o_(o), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  nlohmann::json options_json() const override { return o_.to_json(); }
  LossKind loss_kind() const override { return o_.loss; }
  bool supports(Norm) const override { return true; }
  /// The checkpoints w_j for a number of steps.
  static std::vector<int64_t> checkpoints(int64_t steps);

 protected:
  torch::Tensor perturb(AttackContext& ctx) override;

 private:
  /// The point kept per example, its loss and whether it was adversarial when scored.
  struct Kept {
    torch::Tensor x, loss, adversarial;
    /// Takes the candidates that are adversarial where the kept point is
    /// not, or as adversarial with a higher loss.
    void offer(const torch::Tensor& x_new, const torch::Tensor& loss_new, const torch::Tensor& adversarial_new);
  };
  Kept one_restart(AttackContext& ctx);
  ApgdOptions o_;
  std::string name_;
};

}  // namespace imbench::attacks
