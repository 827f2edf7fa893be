#include "harness/checks.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "attacks/losses.h"
#include "models/family.h"

namespace imbench::harness {
namespace {

reports::Flag flag(int check, const std::string& name, bool failed, std::string detail) {
  return {check, name, failed, std::move(detail)};
}

}  // namespace

reports::Flag check_randomness(models::Model& model, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  model.set_training(false);
  const auto first = torch::log_softmax(model.logits(x), 1);
  const auto first_pred = first.argmax(1);
  double max_diff = 0;
  int64_t changed = 0;
  for (int k = 0; k < 4; ++k) {
    const auto again = torch::log_softmax(model.logits(x), 1);
    max_diff = std::max(max_diff, (again - first).abs().max().item<double>());
    changed = std::max(changed, again.argmax(1).ne(first_pred).sum().item<int64_t>());
  }
  const bool random = max_diff > 1e-4 || changed > 0;
  const std::string seen = fmt::format("5 clean passes on {} examples: max |log-softmax difference| {:.3g}, up to {} predictions changed",
                                       x.size(0), max_diff, changed);
  if (random && !model.is_stochastic())
    return flag(1, "randomness", true, seen + "; the model is random but declared deterministic, so it was attacked without EOT");
  if (!random && model.is_stochastic())
    return flag(1, "randomness", false, seen + "; declared stochastic but the passes agree (EOT used anyway)");
  return flag(1, "randomness", false, seen + (random ? "; stochastic, attacked with EOT" : "; deterministic"));
}

reports::Flag check_logits(models::Model& model, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const auto z = model.logits(x);
  const auto in_unit = ((z >= 0) & (z <= 1)).all(1);
  const auto sums_to_one = (z.sum(1) - 1).abs() < 1e-3;
  const double share = (in_unit & sums_to_one).to(torch::kDouble).mean().item<double>();
  const bool failed = share > 0.9;
  return flag(4, "logits", failed,
              fmt::format("{:.0f}% of {} output rows look like probabilities (in [0, 1], summing to 1){}", share * 100,
                          x.size(0), failed ? ": the model must return logits, or CE gradients vanish" : ""));
}

reports::Flag check_gradient_health(models::Model& model, const torch::Tensor& x, const torch::Tensor& y,
                                    const attacks::EotOptions& eot) {
  attacks::FrozenModel frozen(model);
  attacks::GradientOracle oracle(model, eot);
  const auto g = oracle.loss_and_grad(x, y, {}, attacks::make_loss(attacks::LossKind::kCrossEntropy)).grad.flatten(1);
  const double nonfinite = (~torch::isfinite(g)).to(torch::kDouble).mean().item<double>();
  const double zero_examples = g.abs().amax(1).eq(0).to(torch::kDouble).mean().item<double>();
  const double zero_entries = g.eq(0).to(torch::kDouble).mean().item<double>();
  const bool failed = nonfinite > 0 || zero_examples > 0.1;
  return flag(5, "gradient-health", failed,
              fmt::format("CE input gradient on {} clean examples (EOT {}): {:.2g}% NaN/Inf entries, {:.1f}% examples "
                          "with an all-zero gradient, {:.1f}% zero entries{}",
                          x.size(0), oracle.samples(), nonfinite * 100, zero_examples * 100, zero_entries * 100,
                          failed ? " (threshold: any NaN/Inf, or > 10% all-zero examples)" : ""));
}

reports::Flag check_model_mode(models::Model& model) {
  std::vector<std::string> problems;
  if (auto* t = dynamic_cast<models::TrainableModel*>(&model)) {
    if (t->module().is_training()) problems.push_back("module in training mode");
  }
  if (model.is_stochastic() && model.sampling() != models::Sampling::kOn)
    problems.push_back("sampling is not on (the threat model attacks the sampling network)");
  const bool checked = dynamic_cast<models::TrainableModel*>(&model) != nullptr;
  if (!problems.empty())
    return flag(12, "model-mode", true, fmt::format("{}", fmt::join(problems, "; ")));
  return flag(12, "model-mode", false,
              checked ? "eval mode; sampling on for stochastic models" : "TorchScript: eval mode set, sampling as exported");
}

int64_t count_invalid(const torch::Tensor& x_adv, const torch::Tensor& x, const torch::Tensor& x_before,
                      const attacks::ThreatModel& threat) {
  torch::NoGradGuard no_grad;
  const auto d = (x_adv - x).flatten(1);
  auto bad = ~torch::isfinite(x_adv.flatten(1)).all(1);
  bad |= ((x_adv.flatten(1) < threat.lower - 1e-6) | (x_adv.flatten(1) > threat.upper + 1e-6)).any(1);
  if (std::isfinite(threat.eps)) {
    const auto n = threat.norm == attacks::Norm::kLinf ? attacks::linf_norm(d) : attacks::l2_norm(d);
    bad |= n > threat.eps + 1e-6;
  }
  bad |= (x != x_before).flatten(1).any(1);
  return bad.sum().item<int64_t>();
}

torch::Tensor FixedNoiseModel::logits(const torch::Tensor& x) {
  torch::manual_seed(seed_);
  return inner_.sample_logits(x, 1)[0];
}

void apply_cross_cell_checks(reports::ResultFile& file) {
  // Re-runs replace this function's own flags (by name: check 9 also has the
  // audit's "noise-vs-white-box" flag, written per cell, which must stay).
  for (auto& c : file.cells)
    c.flags.erase(std::remove_if(c.flags.begin(), c.flags.end(),
                                 [](const reports::Flag& f) {
                                   return f.name == "eps-monotonicity" || f.name == "white-vs-transfer";
                                 }),
                  c.flags.end());
  int64_t classes = 10;
  if (file.root.count("num_classes")) classes = std::stoll(file.root.at("num_classes"));
  // 7: the same attack at a larger eps must not leave more examples robust.
  std::map<std::string, std::vector<reports::CellResult*>> series;
  for (auto& c : file.cells)
    series[c.model + "|" + c.attack + "|" + c.norm + "|" + (c.targeted ? c.target_rule : "none")].push_back(&c);
  for (auto& [key, cells] : series) {
    std::sort(cells.begin(), cells.end(), [](auto* a, auto* b) { return a->eps < b->eps; });
    for (std::size_t i = 0; i < cells.size(); ++i) {
      auto& c = *cells[i];
      const double acc = c.summary["robust_accuracy"];
      const double n = std::max<double>(1.0, static_cast<double>(c.size()));
      if (i > 0) {
        auto& p = *cells[i - 1];
        const double prev = p.summary["robust_accuracy"];
        // Allowed slack: one example, or twice the repeat noise of a stochastic model.
        const double slack = std::max(1.0 / n + 1e-12, 2 * std::max(c.summary["robust_accuracy_std"], p.summary["robust_accuracy_std"]));
        if (acc > prev + slack) {
          c.flags.push_back({7, "eps-monotonicity", true,
                             fmt::format("robust accuracy {:.2f}% at eps {} is above {:.2f}% at eps {}", acc * 100,
                                         c.eps_text, prev * 100, p.eps_text)});
          continue;
        }
      }
      if (c.norm == "linf" && c.eps >= 1.0 && !c.targeted) {
        const bool above = acc > 1.0 / static_cast<double>(classes) + 2.0 / std::sqrt(n);
        c.flags.push_back({7, "eps-monotonicity", above,
                           fmt::format("eps {} covers the input range: robust accuracy {:.2f}% {} chance ({:.0f}%)", c.eps_text,
                                       acc * 100, above ? "is above" : "is at or below", 100.0 / static_cast<double>(classes))});
      } else if (i > 0) {
        c.flags.push_back({7, "eps-monotonicity", false,
                           fmt::format("{:.2f}% at eps {} <= {:.2f}% at eps {} (+ slack)", acc * 100, c.eps_text,
                                       cells[i - 1]->summary["robust_accuracy"] * 100, cells[i - 1]->eps_text)});
      }
    }
  }
  // 9: a transfer attack after white-box attacks in a cascade.
  std::map<std::string, std::vector<reports::CellResult*>> groups;
  for (auto& c : file.cells) groups[c.group].push_back(&c);
  for (auto& [g, cells] : groups) {
    std::sort(cells.begin(), cells.end(), [](auto* a, auto* b) { return a->cascade_position < b->cascade_position; });
    for (std::size_t i = 1; i < cells.size(); ++i) {
      auto& c = *cells[i];
      if (c.source_model.empty()) continue;
      bool white_before = false;
      for (std::size_t k = 0; k < i; ++k) white_before |= cells[k]->source_model.empty();
      if (!white_before) continue;
      auto& p = *cells[i - 1];
      const double drop_pts = p.summary["robust_accuracy"] - c.summary["robust_accuracy"];
      const double slack = std::max(0.01, 3 * std::max(c.summary["robust_accuracy_std"], p.summary["robust_accuracy_std"]));
      const bool failed = drop_pts > slack;
      const std::string detail =
          fmt::format("transfer from {} lowered the accuracy left by the white-box attacks from {:.2f}% to {:.2f}% (slack {:.2f} points)",
                      c.source_model, p.summary["robust_accuracy"] * 100, c.summary["robust_accuracy"] * 100, slack * 100);
      c.flags.push_back({9, "white-vs-transfer", failed, detail});
      if (failed)
        for (std::size_t k = 0; k < i; ++k)
          if (cells[k]->source_model.empty())
            cells[k]->flags.push_back({9, "white-vs-transfer", true, "a transfer attack beat this white-box attack: " + detail});
    }
  }
}

}  // namespace imbench::harness
