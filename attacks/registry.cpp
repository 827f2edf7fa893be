#include "attacks/registry.h"

#include <fmt/format.h>

#include "attacks/apgd.h"
#include "attacks/cw.h"
#include "attacks/pgd.h"
#include "attacks/square.h"
#include "core/errors.h"

namespace imbench::attacks {

const OptionDescription* AttackInfo::option(const std::string& key) const {
  for (const auto& o : options)
    if (o.key == key) return &o;
  return nullptr;
}

const std::vector<AttackInfo>& attack_registry() {
  static const std::vector<AttackInfo> registry{
      {"fgsm", "FGSM (Linf) / FGM (L2), one gradient step of size eps (Goodfellow et al. 2015)", /*iterative=*/false,
       /*budget_options=*/{}, /*minimises_norm=*/false, FgsmOptions::table().describe(),
       [](const nlohmann::json& j, OptionSpelling s) { return std::make_unique<Fgsm>(FgsmOptions::from_json(j, s)); }},
      {"pgd", "PGD, Linf or L2: 40 steps of 2.5 eps/40, random start, restarts, early stop (Madry et al. 2018)",
       /*iterative=*/true, /*budget_options=*/{"steps", "restarts"}, /*minimises_norm=*/false,
       PgdOptions::table().describe(),
       [](const nlohmann::json& j, OptionSpelling s) { return std::make_unique<Pgd>(PgdOptions::from_json(j, s)); }},
      {"cw", "Carlini-Wagner L2: tanh space, Adam, 9-step binary search over c, kappa, abort early (2017)",
       /*iterative=*/true, /*budget_options=*/{"steps", "binary_search_steps"}, /*minimises_norm=*/true,
       CwOptions::table().describe(),
       [](const nlohmann::json& j, OptionSpelling s) {
         return std::make_unique<CarliniWagnerL2>(CwOptions::from_json(j, s));
       }},
      {"apgd-ce", "APGD with cross-entropy: step-size schedule with checkpoints and momentum (Croce and Hein 2020)",
       /*iterative=*/true, /*budget_options=*/{"steps", "restarts"}, /*minimises_norm=*/false,
       ApgdOptions::table().describe(),
       [](const nlohmann::json& j, OptionSpelling s) {
         return std::make_unique<Apgd>(ApgdOptions::from_json(j, LossKind::kCrossEntropy, "apgd-ce", s), "apgd-ce");
       }},
      {"apgd-dlr", "APGD with the DLR loss (targeted DLR when targeted) (Croce and Hein 2020)", /*iterative=*/true,
       /*budget_options=*/{"steps", "restarts"}, /*minimises_norm=*/false, ApgdOptions::table().describe(),
       [](const nlohmann::json& j, OptionSpelling s) {
         return std::make_unique<Apgd>(ApgdOptions::from_json(j, LossKind::kDlr, "apgd-dlr", s), "apgd-dlr");
       }},
      {"square",
       "Square Attack, Linf or L2: score-based random search over square windows, no gradients, margin loss "
       "(Andriushchenko et al. 2020)",
       /*iterative=*/true, /*budget_options=*/{"queries", "restarts"}, /*minimises_norm=*/false,
       SquareOptions::table().describe(),
       [](const nlohmann::json& j, OptionSpelling s) {
         return std::make_unique<Square>(SquareOptions::from_json(j, s));
       },
       /*gradient_free=*/true},
  };
  return registry;
}

std::vector<std::string> attack_names() {
  std::vector<std::string> names;
  for (const auto& a : attack_registry()) names.push_back(a.name);
  return names;
}

const AttackInfo& attack_info(const std::string& name) {
  for (const auto& a : attack_registry())
    if (a.name == name) return a;
  throw_unknown_name("attack", name, attack_names());
}

std::unique_ptr<Attack> create_attack(const std::string& name, const nlohmann::json& options, OptionSpelling spelling) {
  return attack_info(name).create(options, spelling);
}

nlohmann::json read_attack_options(const std::string& name, const nlohmann::json& options, OptionSpelling spelling) {
  return create_attack(name, options, spelling)->options_json();
}

}  // namespace imbench::attacks
