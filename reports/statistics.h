#pragma once
/// Statistics of the report and the comparison. Torch-free.
#include <cstdint>
#include <utility>

namespace imbench::reports {

/// The 95% Wilson score interval of k successes in n trials.
std::pair<double, double> wilson_interval(double k, double n, double z = 1.959963984540054);
/// Exact two-sided McNemar p-value for b and c discordant pairs.
double mcnemar_p_value(int64_t b, int64_t c);

}  // namespace imbench::reports
