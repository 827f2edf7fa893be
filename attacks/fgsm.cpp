#include "attacks/fgsm.h"

namespace imbench::attacks {

torch::Tensor steepest_direction(const torch::Tensor& g, Norm norm) {
  if (norm == Norm::kLinf) return g.sign();
  return g / l2_norm(g).clamp_min(1e-12).view(per_example_shape(g));
}

torch::Tensor is_adversarial(const torch::Tensor& z, const torch::Tensor& y, const torch::Tensor& targets) {
  const auto pred = z.argmax(1);
  return targets.defined() ? pred.eq(targets) : pred.ne(y);
}

const OptionTable<FgsmOptions>& FgsmOptions::table() {
  static const auto table = OptionTable<FgsmOptions>().choice(
      "loss", &FgsmOptions::loss, "loss to maximise: ce (cross-entropy), margin (Carlini-Wagner) or dlr", kAttackLosses,
      to_string, parse_loss);
  return table;
}

FgsmOptions FgsmOptions::from_json(const nlohmann::json& j, OptionSpelling spelling) {
  return table().from_json(j, attack_option_context("fgsm", spelling));
}

nlohmann::json FgsmOptions::to_json() const { return table().to_json(*this); }

torch::Tensor Fgsm::perturb(AttackContext& ctx) {
  const auto g = ctx.oracle.loss_and_grad(ctx.x, ctx.y, ctx.targets, make_loss(o_.loss)).grad;
  return ctx.x + ctx.threat.eps * steepest_direction(g, ctx.threat.norm);
}

}  // namespace imbench::attacks
