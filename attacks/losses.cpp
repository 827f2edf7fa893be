#include "attacks/losses.h"

#include "core/errors.h"

namespace imbench::attacks {

std::string to_string(LossKind loss) {
  switch (loss) {
    case LossKind::kCrossEntropy: return "ce";
    case LossKind::kMargin: return "margin";
    case LossKind::kDlr: return "dlr";
  }
  return "?";
}

LossKind parse_loss(const std::string& name) {
  if (name == "ce") return LossKind::kCrossEntropy;
  if (name == "margin" || name == "cw") return LossKind::kMargin;
  if (name == "dlr") return LossKind::kDlr;
  throw_unknown_name("loss", name, {"ce", "margin", "dlr"});
}

torch::Tensor margin(const torch::Tensor& z, const torch::Tensor& label) {
  const auto own = z.gather(1, label.unsqueeze(1)).squeeze(1);
  const auto others = z.scatter(1, label.unsqueeze(1), -std::numeric_limits<float>::infinity());
  return std::get<0>(others.max(1)) - own;
}

torch::Tensor attack_loss(LossKind kind, const torch::Tensor& z, const torch::Tensor& y, const torch::Tensor& t) {
  const bool targeted = t.defined();
  switch (kind) {
    case LossKind::kCrossEntropy: {
      const auto lsm = torch::log_softmax(z, 1);
      if (targeted) return lsm.gather(1, t.unsqueeze(1)).squeeze(1);
      return -lsm.gather(1, y.unsqueeze(1)).squeeze(1);
    }
    case LossKind::kMargin: return targeted ? -margin(z, t) : margin(z, y);
    case LossKind::kDlr: {
      if (z.size(1) < (targeted ? 4 : 3)) throw UsageError("the DLR loss needs at least 3 classes (4 when targeted)");
      const auto sorted = std::get<0>(z.sort(1, /*descending=*/true));
      const auto zy = z.gather(1, y.unsqueeze(1)).squeeze(1);
      if (targeted) {
        const auto zt = z.gather(1, t.unsqueeze(1)).squeeze(1);
        const auto denom = sorted.select(1, 0) - 0.5 * (sorted.select(1, 2) + sorted.select(1, 3)) + 1e-12;
        return -(zy - zt) / denom;
      }
      const auto denom = sorted.select(1, 0) - sorted.select(1, 2) + 1e-12;
      return margin(z, y) / denom;
    }
  }
  return {};
}

}  // namespace imbench::attacks
