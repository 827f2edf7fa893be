#include "reports/statistics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/errors.h"

namespace imbench::reports {

std::pair<double, double> wilson_interval(double k, double n, double z) {
  if (n <= 0) return {0.0, 1.0};
  const double p = k / n, z2 = z * z;
  const double denom = 1 + z2 / n;
  const double centre = (p + z2 / (2 * n)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom;
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

double mcnemar_p_value(int64_t b, int64_t c) {
  if (b < 0 || c < 0) throw Error(fmt::format("McNemar test: negative counts b = {}, c = {}", b, c));
  const int64_t n = b + c;
  if (n == 0) return 1.0;
  const int64_t k = std::min(b, c);
  // log P[X <= k] for X ~ Bin(n, 1/2), summed in log space (log-sum-exp):
  // 0.5^n underflows for n > 1074.
  const double log_n_fact = std::lgamma(static_cast<double>(n) + 1);
  const double log_half_n = static_cast<double>(n) * std::log(0.5);
  std::vector<double> terms(static_cast<std::size_t>(k) + 1);
  for (int64_t i = 0; i <= k; ++i)
    terms[static_cast<std::size_t>(i)] =
        log_n_fact - std::lgamma(static_cast<double>(i) + 1) - std::lgamma(static_cast<double>(n - i) + 1) + log_half_n;
  const double top = *std::max_element(terms.begin(), terms.end());
  double sum = 0;
  for (double t : terms) sum += std::exp(t - top);
  return std::min(1.0, 2 * std::exp(top + std::log(sum)));
}

}  // namespace imbench::reports
