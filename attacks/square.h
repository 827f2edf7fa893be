#pragma once
#include "attacks/attack.h"
#include "attacks/options.h"

namespace imbench::attacks {

/// Square Attack (Andriushchenko, Croce, Flammarion and Hein, ECCV 2020),
/// Linf and L2: a score-based random search that needs no gradients, only
/// the model's scores. It catches defences that mask or obfuscate gradients.
///
/// Per example it keeps the best point found and proposes one candidate per
/// query, changing a random square window of side s (per example: its own
/// position and colours); a candidate replaces the best point when it fools
/// the model or raises the loss. s covers a share p of the pixels of a
/// channel, s = round(sqrt(p H W)); p starts at p_init and is halved after
/// iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of a
/// 10,000-query run, the schedule rescaled to the budget (iteration i counts
/// as i * 10000 / queries).
///
///   Linf: start from vertical stripes (each column of each channel +eps or
///   -eps); a candidate sets the window of each channel to x + eps or x - eps
///   (a colour that would leave the window as it is is replaced by one of the
///   others, uniformly: the paper redraws until the window changes).
///   L2: start from a 5 x 5 grid of tiles, each holding a signed
///   two-lobed profile (concentric rectangles, one half positive, one half
///   negative), scaled to norm eps; a candidate draws two windows W1 and W2,
///   moves the perturbation's mass of W1 and W2 into W1 (its old content
///   plus a new signed profile, rescaled per channel to the norm of the
///   perturbation in W1 and W2 plus the share of the budget not yet used),
///   zeroes W2 outside W1, and rescales the whole perturbation to norm eps.
///
/// Every candidate is clipped to the input box (which can only shrink the
/// perturbation, so it stays in the ball). Inputs of shape [C, H, W] are
/// images; [H, W] has one channel; a vector [D] is one row, and its windows
/// are intervals covering a share p of it.
///
/// A query is one loss evaluation of one example: on a stochastic model the
/// loss of the S EOT samples the attack is given (by default the loss of the
/// mean softmax: the model's prediction rule), so a candidate is kept only
/// when that averaged loss improves. The loss of the best point is not
/// evaluated again (on a stochastic model it is the estimate made when the
/// point was accepted). No gradients are taken (gradient_evaluations stays 0).
struct SquareOptions {
  /// "queries": loss evaluations per example and restart, the initial point included (AutoAttack: 5000)
  int64_t queries = 5000;
  /// "p_init": initial share of a channel's pixels a window covers, in (0, 1] (AutoAttack: 0.8)
  double p_init = 0.8;
  /// "restarts": runs from fresh starts, on the examples not yet fooled; per example the best is kept
  int64_t restarts = 1;
  bool early_stop = true;  ///< "early_stop": stop querying an example once it is adversarial (the paper: true)
  LossKind loss = LossKind::kMargin;  ///< "loss": margin (paper) or ce
  static const OptionTable<SquareOptions>& table();
  static SquareOptions from_json(const nlohmann::json& j, OptionSpelling spelling = OptionSpelling::kKey);
  nlohmann::json to_json() const;
};

class Square : public Attack {
 public:
  explicit Square(SquareOptions o = {}) : o_(o) {}
  std::string name() const override { return "square"; }
  nlohmann::json options_json() const override { return o_.to_json(); }
  LossKind loss_kind() const override { return o_.loss; }
  bool supports(Norm) const override { return true; }
  /// The share p of iteration i (0: the first query after the initial point)
  /// in a run of `queries` queries: p_init halved at each of the paper's
  /// iterations 10, 50, ..., 8000 (of 10,000) that i * 10000 / queries exceeds.
  static double p_at(double p_init, int64_t i, int64_t queries);

 protected:
  torch::Tensor perturb(AttackContext& ctx) override;

 private:
  SquareOptions o_;
};

}  // namespace imbench::attacks
