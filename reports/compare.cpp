// Comparing two result files cell by cell with a significance test (McNemar
// on paired examples, else a two-proportion z-test).
#include "reports/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

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

}  // namespace
}  // namespace compare_detail

CompareResult compare_results(const ResultFile& base, const ResultFile& next, const CompareOptions& options) {
  using namespace compare_detail;
  CompareResult out;
  MarkdownTable table({"cell", "threat model", "base", "new", "change (points)", "test", "p-value", "verdict"});
  for (const auto& b : base.cells) {
    const CellResult* n = next.find_cell(b.id);
    if (!n) {
      out.unmatched.push_back(b.id);
      continue;
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
    if (change < -options.tolerance && p < options.alpha) {
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
  const std::vector<std::string> only_base = out.unmatched;
  out.unmatched.insert(out.unmatched.end(), only_next.begin(), only_next.end());

  out.markdown = table.render();
  out.markdown +=
      fmt::format("\n{} cells compared: {} regressions, {} improvements (tolerance {:.2f} points, alpha {:g}).\n",
                  out.matched, out.regressions, out.improvements, 100 * options.tolerance, options.alpha);
  auto ids = [](const std::vector<std::string>& v) {
    std::vector<std::string> quoted;
    for (const auto& id : v) quoted.push_back("`" + id + "`");
    return quoted.empty() ? std::string("none") : fmt::format("{}", fmt::join(quoted, ", "));
  };
  if (out.unmatched.empty())
    out.markdown += "Every cell is in both files.\n";
  else
    out.markdown +=
        fmt::format("Cells only in the base file: {}; only in the new file: {}.\n", ids(only_base), ids(only_next));
  return out;
}

}  // namespace imbench::reports
