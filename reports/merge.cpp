#include "reports/merge.h"

#include <fmt/format.h>

#include <map>

#include "core/errors.h"

namespace imbench::reports {
// Named: reports/ compiles as one unity translation unit.
namespace merge_detail {
namespace {

std::string root_value(const ResultFile& f, const std::string& key) {
  const auto it = f.root.find(key);
  return it == f.root.end() || it->second.empty() ? "(none)" : it->second;
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
    }
  }
  out.root["shard"] = "merged";
  return out;
}

}  // namespace imbench::reports
