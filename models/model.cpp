#include "models/model.h"

#include <fmt/format.h>

#include "core/errors.h"

namespace imbench::models {

std::string to_string(PredictionRule rule) {
  return rule == PredictionRule::kArgmaxLogits ? "argmax of logits" : "argmax of mean softmax";
}

torch::Tensor Model::sample_logits(const torch::Tensor& x, int64_t samples) {
  if (samples < 1) throw UsageError(fmt::format("sample count must be >= 1, got {}", samples));
  if (!is_stochastic()) {
    auto l = logits(x);
    return l.unsqueeze(0).expand({samples, l.size(0), l.size(1)});
  }
  const int64_t n = x.size(0);
  std::vector<int64_t> rep(static_cast<std::size_t>(x.dim()), 1);
  rep[0] = samples;
  return logits(x.repeat(rep)).view({samples, n, -1});
}

torch::Tensor Model::predict_proba(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  if (prediction_rule() == PredictionRule::kArgmaxLogits) return torch::softmax(logits(x), -1);
  return torch::softmax(sample_logits(x, prediction_samples()), -1).mean(0);
}

torch::Tensor Model::predict(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  if (prediction_rule() == PredictionRule::kArgmaxLogits) return logits(x).argmax(-1);
  return predict_proba(x).argmax(-1);
}

SamplingGuard::SamplingGuard(Model& model, Sampling sampling) : model_(model), saved_(model.sampling()) {
  model_.set_sampling(sampling);
}
SamplingGuard::~SamplingGuard() { model_.set_sampling(saved_); }

void Model::check_input(const torch::Tensor& x) const {
  const auto shape = input_shape();
  auto sizes = x.sizes().vec();
  if (x.dim() != static_cast<int64_t>(shape.size()) + 1 ||
      !std::equal(shape.begin(), shape.end(), sizes.begin() + 1))
    throw UsageError(fmt::format("{}: input of shape [{}] does not match the model's [N, {}]", description(),
                                 fmt::join(sizes, ", "), fmt::join(shape, ", ")));
}

}  // namespace imbench::models
