#pragma once
/// Attack options use the option tables of core/options.h; this adds how an
/// attack's errors name their options ("pgd: --steps must be >= 1, got 0").
/// Torch-free.
#include <string>

#include "core/options.h"

namespace imbench::attacks {

/// Caps of the budget options (core/options.h budget(): IMBENCH_ALLOW_LARGE_BUDGET=1
/// raises each to 2^31 - 1). Each is ten times or more the largest budget in
/// the literature (CW: 10000 steps, 9 search steps; Square: 5000 queries), and
/// the audit, which doubles a budget, stays within them.
inline constexpr double kMaxSteps = 100000;
inline constexpr double kMaxRestarts = 1000;
inline constexpr double kMaxQueries = 1000000;
inline constexpr double kMaxBinarySearchSteps = 100;

/// Errors of attack `attack`'s options, spelled as keys (a matrix file,
/// --options) or flags (`imbench attack`).
inline OptionContext attack_option_context(const std::string& attack, OptionSpelling spelling) {
  return {"option for attack '" + attack + "'", attack + ": ", spelling};
}

}  // namespace imbench::attacks
