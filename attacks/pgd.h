#pragma once
#include "attacks/fgsm.h"

namespace imbench::attacks {

/// Projected gradient descent (Madry et al. 2018), Linf and L2:
///   x_{k+1} = P(x_k + alpha d(grad)),  d = sign (Linf) or grad / ||grad||_2 (L2),
/// P the projection onto the eps-ball and the input box. With restarts, each
/// example keeps the restart that fooled the model (then the higher loss).
struct PgdOptions {
  int64_t steps = 40;            ///< "steps"
  double step_size = 0;          ///< "step_size" alpha in input units; 0 = step_size_factor eps / steps
  /// "step_size_factor": with step_size 0, alpha = step_size_factor eps / steps (Madry et al.: 2.5)
  double step_size_factor = 2.5;
  bool random_start = true;      ///< "random_start": uniform in the Linf ball / uniform in the L2 ball
  int64_t restarts = 1;          ///< "restarts"
  bool early_stop = false;       ///< "early_stop": stop updating examples already adversarial
  int64_t check_every = 10;      ///< "check_every": steps between early-stop checks (the only host syncs)
  LossKind loss = LossKind::kCrossEntropy;  ///< "loss": ce, margin or dlr
  static const OptionTable<PgdOptions>& table();
  static PgdOptions from_json(const nlohmann::json& j, OptionSpelling spelling = OptionSpelling::kKey);
  nlohmann::json to_json() const;
};

class Pgd : public Attack {
 public:
  explicit Pgd(PgdOptions o = {}) : o_(o) {}
  std::string name() const override { return "pgd"; }
  nlohmann::json options_json() const override { return o_.to_json(); }
  /// step_size 0 (the default) resolved to step_size_factor eps / steps.
  nlohmann::json effective_options(const ThreatModel& t) const override;
  LossKind loss_kind() const override { return o_.loss; }
  bool supports(Norm) const override { return true; }
  /// The step size used for a given eps.
  double step_size(double eps) const;

 protected:
  torch::Tensor perturb(AttackContext& ctx) override;

 private:
  torch::Tensor one_restart(AttackContext& ctx, bool random_start);
  PgdOptions o_;
};

/// One ascent step x + alpha d(g) projected onto the threat around x0 and the
/// box. On the CPU the Linf step is one fused pass over the pixels.
torch::Tensor ascent_step(const torch::Tensor& xa, const torch::Tensor& g, const torch::Tensor& x0, double alpha,
                          const ThreatModel& threat);

/// A uniform random point of the eps-ball around x (Linf: per pixel; L2:
/// uniform in the ball), projected to the box.
torch::Tensor random_start_point(const AttackContext& ctx);

}  // namespace imbench::attacks
