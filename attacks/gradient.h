#pragma once
/// The one place where attacks get input gradients: expectation over
/// transformation (EOT, Athalye et al. 2018) for stochastic models.
///
/// For a batch x [N, ...] the oracle draws S samples of the logits in ONE
/// batched call (Model::sample_logits, [S, N, C]) per chunk of examples,
/// reduces them, evaluates a per-example loss and
/// returns its gradient with respect to x only (torch::autograd::grad;
/// parameters are frozen by the attack, nothing accumulates in .grad).
///
/// Reductions:
///   kPredictionRule  loss on log mean_s softmax(z_s): the attack targets
///                    exactly what the model predicts with (default)
///   kMeanLoss        mean over samples of the per-sample loss
/// With S = 1 on a deterministic model both equal the plain gradient.
///
/// Chunks: a chunk holds max_rows / (S x K) examples (at least one), K =
/// Model::internal_samples(), so one forward/backward never works on more
/// than max_rows rows (S x K x chunk): past that the activations of the
/// folded batch leave the cache and an EOT-S gradient becomes slower than S
/// separate single-sample gradients (benchmarks/bench_attacks.cpp,
/// BM_EotGradient). A chunk's loss and gradient depend on its own examples
/// only, so chunking changes nothing but the order of the random draws.
#include <torch/torch.h>

#include <functional>
#include <vector>

#include "attacks/losses.h"
#include "models/model.h"

namespace imbench::attacks {

enum class EotReduction { kPredictionRule, kMeanLoss };
std::string to_string(EotReduction r);
EotReduction parse_eot_reduction(const std::string& name);  ///< "prediction-rule", "mean-loss"

struct EotOptions {
  int64_t samples = 1;  ///< S; deterministic models always use 1
  EotReduction reduction = EotReduction::kPredictionRule;
  /// Largest S x K x chunk rows per forward pass. 4096: on this project's
  /// CPU (benchmarks/results/README.md, EOT chunks) 1024 to 4096 rows were equally
  /// fast and 16384 or more up to 1.7x slower.
  int64_t max_rows = 4096;
  /// The same bound when the inputs live on a GPU. On an H200 an EOT-16
  /// gradient of the SFNN on 1,000 images took 4.1 ms in chunks of 4,096 rows
  /// and 1.1 ms in one pass of 16,000 (BM_EotGradient, docs/performance-gpu.md):
  /// a GPU wants the whole folded batch at once, memory permitting.
  int64_t max_rows_gpu = 1 << 17;
  void validate() const;
};

/// Examples per forward pass for S samples of a model with K internal draws
/// (max_rows_gpu instead of max_rows when on_gpu).
int64_t eot_chunk_size(const EotOptions& options, int64_t samples, int64_t internal_samples, bool on_gpu = false);

/// A per-example loss [N] to maximise from reduced scores z [N, C] (for
/// kPredictionRule, z = log mean softmax) with labels y and targets t
/// (undefined when untargeted).
using LossFn = std::function<torch::Tensor(const torch::Tensor& z, const torch::Tensor& y, const torch::Tensor& t)>;
LossFn make_loss(LossKind kind);

struct OracleOutput {
  torch::Tensor loss;       ///< [N], detached
  torch::Tensor grad;       ///< d loss_n / d x_n, [N, ...]; undefined without gradient
  torch::Tensor log_probs;  ///< log mean_s softmax [N, C], detached: what the prediction rule sees
};

class GradientOracle {
 public:
  GradientOracle(models::Model& model, EotOptions options);
  /// Loss and its input gradient for x (which is not modified).
  OracleOutput loss_and_grad(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& targets,
                             const LossFn& loss);
  /// Loss only (no autograd graph).
  OracleOutput loss_only(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& targets,
                         const LossFn& loss);
  /// Samples actually drawn per example and call (1 for deterministic models).
  int64_t samples() const { return samples_; }
  /// Gradient evaluations so far, summed over examples: each example of each
  /// loss_and_grad call counts `samples()`.
  int64_t gradient_evaluations() const { return gradient_evaluations_; }
  const EotOptions& options() const { return options_; }

 private:
  OracleOutput evaluate(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& t, const LossFn& loss,
                        bool with_grad);
  models::Model& model_;
  EotOptions options_;
  int64_t samples_;
  int64_t gradient_evaluations_ = 0;
};

/// Scope guard: the model's parameters take no gradient and the model is in
/// eval mode while it lives; the parameters' requires_grad flags are restored
/// when it ends. Attacks and gradient checks differentiate w.r.t. the input only.
class FrozenModel {
 public:
  explicit FrozenModel(models::Model& m) : model_(m) {
    for (auto& p : model_.parameters()) {
      saved_.push_back(p.requires_grad());
      p.requires_grad_(false);
    }
    model_.set_training(false);
  }
  ~FrozenModel() {
    std::size_t i = 0;
    for (auto& p : model_.parameters()) p.requires_grad_(saved_[i++]);
  }

 private:
  models::Model& model_;
  std::vector<bool> saved_;
};

}  // namespace imbench::attacks
