#include "reports/markdown.h"

#include <fmt/format.h>

#include "core/errors.h"

namespace imbench::reports {

MarkdownTable::MarkdownTable(std::vector<std::string> header) : header_(std::move(header)) {}

void MarkdownTable::add_row(std::vector<std::string> row) {
  if (row.size() != header_.size())
    throw UsageError(fmt::format("table row has {} cells, the header {}", row.size(), header_.size()));
  rows_.push_back(std::move(row));
}

namespace {
std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}
// Display width: count UTF-8 code points, not bytes.
std::size_t width(const std::string& s) {
  std::size_t w = 0;
  for (unsigned char c : s) w += (c & 0xC0) != 0x80;
  return w;
}
}  // namespace

std::string MarkdownTable::render() const {
  std::vector<std::size_t> w(header_.size(), 3);
  auto widen = [&](const std::vector<std::string>& r) {
    for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], width(escape(r[i])));
  };
  widen(header_);
  for (const auto& r : rows_) widen(r);
  auto line = [&](const std::vector<std::string>& r) {
    std::string s = "|";
    for (std::size_t i = 0; i < r.size(); ++i) {
      const std::string cell = escape(r[i]);
      s += " " + cell + std::string(w[i] - width(cell), ' ') + " |";
    }
    return s + "\n";
  };
  std::string out = line(header_);
  out += "|";
  for (auto x : w) out += std::string(x + 2, '-') + "|";
  out += "\n";
  for (const auto& r : rows_) out += line(r);
  return out;
}

std::string format_percent(double fraction, double std_fraction) {
  if (std_fraction > 0) return fmt::format("{:.2f} ± {:.2f}%", 100.0 * fraction, 100.0 * std_fraction);
  return fmt::format("{:.2f}%", 100.0 * fraction);
}

}  // namespace imbench::reports
