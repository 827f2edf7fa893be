#include "core/errors.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace imbench {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string closest_name(const std::string& name, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = std::max<std::size_t>(2, name.size() / 3) + 1;
  for (const auto& k : known) {
    const std::size_t d = edit_distance(name, k);
    if (d < best_d || (!name.empty() && k.rfind(name, 0) == 0 && best.empty())) {
      best_d = std::min(d, best_d);
      best = k;
    }
  }
  return best;
}

void throw_unknown_name(const std::string& what, const std::string& name,
                        const std::vector<std::string>& known) {
  const std::string guess = closest_name(name, known);
  std::string msg = fmt::format("unknown {} '{}'", what, name);
  if (!guess.empty()) msg += fmt::format(" (did you mean '{}'?)", guess);
  msg += fmt::format("; known: {}", fmt::join(known, ", "));
  throw UsageError(msg);
}

}  // namespace imbench
