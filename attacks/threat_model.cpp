#include "attacks/threat_model.h"

#include <fmt/format.h>

#include <cmath>

#include "core/errors.h"

namespace imbench::attacks {

std::string to_string(Norm norm) { return norm == Norm::kLinf ? "Linf" : "L2"; }

Norm parse_norm(const std::string& name) {
  if (name == "linf" || name == "Linf") return Norm::kLinf;
  if (name == "l2" || name == "L2") return Norm::kL2;
  throw_unknown_name("norm", name, {"linf", "l2"});
}

std::string to_string(TargetRule rule) {
  switch (rule) {
    case TargetRule::kNone: return "untargeted";
    case TargetRule::kGiven: return "given";
    case TargetRule::kRandom: return "random";
    case TargetRule::kLeastLikely: return "least-likely";
    case TargetRule::kNextClass: return "next";
  }
  return "?";
}

TargetRule parse_target_rule(const std::string& name) {
  if (name == "given") return TargetRule::kGiven;
  if (name == "random") return TargetRule::kRandom;
  if (name == "least-likely") return TargetRule::kLeastLikely;
  if (name == "next") return TargetRule::kNextClass;
  throw_unknown_name("target rule", name, {"given", "random", "least-likely", "next"});
}

void ThreatModel::validate() const {
  if (std::isnan(eps) || eps < 0) throw UsageError(fmt::format("--eps must be a number >= 0 (or inf), got {}", eps));
  if (!(std::isfinite(lower) && std::isfinite(upper) && lower < upper))
    throw UsageError(fmt::format("input bounds [{}, {}] are empty or not finite", lower, upper));
  // A Linf ball wider than the box is the box itself: a larger eps is a typo
  // (and 1e39 overflows float). L2 is checked against the box's diagonal by Attack::run.
  if (norm == Norm::kLinf && std::isfinite(eps) && eps > upper - lower)
    throw UsageError(
        fmt::format("--eps {:g} is larger than the input range {:g} (inputs in [{:g}, {:g}]); use at most "
                    "{:g}, or inf with a minimum-norm attack",
                    eps, upper - lower, lower, upper, upper - lower));
}

std::string format_eps(double eps) {
  const double k = eps * 255.0;
  if (eps > 0 && std::abs(k - std::round(k)) < 1e-6 && std::round(k) < 255 && std::abs(eps * 10 - std::round(eps * 10)) > 1e-9)
    return fmt::format("{}/255", static_cast<long>(std::round(k)));
  return fmt::format("{:g}", eps);
}

std::string ThreatModel::describe() const {
  return fmt::format("{} eps={} {}{}, inputs in [{:g}, {:g}]", to_string(norm), format_eps(eps),
                     targeted() ? "targeted, target " : "untargeted", targeted() ? to_string(target) : "", lower,
                     upper);
}

}  // namespace imbench::attacks
