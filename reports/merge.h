#pragma once
/// Joining the shards of one matrix run (`imbench merge`). Torch-free.
#include <vector>

#include "reports/results.h"

namespace imbench::reports {

/// Joins shards of one matrix. Refuses (imbench::Error) files of different
/// matrices (matrix_hash differs) and two different results for one cell
/// id: a different hash, or any difference in the per-example records
/// (clean and adversarial correctness, predictions, norms, losses, gradient
/// counts, labels, targets, index) or the summary numbers other than timings
/// (entries ending in "seconds" or "_per_second"); the message names the cell
/// and what differs. Identical duplicates are kept once. Cells come out
/// in the order of the first file that has them, then the next...
ResultFile merge_results(const std::vector<ResultFile>& shards);

}  // namespace imbench::reports
