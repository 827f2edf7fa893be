#pragma once
/// Reading and writing results files (HDF5, schema "imbench-results"; the
/// layout is in docs/results-h5.md). Torch-free.
#include <string>

#include "reports/results.h"

namespace imbench::reports {

/// What read_results does with the saved adversarial examples.
enum class AdversarialExamples {
  kLoad,       ///< into memory (CellResult::adversarial)
  kSkip,       ///< leave them out, shape and index too (report, compare, export: numbers only)
  kReference,  ///< shape and index only; CellResult::adversarial_file names the file, from which
               ///< write_results copies them (resume and merge: memory stays bounded)
};

/// Writes atomically (temporary file in the same folder, renamed when
/// complete): a kill at any moment leaves either the old or the new file.
/// The HDF5 file is assembled in memory and written by
/// imbench::write_file_atomically, so a full disk gives one Error line
/// ("PATH: write failed: disk full") and leaves the old file byte-identical;
/// a save holds the file's bytes (adversarial examples included) in memory.
/// Refuses inconsistent records before any file is touched. Throws
/// imbench::Error.
void write_results(const std::string& path, const ResultFile& file);
/// Reads a file written by write_results. Throws imbench::Error with a
/// one-line message for a missing, unreadable or non-imbench file, a file of
/// the per-attack records format of earlier imbench versions, or a schema
/// version this build does not know. Reads versions 1 and 2 (version 1: no
/// predictions, so those vectors stay empty).
ResultFile read_results(const std::string& path, AdversarialExamples adversarial = AdversarialExamples::kLoad);
/// Whether `path` holds the per-attack records that `imbench attack --out`
/// wrote before it wrote results files (what `imbench attack` may replace).
bool is_attack_records_file(const std::string& path);

}  // namespace imbench::reports
