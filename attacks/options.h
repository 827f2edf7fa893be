#pragma once
/// Attack options use the option tables of core/options.h; this adds how an
/// attack's errors name their options ("pgd: --steps must be >= 1, got 0").
/// Torch-free.
#include <string>

#include "core/options.h"

namespace imbench::attacks {

/// Errors of attack `attack`'s options, spelled as keys (a matrix file,
/// --options) or flags (`imbench attack`).
inline OptionContext attack_option_context(const std::string& attack, OptionSpelling spelling) {
  return {"option for attack '" + attack + "'", attack + ": ", spelling};
}

}  // namespace imbench::attacks
