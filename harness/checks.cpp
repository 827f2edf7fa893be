#include "harness/checks.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "attacks/losses.h"
#include "core/errors.h"
#include "models/family.h"

namespace imbench::harness {
namespace {

reports::Flag flag(int check, const std::string& name, bool failed, std::string detail) {
  return {check, name, failed, std::move(detail)};
}

// ---- per model -------------------------------------------------------------

void model_randomness(CheckContext& c) { c.flags.push_back(check_randomness(*c.model, c.x)); }
void model_logits(CheckContext& c) { c.flags.push_back(check_logits(*c.model, c.x)); }
void model_gradient_health(CheckContext& c) {
  attacks::EotOptions eot;
  eot.samples = c.settings->eot;
  eot.reduction = c.settings->eot_reduction;
  c.flags.push_back(check_gradient_health(*c.model, c.x, c.y, eot));
}
void model_mode(CheckContext& c) { c.flags.push_back(check_model_mode(*c.model)); }

// 10: an attack with an eps covering the whole input box must (nearly) always succeed.
void model_unbounded_attack(CheckContext& c) {
  auto& model = *c.model;
  auto pgd = attacks::create_attack("pgd", {{"steps", 100}});
  attacks::ThreatModel t;
  t.eps = model.input_bounds().upper - model.input_bounds().lower;
  t.lower = model.input_bounds().lower;
  t.upper = model.input_bounds().upper;
  attacks::RunOptions ro;
  ro.eot.samples = c.settings->eot;
  ro.eot.reduction = c.settings->eot_reduction;
  ro.repeats = c.repeats;
  ro.seed = c.seed;
  const auto r = pgd->run(model, c.x, c.y, t, ro);
  const double acc = r.robust_accuracy();
  c.flags.push_back(flag(10, "unbounded-attack", acc > 0.02,
                         fmt::format("PGD-100 Linf with eps = {:g} (the whole box) on {} examples: robust accuracy {:.2f}% "
                                     "(flag above 2%)",
                                     t.eps, c.x.size(0), acc * 100)));
}

// ---- shared by the per-cell checks ----------------------------------------------

// Examples robust in the majority of repeats, from bool [R, n].
torch::Tensor robust_examples(const torch::Tensor& correct) {
  return correct.to(torch::kDouble).mean(0).cpu() >= 0.5;
}

// The cell's attack again on the check's examples (probe or audit): same seed for every rerun.
attacks::AttackResult audit_rerun(const CheckContext& c, models::Model& m, const nlohmann::json& options, int64_t eot,
                                  int64_t repeats) {
  auto attack = attacks::create_attack(c.attack->kind, options);
  attacks::RunOptions ro;
  ro.eot.samples = m.is_stochastic() ? eot : 1;
  ro.eot.reduction = c.settings->eot_reduction;
  ro.repeats = repeats;
  ro.seed = c.seed;
  return attack->run(m, c.x, c.y, *c.threat, ro);
}

int64_t audit_eot(const CheckContext& c) {
  return c.model->is_stochastic() ? c.attack->eot.value_or(c.settings->eot) : 1;
}

// ---- per batch of a cell -----------------------------------------------------

// 11: every adversarial example inside the threat model, finite, input untouched.
void cell_validity(CheckContext& c) {
  auto& n = c.tally[11];  // {invalid, attacked}
  if (c.batch) {
    n[0] += count_invalid(c.batch->x_adv, c.batch->x, c.batch->x_before, *c.threat);
    n[1] += c.batch->x.size(0);
    return;
  }
  c.flags.push_back(flag(11, "validity", n[0] > 0,
                         fmt::format("{} of {} adversarial examples outside the eps-ball or the box, non-finite, or with a "
                                     "modified input",
                                     n[0], n[1])));
}

// 6: a single step (FGSM, FGM under L2) must not break examples an iterative attack (a registry trait) left robust.
void cell_single_step(CheckContext& c) {
  const auto& info = attacks::attack_info(c.attack->kind);
  if (c.transfer || !info.iterative || info.gradient_free || !std::isfinite(c.threat->eps)) return;
  auto& n = c.tally[6];  // {broken by one step, checked}
  if (c.batch) {
    const auto si = robust_examples(c.batch->adversarial_correct).nonzero().squeeze(1).to(c.batch->x.device());
    if (si.numel() == 0) return;
    auto so = *c.batch->run;
    so.seed = c.batch->run->seed + 1;
    // FGSM under Linf, FGM under L2; stateless, so one instance serves every batch and cell.
    static const auto single = attacks::create_attack("fgsm");
    const auto rs = single->run(*c.source, c.batch->x.index_select(0, si), c.batch->y.index_select(0, si), *c.threat, so);
    n[0] += robust_examples(rs.adversarial_correct).logical_not().sum().item<int64_t>();
    n[1] += si.numel();
    return;
  }
  if (n[1] == 0) return;
  const double share = static_cast<double>(n[0]) / static_cast<double>(n[1]);
  const double limit = c.model->is_stochastic() ? 0.05 : 0.01;
  c.flags.push_back(flag(6, "iterative-vs-single-step", share > limit && n[0] > 1,
                         fmt::format("{} broke {} of the {} examples {} left robust ({:.1f}%; flag above {:.0f}%)",
                                     c.threat->norm == attacks::Norm::kLinf ? "FGSM" : "FGM", n[0], n[1], c.attack->name,
                                     share * 100, limit * 100)));
}

// 10 (cheap half): an unbounded cell (eps = inf, a minimum-norm attack) may
// move every example anywhere in the box, so it must break (nearly) all.
void cell_unbounded(CheckContext& c) {
  if (c.transfer || std::isfinite(c.threat->eps)) return;
  // {right (example, repeat) pairs, pairs, robust examples (majority of repeats) the attack had moved, examples}
  auto& n = c.tally[10];
  if (c.batch) {
    const auto& a = c.batch->adversarial_correct;
    const auto robust = robust_examples(a);
    const auto moved = ((c.batch->x_adv - c.batch->x).flatten(1).abs().amax(1) > 1e-6).cpu();
    n[0] += a.sum().item<int64_t>();
    n[1] += a.numel();
    n[2] += (robust & moved).sum().item<int64_t>();
    n[3] += a.size(1);
    return;
  }
  if (n[1] == 0) return;
  const double share = static_cast<double>(n[0]) / static_cast<double>(n[1]);
  const bool failed = share > 0.02;
  std::string detail = fmt::format(
      "{} with eps = inf (free to move an example anywhere in the box) left {:.2f}% of the {} examples it attacked "
      "robust (flag above 2%: an unbounded attack must break every example, and 2% allows a few hard ones)",
      c.attack->name, share * 100, n[3]);
  if (failed && n[2] > 0)
    detail += fmt::format(
        "; {} of the examples it left robust had been moved, so the attack judged them adversarial under its own "
        "estimate and the re-evaluation{} found them classified correctly: a minimum-norm point on the decision "
        "boundary{}",
        n[2], c.model->is_stochastic() ? " with fresh noise" : "",
        c.model->is_stochastic() ? ", which fresh noise undoes" : "");
  else if (failed)
    detail += "; the attack moved none of them: it found no adversarial point (raise its steps or search budget)";
  c.flags.push_back(flag(10, "unbounded-cell", failed, detail));
}

// ---- probes of a white-box cell (every run, on a few examples) ------------------

// Paired comparison on the same examples: `lost` robust under `reference`
// and broken under `variant`, `gained` the reverse. Significant when lost
// exceeds gained by more than max(2 examples, 3 sqrt(lost + gained)) (a
// sign test at about 3 standard deviations, so that a matrix of a few
// dozen sound cells rarely raises a false alarm).
struct PairedShift {
  int64_t lost = 0, gained = 0;
  bool significant() const {
    const auto d = static_cast<double>(lost - gained);
    return d > std::max(2.0, 3 * std::sqrt(static_cast<double>(lost + gained)));
  }
};
PairedShift paired_shift(const torch::Tensor& reference, const torch::Tensor& variant) {
  const auto r = robust_examples(reference), v = robust_examples(variant);
  return {(r & v.logical_not()).sum().item<int64_t>(), (r.logical_not() & v).sum().item<int64_t>()};
}

// With --audit the full versions (kCellAudit) replace these probes.
bool probed(const CheckContext& c) {
  const auto& info = attacks::attack_info(c.attack->kind);
  return !c.settings->audit && c.model->is_stochastic() && std::isfinite(c.threat->eps) && info.iterative &&
         !info.gradient_free;
}

// 2 (short): the cell's attack with twice its EOT samples must not break
// examples the cell left robust.
void probe_eot_doubling(CheckContext& c) {
  if (!probed(c)) return;
  const int64_t s = audit_eot(c);
  const auto doubled = audit_rerun(c, *c.model, c.attack->options, 2 * s, c.repeats);
  const auto shift = paired_shift(c.cell_correct, doubled.adversarial_correct);
  c.flags.push_back(flag(
      2, "eot-doubling", shift.significant(),
      fmt::format("EOT {} -> {} on the first {} examples the cell attacked: {} examples robust at {} broken at {}, {} the "
                  "reverse (flag when the first exceeds the second by max(2, 3 sqrt(sum)))",
                  s, 2 * s, c.x.size(0), shift.lost, s, 2 * s, shift.gained)));
}

// 3 (short): with its noise frozen the model is deterministic; the attack
// must not do worse on it than on the stochastic model.
void probe_fixed_noise(CheckContext& c) {
  if (!probed(c)) return;
  FixedNoiseModel fixed(*c.model, c.seed + 2);
  const auto frozen = audit_rerun(c, fixed, c.attack->options, 1, 1);
  const auto shift = paired_shift(frozen.adversarial_correct, c.cell_correct);
  c.flags.push_back(flag(
      3, "fixed-noise-control", shift.significant(),
      fmt::format("the attack on the model with its noise frozen, first {} examples the cell attacked: {} examples "
                  "robust on the frozen model but broken on the stochastic one, {} the reverse (flag when the first "
                  "exceeds the second by max(2, 3 sqrt(sum)))",
                  c.x.size(0), shift.lost, shift.gained)));
}

// 9 (black-box half): a gradient-free attack (Square) must not break the
// examples a white-box attack left robust in every repeat. By default on
// stochastic models (whose noise is what masks gradients), with --audit on
// every model.
void probe_black_box(CheckContext& c) {
  if (c.settings->probe_queries <= 0 || !std::isfinite(c.threat->eps)) return;
  if (!c.model->is_stochastic() && !c.settings->audit) return;
  const auto& info = attacks::attack_info(c.attack->kind);
  if (!info.iterative || info.gradient_free) return;
  const auto survivors = c.cell_correct.all(0).cpu().nonzero().squeeze(1);
  const int64_t m = survivors.numel();
  const std::string where = fmt::format("the first {} examples the cell attacked", c.x.size(0));
  if (m == 0) {
    c.flags.push_back(flag(9, "black-box-vs-white-box", false,
                           fmt::format("{} left none of {} robust in every repeat: nothing for Square to try", c.attack->name,
                                       where)));
    return;
  }
  const auto si = survivors.to(c.x.device());
  auto square = attacks::create_attack("square", {{"queries", c.settings->probe_queries}});
  attacks::RunOptions ro;
  ro.eot.samples = audit_eot(c);
  ro.eot.reduction = c.settings->eot_reduction;
  ro.repeats = c.repeats;
  ro.seed = c.seed + 3;
  const auto r = square->run(*c.model, c.x.index_select(0, si), c.y.index_select(0, si), *c.threat, ro);
  const int64_t broken = robust_examples(r.adversarial_correct).logical_not().sum().item<int64_t>();
  const double share = static_cast<double>(broken) / static_cast<double>(m);
  c.flags.push_back(flag(9, "black-box-vs-white-box", broken >= 2 && share > 0.05,
                         fmt::format("Square ({} queries, EOT {}) broke {} of the {} examples {} left robust in every "
                                     "repeat among {} (flag above 5% and more than one example)",
                                     c.settings->probe_queries, ro.eot.samples, broken, m, c.attack->name, where)));
}

// ---- audit of a white-box cell -------------------------------------------------

double audit_accuracy(CheckContext& c) {
  if (!c.audit_accuracy)
    c.audit_accuracy = audit_rerun(c, *c.model, c.attack->options, audit_eot(c), c.repeats).robust_accuracy();
  return *c.audit_accuracy;
}

// Tolerance for a share p measured on the audit examples.
double audit_tolerance(const CheckContext& c, double p) {
  const double n = static_cast<double>(c.x.size(0));
  return std::max(0.02, 2 * std::sqrt(std::max(p * (1 - p), 0.01) / n));
}

// 8: doubling the budget (the registry's budget options of the attack) must not change the result much.
void audit_convergence(CheckContext& c) {
  const double acc = audit_accuracy(c);
  const auto& keys = attacks::attack_info(c.attack->kind).budget_options;
  if (keys.empty()) return;
  const auto effective = attacks::create_attack(c.attack->kind, c.attack->options)->options_json();
  nlohmann::json doubled = c.attack->options;
  for (const auto& key : keys) doubled[key] = effective.at(key).get<int64_t>() * 2;
  const double acc2 = audit_rerun(c, *c.model, doubled, audit_eot(c), c.repeats).robust_accuracy();
  const double tol = audit_tolerance(c, acc);
  c.flags.push_back(flag(8, "convergence", acc - acc2 > tol,
                         fmt::format("doubling {} on {} examples: robust accuracy {:.2f}% -> {:.2f}% (flag when it drops > "
                                     "{:.1f} points)",
                                     fmt::join(keys, ", "), c.x.size(0), acc * 100, acc2 * 100, tol * 100)));
}

// 9 (noise part): random noise of size eps must not beat the attack.
void audit_noise(CheckContext& c) {
  const auto& threat = *c.threat;
  if (!std::isfinite(threat.eps)) return;
  const double acc = audit_accuracy(c);
  const auto& x = c.x;
  torch::manual_seed(c.seed + 1);
  torch::Tensor d;
  if (threat.norm == attacks::Norm::kLinf) {
    d = (torch::randint(0, 2, x.sizes(), x.options()) * 2 - 1) * threat.eps;
  } else {
    d = torch::randn_like(x);
    d = d / d.flatten(1).norm(2, 1).clamp_min(1e-12).view(attacks::per_example_shape(x)) * threat.eps;
  }
  const auto xn = attacks::project_to_threat(x + d, x, threat);
  torch::NoGradGuard no_grad;
  double noise_acc = 0;
  for (int64_t r = 0; r < c.repeats; ++r) noise_acc += c.model->predict(xn).eq(c.y).to(torch::kDouble).mean().item<double>();
  noise_acc /= static_cast<double>(c.repeats);
  c.flags.push_back(flag(9, "noise-vs-white-box", noise_acc < acc - audit_tolerance(c, acc),
                         fmt::format("random {} noise of size eps: accuracy {:.2f}% vs {:.2f}% under the attack ({} examples)",
                                     threat.norm == attacks::Norm::kLinf ? "sign" : "L2", noise_acc * 100, acc * 100,
                                     x.size(0))));
}

// 2: more EOT samples must not help the model, and the result should have converged.
void audit_eot_convergence(CheckContext& c) {
  if (!c.model->is_stochastic()) return;
  std::vector<double> accs;
  for (int64_t s : {1, 5, 20}) accs.push_back(audit_rerun(c, *c.model, c.attack->options, s, c.repeats).robust_accuracy());
  const double t = audit_tolerance(c, accs[1]);
  const bool rising = accs[1] > accs[0] + t || accs[2] > accs[1] + t;
  const bool dropping = accs[2] < accs[1] - t;
  c.flags.push_back(flag(2, "eot-convergence", rising || dropping,
                         fmt::format("robust accuracy at EOT 1 / 5 / 20: {:.2f}% / {:.2f}% / {:.2f}% on {} examples{}",
                                     accs[0] * 100, accs[1] * 100, accs[2] * 100, c.x.size(0),
                                     rising ? " (not non-increasing)" : dropping ? " (still dropping at 20)" : "")));
}

// 3: with the noise frozen the model is deterministic; the attack must work on it.
void audit_fixed_noise(CheckContext& c) {
  if (!c.model->is_stochastic()) return;
  const double acc = audit_accuracy(c);
  FixedNoiseModel fixed(*c.model, c.seed + 2);
  const double fixed_acc = audit_rerun(c, fixed, c.attack->options, 1, 1).robust_accuracy();
  c.flags.push_back(flag(3, "fixed-noise-control", fixed_acc > acc + audit_tolerance(c, acc),
                         fmt::format("attack on the model with its noise frozen: robust accuracy {:.2f}% (stochastic: {:.2f}%)",
                                     fixed_acc * 100, acc * 100)));
}

// ---- across the cells of a file -------------------------------------------------

void erase_flags(reports::ResultFile& file, const std::string& name) {
  for (auto& c : file.cells)
    c.flags.erase(std::remove_if(c.flags.begin(), c.flags.end(), [&](const reports::Flag& f) { return f.name == name; }),
                  c.flags.end());
}

// 7: the same attack at a larger eps must not leave more examples robust; at
// an eps covering the input range, accuracy must fall to chance.
void cross_eps_monotonicity(CheckContext& ctx) {
  auto& file = *ctx.file;
  erase_flags(file, "eps-monotonicity");
  int64_t classes = 10;
  if (file.root.count("num_classes")) classes = std::stoll(file.root.at("num_classes"));
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
        const double slack =
            std::max(1.0 / n + 1e-12, 2 * std::max(c.summary["robust_accuracy_std"], p.summary["robust_accuracy_std"]));
        if (acc > prev + slack) {
          c.flags.push_back(flag(7, "eps-monotonicity", true,
                                 fmt::format("robust accuracy {:.2f}% at eps {} is above {:.2f}% at eps {}", acc * 100,
                                             c.eps_text, prev * 100, p.eps_text)));
          continue;
        }
      }
      if (c.norm == "linf" && c.eps >= 1.0 && !c.targeted) {
        const bool above = acc > 1.0 / static_cast<double>(classes) + 2.0 / std::sqrt(n);
        c.flags.push_back(flag(7, "eps-monotonicity", above,
                               fmt::format("eps {} covers the input range: robust accuracy {:.2f}% {} chance ({:.0f}%)",
                                           c.eps_text, acc * 100, above ? "is above" : "is at or below",
                                           100.0 / static_cast<double>(classes))));
      } else if (i > 0) {
        c.flags.push_back(flag(7, "eps-monotonicity", false,
                               fmt::format("{:.2f}% at eps {} <= {:.2f}% at eps {} (+ slack)", acc * 100, c.eps_text,
                                           cells[i - 1]->summary["robust_accuracy"] * 100, cells[i - 1]->eps_text)));
      }
    }
  }
}

// 9 (transfer part): a transfer attack later in a cascade must not break
// examples the white-box attacks before it left robust.
void cross_white_vs_transfer(CheckContext& ctx) {
  auto& file = *ctx.file;
  erase_flags(file, "white-vs-transfer");
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
      // 1e-12: a drop of exactly 1 point (0.45 - 0.44 > 0.01 in doubles) is within the slack, as for check 7.
      const double slack =
          std::max(0.01 + 1e-12, 3 * std::max(c.summary["robust_accuracy_std"], p.summary["robust_accuracy_std"]));
      const bool failed = drop_pts > slack;
      const std::string detail = fmt::format(
          "transfer from {} lowered the accuracy left by the white-box attacks from {:.2f}% to {:.2f}% (slack {:.2f} points)",
          c.source_model, p.summary["robust_accuracy"] * 100, c.summary["robust_accuracy"] * 100, slack * 100);
      c.flags.push_back(flag(9, "white-vs-transfer", failed, detail));
      if (failed)
        for (std::size_t k = 0; k < i; ++k)
          if (cells[k]->source_model.empty())
            cells[k]->flags.push_back(flag(9, "white-vs-transfer", true, "a transfer attack beat this white-box attack: " + detail));
    }
  }
}

}  // namespace

EvaluationSettings EvaluationSettings::of(const Matrix& m, bool audit) {
  EvaluationSettings s;
  s.seed = m.seed;
  s.batch_size = m.batch_size;
  s.cascade = m.cascade;
  s.eot = m.eot;
  s.eot_reduction = attacks::parse_eot_reduction(m.eot_reduction);
  s.repeats = m.repeats;
  s.audit_examples = m.audit_examples;
  s.probe_examples = m.probe_examples;
  s.probe_queries = m.probe_queries;
  s.audit = audit;
  return s;
}

std::string to_string(CheckStage stage) {
  switch (stage) {
    case CheckStage::kModel: return "per model";
    case CheckStage::kBatch: return "per cell";
    case CheckStage::kCellProbe: return "per white-box cell of a stochastic model, on probe_examples";
    case CheckStage::kCrossCell: return "cross-cell";
    case CheckStage::kModelAudit: return "audit, per model";
    case CheckStage::kCellAudit: return "audit, per white-box cell";
  }
  return "?";
}

const std::vector<Check>& check_registry() {
  using S = CheckStage;
  static const std::vector<Check> registry{
      {1, "randomness", S::kModel, "5 clean passes: flag a random model declared deterministic", model_randomness},
      {4, "logits", S::kModel, "flag outputs that look like probabilities (rows in [0, 1] summing to 1)", model_logits},
      {5, "gradient-health", S::kModel, "flag NaN/Inf input gradients or > 10% examples with an all-zero gradient",
       model_gradient_health},
      {12, "model-mode", S::kModel, "flag a module in training mode, or sampling off on a stochastic model", model_mode},
      {11, "validity", S::kBatch, "flag any x_adv outside the eps-ball or the box, non-finite, or a modified input",
       cell_validity},
      {6, "iterative-vs-single-step", S::kBatch,
       "FGSM/FGM on the examples an iterative attack left robust: flag above 1% (stochastic: 5%) broken", cell_single_step},
      {10, "unbounded-cell", S::kBatch, "an eps = inf cell: flag when it leaves more than 2% of its examples robust",
       cell_unbounded},
      {2, "eot-doubling", S::kCellProbe,
       "stochastic models: the cell's attack with 2x EOT on probe_examples: flag when it breaks significantly more",
       probe_eot_doubling},
      {3, "fixed-noise-control", S::kCellProbe,
       "stochastic models: the cell's attack on the noise-frozen model: flag when it does significantly worse there",
       probe_fixed_noise},
      {9, "black-box-vs-white-box", S::kCellProbe,
       "Square on the examples a white-box cell left robust (stochastic models; every model with --audit)",
       probe_black_box},
      {7, "eps-monotonicity", S::kCrossCell,
       "flag robust accuracy rising with eps, or above chance at an eps covering the input range", cross_eps_monotonicity},
      {9, "white-vs-transfer", S::kCrossCell, "flag a transfer attack that beats the white-box attacks before it",
       cross_white_vs_transfer},
      {10, "unbounded-attack", S::kModelAudit, "PGD-100 with eps = the whole box: flag above 2% robust accuracy",
       model_unbounded_attack},
      {8, "convergence", S::kCellAudit, "double the attack's budget: flag when robust accuracy drops beyond noise",
       audit_convergence},
      {9, "noise-vs-white-box", S::kCellAudit, "random noise of size eps: flag when it beats the attack", audit_noise},
      {2, "eot-convergence", S::kCellAudit, "EOT 1 / 5 / 20: flag when accuracy rises with samples or still drops at 20",
       audit_eot_convergence},
      {3, "fixed-noise-control", S::kCellAudit, "the attack on the model with its noise frozen: flag when it does worse",
       audit_fixed_noise},
  };
  return registry;
}

void run_checks(CheckStage stage, CheckContext& ctx) {
  for (const auto& check : check_registry())
    if (check.stage == stage) check.run(ctx);
}

void apply_cross_cell_checks(reports::ResultFile& file) {
  CheckContext ctx;
  ctx.file = &file;
  run_checks(CheckStage::kCrossCell, ctx);
}

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
  auto* t = dynamic_cast<models::TrainableModel*>(&model);
  if (t && t->module().is_training()) problems.push_back("module in training mode");
  // SFNN and VIB declare themselves deterministic while their sampling is
  // off, so the family says whether the model is a stochastic one.
  const bool stochastic = model.is_stochastic() || (t && models::find_family(t->spec().family).stochastic);
  if (stochastic && model.sampling() != models::Sampling::kOn)
    problems.push_back("sampling is not on (the threat model attacks the sampling network)");
  const bool checked = dynamic_cast<models::TrainableModel*>(&model) != nullptr;
  if (!problems.empty()) return flag(12, "model-mode", true, fmt::format("{}", fmt::join(problems, "; ")));
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

}  // namespace imbench::harness
