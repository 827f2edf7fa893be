#pragma once
/// `imbench run` (and `imbench attack`, a one-cell matrix): schedules the
/// cells of a benchmark matrix, trains missing models, hands every cell to
/// the cell evaluator (harness/evaluator.h), and keeps the results in an
/// HDF5 file rewritten atomically after every cell, so a crash or kill loses
/// at most the cell in progress and a re-run resumes.
#include <optional>
#include <ostream>
#include <string>

#include "harness/matrix.h"
#include "reports/results.h"

namespace imbench::harness {

struct RunRequest {
  std::string matrix_path;
  std::optional<Matrix> matrix;       ///< set: this matrix instead of reading matrix_path
  std::string out;                    ///< "" = results/<matrix name>[-shard-i-of-n].h5
  std::string report;                 ///< "" = the output path with .md; "-" = no report
  bool write = true;                  ///< false: no results file and no report (the results are returned)
  bool resume = true;                 ///< false: an existing output file is replaced, not resumed
  /// With resume: an existing file of another matrix is replaced instead of
  /// refused (imbench attack: --out holds the last attack command's results).
  bool replace_other_matrix = false;
  std::string shard;                  ///< "" = all cells; "i/n" = every n-th job starting at i
  bool audit = false;                 ///< also run the expensive soundness checks
  std::optional<std::string> device;  ///< overrides the matrix's device
  std::string data_dir, cifar10_dir;
  bool quiet = false;                 ///< no live progress line
  /// Check the matrix, the model files and the data, print the plan (models
  /// to train, cascade jobs, estimated work) and return an empty result:
  /// nothing is trained, attacked or written.
  bool dry_run = false;
  /// Save every cell's adversarial examples (overrides the matrix's and its
  /// attacks' save_adversarial). Changes no cell's resume key; a finished cell
  /// without them is run again.
  bool save_adversarial = false;
};

/// Runs (or resumes) the matrix and returns its results (none for a dry run).
reports::ResultFile evaluate_matrix(const RunRequest& request, std::ostream& out);
/// The same for `imbench run`; returns the exit code (0).
int run_matrix(const RunRequest& request, std::ostream& out);

}  // namespace imbench::harness
