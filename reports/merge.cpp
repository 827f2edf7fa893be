#include "reports/merge.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <type_traits>

#include "core/errors.h"

namespace imbench::reports {
// Named: reports/ compiles as one unity translation unit.
namespace merge_detail {
namespace {

std::string root_value(const ResultFile& f, const std::string& key) {
  const auto it = f.root.find(key);
  return it == f.root.end() || it->second.empty() ? "(none)" : it->second;
}

// Summary entries that measure time: two honest runs of one cell differ there.
bool is_timing(const std::string& key) {
  auto ends_with = [&](const std::string& tail) {
    return key.size() >= tail.size() && key.compare(key.size() - tail.size(), tail.size(), tail) == 0;
  };
  return ends_with("seconds") || ends_with("_per_second");
}

template <typename T>
std::string format_value(T v) {
  if constexpr (std::is_same_v<T, uint8_t>)
    return std::to_string(static_cast<int>(v));
  else
    return fmt::format("{}", v);
}

template <typename T>
void diff_records(const char* name, const std::vector<T>& a, const std::vector<T>& b, std::vector<std::string>& out) {
  if (a.size() != b.size()) {
    out.push_back(fmt::format("{} has {} values in one file and {} in the other", name, a.size(), b.size()));
    return;
  }
  std::size_t count = 0, first = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const bool same = a[i] == b[i] || (std::is_floating_point_v<T> && a[i] != a[i] && b[i] != b[i]);  // NaN == NaN
    if (!same && count++ == 0) first = i;
  }
  if (count > 0)
    out.push_back(fmt::format("{} differs in {} of {} values (first at position {}: {} vs {})", name, count, a.size(),
                              first, format_value(a[first]), format_value(b[first])));
}

// What differs between two results of one cell, beyond timings: the
// per-example records, the summary numbers, the saved examples' index.
std::vector<std::string> cell_differences(const CellResult& a, const CellResult& b) {
  std::vector<std::string> out;
  if (a.repeats != b.repeats) out.push_back(fmt::format("repeats {} vs {}", a.repeats, b.repeats));
  diff_records("index", a.index, b.index, out);
  diff_records("label", a.label, b.label, out);
  diff_records("target", a.target, b.target, out);
  diff_records("attacked", a.attacked, b.attacked, out);
  diff_records("clean_correct", a.clean_correct, b.clean_correct, out);
  diff_records("adversarial_correct", a.adversarial_correct, b.adversarial_correct, out);
  diff_records("linf", a.linf, b.linf, out);
  diff_records("l2", a.l2, b.l2, out);
  diff_records("l0", a.l0, b.l0, out);
  diff_records("final_loss", a.final_loss, b.final_loss, out);
  diff_records("gradient_evaluations", a.gradient_evaluations, b.gradient_evaluations, out);
  // Files of schema version 1 have no predictions: compare them only when both have them.
  if (!a.clean_prediction.empty() && !b.clean_prediction.empty())
    diff_records("clean_prediction", a.clean_prediction, b.clean_prediction, out);
  if (!a.adversarial_prediction.empty() && !b.adversarial_prediction.empty())
    diff_records("adversarial_prediction", a.adversarial_prediction, b.adversarial_prediction, out);
  diff_records("adversarial_index", a.adversarial_index, b.adversarial_index, out);
  std::set<std::string> keys;
  for (const auto& [k, v] : a.summary) keys.insert(k);
  for (const auto& [k, v] : b.summary) keys.insert(k);
  for (const auto& k : keys) {
    if (is_timing(k)) continue;
    const auto ia = a.summary.find(k), ib = b.summary.find(k);
    if (ia == a.summary.end() || ib == b.summary.end()) {
      out.push_back(fmt::format("summary {} is in one file only", k));
      continue;
    }
    const double x = ia->second, y = ib->second;
    if (!(x == y || (std::isnan(x) && std::isnan(y)))) out.push_back(fmt::format("summary {} {} vs {}", k, x, y));
  }
  return out;
}

}  // namespace
}  // namespace merge_detail

ResultFile merge_results(const std::vector<ResultFile>& shards) {
  using merge_detail::root_value;
  if (shards.empty()) throw Error("merge: no result files given");
  ResultFile out;
  out.root = shards.front().root;
  std::map<std::string, std::size_t> model_from, cell_from;  // name/id -> file that contributed it
  for (std::size_t s = 0; s < shards.size(); ++s) {
    const ResultFile& f = shards[s];
    if (root_value(f, "matrix_hash") != root_value(shards.front(), "matrix_hash"))
      throw Error(
          fmt::format("cannot merge results of different matrices: file 1 is matrix '{}' (hash {}), file {} "
                      "is matrix '{}' (hash {})",
                      root_value(shards.front(), "matrix_name"), root_value(shards.front(), "matrix_hash"), s + 1,
                      root_value(f, "matrix_name"), root_value(f, "matrix_hash")));
    for (const auto& m : f.models) {
      const auto it = model_from.find(m.name);
      if (it == model_from.end()) {
        model_from.emplace(m.name, s);
        out.models.push_back(m);
        continue;
      }
      const ModelInfo& first = *out.find_model(m.name);
      if (first.file_sha256 != m.file_sha256)
        throw Error(fmt::format("cannot merge: model '{}' is file sha256 {} in file {} but {} in file {}", m.name,
                                first.file_sha256, it->second + 1, m.file_sha256, s + 1));
    }
    for (const auto& c : f.cells) {
      const auto it = cell_from.find(c.id);
      if (it == cell_from.end()) {
        cell_from.emplace(c.id, s);
        out.cells.push_back(c);
        continue;
      }
      const CellResult& first = *out.find_cell(c.id);
      if (first.hash != c.hash)
        throw Error(fmt::format("cannot merge: cell '{}' has two different results (hash {} in file {}, {} in file {})",
                                c.id, first.hash, it->second + 1, c.hash, s + 1));
      if (const auto diffs = merge_detail::cell_differences(first, c); !diffs.empty())
        throw Error(fmt::format("cannot merge: cell '{}' has two different results (file {} and file {}): {}{}", c.id,
                                it->second + 1, s + 1,
                                fmt::join(diffs.begin(), diffs.begin() + std::min<std::size_t>(diffs.size(), 3), "; "),
                                diffs.size() > 3 ? fmt::format("; and {} more", diffs.size() - 3) : ""));
    }
  }
  out.root["shard"] = "merged";
  return out;
}

}  // namespace imbench::reports
