#pragma once
/// Statistics of the report and the comparison. Torch-free.
#include <cstdint>
#include <utility>
#include <vector>

namespace imbench::reports {

/// The 95% Wilson score interval of k successes in n trials.
std::pair<double, double> wilson_interval(double k, double n, double z = 1.959963984540054);
/// Records [R, N] (row-major, nonzero = correct) of N examples evaluated R
/// times with fresh samples. The example is the unit of sampling: the
/// repeats of one example are correlated (an example far from the boundary
/// is right in every repeat), so R x N records are not R x N independent
/// trials. The effective number of trials is N p(1 - p) / s^2 (Kish's
/// design effect), s^2 the sample variance of the N per-example accuracies,
/// clamped to [N, R x N]: N when an example's repeats always agree, R x N
/// when they are independent.
struct ExampleAccuracy {
  double mean = 0;              ///< over examples and repeats
  double effective_trials = 0;  ///< n_eff in [N, R x N]
  std::pair<double, double> interval{0.0, 1.0};  ///< 95% Wilson interval with n_eff trials
};
ExampleAccuracy example_accuracy(const std::vector<uint8_t>& records, std::size_t repeats, std::size_t examples);

/// Exact two-sided McNemar p-value for b and c discordant pairs.
double mcnemar_p_value(int64_t b, int64_t c);

}  // namespace imbench::reports
