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
};
struct CompareResult {
  std::string markdown;    ///< table of every matching cell: base, new, change, p-value, verdict
  int64_t matched = 0, regressions = 0, improvements = 0;
  std::vector<std::string> unmatched;  ///< cell ids only in one file
};
CompareResult compare_results(const ResultFile& base, const ResultFile& next, const CompareOptions& options);

}  // namespace imbench::reports
