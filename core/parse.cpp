#include "core/parse.h"

#include <limits>
#include <stdexcept>

namespace imbench {

std::optional<double> parse_eps_text(const std::string& s) {
  try {
    if (s == "inf") return std::numeric_limits<double>::infinity();
    const auto slash = s.find('/');
    std::size_t used = 0;
    if (slash == std::string::npos) {
      const double v = std::stod(s, &used);
      if (used != s.size()) return std::nullopt;
      return v;
    }
    const double a = std::stod(s.substr(0, slash), &used);
    if (used != slash) return std::nullopt;
    const double b = std::stod(s.substr(slash + 1), &used);
    if (used != s.size() - slash - 1 || b == 0) return std::nullopt;
    return a / b;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace imbench
