#pragma once
/// The attack registry: one row per attack with its name, description, the
/// traits the harness needs, its option table and its factory. Torch-free
/// (the Attack class is only declared), so the CLI's option parser can build
/// its flags from the option tables.
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/option_table.h"

namespace imbench::attacks {

class Attack;  // attacks/attack.h

struct AttackInfo {
  std::string name;         ///< "pgd"
  std::string description;  ///< one line, with the paper
  /// Takes many gradient steps: a single FGSM/FGM step must not beat it (check 6).
  bool iterative = false;
  /// Integer options that set its compute budget, doubled by the audit's convergence check (check 8).
  std::vector<std::string> budget_options;
  /// Minimises the perturbation's norm (CW): may run with eps = inf.
  bool minimises_norm = false;
  /// Its option table: key, type, default, help and bound of every option.
  std::vector<OptionDescription> options;
  /// The attack from a JSON options object; errors name options in `spelling`.
  std::function<std::unique_ptr<Attack>(const nlohmann::json& options, OptionSpelling spelling)> create;
  /// Uses the model's scores only (Square): the black-box leg of check 9, and
  /// exempt from the checks that judge gradient attacks (6, the probes).
  bool gradient_free = false;

  /// The row for a key, or nullptr when the attack has no such option.
  const OptionDescription* option(const std::string& key) const;
};

const std::vector<AttackInfo>& attack_registry();
std::vector<std::string> attack_names();
/// The registry row of an attack; UsageError with "did you mean" for unknown names.
const AttackInfo& attack_info(const std::string& name);
/// The attack `name` with `options` (unknown keys, wrong types and values out
/// of bounds are UsageErrors naming the option in `spelling`).
std::unique_ptr<Attack> create_attack(const std::string& name, const nlohmann::json& options = nlohmann::json::object(),
                                      OptionSpelling spelling = OptionSpelling::kKey);
/// The options an attack would run with: `options` read as create_attack
/// reads them, with defaults filled in. For callers that check options
/// before the attack is made (the CLI, with OptionSpelling::kFlag).
nlohmann::json read_attack_options(const std::string& name, const nlohmann::json& options, OptionSpelling spelling);

}  // namespace imbench::attacks
