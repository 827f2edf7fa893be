#include "attacks/cw.h"

#include <cmath>

namespace imbench::attacks {

const OptionTable<CwOptions>& CwOptions::table() {
  using O = CwOptions;
  static const auto table =
      OptionTable<O>()
          .integer("steps", &O::steps, "Adam iterations per binary-search step; the paper: up to 10000",
                   budget(1, kMaxSteps))
          .integer("binary_search_steps", &O::binary_search_steps, "binary-search steps over c; the paper: 9",
                   budget(1, kMaxBinarySearchSteps))
          .number("learning_rate", &O::learning_rate, "Adam step size; the paper: 0.01", above(0))
          .number("initial_const", &O::initial_const, "c_0, the first weight of the margin term; the paper: 1e-3",
                  above(0))
          .number("confidence", &O::confidence, "kappa, the margin a success needs; the paper: 0", at_least(0))
          .boolean("abort_early", &O::abort_early,
                   "stop a search step when the objective stalls, checked every steps/10");
  return table;
}

CwOptions CwOptions::from_json(const nlohmann::json& j, OptionSpelling spelling) {
  return table().from_json(j, attack_option_context("cw", spelling));
}

nlohmann::json CwOptions::to_json() const { return table().to_json(*this); }

torch::Tensor CarliniWagnerL2::perturb(AttackContext& ctx) {
  const auto& x = ctx.x;
  const double lo = ctx.threat.lower, hi = ctx.threat.upper, half = (hi - lo) / 2;
  const int64_t n = x.size(0);
  const auto shape = per_example_shape(x);
  const double kappa = o_.confidence;
  // g(x) = min(m(x), kappa) is maximised; c g enters the objective with a minus sign.
  const LossFn g = [kappa](const torch::Tensor& z, const torch::Tensor& y, const torch::Tensor& t) {
    return (t.defined() ? -margin(z, t) : margin(z, y)).clamp_max(kappa);
  };
  const auto w0 = torch::atanh(((x - lo) / half - 1).clamp(-1 + 1e-6, 1 - 1e-6));
  const auto opts = x.options();
  auto c = torch::full({n}, o_.initial_const, opts);
  auto c_lo = torch::zeros({n}, opts), c_hi = torch::full({n}, 1e10, opts);
  auto best_l2 = torch::full({n}, std::numeric_limits<float>::infinity(), opts);
  auto best_x = x.clone();
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const int64_t check = std::max<int64_t>(1, o_.steps / 10);
  for (int64_t search = 0; search < o_.binary_search_steps; ++search) {
    auto w = w0.clone(), m = torch::zeros_like(w), v = torch::zeros_like(w);
    auto found = torch::zeros({n}, opts.dtype(torch::kBool));
    // Abort early per example: an example whose objective fell by less than
    // 0.01% over the last steps/10 iterations stops moving.
    auto moving = torch::ones({n}, opts.dtype(torch::kBool));
    auto previous = torch::full({n}, std::numeric_limits<float>::infinity(), opts);
    for (int64_t k = 1; k <= o_.steps; ++k) {
      const auto tw = torch::tanh(w);
      const auto xa = lo + (tw + 1) * half;
      const auto out = ctx.oracle.loss_and_grad(xa, ctx.y, ctx.targets, g);
      const auto d = xa - x;
      const auto l2sq = d.flatten(1).pow(2).sum(1);
      // Success at xa: margin above kappa under the (EOT-reduced) scores.
      const auto score = ctx.targeted() ? -margin(out.log_probs, ctx.targets) : margin(out.log_probs, ctx.y);
      const auto success = kappa > 0 ? score.ge(kappa) : is_adversarial(out.log_probs, ctx.y, ctx.targets);
      const auto improved = success & (l2sq < best_l2.pow(2));
      best_l2 = torch::where(improved, l2sq.sqrt(), best_l2);
      best_x = torch::where(improved.view(shape), xa, best_x);
      found = found | success;
      // Gradient of ||d||^2 - c g with respect to w, then Adam (frozen examples do not move).
      const auto grad_x = 2 * d - c.view(shape) * out.grad;
      const auto grad_w = grad_x * (1 - tw.pow(2)) * half * moving.view(shape);
      m.mul_(b1).add_(grad_w, 1 - b1);
      v.mul_(b2).addcmul_(grad_w, grad_w, 1 - b2);
      const double step = o_.learning_rate * std::sqrt(1 - std::pow(b2, k)) / (1 - std::pow(b1, k));
      w = torch::where(moving.view(shape), w - step * m / (v.sqrt() + eps), w);
      if (o_.abort_early && k % check == 0) {
        const auto objective = l2sq - c * out.loss;
        moving = moving & (objective <= previous * 0.9999);
        previous = objective;
        if (!moving.any().item<bool>()) break;
      }
    }
    // Binary search on c: smaller after a success, larger (x10 until bracketed) after a failure.
    c_hi = torch::where(found, torch::minimum(c_hi, c), c_hi);
    c_lo = torch::where(found, c_lo, torch::maximum(c_lo, c));
    c = torch::where(c_hi < 1e9, (c_lo + c_hi) / 2, c * 10);
  }
  return best_x;
}

}  // namespace imbench::attacks
