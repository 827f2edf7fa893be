#pragma once
/// The regression comparison of two results files (`imbench compare`): cell
/// by cell, McNemar's test on paired examples, else a two-proportion z-test.
/// Torch-free.
#include <cstdint>
#include <string>
#include <vector>

#include "reports/results.h"

namespace imbench::reports {

struct CompareOptions {
  double tolerance = 0.0;  ///< regressions of at most this much (fraction, 0.01 = 1 point) are allowed
  double alpha = 0.05;     ///< significance level of the per-cell test
  /// Judge cells whose configuration differs (attack options, EOT, repeats,
  /// seed, threat model, model file, stochastic or not) like the others; by
  /// default such a cell's verdict is "configuration changed", which fails.
  bool allow_config_change = false;
  /// Pass although cells of the base file are missing from the new one; by
  /// default a missing base cell fails (cells only in the new file never do).
  bool allow_missing = false;
};
struct CompareResult {
  std::string markdown;    ///< table of every matching cell: base, new, change, p-value, verdict
  int64_t matched = 0, regressions = 0, improvements = 0;
  int64_t config_changes = 0;  ///< matching cells whose configuration differs
  /// Whether a CI gate passes: no regression, no configuration change and
  /// no base cell missing from the new file, unless allowed.
  bool passed(const CompareOptions& o) const {
    return regressions == 0 && (o.allow_config_change || config_changes == 0) && (o.allow_missing || missing.empty());
  }
  std::vector<std::string> unmatched;  ///< cell ids only in one file (missing, then only_new)
  std::vector<std::string> missing;    ///< base cells absent from the new file
  std::vector<std::string> only_new;   ///< cells of the new file absent from the base file
};
CompareResult compare_results(const ResultFile& base, const ResultFile& next, const CompareOptions& options);

/// "`a`, `b`, `c`": all ids up to `limit`, else the first `limit` and
/// "and N more"; "none" when empty.
std::string list_cells(const std::vector<std::string>& ids, std::size_t limit = 10);

/// What differs in the configuration of two runs of one cell, one line each
/// ("options.steps: 40 -> 20", "model file: sha256 1a2b3c4d... -> 5e6f..."); empty when nothing does.
std::vector<std::string> config_differences(const ResultFile& base, const CellResult& b, const ResultFile& next,
                                            const CellResult& n);

}  // namespace imbench::reports
