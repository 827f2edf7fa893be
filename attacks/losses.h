#pragma once
/// Attack losses as free functions. Every loss is per example ([N]) and is
/// MAXIMISED by the attacks. `z` are logits [N, C] (or log-probabilities:
/// every loss here is invariant to adding a constant to a row).
#include <torch/torch.h>

#include <string>
#include <vector>

namespace imbench::attacks {

enum class LossKind {
  kCrossEntropy,  ///< untargeted: CE(z, y); targeted: -CE(z, t)
  kMargin,        ///< Carlini-Wagner margin: untargeted max_{j!=y} z_j - z_y; targeted z_t - max_{j!=t} z_j
  kDlr,           ///< difference of logits ratio (Croce and Hein 2020); targeted variant with z_pi3, z_pi4
};
/// Every loss, in the order help texts list them.
inline const std::vector<LossKind> kAttackLosses{LossKind::kCrossEntropy, LossKind::kMargin, LossKind::kDlr};
std::string to_string(LossKind loss);
LossKind parse_loss(const std::string& name);  ///< "ce", "margin", "dlr"

/// The loss to maximise, [N]. `targets` undefined means untargeted.
torch::Tensor attack_loss(LossKind kind, const torch::Tensor& z, const torch::Tensor& y, const torch::Tensor& targets);

/// max_{j != label} z_j - z_label, [N] (positive: some other class wins).
torch::Tensor margin(const torch::Tensor& z, const torch::Tensor& label);

}  // namespace imbench::attacks
