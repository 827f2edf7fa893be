#pragma once
#include "attacks/attack.h"
#include "attacks/options.h"

namespace imbench::attacks {

/// FGSM (Goodfellow et al. 2015) for Linf: x + eps sign(grad); FGM for L2:
/// x + eps grad / ||grad||_2. One gradient (with EOT) per example.
struct FgsmOptions {
  LossKind loss = LossKind::kCrossEntropy;  ///< "loss": ce (paper), margin or dlr
  /// Key, help and bounds of every option (core/options.h).
  static const OptionTable<FgsmOptions>& table();
  static FgsmOptions from_json(const nlohmann::json& j, OptionSpelling spelling = OptionSpelling::kKey);
  nlohmann::json to_json() const;
};

class Fgsm : public Attack {
 public:
  explicit Fgsm(FgsmOptions o = {}) : o_(o) {}
  std::string name() const override { return "fgsm"; }
  nlohmann::json options_json() const override { return o_.to_json(); }
  LossKind loss_kind() const override { return o_.loss; }
  bool supports(Norm) const override { return true; }

 protected:
  torch::Tensor perturb(AttackContext& ctx) override;

 private:
  FgsmOptions o_;
};

/// The ascent direction of one step: sign(g) for Linf, g / ||g||_2 for L2.
torch::Tensor steepest_direction(const torch::Tensor& g, Norm norm);
/// Whether log-probabilities (or logits) z count as a successful attack.
torch::Tensor is_adversarial(const torch::Tensor& z, const torch::Tensor& y, const torch::Tensor& targets);

}  // namespace imbench::attacks
