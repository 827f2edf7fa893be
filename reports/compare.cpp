// Comparing two result files cell by cell with a significance test (McNemar
// on paired examples, else a two-proportion z-test).
#include "reports/compare.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "core/errors.h"
#include "reports/markdown.h"
#include "reports/statistics.h"

namespace imbench::reports {
// Named: reports/ compiles as one unity translation unit.
namespace compare_detail {
namespace {

// Per-example adversarial records of one cell, checked for their sizes.
struct Records {
  std::size_t n = 0, r = 1;
  const std::vector<uint8_t>* correct = nullptr;

  explicit Records(const CellResult& c) : n(c.index.size()), r(static_cast<std::size_t>(c.repeats)) {
    if (c.repeats < 1 || c.adversarial_correct.size() != r * n)
      throw Error(fmt::format("cell '{}': {} adversarial records for {} repeats x {} examples", c.id,
                              c.adversarial_correct.size(), c.repeats, n));
    correct = &c.adversarial_correct;
  }
  double accuracy() const {
    if (n == 0) return std::numeric_limits<double>::quiet_NaN();
    return static_cast<double>(std::count_if(correct->begin(), correct->end(), [](uint8_t x) { return x != 0; })) /
           static_cast<double>(correct->size());
  }
  // Right under the prediction rule in at least half of the repeats.
  bool majority(std::size_t i) const {
    std::size_t right = 0;
    for (std::size_t k = 0; k < r; ++k) right += (*correct)[k * n + i] != 0;
    return 2 * right >= r;
  }
};

std::string format_p(double p) { return p >= 0.001 ? fmt::format("{:.3f}", p) : fmt::format("{:.2e}", p); }

std::string format_accuracy(double a) { return std::isnan(a) ? "—" : format_percent(a); }

nlohmann::json config_of(const CellResult& c) {
  if (c.config_json.empty()) return nlohmann::json::object();
  try {
    auto j = nlohmann::json::parse(c.config_json);
    if (!j.is_object()) return nlohmann::json::object();
    // Matrix keys renamed since (eot -> eot_samples, source -> source_model)
    // are the same configuration: a file written before compares equal.
    if (auto a = j.find("attack"); a != j.end() && a->is_object())
      for (const auto& [old, name] : {std::pair<const char*, const char*>{"eot", "eot_samples"}, {"source", "source_model"}})
        if (a->contains(old) && !a->contains(name)) {
          (*a)[name] = (*a)[old];
          a->erase(old);
        }
    return j;
  } catch (const nlohmann::json::exception&) {
    throw Error(fmt::format("cell '{}': config_json is not valid JSON", c.id));
  }
}

// Leaf by leaf: "options.steps: 40 -> 20".
void diff_json(const std::string& path, const nlohmann::json& a, const nlohmann::json& b, std::vector<std::string>& out) {
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items()) keys.insert(k);
    for (const auto& [k, v] : b.items()) keys.insert(k);
    for (const auto& k : keys) {
      const auto ia = a.find(k), ib = b.find(k);
      const std::string p = path.empty() ? k : path + "." + k;
      if (ia == a.end()) out.push_back(fmt::format("{}: (absent) -> {}", p, ib->dump()));
      else if (ib == b.end()) out.push_back(fmt::format("{}: {} -> (absent)", p, ia->dump()));
      else diff_json(p, *ia, *ib, out);
    }
    return;
  }
  if (a != b) out.push_back(fmt::format("{}: {} -> {}", path, a.dump(), b.dump()));
}

}  // namespace
}  // namespace compare_detail

std::vector<std::string> config_differences(const ResultFile& base, const CellResult& b, const ResultFile& next,
                                            const CellResult& n) {
  using namespace compare_detail;
  std::vector<std::string> out;
  auto a = config_of(b), c = config_of(n);
  // The matrix's model entry (paths, training overrides) is compared
  // through the model file's hash and kind below.
  for (auto* j : {&a, &c}) j->erase("model");
  diff_json("", a, c, out);
  if (b.eot_samples != n.eot_samples && !a.contains("eot_samples"))
    out.push_back(fmt::format("eot_samples: {} -> {}", b.eot_samples, n.eot_samples));
  if (b.repeats != n.repeats && !a.contains("repeats"))
    out.push_back(fmt::format("repeats: {} -> {}", b.repeats, n.repeats));
  if (b.threat_model != n.threat_model) out.push_back(fmt::format("threat model: {} -> {}", b.threat_model, n.threat_model));
  if (b.source_model != n.source_model)
    out.push_back(fmt::format("transfer source: '{}' -> '{}'", b.source_model, n.source_model));
  // Other examples are no configuration change: the unpaired test compares them.
  const ModelInfo* mb = base.find_model(b.model);
  const ModelInfo* mn = next.find_model(n.model);
  if (mb && mn) {
    if (mb->file_sha256 != mn->file_sha256)
      out.push_back(fmt::format("model file: sha256 {} -> {}", mb->file_sha256.substr(0, 12), mn->file_sha256.substr(0, 12)));
    if (mb->stochastic != mn->stochastic)
      out.push_back(fmt::format("model: {} -> {}", mb->stochastic ? "stochastic" : "deterministic",
                                mn->stochastic ? "stochastic" : "deterministic"));
  }
  return out;
}

CompareResult compare_results(const ResultFile& base, const ResultFile& next, const CompareOptions& options) {
  using namespace compare_detail;
  CompareResult out;
  MarkdownTable table({"cell", "threat model", "base", "new", "change (points)", "test", "p-value", "verdict"});
  std::string changes;
  for (const auto& b : base.cells) {
    const CellResult* n = next.find_cell(b.id);
    if (!n) {
      out.unmatched.push_back(b.id);
      continue;
    }
    const auto differences = config_differences(base, b, next, *n);
    if (!differences.empty()) {
      ++out.config_changes;
      changes += fmt::format("- `{}`: {}\n", b.id, fmt::join(differences, "; "));
    }
    ++out.matched;
    const Records rb(b), rn(*n);
    const double acc_b = rb.accuracy(), acc_n = rn.accuracy(), change = acc_n - acc_b;
    std::string test = "none (no examples)";
    double p = 1.0;
    if (rb.n > 0 && rn.n > 0 && b.index == n->index) {
      // Paired: the same examples; discordant pairs under the majority vote over repeats.
      int64_t lost = 0, gained = 0;
      for (std::size_t i = 0; i < rb.n; ++i) {
        const bool before = rb.majority(i), after = rn.majority(i);
        lost += before && !after;
        gained += !before && after;
      }
      p = mcnemar_p_value(lost, gained);
      test = fmt::format("McNemar (lost {}, gained {})", lost, gained);
    } else if (rb.n > 0 && rn.n > 0) {
      // Unpaired: two proportions over the examples (repeats of one example are not independent trials).
      const double n1 = static_cast<double>(rb.n), n2 = static_cast<double>(rn.n);
      const double pooled = (acc_b * n1 + acc_n * n2) / (n1 + n2);
      const double se = std::sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
      p = se > 0 ? std::erfc(std::abs(change) / se / std::sqrt(2.0)) : (change == 0 ? 1.0 : 0.0);
      test = "two-proportion z-test";
    }
    std::string verdict = "unchanged";
    if (!differences.empty() && !options.allow_config_change) {
      verdict = "configuration changed";
    } else if (change < -options.tolerance && p < options.alpha) {
      verdict = "regression";
      ++out.regressions;
    } else if (change > options.tolerance && p < options.alpha) {
      verdict = "improvement";
      ++out.improvements;
    }
    table.add_row({b.id, b.threat_model, format_accuracy(acc_b), format_accuracy(acc_n),
                   std::isnan(change) ? "—" : fmt::format("{:+.2f}", 100 * change), test, format_p(p), verdict});
  }
  std::vector<std::string> only_next;
  for (const auto& c : next.cells)
    if (!base.find_cell(c.id)) only_next.push_back(c.id);
  out.missing = out.unmatched;
  out.only_new = only_next;
  out.unmatched.insert(out.unmatched.end(), only_next.begin(), only_next.end());

  out.markdown = table.render();
  out.markdown += fmt::format(
      "\n{} cells compared: {} regressions, {} improvements, {} with a changed configuration "
      "(tolerance {:.2f} points, i.e. --tolerance {:g}; alpha {:g}).\n",
      out.matched, out.regressions, out.improvements, out.config_changes, 100 * options.tolerance, options.tolerance,
      options.alpha);
  if (out.config_changes > 0)
    out.markdown += fmt::format(
        "\n### Configuration differences\n\nThese cells were not run the same way, so a change in their numbers "
        "is not a like-for-like comparison{}:\n\n{}\n",
        options.allow_config_change ? " (judged anyway: --allow-config-change)"
                                    : "; their verdict is \"configuration changed\" and the comparison fails "
                                      "(--allow-config-change judges them like the others)",
        changes);
  if (out.unmatched.empty())
    out.markdown += "Every cell is in both files.\n";
  else
    out.markdown += fmt::format(
        "Cells only in the base file: {}{}; only in the new file: {}.\n", list_cells(out.missing),
        out.missing.empty()     ? ""
        : options.allow_missing ? " (allowed: --allow-missing)"
                                : " (missing from the new file: the comparison fails; --allow-missing allows it)",
        list_cells(out.only_new));
  return out;
}

std::string list_cells(const std::vector<std::string>& ids, std::size_t limit) {
  if (ids.empty()) return "none";
  std::vector<std::string> quoted;
  for (std::size_t i = 0; i < ids.size() && i < limit; ++i) quoted.push_back("`" + ids[i] + "`");
  std::string text = fmt::format("{}", fmt::join(quoted, ", "));
  if (ids.size() > limit) text += fmt::format(" and {} more", ids.size() - limit);
  return text;
}

}  // namespace imbench::reports
