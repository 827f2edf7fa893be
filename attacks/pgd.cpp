#include "attacks/pgd.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

namespace imbench::attacks {

const OptionTable<PgdOptions>& PgdOptions::table() {
  using O = PgdOptions;
  static const auto table =
      OptionTable<O>()
          .integer("steps", &O::steps, "iterations", budget(1, kMaxSteps))
          .number("step_size", &O::step_size, "step size alpha in input units; 0: step_size_factor eps / steps",
                  at_least(0))
          .number("step_size_factor", &O::step_size_factor,
                  "with step_size 0: alpha in units of eps / steps, so one value fits every eps; Madry et al.: 2.5",
                  above(0))
          .boolean("random_start", &O::random_start, "start uniformly at random in the eps-ball")
          .integer("restarts", &O::restarts, "runs from fresh starts; per example the best is kept",
                   budget(1, kMaxRestarts))
          .boolean("early_stop", &O::early_stop, "stop updating examples already adversarial")
          .integer("check_every", &O::check_every, "with early_stop: steps between checks (the only host syncs)",
                   at_least(1))
          .choice("loss", &O::loss, "loss to maximise: ce (cross-entropy), margin (Carlini-Wagner) or dlr",
                  kAttackLosses, to_string, parse_loss);
  return table;
}

PgdOptions PgdOptions::from_json(const nlohmann::json& j, OptionSpelling spelling) {
  return table().from_json(j, attack_option_context("pgd", spelling));
}

nlohmann::json PgdOptions::to_json() const { return table().to_json(*this); }

nlohmann::json Pgd::effective_options(const ThreatModel& t) const {
  auto j = o_.to_json();
  j["step_size"] = step_size(t.eps);
  return j;
}

double Pgd::step_size(double eps) const {
  return o_.step_size > 0 ? o_.step_size : o_.step_size_factor * eps / static_cast<double>(o_.steps);
}

torch::Tensor ascent_step(const torch::Tensor& xa, const torch::Tensor& g, const torch::Tensor& x0, double alpha,
                          const ThreatModel& t) {
  const bool fused = t.norm == Norm::kLinf && xa.device().is_cpu() && xa.scalar_type() == torch::kFloat &&
                     g.scalar_type() == torch::kFloat && x0.scalar_type() == torch::kFloat;
  if (!fused) return project_to_threat(xa + alpha * steepest_direction(g, t.norm), x0, t);
  // Six element-wise kernels (sign, scale, add, subtract, two clamps) as one pass.
  const auto a = xa.contiguous(), gc = g.contiguous(), x = x0.contiguous();
  auto out = torch::empty_like(a);
  const float* pa = a.data_ptr<float>();
  const float* pg = gc.data_ptr<float>();
  const float* px = x.data_ptr<float>();
  float* po = out.data_ptr<float>();
  const float step = static_cast<float>(alpha), lo = static_cast<float>(t.lower), hi = static_cast<float>(t.upper);
  const float eps = std::isfinite(t.eps) ? static_cast<float>(t.eps) : std::numeric_limits<float>::infinity();
  at::parallel_for(0, a.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float s = static_cast<float>((pg[i] > 0.0f) - (pg[i] < 0.0f));
      float v = pa[i] + step * s;
      v = std::min(std::max(v, px[i] - eps), px[i] + eps);
      po[i] = std::min(std::max(v, lo), hi);
    }
  });
  return out;
}

torch::Tensor random_start_point(const AttackContext& ctx) {
  const auto& x = ctx.x;
  const double eps = ctx.threat.eps;
  if (ctx.threat.norm == Norm::kLinf) return ctx.project(x + (torch::rand_like(x) * 2 - 1) * eps);
  // Uniform in the L2 ball: Gaussian direction, radius eps u^(1/d).
  auto g = torch::randn_like(x);
  const auto d = static_cast<double>(x[0].numel());
  const auto radius = eps * torch::rand({x.size(0)}, x.options()).pow(1.0 / d);
  return ctx.project(x + steepest_direction(g, Norm::kL2) * radius.view(per_example_shape(x)));
}

torch::Tensor Pgd::one_restart(AttackContext& ctx, bool random_start) {
  const auto loss = make_loss(o_.loss);
  const double alpha = step_size(ctx.threat.eps);
  auto xa = random_start ? random_start_point(ctx) : ctx.x.clone();
  if (!o_.early_stop) {
    for (int64_t k = 0; k < o_.steps; ++k) {
      const auto g = ctx.oracle.loss_and_grad(xa, ctx.y, ctx.targets, loss).grad;
      xa = ascent_step(xa, g, ctx.x, alpha, ctx.threat);
    }
    return xa;
  }
  // Early stop: every check_every steps, examples already adversarial leave
  // the working set (the only host synchronisation of the loop).
  auto active = torch::arange(ctx.x.size(0), torch::TensorOptions().dtype(torch::kLong).device(ctx.x.device()));
  for (int64_t k = 0; k < o_.steps && active.numel() > 0; ++k) {
    const auto x0 = ctx.x.index_select(0, active), y = ctx.y.index_select(0, active);
    const auto t = ctx.targeted() ? ctx.targets.index_select(0, active) : torch::Tensor();
    auto xs = xa.index_select(0, active);
    const auto g = ctx.oracle.loss_and_grad(xs, y, t, loss).grad;
    xs = ascent_step(xs, g, x0, alpha, ctx.threat);
    xa.index_copy_(0, active, xs);
    if ((k + 1) % o_.check_every == 0) {
      const auto done = is_adversarial(ctx.oracle.loss_only(xs, y, t, loss).log_probs, y, t);
      active = active.index_select(0, done.logical_not().nonzero().squeeze(1));
    }
  }
  return xa;
}

torch::Tensor Pgd::perturb(AttackContext& ctx) {
  const auto loss = make_loss(o_.loss);
  torch::Tensor best, best_adv, best_loss;
  for (int64_t r = 0; r < o_.restarts; ++r) {
    auto xa = one_restart(ctx, o_.random_start);
    if (o_.restarts == 1) return xa;
    const auto out = ctx.oracle.loss_only(xa, ctx.y, ctx.targets, loss);
    const auto adv = is_adversarial(out.log_probs, ctx.y, ctx.targets);
    if (!best.defined()) {
      best = xa, best_adv = adv, best_loss = out.loss;
      continue;
    }
    const auto better = (adv & best_adv.logical_not()) | (adv.eq(best_adv) & (out.loss > best_loss));
    best = torch::where(better.view(per_example_shape(xa)), xa, best);
    best_adv = best_adv | adv;
    best_loss = torch::where(better, out.loss, best_loss);
  }
  return best;
}

}  // namespace imbench::attacks
