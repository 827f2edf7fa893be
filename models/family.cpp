#include "models/family.h"

#include <fmt/format.h>

#include <numeric>

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
  if (input_shape.empty() || input_shape.size() > 8)
    throw UsageError("model spec: the input shape must have 1 to 8 dimensions");
  int64_t dim = 1;
  for (auto d : input_shape) {
    if (d <= 0 || d > kMaxInputSize || (dim *= d) > kMaxInputSize)
      throw UsageError(fmt::format("model spec: the input shape [{}] must be positive with at most {} values",
                                   fmt::join(input_shape, ", "), kMaxInputSize));
  }
  if (hidden.size() > kMaxHiddenLayers)
    throw UsageError(fmt::format("model spec: {} hidden layers (at most {})", hidden.size(), kMaxHiddenLayers));
  for (auto h : hidden)
    if (h <= 0 || h > kMaxModelWidth)
      throw UsageError(fmt::format("model spec: hidden width {} must be in [1, {}]", h, kMaxModelWidth));
  if (num_classes < 2 || num_classes > kMaxClasses)
    throw UsageError(fmt::format("model spec: {} classes (need 2 to {})", num_classes, kMaxClasses));
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

const OptionTable<ModelSpec>& ModelSpec::architecture_table() {
  static const auto table =
      OptionTable<ModelSpec>()
          .integer_list("hidden", &ModelSpec::hidden, "hidden layer widths, e.g. 512,512 (the paper's)",
                        between(1, kMaxModelWidth))
          .choice("activation", &ModelSpec::activation, "sigmoid (the paper's) or relu", {"sigmoid", "relu"});
  return table;
}

const OptionTable<SfnnHyper>& SfnnHyper::table() {
  using H = SfnnHyper;
  static const auto table =
      OptionTable<H>()
          .integer_list("train_samples", &H::train_samples,
                        "branching samples per hidden layer for training, M_1..M_L (paper: 16 each)", at_least(1))
          .integer_list("test_samples", &H::test_samples,
                        "samples per hidden layer for the prediction rule (paper: 32 each)", at_least(1))
          .number_list("gamma", &H::gamma, "VCR weights gamma_0..gamma_L (one more than hidden layers)", at_least(0))
          .number_list("beta", &H::beta, "compression weights beta_1..beta_L", at_least(0))
          .number("prior_std", &H::prior_std, "std of the truncated normal initialisation of the prior logits rho",
                  above(0));
  return table;
}

SfnnHyper SfnnHyper::defaults(const std::string& family, std::size_t depth) {
  // sfnn: maximum likelihood (VCR_0 only); imb-*: every VCR_l and compression term.
  const bool imb = family != "sfnn";
  SfnnHyper h;
  h.train_samples.assign(depth, 16);
  h.test_samples.assign(depth, 32);
  h.gamma.assign(depth + 1, imb ? 1.0 : 0.0);
  h.gamma[0] = 1.0;
  h.beta.assign(depth, imb ? 1e-4 : 0.0);
  h.greedy = family == "imb-greedy";
  return h;
}

SfnnHyper SfnnHyper::read(const nlohmann::json& j, SfnnHyper base, std::size_t depth, const OptionContext& context) {
  if (!j.is_object()) throw UsageError(fmt::format("{}hyper-parameters must be a key-value table", context.prefix));
  nlohmann::json rest = j;
  if (rest.contains("greedy")) {  // recorded by checkpoints; set by the family, not an option
    if (!rest["greedy"].is_boolean()) throw Error(fmt::format("{}greedy must be true or false", context.prefix));
    base.greedy = rest["greedy"].get<bool>();
    rest.erase("greedy");
  }
  const std::vector<std::pair<std::string, std::size_t>> lengths{
      {"train_samples", depth}, {"test_samples", depth}, {"gamma", depth + 1}, {"beta", depth}};
  for (const auto& [key, n] : lengths)
    if (rest.contains(key) && rest[key].is_number()) rest[key] = nlohmann::json(std::vector<nlohmann::json>(n, rest[key]));
  table().read(rest, context, base);
  const auto sizes = std::vector<std::size_t>{base.train_samples.size(), base.test_samples.size(), base.gamma.size(),
                                              base.beta.size()};
  for (std::size_t i = 0; i < lengths.size(); ++i)
    if (sizes[i] != lengths[i].second)
      throw OptionError(lengths[i].first,
                        fmt::format("{} needs {} value{} ({}one per hidden layer), got {}",
                                    context.name(*table().find(lengths[i].first)), lengths[i].second,
                                    lengths[i].second == 1 ? "" : "s",
                                    lengths[i].first == "gamma" ? "gamma_0 and " : "", sizes[i]));
  if (std::accumulate(base.gamma.begin(), base.gamma.end(), 0.0) <= 0)
    throw OptionError("gamma", fmt::format("{} needs at least one positive value", context.name(*table().find("gamma"))));
  return base;
}

SfnnHyper SfnnHyper::from_spec(const ModelSpec& spec) {
  const std::size_t depth = spec.hidden.size();
  return read(spec.hyper, defaults(spec.family, depth), depth,
              {fmt::format("hyper-parameter of family '{}'", spec.family), spec.family + ": ", OptionSpelling::kKey});
}

nlohmann::json SfnnHyper::to_json() const {
  auto j = table().to_json(*this);
  j["greedy"] = greedy;
  return j;
}

const OptionTable<VibHyper>& VibHyper::table() {
  using H = VibHyper;
  static const auto table =
      OptionTable<H>()
          .integer("k", &H::k, "bottleneck size K (Alemi et al.: 256)", between(1, kMaxModelWidth))
          .number("beta", &H::beta, "weight of the KL term (Alemi et al.: 1e-3)", at_least(0))
          .integer("train_samples", &H::train_samples, "draws of z per training example", at_least(1))
          .integer("test_samples", &H::test_samples, "draws of z averaged by the prediction rule", at_least(1));
  return table;
}

const OptionDescription* FamilyInfo::hyper_option(const std::string& key) const {
  for (const auto& o : hyper_options)
    if (o.key == key) return &o;
  return nullptr;
}

const std::vector<FamilyInfo>& family_registry() {
  auto sfnn = [](const ModelSpec& s) { return std::make_unique<SfnnModel>(s); };
  // The SFNN/IMB families: defaults from SfnnHyper::defaults, the one place they live.
  auto sfnn_family = [&](std::string name, std::string description) {
    const std::string family = name;
    return FamilyInfo{std::move(name), std::move(description), true, sfnn,
                      [family](std::size_t depth) { return SfnnHyper::defaults(family, depth).to_json(); },
                      SfnnHyper::table().describe(SfnnHyper::defaults(family, 2)),
                      [family](const nlohmann::json& hyper, const nlohmann::json& j, std::size_t depth,
                               const OptionContext& context) {
                        const auto base = SfnnHyper::read(hyper, SfnnHyper::defaults(family, depth), depth,
                                                          {"hyper-parameter", family + ": ", OptionSpelling::kKey});
                        return SfnnHyper::read(j, base, depth, context).to_json();
                      }};
  };
  static const std::vector<FamilyInfo> registry{
      {"det", "deterministic MLP trained with cross-entropy (paper: DET)", false,
       [](const ModelSpec& s) { return std::make_unique<DetModel>(s); },
       [](std::size_t) { return nlohmann::json::object(); },
       {},
       [](const nlohmann::json& hyper, const nlohmann::json&, std::size_t, const OptionContext&) { return hyper; }},
      sfnn_family("sfnn", "stochastic binary network trained by maximum likelihood, VCR_0 (paper: SFNN / MLE)"),
      sfnn_family("imb-joint",
                  "information multi-bottleneck, all layers jointly: sum gamma_i VCR_i + sum beta_l C_l (paper: JointPIB)"),
      sfnn_family("imb-greedy",
                  "information multi-bottleneck trained layer by layer (paper: GreedyPIB; staging is our interpretation)"),
      {"vib", "deep variational information bottleneck, Gaussian K=256, beta 1e-3 (Alemi et al. 2017)", true,
       [](const ModelSpec& s) { return std::make_unique<VibModel>(s); },
       [](std::size_t) { return VibHyper{}.to_json(); },
       VibHyper::table().describe(),
       [](const nlohmann::json& hyper, const nlohmann::json& j, std::size_t, const OptionContext& context) {
         auto h = VibHyper::table().from_json(hyper, {"hyper-parameter", "vib: ", OptionSpelling::kKey});
         VibHyper::table().read(j, context, h);
         return h.to_json();
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
