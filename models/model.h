#pragma once
/// The Model interface every attack and evaluation talks to.
///
/// A Model returns logits, never probabilities. Stochastic models (IB
/// networks, VIB) draw fresh noise on every call; their multi-sample call
/// returns S independent samples [S, N, C] computed in one batched pass.
/// "Sampling on / mean-field" is separate from train/eval mode: for an IB
/// network the sampling is part of inference, not a training artefact.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace imbench::models {

/// How a model turns logits into a label.
enum class PredictionRule {
  kArgmaxLogits,  ///< deterministic: argmax of the logits
  kMeanSoftmax,   ///< stochastic: argmax of the softmax averaged over prediction_samples() draws
};
std::string to_string(PredictionRule rule);

/// Whether a stochastic model samples (the default) or propagates expectations.
enum class Sampling { kOn, kMeanField };

/// The box the inputs live in (every pixel in [lower, upper]).
struct InputBounds {
  double lower = 0.0;
  double upper = 1.0;
};

class Model {
 public:
  virtual ~Model() = default;

  /// Logits [N, C] for inputs [N, input_shape...]; one draw for a stochastic model.
  virtual torch::Tensor logits(const torch::Tensor& x) = 0;

  /// Logits [S, N, C] of S independent draws in one batched pass. The
  /// default folds the samples into the batch (x repeated S times) for a
  /// stochastic model and broadcasts one pass for a deterministic one.
  virtual torch::Tensor sample_logits(const torch::Tensor& x, int64_t samples);

  virtual bool is_stochastic() const = 0;
  virtual int64_t num_classes() const = 0;
  /// Shape of one input example, e.g. {1, 28, 28}.
  virtual std::vector<int64_t> input_shape() const = 0;
  virtual InputBounds input_bounds() const { return {}; }
  virtual PredictionRule prediction_rule() const {
    return is_stochastic() ? PredictionRule::kMeanSoftmax : PredictionRule::kArgmaxLogits;
  }
  /// Draws averaged by the prediction rule (1 for deterministic models).
  virtual int64_t prediction_samples() const { return 1; }
  /// Rows of work one draw of one example costs: K for a model that averages
  /// K noise draws inside every call, 1 otherwise. A cost hint only: the EOT
  /// gradient oracle sizes its chunks by it (attacks/gradient.h).
  virtual int64_t internal_samples() const { return 1; }
  /// One line for reports, e.g. "DET MLP 784-512-512-10 (sigmoid)".
  virtual std::string description() const = 0;

  virtual torch::Device device() const = 0;
  virtual void to(torch::Device device) = 0;
  /// Train/eval mode of the underlying module (dropout, batch norm).
  virtual void set_training(bool training) = 0;
  virtual void set_sampling(Sampling sampling) {}
  virtual Sampling sampling() const { return Sampling::kOn; }
  /// All trainable tensors (attacks freeze them).
  virtual std::vector<torch::Tensor> parameters() = 0;

  /// Class probabilities [N, C] under the prediction rule (no autograd).
  /// The default averages the softmax of sample_logits(x, prediction_samples()).
  virtual torch::Tensor predict_proba(const torch::Tensor& x);
  /// Predicted labels [N] under the prediction rule (no autograd).
  torch::Tensor predict(const torch::Tensor& x);
  /// Throws UsageError unless x is [N, input_shape...].
  void check_input(const torch::Tensor& x) const;
};

/// Sets a model's sampling mode for a scope and restores it afterwards.
class SamplingGuard {
 public:
  SamplingGuard(Model& model, Sampling sampling);
  ~SamplingGuard();
  SamplingGuard(const SamplingGuard&) = delete;
  SamplingGuard& operator=(const SamplingGuard&) = delete;

 private:
  Model& model_;
  Sampling saved_;
};

}  // namespace imbench::models
