// The Markdown report of a results file, and its robustness-curve SVGs.
// Everything in the text comes from the file (no clock, no environment), so
// a report can be compared with a golden file.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "reports/markdown.h"
#include "reports/report.h"
#include "reports/results.h"
#include "reports/statistics.h"

namespace imbench::reports {
namespace report_detail {
namespace {

constexpr const char* kUnreliableMark = " ⚠";
// Above this many columns the robust-accuracy table is split per threat model.
constexpr std::size_t kMaxColumns = 8;

std::string root_or(const ResultFile& f, const std::string& key, const std::string& fallback = "unknown") {
  const auto it = f.root.find(key);
  return it == f.root.end() || it->second.empty() ? fallback : it->second;
}

std::string norm_label(const std::string& norm) {
  if (norm == "linf") return "Linf";
  if (norm == "l2") return "L2";
  if (norm == "l0") return "L0";
  return norm;
}

int norm_rank(const std::string& norm) { return norm == "linf" ? 0 : norm == "l2" ? 1 : 2; }

nlohmann::json parse_json(const std::string& text, const std::string& what) {
  if (text.empty()) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{} is not valid JSON ({})", what, e.what()));
  }
}

// Breadth-first search for a key anywhere in a JSON document: the top level
// wins over nested objects ({"options": {"steps": 40}} also finds steps).
const nlohmann::json* find_key(const nlohmann::json& root, const std::string& key) {
  std::vector<const nlohmann::json*> level = {&root};
  while (!level.empty()) {
    std::vector<const nlohmann::json*> next;
    for (const auto* j : level) {
      if (!j->is_object()) continue;
      if (const auto it = j->find(key); it != j->end() && !it->is_null()) return &*it;
      for (const auto& [k, v] : j->items())
        if (v.is_object()) next.push_back(&v);
    }
    level = std::move(next);
  }
  return nullptr;
}

std::string json_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return fmt::format("{}", v.get<int64_t>());
  if (v.is_number()) return fmt::format("{:g}", v.get<double>());
  return v.dump();
}

// "preset quick, epochs 40" from the keys of a JSON record that are present.
std::string key_options(const nlohmann::json& j, const std::vector<std::pair<std::string, std::string>>& keys) {
  std::vector<std::string> parts;
  for (const auto& [key, label] : keys)
    if (const auto* v = find_key(j, key)) parts.push_back(label + " " + json_text(*v));
  return fmt::format("{}", fmt::join(parts, ", "));
}

// ---- statistics of per-example records ----

struct Accuracy {
  double mean = std::nan("");
  double std = 0;                  // over repeats (sample standard deviation)
  // The interval's Wilson counts: trials = the effective number of
  // independent evaluations (statistics.h: N to R x N), correct = mean x trials.
  double correct = 0, trials = 0;
  std::size_t repeats = 1;
};

Accuracy accuracy_of(const std::vector<uint8_t>& v, std::size_t r, std::size_t n) {
  Accuracy a;
  a.repeats = r;
  if (n == 0 || v.size() != r * n) return a;
  std::vector<double> per_repeat(r, 0.0);
  for (std::size_t k = 0; k < r; ++k) {
    for (std::size_t i = 0; i < n; ++i) per_repeat[k] += v[k * n + i] != 0;
    a.correct += per_repeat[k];
    per_repeat[k] /= static_cast<double>(n);
  }
  a.mean = a.correct / static_cast<double>(r * n);
  const auto per_example = example_accuracy(v, r, n);
  a.trials = per_example.effective_trials;
  a.correct = a.mean * a.trials;
  if (r > 1) {
    double ss = 0;
    for (double x : per_repeat) ss += (x - a.mean) * (x - a.mean);
    a.std = std::sqrt(ss / static_cast<double>(r - 1));
  }
  return a;
}

// A cell's robust accuracy: the stored summary when present, the pooled
// counts for the confidence interval from the records.
Accuracy cell_accuracy(const CellResult& c) {
  Accuracy a =
      accuracy_of(c.adversarial_correct, static_cast<std::size_t>(std::max<int64_t>(1, c.repeats)), c.index.size());
  if (const auto it = c.summary.find("robust_accuracy"); it != c.summary.end()) a.mean = it->second;
  if (const auto it = c.summary.find("robust_accuracy_std"); it != c.summary.end() && !std::isnan(it->second))
    a.std = it->second;
  return a;
}

std::string format_accuracy(const Accuracy& a) {
  if (std::isnan(a.mean)) return "—";
  std::string s = a.repeats > 1 ? fmt::format("{:.2f} ± {:.2f}%", 100 * a.mean, 100 * a.std) : format_percent(a.mean);
  if (a.trials > 0) {
    const auto [lo, hi] = wilson_interval(a.correct, a.trials);
    s += fmt::format(" [{:.1f}, {:.1f}]", 100 * lo, 100 * hi);
  }
  return s;
}

// Mean (± std over repeats) without the interval, where the details carry it.
std::string format_accuracy_brief(Accuracy a) {
  a.trials = 0;
  return format_accuracy(a);
}

// ---- threat models (table column groups) ----

struct Threat {
  std::string norm;
  double eps = 0;
  bool targeted = false;
  std::string target_rule;  // "" when untargeted

  auto key() const { return std::make_tuple(norm_rank(norm), norm, eps, targeted, target_rule); }
  bool operator<(const Threat& o) const { return key() < o.key(); }
  bool operator==(const Threat& o) const { return key() == o.key(); }
};

Threat threat_of(const CellResult& c) {
  Threat t{c.norm, c.eps, c.targeted, ""};
  if (c.targeted && c.target_rule != "none") t.target_rule = c.target_rule;
  return t;
}

std::string eps_text_of(const CellResult& c) { return c.eps_text.empty() ? fmt::format("{:g}", c.eps) : c.eps_text; }

struct Column {
  Threat threat;
  std::string label;                 // "Linf 0.3", "L2 1.5 targeted (random)"
  std::vector<std::string> attacks;  // cascade order
};

// The file's threat models, sorted by norm, eps and targeting, each with
// its attacks in cascade order (by position, then first appearance).
std::vector<Column> columns_of(const ResultFile& file) {
  std::map<Threat, Column> by_threat;
  std::map<Threat, std::vector<std::tuple<int64_t, std::size_t, std::string>>> order;
  for (std::size_t i = 0; i < file.cells.size(); ++i) {
    const CellResult& c = file.cells[i];
    const Threat t = threat_of(c);
    if (!by_threat.count(t)) {
      std::string label = norm_label(c.norm) + " " + eps_text_of(c);
      if (t.targeted) label += " targeted" + (t.target_rule.empty() ? "" : " (" + t.target_rule + ")");
      by_threat[t] = Column{t, label, {}};
    }
    auto& attacks = order[t];
    const auto it =
        std::find_if(attacks.begin(), attacks.end(), [&](const auto& a) { return std::get<2>(a) == c.attack; });
    if (it == attacks.end())
      attacks.emplace_back(c.cascade_position, i, c.attack);
    else
      std::get<0>(*it) = std::min(std::get<0>(*it), c.cascade_position);
  }
  std::vector<Column> columns;
  for (auto& [t, column] : by_threat) {
    auto attacks = order[t];
    std::sort(attacks.begin(), attacks.end());
    for (const auto& a : attacks) column.attacks.push_back(std::get<2>(a));
    columns.push_back(column);
  }
  return columns;
}

const CellResult* find_cell(const ResultFile& file, const std::string& model, const Threat& t,
                            const std::string& attack) {
  for (const auto& c : file.cells)
    if (c.model == model && c.attack == attack && threat_of(c) == t) return &c;
  return nullptr;
}

bool model_flagged(const ModelInfo* m) {
  return m && std::any_of(m->flags.begin(), m->flags.end(), [](const Flag& f) { return f.failed; });
}

struct WorstCase {
  Accuracy accuracy;
  bool unreliable = false;
  bool present = false;
};

// Right in every attack of the threat model: AND over the cells'
// adversarial_correct per repeat and example, then the mean over repeats.
WorstCase worst_case(const ResultFile& file, const std::string& model, const Threat& t) {
  WorstCase w;
  const CellResult* first = nullptr;
  std::vector<uint8_t> all;
  for (const auto& c : file.cells) {
    if (c.model != model || !(threat_of(c) == t)) continue;
    w.present = true;
    w.unreliable = w.unreliable || c.unreliable();
    const std::size_t rn = static_cast<std::size_t>(std::max<int64_t>(1, c.repeats)) * c.index.size();
    if (c.adversarial_correct.size() != rn) return w;  // inconsistent records: no worst case
    if (!first) {
      first = &c;
      all = c.adversarial_correct;
      continue;
    }
    if (c.repeats != first->repeats || c.index != first->index) {
      w.accuracy = Accuracy{};  // different examples: not comparable
      return w;
    }
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = all[i] && c.adversarial_correct[i];
  }
  if (first)
    w.accuracy = accuracy_of(all, static_cast<std::size_t>(std::max<int64_t>(1, first->repeats)), first->index.size());
  return w;
}

// ---- robustness curves ----

// One model on a chart: its worst-case accuracy against eps, and the spread
// over repeats as a band (empty for a deterministic model).
struct Series {
  std::string label;
  std::size_t colour = 0;                         // index into the palette
  std::vector<std::pair<double, double>> points;  // (eps, accuracy in [0, 1])
  std::vector<std::pair<double, double>> band;    // (low, high) per point; empty = no band
  std::vector<bool> unreliable;                   // per point: a soundness check flagged it (hollow marker)
};

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// At most `n` code points, the last an ellipsis when cut (keeps SVG text
// inside its box).
std::string shortened(const std::string& s, std::size_t n) {
  std::size_t points = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (points == n - 1) {
      std::size_t rest = 0;
      for (std::size_t j = i; j < s.size(); ++j) rest += (static_cast<unsigned char>(s[j]) & 0xC0) != 0x80;
      return rest <= 1 ? s : s.substr(0, i) + "…";
    }
    ++points;
  }
  return s;
}

// 1, 2, 2.5 or 5 times a power of ten, about range / 5.
double nice_step(double range) {
  const double raw = range / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * magnitude;
}

std::string render_svg(const std::string& title, const std::string& x_label, const std::vector<Series>& series) {
  constexpr double kWidth = 720, kHeight = 380, kLeft = 64, kRight = 500, kTop = 36, kBottom = 324;
  constexpr std::size_t kTitleChars = 84, kLegendChars = 22;  // fit 720 px at 14 px and the legend's 180 px at 12 px
  static const char* kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  double max_eps = 0;
  for (const auto& s : series)
    for (const auto& p : s.points) max_eps = std::max(max_eps, p.first);
  const double step = nice_step(max_eps > 0 ? max_eps : 1.0);
  const double x_max = std::max(1.0, std::ceil(max_eps / step - 1e-9)) * step;
  auto px = [&](double eps) { return kLeft + (kRight - kLeft) * eps / x_max; };
  auto py = [&](double acc) { return kBottom - (kBottom - kTop) * std::clamp(acc, 0.0, 1.0); };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0:g}\" height=\"{1:g}\" viewBox=\"0 0 {0:g} {1:g}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"{0:g}\" height=\"{1:g}\" fill=\"white\"/>\n"
      "<text x=\"{2:g}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{3}</text>\n",
      kWidth, kHeight, kWidth / 2, xml_escape(shortened(title, kTitleChars)));
  for (int i = 0; i <= 5; ++i) {  // y grid and ticks: 0, 20, ..., 100%
    const double y = py(i / 5.0);
    svg += fmt::format(
        "<line x1=\"{0:g}\" y1=\"{1:.1f}\" x2=\"{2:g}\" y2=\"{1:.1f}\" stroke=\"#dddddd\"/>\n"
        "<text x=\"{3:g}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}%</text>\n",
        kLeft, y, kRight, kLeft - 6, y + 4, 20 * i);
  }
  const int x_ticks = static_cast<int>(std::lround(x_max / step));
  for (int i = 0; i <= x_ticks; ++i) {
    const double x = px(i * step);
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:g}\" x2=\"{0:.1f}\" y2=\"{2:g}\" stroke=\"#dddddd\"/>\n"
        "<line x1=\"{0:.1f}\" y1=\"{2:g}\" x2=\"{0:.1f}\" y2=\"{3:g}\" stroke=\"black\"/>\n"
        "<text x=\"{0:.1f}\" y=\"{4:g}\" text-anchor=\"middle\">{5:.6g}</text>\n",
        x, kTop, kBottom, kBottom + 5, kBottom + 18, i * step);
  }
  svg += fmt::format(
      "<line x1=\"{0:g}\" y1=\"{2:g}\" x2=\"{1:g}\" y2=\"{2:g}\" stroke=\"black\"/>\n"
      "<line x1=\"{0:g}\" y1=\"{3:g}\" x2=\"{0:g}\" y2=\"{2:g}\" stroke=\"black\"/>\n"
      "<text x=\"{4:g}\" y=\"{5:g}\" text-anchor=\"middle\">{6}</text>\n"
      "<text x=\"16\" y=\"{7:g}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {7:g})\">robust accuracy</text>\n",
      kLeft, kRight, kBottom, kTop, (kLeft + kRight) / 2, kHeight - 16, xml_escape(x_label), (kTop + kBottom) / 2);

  // Bands first, so that every line is drawn over them.
  for (const Series& s : series) {
    if (s.band.size() != s.points.size() || s.band.empty()) continue;
    std::vector<std::string> outline;
    for (std::size_t i = 0; i < s.points.size(); ++i)
      outline.push_back(fmt::format("{:.1f},{:.1f}", px(s.points[i].first), py(s.band[i].second)));
    for (std::size_t i = s.points.size(); i-- > 0;)
      outline.push_back(fmt::format("{:.1f},{:.1f}", px(s.points[i].first), py(s.band[i].first)));
    svg += fmt::format("<polygon points=\"{}\" fill=\"{}\" fill-opacity=\"0.2\" stroke=\"none\"/>\n",
                       fmt::join(outline, " "), kColours[s.colour % 10]);
  }
  for (std::size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    const std::string stroke = kColours[s.colour % 10];
    std::vector<std::string> points;
    for (const auto& [eps, acc] : s.points) points.push_back(fmt::format("{:.1f},{:.1f}", px(eps), py(acc)));
    svg += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n",
                       fmt::join(points, " "), stroke);
    for (std::size_t i = 0; i < s.points.size(); ++i) {
      const auto [eps, acc] = s.points[i];
      if (i < s.unreliable.size() && s.unreliable[i])
        svg += fmt::format(
            "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"white\" stroke=\"{}\" stroke-width=\"1.5\"/>\n",
            px(eps), py(acc), stroke);
      else
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\"/>\n", px(eps), py(acc), stroke);
    }
    const double ly = kTop + 8 + 20.0 * static_cast<double>(k);  // legend entry, right of the plot
    svg += fmt::format(
        "<line x1=\"{0:g}\" y1=\"{1:g}\" x2=\"{2:g}\" y2=\"{1:g}\" stroke=\"{3}\" stroke-width=\"2\"/>\n"
        "<circle cx=\"{4:g}\" cy=\"{1:g}\" r=\"3.5\" fill=\"{3}\"/>\n"
        "<text x=\"{5:g}\" y=\"{6:g}\">{7}</text>\n",
        kRight + 16, ly, kRight + 40, stroke, kRight + 28, kRight + 46, ly + 4,
        xml_escape(shortened(s.label, kLegendChars)));
  }
  return svg + "</svg>\n";
}

std::string file_safe(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ? c : '_';
  return out;
}

// Mean ± std over repeats clipped to [0, 1]; no band for a single repeat.
std::pair<double, double> band_of(const Accuracy& a) {
  return {std::clamp(a.mean - a.std, 0.0, 1.0), std::clamp(a.mean + a.std, 0.0, 1.0)};
}

// A chart: one norm and targeting (and target rule where a norm has several).
struct Chart {
  std::string norm;
  bool targeted = false;
  std::string target_rule;
  auto key() const { return std::make_tuple(norm_rank(norm), norm, targeted, target_rule); }
  bool operator<(const Chart& o) const { return key() < o.key(); }
};

// Writes one SVG per norm and targeting with a finite eps: every model's
// worst-case accuracy against eps from its clean accuracy at eps 0, with
// the spread over repeats as a band, appended to `svgs` as (path, text);
// returns the report's lines linking them.
std::string write_curves(const ResultFile& file, const std::vector<Column>& columns, const ReportOptions& options,
                         std::vector<std::pair<std::string, std::string>>& svgs) {
  std::error_code ec;
  std::filesystem::create_directories(options.curves_dir, ec);
  if (ec) throw Error(fmt::format("{}: cannot create the curves folder: {}", options.curves_dir, ec.message()));
  std::set<Chart> charts;
  std::map<std::pair<std::string, bool>, std::set<std::string>> rules;  // (norm, targeted) -> target rules
  for (const auto& col : columns)
    if (std::isfinite(col.threat.eps)) {
      charts.insert(Chart{col.threat.norm, col.threat.targeted, col.threat.target_rule});
      rules[{col.threat.norm, col.threat.targeted}].insert(col.threat.target_rule);
    }

  // Clean accuracy per model (eps 0): as recorded, the spread from the
  // clean records of its first cell.
  auto clean_of = [&](const ModelInfo& m) {
    Accuracy clean;
    for (const auto& c : file.cells)
      if (c.model == m.name && !c.index.empty()) {
        clean = accuracy_of(c.clean_correct, static_cast<std::size_t>(std::max<int64_t>(1, c.repeats)), c.index.size());
        break;
      }
    clean.mean = m.clean_accuracy;
    return clean;
  };

  std::string links;
  for (const Chart& chart : charts) {
    std::vector<Series> series;
    for (std::size_t mi = 0; mi < file.models.size(); ++mi) {
      const ModelInfo& m = file.models[mi];
      const Accuracy clean = clean_of(m);
      const bool flagged = model_flagged(&m);
      Series s{m.name, mi, {{0.0, clean.mean}}, {band_of(clean)}, {flagged}};
      bool repeats = clean.repeats > 1;
      for (const auto& col : columns) {
        const Threat& t = col.threat;
        if (t.norm != chart.norm || t.targeted != chart.targeted || t.target_rule != chart.target_rule ||
            !std::isfinite(t.eps))
          continue;
        const WorstCase w = worst_case(file, m.name, t);
        if (!w.present || std::isnan(w.accuracy.mean)) continue;
        s.points.emplace_back(t.eps, w.accuracy.mean);
        s.unreliable.push_back(flagged || w.unreliable);
        s.band.push_back(band_of(w.accuracy));
        repeats = repeats || w.accuracy.repeats > 1;
      }
      if (s.points.size() < 2) continue;  // attacked at no finite eps of this chart
      if (!repeats) s.band.clear();
      series.push_back(std::move(s));
    }
    if (series.empty()) continue;
    std::string name = file_safe(chart.norm), label = norm_label(chart.norm);
    if (chart.targeted) {
      name += "-targeted";
      label += " targeted";
      if (!chart.target_rule.empty() && rules[{chart.norm, true}].size() > 1) {
        name += "-" + file_safe(chart.target_rule);
        label += " (" + chart.target_rule + ")";
      }
    }
    name += ".svg";
    const std::string title = fmt::format("{}, {}: worst-case robust accuracy", root_or(file, "dataset"), label);
    svgs.emplace_back((std::filesystem::path(options.curves_dir) / name).string(),
                      render_svg(title, "eps (" + norm_label(chart.norm) + ")", series));
    links += fmt::format("![{}: worst-case robust accuracy of every model]({}{})\n", label, options.curves_link_prefix,
                         name);
  }
  return links;
}

// ---- sections ----

std::string configuration_section(const ResultFile& file) {
  MarkdownTable t({"setting", "value"});
  t.add_row(
      {"imbench version", fmt::format("{} (git {})", root_or(file, "imbench_version"), root_or(file, "git_revision"))});
  t.add_row({"date", root_or(file, "date")});
  const std::string device = root_or(file, "device"), device_name = root_or(file, "device_name", "");
  t.add_row({"device", device_name.empty() || device_name == device ? device : device + " (" + device_name + ")"});
  t.add_row({"threads", root_or(file, "threads")});
  t.add_row({"torch version", root_or(file, "torch_version")});
  t.add_row({"seed", root_or(file, "seed")});
  t.add_row({"dataset", root_or(file, "dataset")});
  t.add_row({"examples", root_or(file, "examples")});
  t.add_row({"shard", root_or(file, "shard")});
  t.add_row({"matrix hash", root_or(file, "matrix_hash")});
  return "## Configuration\n\n" + t.render();
}

std::string threat_models_section(const ResultFile& file) {
  // Cascade groups in order of first appearance, each rendered as one line;
  // groups of different models with the same line are listed once.
  std::vector<std::string> group_order;
  std::map<std::string, std::vector<const CellResult*>> groups;
  for (const auto& c : file.cells) {
    const std::string key = c.group.empty() ? c.model + "|" + c.threat_model : c.group;
    if (!groups.count(key)) group_order.push_back(key);
    groups[key].push_back(&c);
  }
  std::vector<std::string> lines;
  std::map<std::string, std::vector<std::string>> models_of_line;
  for (const auto& key : group_order) {
    auto cells = groups[key];
    std::stable_sort(cells.begin(), cells.end(),
                     [](const auto* a, const auto* b) { return a->cascade_position < b->cascade_position; });
    std::vector<std::string> attacks;
    for (const auto* c : cells) {
      const auto config = parse_json(c->config_json, fmt::format("cell '{}': config_json", c->id));
      std::string options = key_options(
          config, {{"steps", "steps"}, {"step_size", "step size"}, {"restarts", "restarts"}, {"loss", "loss"}});
      options += fmt::format("{}EOT {}, repeats {}", options.empty() ? "" : ", ", c->eot_samples, c->repeats);
      std::string name = c->attack;
      if (!c->attack_kind.empty() && c->attack_kind != c->attack) name += " [" + c->attack_kind + "]";
      if (!c->source_model.empty()) options += ", transferred from " + c->source_model;
      attacks.push_back(fmt::format("{} ({})", name, options));
    }
    const std::string threat = cells.front()->threat_model.empty() ? key : cells.front()->threat_model;
    const std::string line = fmt::format("**{}**: {}", threat, fmt::join(attacks, " → "));
    auto& models = models_of_line[line];
    if (models.empty()) lines.push_back(line);
    if (std::find(models.begin(), models.end(), cells.front()->model) == models.end())
      models.push_back(cells.front()->model);
  }
  std::string out =
      "## Threat models\n\n"
      "One line per cascade group (a model's attacks at one threat model, run in the order shown; later attacks run "
      "only on examples still classified correctly), with each attack's key options and the models it ran on.\n\n";
  if (lines.empty()) out += "No cells in this file.\n";
  for (const auto& line : lines) out += fmt::format("- {} (models: {})\n", line, fmt::join(models_of_line[line], ", "));
  return out;
}

// The paper's numbers of each model (file.models order), as JSON objects.
std::vector<nlohmann::json> papers_of(const ResultFile& file) {
  std::vector<nlohmann::json> papers;
  for (const auto& m : file.models) {
    papers.push_back(parse_json(m.paper_json, fmt::format("model '{}': paper_json", m.name)));
    if (!papers.back().is_object()) throw Error(fmt::format("model '{}': paper_json is not a JSON object", m.name));
  }
  return papers;
}

std::string accuracy_section(const ResultFile& file, const std::vector<Column>& columns) {
  // Paper columns: clean accuracy first, then the other keys in key order.
  const std::vector<nlohmann::json> papers = papers_of(file);
  std::vector<std::string> paper_keys;
  bool paper_clean = false;
  for (const auto& paper : papers) {
    for (const auto& [key, value] : paper.items()) {
      if (key == "clean_accuracy")
        paper_clean = true;
      else if (std::find(paper_keys.begin(), paper_keys.end(), key) == paper_keys.end())
        paper_keys.push_back(key);
    }
  }
  std::sort(paper_keys.begin(), paper_keys.end());
  if (paper_clean) paper_keys.insert(paper_keys.begin(), "clean_accuracy");

  // One table when it stays readable on a GitHub page; else one per threat
  // model, and the paper's numbers in a table of their own.
  std::size_t width = 2 + paper_keys.size();
  for (const auto& col : columns) width += col.attacks.size() + 1;
  const bool split = width > kMaxColumns && columns.size() > 1;

  bool any_unreliable = false;
  auto clean_of = [&](const ModelInfo& m) {
    // Clean accuracy as recorded for the model; the interval from the clean
    // records of its first cell (the same for every cell of the model).
    Accuracy clean;
    clean.mean = m.clean_accuracy;
    for (const auto& c : file.cells)
      if (c.model == m.name && !c.index.empty()) {
        const auto r = static_cast<std::size_t>(std::max<int64_t>(1, c.repeats));
        clean = accuracy_of(c.clean_correct, r, c.index.size());
        clean.mean = m.clean_accuracy;
        clean.correct = clean.mean * clean.trials;
        break;
      }
    return format_accuracy(clean);
  };
  // The name alone: the descriptions are in the Models table.
  auto model_cell = [](const ModelInfo& m) { return "`" + m.name + "`" + (model_flagged(&m) ? kUnreliableMark : ""); };
  auto threat_cells = [&](const ModelInfo& m, const Column& col, std::vector<std::string>& row) {
    const bool flagged = model_flagged(&m);
    for (const auto& attack : col.attacks) {
      const CellResult* c = find_cell(file, m.name, col.threat, attack);
      if (!c) {
        row.push_back("—");
        continue;
      }
      const bool unreliable = flagged || c->unreliable();
      any_unreliable = any_unreliable || unreliable;
      row.push_back(format_accuracy(cell_accuracy(*c)) + (unreliable ? kUnreliableMark : ""));
    }
    const WorstCase w = worst_case(file, m.name, col.threat);
    const bool unreliable = w.present && (flagged || w.unreliable);
    any_unreliable = any_unreliable || unreliable;
    row.push_back(w.present ? format_accuracy(w.accuracy) + (unreliable ? kUnreliableMark : "") : "—");
  };
  auto paper_cells = [&](std::size_t mi, std::vector<std::string>& row) {
    for (const auto& key : paper_keys) {
      const auto it = papers[mi].find(key);
      if (it == papers[mi].end() || it->is_null())
        row.push_back("—");
      else
        row.push_back(it->is_number() ? fmt::format("{}%", it->get<double>()) : json_text(*it));
    }
  };
  std::vector<std::string> paper_header;
  for (const auto& key : paper_keys) {
    std::string label = key == "clean_accuracy" ? "clean" : key;
    std::replace(label.begin(), label.end(), '_', ' ');
    paper_header.push_back("paper " + label);
  }

  std::string out = fmt::format("## Robust accuracy: {}\n\n", root_or(file, "dataset"));
  if (!split) {
    std::vector<std::string> header = {"model", "clean"};
    for (const auto& col : columns) {
      for (const auto& attack : col.attacks) header.push_back(attack + " " + col.label);
      header.push_back("worst case " + col.label);
    }
    header.insert(header.end(), paper_header.begin(), paper_header.end());
    MarkdownTable table(header);
    for (std::size_t mi = 0; mi < file.models.size(); ++mi) {
      const ModelInfo& m = file.models[mi];
      std::vector<std::string> row{model_cell(m), clean_of(m)};
      for (const auto& col : columns) threat_cells(m, col, row);
      paper_cells(mi, row);
      table.add_row(row);
    }
    out += table.render();
  } else {
    out += "One table per threat model (the models that were attacked at it).\n";
    for (const auto& col : columns) {
      std::vector<std::string> header = {"model", "clean"};
      for (const auto& attack : col.attacks) header.push_back(attack);
      header.push_back("worst case");
      MarkdownTable table(header);
      for (const auto& m : file.models) {
        if (!worst_case(file, m.name, col.threat).present) continue;
        std::vector<std::string> row{model_cell(m), clean_of(m)};
        threat_cells(m, col, row);
        table.add_row(row);
      }
      out += fmt::format("\n### {}\n\n{}", col.label, table.render());
    }
    if (!paper_keys.empty()) {
      std::vector<std::string> header = {"model"};
      header.insert(header.end(), paper_header.begin(), paper_header.end());
      MarkdownTable table(header);
      for (std::size_t mi = 0; mi < file.models.size(); ++mi) {
        std::vector<std::string> row{"`" + file.models[mi].name + "`"};
        paper_cells(mi, row);
        table.add_row(row);
      }
      out += "\n### The paper's numbers\n\n" + table.render();
    }
  }
  if (any_unreliable)
    out +=
        "\n⚠ unreliable: a soundness check flagged this result or its model (see Diagnostics); the number is kept "
        "but should not be trusted.\n";
  out +=
      "\nAdversarial accuracy is cumulative within a cascade: the attacks of one model at one threat model run in "
      "the order of the columns, and each column is the accuracy after that attack and every attack before it in "
      "its group, so \"worst case\" is the share of examples that survived every attack of the group. Each model "
      "predicts with its own prediction rule (see Model provenance). For stochastic models, numbers are the mean "
      "± standard deviation over R evaluation repeats with fresh samples. [lo, hi] is a 95% Wilson interval whose "
      "unit of sampling is the example: the R repeats of one example are correlated, so the interval counts "
      "n_eff = N p(1 − p) / s² independent evaluations (s² the variance of the N per-example accuracies; Kish's "
      "design effect), between N and R × N.\n";
  return out;
}

// Per model: clean accuracy, the worst case of every threat model, and the
// checks that fired. The details follow in the other sections.
std::string summary_section(const ResultFile& file, const std::vector<Column>& columns) {
  // Threat models in groups that keep each table within kMaxColumns (model, clean, checks + the group).
  const std::size_t per_table = std::max<std::size_t>(1, kMaxColumns - 3);
  std::vector<MarkdownTable> tables;
  for (std::size_t first = 0; first < std::max<std::size_t>(1, columns.size()); first += per_table) {
    const std::size_t last = std::min(columns.size(), first + per_table);
    std::vector<std::string> header = {"model", "clean"};
    for (std::size_t k = first; k < last; ++k) header.push_back("worst " + columns[k].label);
    header.push_back("checks");
    MarkdownTable table(header);
    for (const auto& m : file.models) {
      const bool flagged = model_flagged(&m);
      Accuracy clean;
      clean.mean = m.clean_accuracy;
      std::vector<std::string> row{"`" + m.name + "`", format_accuracy_brief(clean)};
      std::set<std::string> fired;
      for (const auto& f : m.flags)
        if (f.failed) fired.insert(fmt::format("{} {}", f.check, f.name));
      for (const auto& c : file.cells)
        if (c.model == m.name)
          for (const auto& f : c.flags)
            if (f.failed) fired.insert(fmt::format("{} {}", f.check, f.name));
      for (std::size_t k = first; k < last; ++k) {
        const WorstCase w = worst_case(file, m.name, columns[k].threat);
        row.push_back(!w.present ? "—" : format_accuracy_brief(w.accuracy) + (flagged || w.unreliable ? kUnreliableMark : ""));
      }
      row.push_back(fired.empty() ? "ok" : fmt::format("⚠ {}", fmt::join(fired, "; ")));
      table.add_row(row);
    }
    tables.push_back(std::move(table));
  }
  std::size_t ran = 0, failed = 0;
  auto count = [&](const std::vector<Flag>& flags) {
    for (const auto& f : flags) {
      ++ran;
      failed += f.failed ? 1 : 0;
    }
  };
  for (const auto& m : file.models) count(m.flags);
  for (const auto& c : file.cells) count(c.flags);
  std::string out = fmt::format("## Summary\n\n{}; seed {}; device {}. ", root_or(file, "dataset"), root_or(file, "seed"),
                                root_or(file, "device"));
  out += "Worst case: the share of examples (mean over repeats) that survived every attack of the threat model; ";
  out += "checks: the soundness checks that fired for the model or one of its cells";
  out += ran == 0 ? " (none were recorded).\n\n" : fmt::format(" ({} of {} checks flagged).\n\n", failed, ran);
  if (file.models.empty()) return out + "No models in this file.\n";
  for (std::size_t k = 0; k < tables.size(); ++k) out += (k ? "\n" : "") + tables[k].render();
  return out;
}

// The legend of the tables, which name models by their short name alone.
std::string models_section(const ResultFile& file) {
  std::string out = "## Models\n\nThe tables name each model by its short name; what it is:\n\n";
  if (file.models.empty()) return out + "No models in this file.\n";
  MarkdownTable t({"model", "description"});
  for (const auto& m : file.models) t.add_row({"`" + m.name + "`", m.description.empty() ? "—" : m.description});
  return out + t.render();
}

// Every result column (each attack at each threat model, and the worst case
// per threat model) against each of the paper's robustness numbers: mean
// |ours - paper| over the models that have both, closest first. Written
// from the file alone, so the sentence it ends with is measured.
std::string paper_section(const ResultFile& file, const std::vector<Column>& columns) {
  const std::vector<nlohmann::json> papers = papers_of(file);
  std::vector<std::string> keys;
  for (const auto& paper : papers)
    for (const auto& [key, value] : paper.items())
      if (key != "clean_accuracy" && value.is_number() && std::find(keys.begin(), keys.end(), key) == keys.end())
        keys.push_back(key);
  if (keys.empty()) return "";
  std::sort(keys.begin(), keys.end());
  struct Row {
    std::string label;
    double mean_abs = 0, mean_signed = 0;
    std::size_t models = 0, flagged = 0;
  };
  std::string out =
      "## Beside the paper\n\nFor each of the paper's robustness numbers, every result of this file (an attack at a "
      "threat model, or the worst case of a threat model) by its distance to the paper over the models that have "
      "both: mean |ours − paper| and mean (ours − paper) in points; flagged: the models on which a soundness check "
      "marks the result unreliable.\n";
  std::string sentences;
  for (const auto& key : keys) {
    std::vector<Row> rows;
    auto add = [&](const std::string& label, const std::function<std::pair<double, bool>(const ModelInfo&)>& value) {
      Row row{label};
      for (std::size_t mi = 0; mi < file.models.size(); ++mi) {
        const auto it = papers[mi].find(key);
        if (it == papers[mi].end() || !it->is_number()) continue;
        const auto [ours, flagged] = value(file.models[mi]);
        if (std::isnan(ours)) continue;
        const double d = 100 * ours - it->get<double>();
        row.mean_abs += std::abs(d);
        row.mean_signed += d;
        ++row.models;
        row.flagged += flagged ? 1 : 0;
      }
      if (row.models == 0) return;
      row.mean_abs /= static_cast<double>(row.models);
      row.mean_signed /= static_cast<double>(row.models);
      rows.push_back(row);
    };
    for (const auto& col : columns) {
      for (const auto& attack : col.attacks)
        add(fmt::format("{} at {}", attack, col.label), [&](const ModelInfo& m) {
          const CellResult* c = find_cell(file, m.name, col.threat, attack);
          if (!c) return std::make_pair(std::nan(""), false);
          return std::make_pair(cell_accuracy(*c).mean, c->unreliable() || model_flagged(&m));
        });
      if (col.attacks.size() > 1)
        add(fmt::format("worst case at {}", col.label), [&](const ModelInfo& m) {
          const WorstCase w = worst_case(file, m.name, col.threat);
          if (!w.present) return std::make_pair(std::nan(""), false);
          return std::make_pair(w.accuracy.mean, w.unreliable || model_flagged(&m));
        });
    }
    if (rows.empty()) continue;
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.mean_abs < b.mean_abs; });
    MarkdownTable t({"result", "models", "mean |ours − paper|", "mean (ours − paper)", "flagged"});
    for (const auto& r : rows)
      t.add_row({r.label, fmt::format("{}", r.models), fmt::format("{:.1f}", r.mean_abs),
                 fmt::format("{:+.1f}", r.mean_signed), r.flagged ? fmt::format("{}", r.flagged) : ""});
    out += fmt::format("\n### Paper: `{}`\n\n{}", key, t.render());
    const Row& best = rows.front();
    sentences += fmt::format(
        "- The paper's `{}` is closest to **{}**: {:.1f} points apart on average over {} models{}.", key, best.label,
        best.mean_abs, best.models,
        best.flagged ? fmt::format(", but the soundness checks flag it on {} of them", best.flagged) : "");
    // The closest result no check flagged, when the closest is flagged.
    const auto sound = std::find_if(rows.begin(), rows.end(), [](const Row& r) { return r.flagged == 0; });
    if (best.flagged && sound != rows.end())
      sentences += fmt::format(" The closest unflagged result, {}, is {:+.1f} points from the paper on average.",
                               sound->label, sound->mean_signed);
    sentences += "\n";
  }
  return out + "\n" + sentences;
}

// What a fired check means, in words, by flag name (docs/EVALUATION.md has the table).
struct CheckMeaning {
  const char* title;
  const char* why;
};
const CheckMeaning* meaning_of(const std::string& name) {
  static const std::map<std::string, CheckMeaning> meanings{
      {"randomness",
       {"A random model declared deterministic",
        "it was attacked without EOT, so its gradients are single noisy draws and its robustness is overstated"}},
      {"logits",
       {"A model that returns probabilities", "cross-entropy gradients of probabilities vanish; attacks stall"}},
      {"gradient-health",
       {"Broken input gradients", "NaN/Inf or all-zero gradients leave gradient attacks blind (gradient masking)"}},
      {"model-mode",
       {"A model in the wrong mode", "training mode or sampling off is not the model the threat model describes"}},
      {"validity",
       {"Adversarial examples outside the threat model", "the numbers do not measure the stated eps-ball"}},
      {"iterative-vs-single-step",
       {"An iterative attack beaten by a single step",
        "FGSM broke examples the iterative attack left robust, so the iterative attack is failing"}},
      {"unbounded-cell",
       {"Unbounded attacks that left examples robust",
        "an attack free to move an example anywhere in the input box must break every example; what it leaves is "
        "the attack's failure, not robustness. On a stochastic model a minimum-norm attack (CW) stops on the decision "
        "boundary, where fresh noise undoes it: judge such a model with a bounded attack and EOT instead"}},
      {"unbounded-attack",
       {"A model that PGD with an eps covering the whole box did not break",
        "every attack on this model is suspect (masked gradients or a failing attack)"}},
      {"eot-doubling",
       {"Results that fall when EOT samples are doubled",
        "the attack's gradient estimate is too noisy at its EOT setting, so the number overstates robustness"}},
      {"eot-convergence",
       {"Results that have not converged in EOT samples",
        "more samples per gradient change the result, so the number overstates robustness"}},
      {"fixed-noise-control",
       {"Attacks that do worse on the model with its noise frozen",
        "a deterministic version of the same model should be easier to attack; the attack, not the noise, is failing"}},
      {"convergence",
       {"Attacks that have not converged",
        "doubling the attack's budget lowers robust accuracy, so the number overstates robustness"}},
      {"noise-vs-white-box",
       {"Attacks beaten by random noise", "random noise of the same size did better: the attack is failing"}},
      {"white-vs-transfer",
       {"White-box attacks beaten by a transfer attack",
        "a transferred attack should not beat white-box gradients on the model itself (gradient masking)"}},
      {"black-box-vs-white-box",
       {"White-box attacks beaten by a gradient-free attack",
        "a query-only attack (Square) broke examples the white-box attacks left robust: their gradients mislead them"}},
      {"eps-monotonicity",
       {"Robust accuracy that rises with eps, or stays above chance when eps covers the box",
        "a larger threat cannot leave more examples robust: the attack is failing at the larger eps"}},
  };
  const auto it = meanings.find(name);
  return it == meanings.end() ? nullptr : &it->second;
}

// The report's first lines: whether the numbers can be trusted, in words.
std::string verdict_section(const ResultFile& file) {
  const Soundness soundness = soundness_of(file);
  if (soundness.checks == 0)
    return "**No soundness checks were recorded in this file**: nothing says whether its attacks worked.\n";
  if (!soundness.any())
    return fmt::format(
        "**Every soundness check passed** ({} checks on {} models and {} results; docs/EVALUATION.md lists them): "
        "no sign that an attack failed where robustness is reported.\n",
        soundness.checks, file.models.size(), file.cells.size());
  // flag name -> check number and the results it marks
  std::map<std::string, std::pair<int, std::vector<std::string>>> fired;
  for (const auto& m : file.models)
    for (const auto& f : m.flags) {
      if (f.failed) {
        auto& e = fired[f.name];
        e.first = f.check;
        e.second.push_back(fmt::format("`{}` (every result of the model)", m.name));
      }
    }
  for (const auto& c : file.cells)
    for (const auto& f : c.flags) {
      if (!f.failed) continue;
      auto& e = fired[f.name];
      e.first = f.check;
      e.second.push_back(fmt::format("`{}` {} at {} {}{} ({})", c.model, c.attack, norm_label(c.norm), eps_text_of(c),
                                     c.targeted ? " targeted" : "", format_accuracy_brief(cell_accuracy(c))));
    }
  std::string out = fmt::format(
      "**⚠ Some results cannot be trusted**: soundness checks fired on {} of {} results{}; they stay in the tables, "
      "marked ⚠. What fired, and why it matters:\n\n",
      soundness.flagged_cells, soundness.cells,
      soundness.flagged_models > 0 ? " (counting every result of a flagged model)" : "");
  constexpr std::size_t kListed = 6;
  for (const auto& [name, entry] : fired) {
    const auto* meaning = meaning_of(name);
    const auto& where = entry.second;
    std::vector<std::string> shown(where.begin(), where.begin() + std::min(kListed, where.size()));
    std::string why = meaning ? meaning->why : "see docs/EVALUATION.md";
    why[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(why[0])));
    out += fmt::format("- **{}** (check {} `{}`): {}{}. {}.\n", meaning ? meaning->title : name, entry.first, name,
                       fmt::join(shown, "; "),
                       where.size() > kListed ? fmt::format(" and {} more", where.size() - kListed) : "", why);
  }
  out += "\nThe measurements behind each flag are under Diagnostics.\n";
  return out;
}

std::string throughput_section(const ResultFile& file) {
  MarkdownTable t({"model", "attack", "eps", "attacked", "EOT", "repeats", "seconds", "images/s", "grad evals/s",
                   "grad evals/image", "checks s"});
  double attack_seconds = 0, check_seconds = 0, probe_seconds = 0;
  auto number = [](const CellResult& c, const char* key, const char* format) {
    const auto it = c.summary.find(key);
    return it == c.summary.end() || std::isnan(it->second) ? std::string("—")
                                                           : fmt::format(fmt::runtime(format), it->second);
  };
  for (const auto& c : file.cells) {
    int64_t attacked = 0, evaluations = 0;
    for (std::size_t i = 0; i < c.attacked.size() && i < c.gradient_evaluations.size(); ++i)
      if (c.attacked[i]) {
        ++attacked;
        evaluations += c.gradient_evaluations[i];
      }
    std::string eps = norm_label(c.norm) + " " + eps_text_of(c) + (c.targeted ? " targeted" : "");
    t.add_row(
        {c.model, c.attack, eps, fmt::format("{} of {}", attacked, c.size()), fmt::format("{}", c.eot_samples),
         fmt::format("{}", c.repeats), number(c, "seconds", "{:.2f}"), number(c, "images_per_second", "{:.1f}"),
         number(c, "gradient_evaluations_per_second", "{:.0f}"),
         attacked > 0 ? fmt::format("{:.1f}", static_cast<double>(evaluations) / static_cast<double>(attacked)) : "—",
         number(c, "check_seconds", "{:.2f}")});
    const auto s = c.summary.find("seconds"), k = c.summary.find("check_seconds"), p = c.summary.find("probe_seconds");
    if (s != c.summary.end() && k != c.summary.end() && std::isfinite(s->second) && std::isfinite(k->second)) {
      attack_seconds += s->second;
      check_seconds += k->second;
      if (p != c.summary.end() && std::isfinite(p->second)) probe_seconds += p->second;
    }
  }
  std::string out =
      "## Throughput\n\nattacked: the examples the attack ran on (the cascade skips those already wrong in every "
      "repeat); EOT: samples per gradient; grad evals: gradient evaluations; checks s: the seconds of the cell's "
      "soundness checks.\n\n" +
      t.render();
  if (check_seconds > 0)
    out += fmt::format(
        "\nThe soundness checks of the cells took {:.1f} s beside {:.1f} s of attacks ({:.0f}% more), of which the "
        "probes of stochastic models (EOT doubled, noise frozen, Square; every cell with --audit) took {:.1f} s.\n",
        check_seconds, attack_seconds, 100 * check_seconds / std::max(attack_seconds, 1e-9), probe_seconds);
  return out;
}

std::string without_full_stop(std::string s) {
  while (!s.empty() && (s.back() == '.' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string diagnostics_section(const ResultFile& file) {
  std::string out = "## Diagnostics\n\nSoundness checks numbered as in docs/EVALUATION.md: what fired, then what passed.\n";
  std::vector<std::string> unreliable;
  // (check, name) -> {models passed, cells passed}
  std::map<std::pair<int, std::string>, std::pair<int64_t, int64_t>> passed;
  std::size_t checks = 0;
  for (const auto& m : file.models) {
    for (const auto& f : m.flags) {
      ++checks;
      if (f.failed)
        unreliable.push_back(
            fmt::format("model `{}` (every cell of it): check {} {}: {}", m.name, f.check, f.name, f.detail));
      else
        ++passed[{f.check, f.name}].first;
    }
  }
  for (const auto& c : file.cells) {
    std::vector<std::string> reasons;
    for (const auto& f : c.flags) {
      ++checks;
      if (f.failed)
        reasons.push_back(fmt::format("check {} {}: {}", f.check, f.name, f.detail));
      else
        ++passed[{f.check, f.name}].second;
    }
    if (!reasons.empty()) unreliable.push_back(fmt::format("`{}`: {}", c.id, fmt::join(reasons, "; ")));
  }
  if (checks == 0) return out + "\nNo checks were recorded in this file.\n";
  out += "\n### Unreliable results\n\n";
  if (unreliable.empty()) out += "None: every check passed.\n";
  for (const auto& line : unreliable) out += "- " + line + "\n";
  MarkdownTable t({"check", "name", "passed on"});
  for (const auto& [key, n] : passed) {
    std::vector<std::string> where;
    if (n.first > 0) where.push_back(fmt::format("{} model{}", n.first, n.first == 1 ? "" : "s"));
    if (n.second > 0) where.push_back(fmt::format("{} cell{}", n.second, n.second == 1 ? "" : "s"));
    t.add_row({fmt::format("{}", key.first), key.second, fmt::format("{}", fmt::join(where, ", "))});
  }
  if (!passed.empty()) out += "\n### Passed\n\n" + t.render();
  // What every check measured, folded away (GitHub renders <details>); a
  // list, since the measurements are sentences too long for a table.
  std::string all;
  auto measured = [&](const std::string& on, const Flag& f) {
    all += fmt::format("- {}, check {} {}: {}{}\n", on, f.check, f.name, f.failed ? "**FLAGGED**" : "ok",
                       f.detail.empty() ? "" : " — " + f.detail);
  };
  for (const auto& m : file.models)
    for (const auto& f : m.flags) measured(fmt::format("model `{}`", m.name), f);
  for (const auto& c : file.cells)
    for (const auto& f : c.flags) measured(fmt::format("`{}`", c.id), f);
  out += "\n<details><summary>What every check measured</summary>\n\n" + all + "\n</details>\n";
  return out;
}

std::string provenance_section(const ResultFile& file) {
  std::string out = "## Model provenance\n\n";
  if (file.models.empty()) return out + "No models in this file.\n";
  for (const auto& m : file.models) {
    const auto training = parse_json(m.training_json, fmt::format("model '{}': training_json", m.name));
    std::string trained =
        key_options(training, {{"preset", "preset"}, {"epochs", "epochs"}, {"seed", "seed"}, {"dataset", "dataset"}});
    out += fmt::format("- **{}**{}: {}. Prediction rule: {}. Provenance: {}. SHA-256: `{}`. Training: {}.\n", m.name,
                       m.description.empty() ? "" : " (" + m.description + ")",
                       m.stochastic ? "stochastic" : "deterministic",
                       m.prediction_rule.empty() ? "unknown" : without_full_stop(m.prediction_rule),
                       m.provenance.empty() ? "unknown" : without_full_stop(m.provenance),
                       m.file_sha256.empty() ? "unknown" : m.file_sha256, trained.empty() ? "no record" : trained);
  }
  return out;
}

}  // namespace
}  // namespace report_detail

Soundness soundness_of(const ResultFile& file) {
  using namespace report_detail;
  Soundness s;
  s.cells = file.cells.size();
  std::set<std::string> flagged_models;
  for (const auto& m : file.models) {
    s.checks += m.flags.size();
    if (model_flagged(&m)) flagged_models.insert(m.name);
  }
  s.flagged_models = flagged_models.size();
  for (const auto& c : file.cells) {
    s.checks += c.flags.size();
    if (c.unreliable() || flagged_models.count(c.model)) ++s.flagged_cells;
  }
  return s;
}

std::string Soundness::line() const {
  if (checks == 0) return "soundness: no checks were recorded";
  if (!any()) return fmt::format("soundness: every check passed ({} checks)", checks);
  return fmt::format("soundness: ⚠ {} of {} results flagged as unreliable{} (the report's first lines say why)",
                     flagged_cells, cells,
                     flagged_models > 0 ? fmt::format(", {} model(s) flagged", flagged_models) : "");
}

namespace report_detail {
namespace {

// The report and, when options.curves_dir is set, its curves (path, SVG) in `svgs`.
std::string render(const ResultFile& file, const ReportOptions& options,
                   std::vector<std::pair<std::string, std::string>>& svgs) {
  const std::vector<Column> columns = columns_of(file);
  std::string out = fmt::format("# imbench report: {}\n\n", root_or(file, "matrix_name", "unnamed matrix"));
  out += verdict_section(file) + "\n";
  out += summary_section(file, columns) + "\n";
  out += models_section(file) + "\n";
  out += configuration_section(file) + "\n";
  out += threat_models_section(file) + "\n";
  out += accuracy_section(file, columns) + "\n";
  if (const std::string paper = paper_section(file, columns); !paper.empty()) out += paper + "\n";
  if (!options.curves_dir.empty()) {
    const std::string links = write_curves(file, columns, options, svgs);
    out += "## Robustness curves\n\n";
    out += links.empty()
               ? "No finite eps in this file: no curves.\n"
               : "One chart per norm (and targeting): each model's worst-case robust accuracy against eps, from its "
                 "clean accuracy at eps 0; the shaded band is the mean ± standard deviation over repeats (stochastic "
                 "models); a hollow point is a result a soundness check flagged. Unbounded eps are not drawn.\n\n" +
                     links;
    out += "\n";
  }
  out += throughput_section(file) + "\n";
  out += diagnostics_section(file) + "\n";
  out += provenance_section(file);
  return out;
}

std::vector<std::pair<std::string, std::string_view>> views_of(
    const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<std::pair<std::string, std::string_view>> views;
  for (const auto& [path, text] : files) views.emplace_back(path, text);
  return views;
}

}  // namespace
}  // namespace report_detail

std::string render_report(const ResultFile& file, const ReportOptions& options) {
  using namespace report_detail;
  std::vector<std::pair<std::string, std::string>> svgs;
  std::string out = render(file, options, svgs);
  write_files_atomically(views_of(svgs));
  return out;
}

void write_report(const std::string& path, const ResultFile& file) {
  using namespace report_detail;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw UsageError(fmt::format("{}: is a directory, expected a file name", path));
  std::vector<std::pair<std::string, std::string>> files;
  const std::string text = render(file, report_options_for(path), files);
  files.emplace_back(path, text);
  write_files_atomically(views_of(files));
}

ReportOptions report_options_for(const std::string& report_path) {
  const std::filesystem::path p(report_path);
  const std::string stem = p.stem().string();
  ReportOptions o;
  o.curves_dir = (p.parent_path() / (stem + "-curves")).string();
  o.curves_link_prefix = stem + "-curves/";
  return o;
}

}  // namespace imbench::reports
