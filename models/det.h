#pragma once
/// DET: the deterministic MLP baseline of the paper (Table 1, row DET).
///
///   h_0 = flatten(x),  h_l = act(W_l h_{l-1} + b_l)  (l = 1..L),  logits = W_{L+1} h_L + b_{L+1}
///   L(x, y) = CE(logits, y)
///
/// act is the sigmoid (paper) or ReLU; weights Glorot-uniform, biases zero.
/// MNIST: 784-512-512-10, CIFAR-10: 3072-512-512-10.
#include "models/family.h"

namespace imbench::models {

/// The layers of an MLP, shared by the families built on one.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t input_dim, const std::vector<int64_t>& hidden, int64_t outputs, bool relu);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::ModuleList layers{nullptr};

 private:
  bool relu_;
};
TORCH_MODULE(Mlp);

class DetModel : public TrainableModel {
 public:
  explicit DetModel(const ModelSpec& spec);
  torch::Tensor logits(const torch::Tensor& x) override;
  torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& y) override;
  bool is_stochastic() const override { return false; }
  int64_t num_classes() const override { return spec_.num_classes; }
  std::vector<int64_t> input_shape() const override { return spec_.input_shape; }
  std::string description() const override;
  std::string objective() const override { return "L = CE(f(x), y)"; }
  torch::Device device() const override { return device_; }
  void to(torch::Device device) override;
  void set_training(bool training) override { net_->train(training); }
  std::vector<torch::Tensor> parameters() override { return net_->parameters(); }
  torch::nn::Module& module() override { return *net_; }
  const ModelSpec& spec() const override { return spec_; }

 private:
  ModelSpec spec_;
  Mlp net_{nullptr};
  torch::Device device_{torch::kCPU};
};

}  // namespace imbench::models
