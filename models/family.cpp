#include "models/family.h"

#include <fmt/format.h>

#include "core/errors.h"
#include "models/det.h"

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
  static const std::vector<FamilyInfo> registry{
      {"det", "deterministic MLP trained with cross-entropy (paper: DET)", false,
       [](const ModelSpec& s) { return std::make_unique<DetModel>(s); }},
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
  find_family(family);
  return s;
}

}  // namespace imbench::models
