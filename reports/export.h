#pragma once
/// A results file as one tidy table (`imbench export`): one row per cell x
/// example x repeat, so that `pandas.read_csv` gives a frame ready for
/// groupby. Columns are listed in docs/results-h5.md. Torch-free.
#include <string>
#include <vector>

#include "reports/results.h"

namespace imbench::reports {

/// The column names, in order.
const std::vector<std::string>& export_columns();
/// The whole file as CSV (RFC 4180 quoting, header first, "\n" line ends).
std::string export_csv(const ResultFile& file);

}  // namespace imbench::reports
