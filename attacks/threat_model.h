#pragma once
/// The threat model an attack is run under, as a value every result and
/// report carries (EVALUATION.md rule 1). Torch-free.
#include <string>

namespace imbench::attacks {

enum class Norm { kLinf, kL2 };
std::string to_string(Norm norm);
Norm parse_norm(const std::string& name);  ///< "linf" or "l2"; UsageError otherwise

/// How the target class of a targeted attack is chosen.
enum class TargetRule { kNone, kGiven, kRandom, kLeastLikely, kNextClass };
std::string to_string(TargetRule rule);
TargetRule parse_target_rule(const std::string& name);  ///< "given", "random", "least-likely", "next"

struct ThreatModel {
  Norm norm = Norm::kLinf;
  double eps = 0.3;                 ///< radius of the ball, in input units ([0, 1] pixels); inf: unbounded (minimum-norm attacks)
  TargetRule target = TargetRule::kNone;  ///< kNone = untargeted
  double lower = 0.0, upper = 1.0;  ///< input box

  bool targeted() const { return target != TargetRule::kNone; }
  /// UsageError for eps < 0, NaN, or an empty box.
  void validate() const;
  /// "Linf eps=8/255 untargeted, inputs in [0, 1]"
  std::string describe() const;
};

/// eps as a person writes it: 8/255 when it is a multiple of 1/255, else "0.3".
std::string format_eps(double eps);

}  // namespace imbench::attacks
