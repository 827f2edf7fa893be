#include "reports/export.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/errors.h"

namespace imbench::reports {
namespace export_detail {
namespace {

std::string quoted(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Numbers as pandas reads them back: integers without a decimal point,
// floats in full precision, NaN as an empty field.
std::string number(double v) { return std::isnan(v) ? "" : fmt::format("{}", v); }
// Stored as float: the shortest text that reads back to the same float (0.05, not 0.050000011920928955).
std::string number(float v) { return std::isnan(v) ? "" : fmt::format("{}", v); }

}  // namespace
}  // namespace export_detail

const std::vector<std::string>& export_columns() {
  static const std::vector<std::string> columns{
      "cell",          "model",         "attack",              "attack_kind",      "norm",
      "eps",           "targeted",      "target_rule",         "source_model",     "group",
      "cascade_position", "repeat",     "example",             "label",            "target",
      "attacked",      "clean_correct", "adversarial_correct", "clean_prediction", "adversarial_prediction",
      "linf",          "l2",            "l0",                  "final_loss",       "gradient_evaluations",
      "unreliable"};
  return columns;
}

std::string export_csv(const ResultFile& file) {
  using namespace export_detail;
  std::string out;
  for (std::size_t k = 0; k < export_columns().size(); ++k) out += (k ? "," : "") + export_columns()[k];
  out += "\n";
  for (const auto& c : file.cells) {
    const auto n = static_cast<std::size_t>(c.size());
    const auto r = static_cast<std::size_t>(std::max<int64_t>(1, c.repeats));
    if (c.adversarial_correct.size() != r * n || c.clean_correct.size() != r * n || c.label.size() != n ||
        c.attacked.size() != n || c.linf.size() != n || c.l2.size() != n || c.l0.size() != n ||
        c.final_loss.size() != n || c.gradient_evaluations.size() != n || (!c.target.empty() && c.target.size() != n) ||
        (!c.clean_prediction.empty() && c.clean_prediction.size() != r * n) ||
        (!c.adversarial_prediction.empty() && c.adversarial_prediction.size() != r * n))
      throw Error(fmt::format("cell '{}': per-example records of inconsistent sizes", c.id));
    const ModelInfo* m = file.find_model(c.model);
    const bool unreliable =
        c.unreliable() || (m && std::any_of(m->flags.begin(), m->flags.end(), [](const Flag& f) { return f.failed; }));
    // The fields every row of the cell shares.
    const std::string head = fmt::format(
        "{},{},{},{},{},{},{},{},{},{},{}", quoted(c.id), quoted(c.model), quoted(c.attack), quoted(c.attack_kind),
        c.norm, std::isinf(c.eps) ? std::string("inf") : number(c.eps), c.targeted ? "true" : "false",
        quoted(c.target_rule), quoted(c.source_model), quoted(c.group), c.cascade_position);
    // Predictions: empty fields for files of schema version 1, which have none.
    auto prediction = [&](const std::vector<int64_t>& v, std::size_t at) {
      return v.empty() ? std::string() : std::to_string(v[at]);
    };
    for (std::size_t k = 0; k < r; ++k)
      for (std::size_t i = 0; i < n; ++i) {
        out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", head, k, c.index[i], c.label[i],
                           c.target.empty() ? std::string() : std::to_string(c.target[i]), c.attacked[i] ? 1 : 0,
                           c.clean_correct[k * n + i] ? 1 : 0, c.adversarial_correct[k * n + i] ? 1 : 0,
                           prediction(c.clean_prediction, k * n + i), prediction(c.adversarial_prediction, k * n + i),
                           number(c.linf[i]), number(c.l2[i]), number(c.l0[i]), number(c.final_loss[i]),
                           c.gradient_evaluations[i], unreliable ? "true" : "false");
      }
  }
  return out;
}

}  // namespace imbench::reports
