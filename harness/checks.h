#pragma once
/// The soundness checks of EVALUATION.md (numbers 1-12 there). Cheap checks
/// run on every `imbench run`; the expensive ones with --audit. Each returns
/// a reports::Flag that lands in the results file and the report.
#include <torch/torch.h>

#include "attacks/attack.h"
#include "reports/results.h"

namespace imbench::harness {

/// Check 1: five clean passes; flags a model that behaves stochastically
/// but is evaluated as deterministic (no EOT, one repeat).
reports::Flag check_randomness(models::Model& model, const torch::Tensor& x);
/// Check 4: flags outputs that look like probabilities (rows in [0, 1] summing to 1).
reports::Flag check_logits(models::Model& model, const torch::Tensor& x);
/// Check 5: share of NaN/Inf gradient entries and of all-zero example gradients.
reports::Flag check_gradient_health(models::Model& model, const torch::Tensor& x, const torch::Tensor& y,
                                    const attacks::EotOptions& eot);
/// Check 12: eval mode (no dropout/batch-norm updates) and sampling on for stochastic models.
reports::Flag check_model_mode(models::Model& model);
/// Check 11 for one batch: ||x_adv - x|| <= eps + 1e-6, x_adv in the box and
/// finite, the attack input unchanged. Returns the number of violations.
int64_t count_invalid(const torch::Tensor& x_adv, const torch::Tensor& x, const torch::Tensor& x_before,
                      const attacks::ThreatModel& threat);

/// A stochastic model with its noise frozen: every call draws the same noise
/// for the same batch (check 3, the fixed-noise control).
class FixedNoiseModel : public models::Model {
 public:
  FixedNoiseModel(models::Model& inner, uint64_t noise_seed) : inner_(inner), seed_(noise_seed) {}
  torch::Tensor logits(const torch::Tensor& x) override;
  bool is_stochastic() const override { return false; }
  int64_t num_classes() const override { return inner_.num_classes(); }
  std::vector<int64_t> input_shape() const override { return inner_.input_shape(); }
  models::InputBounds input_bounds() const override { return inner_.input_bounds(); }
  std::string description() const override { return inner_.description() + " (noise frozen)"; }
  torch::Device device() const override { return inner_.device(); }
  void to(torch::Device device) override { inner_.to(device); }
  void set_training(bool training) override { inner_.set_training(training); }
  std::vector<torch::Tensor> parameters() override { return inner_.parameters(); }

 private:
  models::Model& inner_;
  uint64_t seed_;
};

/// Cross-cell checks on a whole results file (torch-free data): 7 (eps
/// monotonicity, and accuracy above chance at an eps covering the input
/// range) and 9 (a transfer attack later in a cascade breaks examples the
/// white-box attacks left robust). Replaces earlier flags of these checks.
void apply_cross_cell_checks(reports::ResultFile& file);

}  // namespace imbench::harness
