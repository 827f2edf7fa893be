#include "models/family.h"

#include <fmt/format.h>

#include "core/errors.h"
#include "models/det.h"
#include "models/stochastic.h"

namespace imbench::models {

int64_t ModelSpec::input_dim() const {
  int64_t d = 1;
  for (auto s : input_shape) d *= s;
  return d;
}

std::string ModelSpec::layer_string() const {
  return fmt::format("{}-{}{}{}", input_dim(), fmt::join(hidden, "-"), hidden.empty() ? "" : "-", num_classes);
}

void ModelSpec::validate() const {
  find_family(family);
  if (input_shape.empty() || input_dim() <= 0) throw UsageError("model spec: the input shape must be non-empty and positive");
  for (auto h : hidden)
    if (h <= 0) throw UsageError(fmt::format("model spec: hidden width {} must be positive", h));
  if (num_classes < 2) throw UsageError(fmt::format("model spec: {} classes (need at least 2)", num_classes));
  if (activation != "sigmoid" && activation != "relu") throw_unknown_name("activation", activation, {"sigmoid", "relu"});
}

nlohmann::json ModelSpec::to_json() const {
  return {{"family", family}, {"input_shape", input_shape}, {"hidden", hidden},
          {"num_classes", num_classes}, {"activation", activation}, {"hyper", hyper}};
}

ModelSpec ModelSpec::from_json(const nlohmann::json& j) {
  ModelSpec s;
  try {
    s.family = j.at("family").get<std::string>();
    s.input_shape = j.at("input_shape").get<std::vector<int64_t>>();
    s.hidden = j.at("hidden").get<std::vector<int64_t>>();
    s.num_classes = j.at("num_classes").get<int64_t>();
    s.activation = j.at("activation").get<std::string>();
    s.hyper = j.value("hyper", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("model spec: {}", e.what()));
  }
  return s;
}

const std::vector<FamilyInfo>& family_registry() {
  auto sfnn = [](const ModelSpec& s) { return std::make_unique<SfnnModel>(s); };
  auto imb_hyper = [](std::size_t depth, double gamma_rest, double beta, bool greedy) {
    std::vector<double> gamma(depth + 1, gamma_rest);
    gamma[0] = 1.0;
    return nlohmann::json{{"train_samples", std::vector<int64_t>(depth, 16)},
                          {"test_samples", std::vector<int64_t>(depth, 32)},
                          {"gamma", gamma},
                          {"beta", std::vector<double>(depth, beta)},
                          {"prior_std", 0.5},
                          {"greedy", greedy}};
  };
  static const std::vector<FamilyInfo> registry{
      {"det", "deterministic MLP trained with cross-entropy (paper: DET)", false,
       [](const ModelSpec& s) { return std::make_unique<DetModel>(s); },
       [](std::size_t) { return nlohmann::json::object(); }},
      {"sfnn", "stochastic binary network trained by maximum likelihood, VCR_0 (paper: SFNN / MLE)", true, sfnn,
       [=](std::size_t d) { return imb_hyper(d, 0.0, 0.0, false); }},
      {"imb-joint", "information multi-bottleneck, all layers jointly: sum gamma_i VCR_i + sum beta_l C_l (paper: JointPIB)",
       true, sfnn, [=](std::size_t d) { return imb_hyper(d, 1.0, 1e-4, false); }},
      {"imb-greedy", "information multi-bottleneck trained layer by layer (paper: GreedyPIB; staging is our interpretation)",
       true, sfnn, [=](std::size_t d) { return imb_hyper(d, 1.0, 1e-4, true); }},
      {"vib", "deep variational information bottleneck, Gaussian K=256, beta 1e-3 (Alemi et al. 2017)", true,
       [](const ModelSpec& s) { return std::make_unique<VibModel>(s); },
       [](std::size_t) {
         return nlohmann::json{{"k", 256}, {"beta", 1e-3}, {"train_samples", 1}, {"test_samples", 12}};
       }},
  };
  return registry;
}

std::vector<std::string> family_names() {
  std::vector<std::string> names;
  for (const auto& f : family_registry()) names.push_back(f.name);
  return names;
}

const FamilyInfo& find_family(const std::string& name) {
  for (const auto& f : family_registry())
    if (f.name == name) return f;
  throw_unknown_name("model family", name, family_names());
}

std::unique_ptr<TrainableModel> create_model(const ModelSpec& spec) {
  spec.validate();
  return find_family(spec.family).create(spec);
}

ModelSpec default_spec(const std::string& family, const std::vector<int64_t>& input_shape, int64_t num_classes) {
  ModelSpec s;
  s.family = family;
  s.input_shape = input_shape;
  s.num_classes = num_classes;
  s.hyper = find_family(family).default_hyper(s.hidden.size());
  return s;
}

}  // namespace imbench::models
