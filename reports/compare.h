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
};
struct CompareResult {
  std::string markdown;    ///< table of every matching cell: base, new, change, p-value, verdict
  int64_t matched = 0, regressions = 0, improvements = 0;
  int64_t config_changes = 0;  ///< matching cells whose configuration differs
  /// Whether a CI gate passes: no regression, and no configuration change unless allowed.
  bool passed(const CompareOptions& o) const { return regressions == 0 && (o.allow_config_change || config_changes == 0); }
  std::vector<std::string> unmatched;  ///< cell ids only in one file
};
CompareResult compare_results(const ResultFile& base, const ResultFile& next, const CompareOptions& options);

/// What differs in the configuration of two runs of one cell, one line each
/// ("options.steps: 40 -> 20", "model file: sha256 1a2b3c4d... -> 5e6f..."); empty when nothing does.
std::vector<std::string> config_differences(const ResultFile& base, const CellResult& b, const ResultFile& next,
                                            const CellResult& n);

}  // namespace imbench::reports
