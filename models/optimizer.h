#pragma once
/// The optimisers of the training loop: Adam, Adamax (Kingma and Ba 2015)
/// and SGD with momentum, with the update rules of torch.optim (no weight
/// decay). On the CPU each parameter is updated in one fused pass over its
/// elements: LibTorch 1.13's Adam issues ~10 element-wise kernels per
/// parameter, which at batch 100 cost as much as the backward pass (see
/// ARCHITECTURE.md). On other devices the same formulas run as tensor ops.
#include <torch/torch.h>

#include <vector>

#include "models/train.h"

namespace imbench::models {

class Optimizer {
 public:
  /// params must be leaf tensors that require grad; betas and eps as torch.optim.
  Optimizer(std::vector<torch::Tensor> params, OptimizerKind kind, double learning_rate, double momentum = 0.9,
            double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
  /// Drops the gradients (set to undefined, as torch's set_to_none).
  void zero_grad();
  /// One update from the current .grad of every parameter (parameters without a grad are skipped).
  void step();
  /// Forces the tensor-op path on the CPU too (tests compare both paths).
  void set_fused(bool fused) { fused_ = fused; }
  const std::vector<torch::Tensor>& params() const { return params_; }

  /// The moments (first, then second; SGD: momentum only) and the step
  /// count, for resumable training. load_state takes what state() gave for
  /// the same parameters and kind (imbench::Error on a count or shape mismatch).
  std::vector<torch::Tensor> state() const;
  int64_t steps() const { return t_; }
  void load_state(const std::vector<torch::Tensor>& moments, int64_t steps);

 private:
  void step_tensor(std::size_t i, const torch::Tensor& g, double step_size, double bias2);
  std::vector<torch::Tensor> params_, m_, v_;
  OptimizerKind kind_;
  double lr_, momentum_, beta1_, beta2_, eps_;
  int64_t t_ = 0;
  bool fused_ = true;
};

}  // namespace imbench::models
