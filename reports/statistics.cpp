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

ExampleAccuracy example_accuracy(const std::vector<uint8_t>& records, std::size_t repeats, std::size_t examples) {
  if (records.size() != repeats * examples)
    throw Error(fmt::format("{} records for {} repeats x {} examples", records.size(), repeats, examples));
  ExampleAccuracy a;
  if (examples == 0 || repeats == 0) return a;
  const double r = static_cast<double>(repeats), n = static_cast<double>(examples);
  std::vector<double> per_example(examples, 0.0);
  for (std::size_t k = 0; k < repeats; ++k)
    for (std::size_t i = 0; i < examples; ++i) per_example[i] += records[k * examples + i] != 0 ? 1.0 : 0.0;
  double sum = 0;
  for (auto& v : per_example) sum += (v /= r);
  a.mean = sum / n;
  a.effective_trials = n;
  if (repeats > 1 && examples > 1) {
    double ss = 0;
    for (double v : per_example) ss += (v - a.mean) * (v - a.mean);
    const double s2 = ss / (n - 1);
    const double binomial = a.mean * (1 - a.mean);
    if (binomial > 0) a.effective_trials = s2 > 0 ? std::clamp(n * binomial / s2, n, n * r) : n * r;
  }
  a.interval = wilson_interval(a.mean * a.effective_trials, a.effective_trials);
  return a;
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
