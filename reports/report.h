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

/// The Markdown report. Writes one SVG per model and norm into
/// options.curves_dir when set. Depends only on `file`: no clock, no
/// environment.
std::string render_report(const ResultFile& file, const ReportOptions& options);

}  // namespace imbench::reports
