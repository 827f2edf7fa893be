#include "attacks/fgsm.h"

#include "attacks/options.h"

namespace imbench::attacks {

torch::Tensor steepest_direction(const torch::Tensor& g, Norm norm) {
  if (norm == Norm::kLinf) return g.sign();
  return g / l2_norm(g).clamp_min(1e-12).view(per_example_shape(g));
}

torch::Tensor is_adversarial(const torch::Tensor& z, const torch::Tensor& y, const torch::Tensor& targets) {
  const auto pred = z.argmax(1);
  return targets.defined() ? pred.eq(targets) : pred.ne(y);
}

FgsmOptions FgsmOptions::from_json(const nlohmann::json& j) {
  OptionReader r(j, "fgsm");
  FgsmOptions o;
  o.loss = parse_loss(r.get<std::string>("loss", to_string(o.loss)));
  r.finish();
  return o;
}

nlohmann::json FgsmOptions::to_json() const { return {{"loss", to_string(loss)}}; }

torch::Tensor Fgsm::perturb(AttackContext& ctx) {
  const auto g = ctx.oracle.loss_and_grad(ctx.x, ctx.y, ctx.targets, make_loss(o_.loss)).grad;
  return ctx.x + ctx.threat.eps * steepest_direction(g, ctx.threat.norm);
}

}  // namespace imbench::attacks
