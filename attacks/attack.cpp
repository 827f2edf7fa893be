#include "attacks/attack.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "core/errors.h"
#include "models/device.h"

namespace imbench::attacks {
namespace {

// Freezes parameters and sets eval mode for the duration of an attack.
torch::Tensor per_example(const torch::Tensor& d) { return d.flatten(1); }

}  // namespace

void RunOptions::validate() const {
  eot.validate();
  if (repeats < 1) throw UsageError(fmt::format("--repeats must be >= 1, got {}", repeats));
}

double AttackResult::robust_accuracy() const { return adversarial_correct.to(torch::kDouble).mean().item<double>(); }
double AttackResult::clean_accuracy() const { return clean_correct.to(torch::kDouble).mean().item<double>(); }
double AttackResult::robust_accuracy_std() const {
  if (adversarial_correct.size(0) < 2) return 0.0;
  return adversarial_correct.to(torch::kDouble).mean(1).std().item<double>();
}
double AttackResult::robust_accuracy_worst() const {
  return adversarial_correct.all(0).to(torch::kDouble).mean().item<double>();
}

std::vector<int64_t> per_example_shape(const torch::Tensor& x) {
  std::vector<int64_t> shape(static_cast<std::size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  return shape;
}

torch::Tensor linf_norm(const torch::Tensor& d) { return std::get<0>(per_example(d).abs().max(1)); }
torch::Tensor l2_norm(const torch::Tensor& d) { return per_example(d).norm(2, 1); }
torch::Tensor l0_norm(const torch::Tensor& d) { return (per_example(d).abs() > 1e-6).sum(1).to(torch::kFloat); }

torch::Tensor project_to_threat(const torch::Tensor& x_adv, const torch::Tensor& x, const ThreatModel& t) {
  auto d = x_adv - x;
  if (std::isfinite(t.eps)) {
    if (t.norm == Norm::kLinf) {
      d = d.clamp(-t.eps, t.eps);
    } else {
      const auto n = l2_norm(d);
      const auto factor = (t.eps / n.clamp_min(1e-12)).clamp_max(1.0);
      d = d * factor.view(per_example_shape(d));
    }
  }
  return (x + d).clamp(t.lower, t.upper);
}

torch::Tensor AttackContext::project(const torch::Tensor& x_adv) const { return project_to_threat(x_adv, x, threat); }

torch::Tensor choose_targets(models::Model& model, const torch::Tensor& x, const torch::Tensor& y, TargetRule rule,
                             const RunOptions& options) {
  const int64_t c = model.num_classes();
  switch (rule) {
    case TargetRule::kNone: return {};
    case TargetRule::kGiven: {
      if (!options.targets.defined() || options.targets.numel() != y.numel())
        throw UsageError("target rule 'given' needs one target per example");
      auto t = options.targets.to(y.device(), torch::kLong);
      if ((t < 0).any().item<bool>() || (t >= c).any().item<bool>())
        throw UsageError(fmt::format("given targets must be class indices in 0-{}", c - 1));
      if (t.eq(y).any().item<bool>()) throw UsageError("a given target equals the true label");
      return t;
    }
    case TargetRule::kRandom: {
      // A random class other than y, from its own seeded generator.
      auto gen = at::detail::createCPUGenerator(options.seed ^ 0x7a3e1f0bULL);
      auto offset = torch::randint(1, c, {y.numel()}, gen, torch::kLong).to(y.device());
      return (y + offset).remainder(c);
    }
    case TargetRule::kLeastLikely: {
      auto p = model.predict_proba(x);
      p.scatter_(1, y.unsqueeze(1), std::numeric_limits<float>::infinity());
      return p.argmin(1);
    }
    case TargetRule::kNextClass: return (y + 1).remainder(c);
  }
  return {};
}

AttackResult Attack::run(models::Model& model, const torch::Tensor& x_in, const torch::Tensor& y_in,
                         const ThreatModel& threat, const RunOptions& options) {
  threat.validate();
  options.validate();
  if (!supports(threat.norm))
    throw UsageError(fmt::format("attack '{}' does not support the {} norm", name(), to_string(threat.norm)));
  if (std::isinf(threat.eps) && !minimises_norm())
    throw UsageError(fmt::format("attack '{}' needs a finite eps", name()));
  model.check_input(x_in);
  if (threat.norm == Norm::kL2 && std::isfinite(threat.eps) && x_in.dim() > 0 && x_in.size(0) > 0) {
    const double diagonal = (threat.upper - threat.lower) * std::sqrt(static_cast<double>(x_in[0].numel()));
    if (threat.eps > diagonal)
      throw UsageError(
          fmt::format("--eps {:g} is larger than the L2 diameter {:g} of the input box [{:g}, {:g}]^{}; "
                      "use at most that, or inf with a minimum-norm attack",
                      threat.eps, diagonal, threat.lower, threat.upper, x_in[0].numel()));
  }
  if (y_in.dim() != 1 || y_in.size(0) != x_in.size(0))
    throw UsageError(fmt::format("labels must be [N] with N = {}", x_in.size(0)));
  const auto device = model.device();
  const auto x = x_in.detach().to(device, torch::kFloat).clone();
  const auto y = y_in.detach().to(device, torch::kLong);
  if (!torch::isfinite(x).all().item<bool>()) throw Error("attack input contains NaN or Inf");
  if ((x < threat.lower - 1e-6).any().item<bool>() || (x > threat.upper + 1e-6).any().item<bool>())
    throw UsageError(fmt::format("attack input lies outside the box [{:g}, {:g}]", threat.lower, threat.upper));
  if ((y < 0).any().item<bool>() || (y >= model.num_classes()).any().item<bool>())
    throw UsageError(fmt::format("labels must be in 0-{}", model.num_classes() - 1));

  const auto start = std::chrono::steady_clock::now();
  FrozenModel frozen(model);
  models::seed_everything(options.seed);
  const auto targets = choose_targets(model, x, y, threat.target, options);
  GradientOracle oracle(model, options.eot);
  AttackContext ctx{model, x, y, targets, threat, oracle};
  torch::Tensor x_adv = x.numel() == 0 ? x.clone() : perturb(ctx);
  x_adv = ctx.project(x_adv.detach());

  AttackResult r;
  r.x_adv = x_adv;
  r.targets = targets;
  r.eot_samples = oracle.samples();
  r.repeats = model.is_stochastic() ? options.repeats : 1;
  {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> clean, clean_pred, adv, adv_pred, success;
    auto judge_clean = [&](const torch::Tensor& pred) {
      clean_pred.push_back(pred);
      clean.push_back(pred.eq(y));
    };
    auto judge = [&](const torch::Tensor& pred) {
      adv_pred.push_back(pred);
      adv.push_back(pred.eq(y));
      success.push_back(targets.defined() ? pred.eq(targets) : pred.ne(y));
    };
    if (!model.is_stochastic()) {
      // One forward of x_adv serves the prediction and the final loss.
      if (options.evaluate_clean) judge_clean(model.predict(x));
      const auto z = model.logits(x_adv);
      judge(z.argmax(1));
      r.final_loss = attack_loss(loss_kind(), z, y, targets);
    } else {
      for (int64_t k = 0; k < r.repeats; ++k) {
        if (options.evaluate_clean) judge_clean(model.predict(x));
        judge(model.predict(x_adv));
      }
      r.final_loss = oracle.loss_only(x_adv, y, targets, make_loss(loss_kind())).loss;
    }
    if (options.evaluate_clean) {
      r.clean_correct = torch::stack(clean);
      r.clean_prediction = torch::stack(clean_pred);
    }
    r.adversarial_correct = torch::stack(adv);
    r.adversarial_prediction = torch::stack(adv_pred);
    r.success = torch::stack(success);
    const auto d = x_adv - x;
    r.linf = linf_norm(d);
    r.l2 = l2_norm(d);
    r.l0 = l0_norm(d);
  }
  const int64_t n = std::max<int64_t>(1, x.size(0));
  r.gradient_evaluations = torch::full({x.size(0)}, oracle.gradient_evaluations() / n, torch::kLong);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace imbench::attacks
