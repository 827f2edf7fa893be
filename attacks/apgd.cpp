#include "attacks/apgd.h"

#include <cmath>

namespace imbench::attacks {

const OptionTable<ApgdOptions>& ApgdOptions::table() {
  using O = ApgdOptions;
  static const auto table =
      OptionTable<O>()
          .integer("steps", &O::steps, "iterations; AutoAttack: 100", budget(2, kMaxSteps))
          .integer("restarts", &O::restarts, "runs from fresh starts; per example the best is kept",
                   budget(1, kMaxRestarts))
          .number("rho", &O::rho,
                  "halve the step size when fewer steps than this share raised the loss; AutoAttack: 0.75",
                  above_and_at_most(0, 1))
          .number("momentum", &O::momentum, "weight a of the new step against the last one; AutoAttack: 0.75",
                  above_and_at_most(0, 1))
          .boolean("random_start", &O::random_start, "start uniformly at random in the eps-ball");
  return table;
}

ApgdOptions ApgdOptions::from_json(const nlohmann::json& j, LossKind loss, const std::string& name,
                                   OptionSpelling spelling) {
  ApgdOptions o;
  o.loss = loss;
  return table().from_json(j, attack_option_context(name, spelling), o);
}

// The loss is not an option: it is fixed by the attack's name (apgd-ce, apgd-dlr) and reported by loss_kind().
nlohmann::json ApgdOptions::to_json() const { return table().to_json(*this); }

std::vector<int64_t> Apgd::checkpoints(int64_t steps) {
  // p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), in whole
  // steps as AutoAttack computes them (gaps shrink by int(0.03 N) down to int(0.06 N)).
  const auto whole = [steps](double f) { return std::max<int64_t>(static_cast<int64_t>(f * static_cast<double>(steps)), 1); };
  std::vector<int64_t> w{0};
  int64_t gap = whole(0.22);
  const int64_t shrink = whole(0.03), min_gap = whole(0.06);
  while (w.back() + gap < steps) {
    w.push_back(w.back() + gap);
    gap = std::max(gap - shrink, min_gap);
  }
  return w;
}

void Apgd::Kept::offer(const torch::Tensor& x_new, const torch::Tensor& loss_new, const torch::Tensor& adversarial_new) {
  if (!x.defined()) {
    x = x_new.clone(), loss = loss_new.clone(), adversarial = adversarial_new.clone();
    return;
  }
  const auto better = (adversarial_new & adversarial.logical_not()) |
                      (adversarial_new.eq(adversarial) & (loss_new > loss));
  x = torch::where(better.view(per_example_shape(x)), x_new, x);
  loss = torch::where(better, loss_new, loss);
  adversarial = adversarial | adversarial_new;
}

Apgd::Kept Apgd::one_restart(AttackContext& ctx) {
  const auto loss = make_loss(o_.loss);
  const auto& x = ctx.x;
  const int64_t n = x.size(0);
  const auto shape = per_example_shape(x);
  const auto norm = ctx.threat.norm;
  const auto checks = checkpoints(o_.steps);
  auto eta = torch::full({n}, 2 * ctx.threat.eps, x.options());
  auto x_k = o_.random_start ? random_start_point(ctx) : x.clone();
  auto out = ctx.oracle.loss_and_grad(x_k, ctx.y, ctx.targets, loss);
  auto loss_k = out.loss, grad = out.grad;
  // x_best drives the step-size schedule (highest loss); `kept` is what the restart returns.
  auto x_best = x_k.clone(), loss_best = loss_k.clone(), grad_best = grad.clone();
  Kept kept;
  kept.offer(x_k, loss_k, is_adversarial(out.log_probs, ctx.y, ctx.targets));
  // First step without momentum.
  auto x_prev = x_k;
  x_k = ctx.project(x_k + eta.view(shape) * steepest_direction(grad, norm));
  auto increases = torch::zeros({n}, x.options());
  auto eta_at_check = eta.clone(), best_at_check = loss_best.clone();
  std::size_t next_check = 1;
  for (int64_t k = 1; k < o_.steps; ++k) {
    out = ctx.oracle.loss_and_grad(x_k, ctx.y, ctx.targets, loss);
    increases += (out.loss > loss_k).to(x.scalar_type());
    loss_k = out.loss;
    grad = out.grad;
    kept.offer(x_k, loss_k, is_adversarial(out.log_probs, ctx.y, ctx.targets));
    const auto better = loss_k > loss_best;
    x_best = torch::where(better.view(shape), x_k, x_best);
    grad_best = torch::where(better.view(shape), grad, grad_best);
    loss_best = torch::where(better, loss_k, loss_best);
    const auto z = ctx.project(x_k + eta.view(shape) * steepest_direction(grad, norm));
    auto x_next = ctx.project(x_k + o_.momentum * (z - x_k) + (1 - o_.momentum) * (x_k - x_prev));
    if (next_check < checks.size() && k == checks[next_check]) {
      const double span = static_cast<double>(checks[next_check] - checks[next_check - 1]);
      const auto few_increases = increases < o_.rho * span;
      const auto stalled = eta.eq(eta_at_check) & loss_best.eq(best_at_check);
      const auto reduce = few_increases | stalled;
      eta = torch::where(reduce, eta / 2, eta);
      // Halving restarts from the best point, with its gradient.
      x_next = torch::where(reduce.view(shape),
                            ctx.project(x_best + eta.view(shape) * steepest_direction(grad_best, norm)), x_next);
      increases.zero_();
      eta_at_check = eta.clone();
      best_at_check = loss_best.clone();
      ++next_check;
    }
    x_prev = x_k;
    x_k = x_next;
  }
  // The last iterate has not been scored yet.
  out = ctx.oracle.loss_only(x_k, ctx.y, ctx.targets, loss);
  kept.offer(x_k, out.loss, is_adversarial(out.log_probs, ctx.y, ctx.targets));
  return kept;
}

torch::Tensor Apgd::perturb(AttackContext& ctx) {
  Kept best;
  for (int64_t r = 0; r < o_.restarts; ++r) {
    const auto run = one_restart(ctx);
    best.offer(run.x, run.loss, run.adversarial);
  }
  return best.x;
}

}  // namespace imbench::attacks
