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
  bool is_stochastic() const override { return stochastic_; }
  int64_t num_classes() const override { return num_classes_; }
  std::vector<int64_t> input_shape() const override { return input_shape_; }
  InputBounds input_bounds() const override { return bounds_; }
  int64_t prediction_samples() const override { return samples_; }
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
  torch::Device device_{torch::kCPU};
};

}  // namespace imbench::models
