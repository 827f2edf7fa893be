#include <fmt/format.h>

#include "attacks/apgd.h"
#include "attacks/cw.h"
#include "attacks/pgd.h"
#include "core/errors.h"

namespace imbench::attacks {

const std::vector<AttackInfo>& attack_registry() {
  static const std::vector<AttackInfo> registry{
      {"fgsm", "FGSM (Linf) / FGM (L2), one gradient step of size eps (Goodfellow et al. 2015)",
       [](const nlohmann::json& j) { return std::make_unique<Fgsm>(FgsmOptions::from_json(j)); }},
      {"pgd", "PGD, Linf or L2: 40 steps of 2.5 eps/40, random start, restarts, early stop (Madry et al. 2018)",
       [](const nlohmann::json& j) { return std::make_unique<Pgd>(PgdOptions::from_json(j)); }},
      {"cw", "Carlini-Wagner L2: tanh space, Adam, 9-step binary search over c, kappa, abort early (2017)",
       [](const nlohmann::json& j) { return std::make_unique<CarliniWagnerL2>(CwOptions::from_json(j)); }},
      {"apgd-ce", "APGD with cross-entropy: step-size schedule with checkpoints and momentum (Croce and Hein 2020)",
       [](const nlohmann::json& j) {
         return std::make_unique<Apgd>(ApgdOptions::from_json(j, LossKind::kCrossEntropy, "apgd-ce"), "apgd-ce");
       }},
      {"apgd-dlr", "APGD with the DLR loss (targeted DLR when targeted) (Croce and Hein 2020)",
       [](const nlohmann::json& j) {
         return std::make_unique<Apgd>(ApgdOptions::from_json(j, LossKind::kDlr, "apgd-dlr"), "apgd-dlr");
       }},
  };
  return registry;
}

std::vector<std::string> attack_names() {
  std::vector<std::string> names;
  for (const auto& a : attack_registry()) names.push_back(a.name);
  return names;
}

std::unique_ptr<Attack> create_attack(const std::string& name, const nlohmann::json& options) {
  for (const auto& a : attack_registry())
    if (a.name == name) return a.create(options);
  throw_unknown_name("attack", name, attack_names());
}

}  // namespace imbench::attacks
