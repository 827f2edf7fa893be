#include "models/det.h"

#include <fmt/format.h>

namespace imbench::models {

MlpImpl::MlpImpl(int64_t input_dim, const std::vector<int64_t>& hidden, int64_t outputs, bool relu) : relu_(relu) {
  layers = register_module("layers", torch::nn::ModuleList());
  int64_t in = input_dim;
  std::vector<int64_t> widths = hidden;
  widths.push_back(outputs);
  for (int64_t w : widths) {
    torch::nn::Linear lin(in, w);
    torch::NoGradGuard no_grad;
    torch::nn::init::xavier_uniform_(lin->weight);
    torch::nn::init::zeros_(lin->bias);
    layers->push_back(lin);
    in = w;
  }
}

torch::Tensor MlpImpl::forward(torch::Tensor x) {
  x = x.flatten(1);
  const std::size_t n = layers->size();
  for (std::size_t i = 0; i < n; ++i) {
    x = layers[i]->as<torch::nn::Linear>()->forward(x);
    if (i + 1 < n) x = relu_ ? torch::relu(x) : torch::sigmoid(x);
  }
  return x;
}

DetModel::DetModel(const ModelSpec& spec) : spec_(spec) {
  net_ = Mlp(spec.input_dim(), spec.hidden, spec.num_classes, spec.activation == "relu");
}

torch::Tensor DetModel::logits(const torch::Tensor& x) { return net_->forward(x); }

torch::Tensor DetModel::loss(const torch::Tensor& x, const torch::Tensor& y) {
  return torch::nn::functional::cross_entropy(net_->forward(x), y);
}

std::string DetModel::description() const {
  return fmt::format("DET MLP {} ({})", spec_.layer_string(), spec_.activation);
}

void DetModel::to(torch::Device device) {
  net_->to(device);
  device_ = device;
}

}  // namespace imbench::models
