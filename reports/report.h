#pragma once
/// The Markdown report of a results file (`imbench report`, `imbench run`)
/// with its robustness-curve SVGs. Torch-free.
#include <string>

#include "reports/results.h"

namespace imbench::reports {

struct ReportOptions {
  /// Folder the robustness-curve SVG files are written to ("" = no curves).
  std::string curves_dir;
  /// How the report links them (relative to the report file).
  std::string curves_link_prefix;
};
/// Options for a report written to `report_path`: curves in the folder
/// "<stem>-curves" beside it, linked relatively.
ReportOptions report_options_for(const std::string& report_path);

/// The Markdown report. Writes one SVG per norm and targeting (every
/// model's worst-case accuracy against eps) into options.curves_dir when set. Depends only on `file`: no clock, no
/// environment.
std::string render_report(const ResultFile& file, const ReportOptions& options);

/// Writes the report of `file` to `path` with its curves in the folder of
/// report_options_for(path), all through imbench::write_files_atomically:
/// every file is written before any is replaced, so a full disk leaves the
/// previous report and curves as they were (imbench::Error, one line).
/// UsageError when `path` is a folder.
void write_report(const std::string& path, const ResultFile& file);

/// Results a soundness check flagged: cells with a failed flag, and every
/// cell of a model with a failed model-level flag.
struct Soundness {
  std::size_t checks = 0;        ///< verdicts recorded
  std::size_t flagged_cells = 0;  ///< cells flagged themselves or through their model
  std::size_t flagged_models = 0;
  std::size_t cells = 0;
  bool any() const { return flagged_cells > 0 || flagged_models > 0; }
  /// One line for a terminal: "soundness: ..." (what fired is in the report).
  std::string line() const;
};
Soundness soundness_of(const ResultFile& file);

/// The exit status of `--fail-on-unreliable` when a result is flagged.
inline constexpr int kUnreliableExitStatus = 3;

}  // namespace imbench::reports
