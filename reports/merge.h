#pragma once
/// Joining the shards of one matrix run (`imbench merge`). Torch-free.
#include <vector>

#include "reports/results.h"

namespace imbench::reports {

/// Joins shards of one matrix. Refuses (imbench::Error) files of different
/// matrices (matrix_hash differs) and two different results for one cell
/// id (different hash); identical duplicates are kept once. Cells come out
/// in the order of the first file that has them, then the next...
ResultFile merge_results(const std::vector<ResultFile>& shards);

}  // namespace imbench::reports
