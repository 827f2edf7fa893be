#pragma once
/// Markdown tables for reports and the CLI. Torch-free.
#include <string>
#include <vector>

namespace imbench::reports {

class MarkdownTable {
 public:
  explicit MarkdownTable(std::vector<std::string> header);
  /// Adds a row; UsageError if its width differs from the header's.
  void add_row(std::vector<std::string> row);
  /// GitHub-flavoured Markdown with padded columns; '|' in cells is escaped.
  std::string render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

/// "97.53%" (two decimals); "97.53 ± 0.12%" when std > 0.
std::string format_percent(double fraction, double std_fraction = 0.0);

}  // namespace imbench::reports
