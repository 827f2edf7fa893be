#pragma once
/// Bring-your-own classifiers: a TorchScript module behind the Model interface.
///
/// The module's forward(x) must return logits [N, C] for inputs [N, ...].
/// Its input shape, class count and stochasticity come from
/// TorchScriptOptions or, where an option is unset, from attributes stored in
/// the module (its input bounds only from there):
///
///   imbench_input_shape: List[int]   e.g. [1, 28, 28]   (required one way or the other)
///   imbench_num_classes: int         (else inferred from one forward pass)
///   imbench_bounds:      List[float] [lower, upper]      (default [0, 1])
///   imbench_stochastic:  bool        (default false)
///   imbench_samples:     int         draws averaged by the prediction rule (default 1; stochastic only)
///   imbench_internal_samples: int    noise draws the module averages inside every call (default 1);
///                                    a cost hint that sizes EOT chunks (Model::internal_samples)
///
/// A stochastic module may define its own multi-sample call
///
///   def sample_logits(self, x, S: int) -> Tensor    # [S, N, C]: S independent draws for x [N, ...]
///
/// and imbench then uses it for EOT gradients and for the prediction rule
/// (mean softmax over imbench_samples draws) instead of folding the S draws
/// into the batch of forward. Its output shape is checked on every call
/// (and once when the module is loaded). A module that defines
/// sample_logits is stochastic unless imbench_stochastic (or the option)
/// says otherwise; a deterministic one never calls it.
#include <torch/script.h>

#include <optional>

#include "models/model.h"
#include "models/torchscript_options.h"

namespace imbench::models {

class TorchScriptModel : public Model {
 public:
  /// Takes ownership of a loaded module; `name` is used in messages.
  TorchScriptModel(torch::jit::Module module, const std::string& name, const TorchScriptOptions& options = {});
  /// Loads with torch::jit::load; imbench::Error if the file is missing or not TorchScript.
  static std::unique_ptr<TorchScriptModel> load(const std::string& path, const TorchScriptOptions& options = {},
                                                torch::Device device = torch::kCPU);

  torch::Tensor logits(const torch::Tensor& x) override;
  /// The module's own sample_logits(x, S) where it has one and is stochastic,
  /// else Model::sample_logits (the draws folded into the batch of forward).
  torch::Tensor sample_logits(const torch::Tensor& x, int64_t samples) override;
  /// Whether sample_logits calls the module's own method.
  bool uses_own_sample_logits() const { return own_sample_logits_ && stochastic_; }
  bool is_stochastic() const override { return stochastic_; }
  int64_t num_classes() const override { return num_classes_; }
  std::vector<int64_t> input_shape() const override { return input_shape_; }
  InputBounds input_bounds() const override { return bounds_; }
  int64_t prediction_samples() const override { return samples_; }
  int64_t internal_samples() const override { return internal_samples_; }
  std::string description() const override;
  torch::Device device() const override { return device_; }
  void to(torch::Device device) override;
  void set_training(bool training) override { module_.train(training); }
  std::vector<torch::Tensor> parameters() override;

 private:
  torch::jit::Module module_;
  std::string name_;
  std::vector<int64_t> input_shape_;
  int64_t num_classes_ = 0;
  InputBounds bounds_;
  bool stochastic_ = false;
  int64_t samples_ = 1;
  int64_t internal_samples_ = 1;
  bool own_sample_logits_ = false;
  torch::Device device_{torch::kCPU};
};

}  // namespace imbench::models
