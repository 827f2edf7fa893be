#pragma once
/// Trainable model families (det; the stochastic families build on this),
/// the spec that rebuilds a model from a checkpoint, and the family registry.
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>

#include "core/options.h"
#include "models/model.h"

namespace imbench::models {

/// Everything needed to rebuild a model's architecture (not its weights).
/// Sanity bounds on an architecture (checked by ModelSpec::validate, so a
/// checkpoint header cannot ask for a model of many gigabytes): widths of the
/// hidden layers and VIB bottleneck, values per input, layers, classes.
inline constexpr int64_t kMaxModelWidth = 65536;
inline constexpr int64_t kMaxInputSize = int64_t{1} << 24;  ///< values in one input example
inline constexpr std::size_t kMaxHiddenLayers = 64;
inline constexpr int64_t kMaxClasses = 100000;

struct ModelSpec {
  std::string family = "det";
  std::vector<int64_t> input_shape{1, 28, 28};
  std::vector<int64_t> hidden{512, 512};  ///< hidden layer widths
  int64_t num_classes = 10;
  std::string activation = "sigmoid";     ///< "sigmoid" (paper) or "relu"
  /// Family-specific hyper-parameters: the JSON of the family's typed
  /// struct (SfnnHyper, VibHyper in models/stochastic.h), as checkpoints record it.
  nlohmann::json hyper = nlohmann::json::object();

  /// The rows a user sets: hidden and activation.
  static const OptionTable<ModelSpec>& architecture_table();

  int64_t input_dim() const;
  /// "784-512-512-10"
  std::string layer_string() const;
  void validate() const;  ///< UsageError on empty/negative sizes or unknown activation
  nlohmann::json to_json() const;
  static ModelSpec from_json(const nlohmann::json& j);  ///< Error on missing keys
};

/// A model imbench can train and checkpoint.
class TrainableModel : public Model {
 public:
  /// The training objective, a scalar averaged over the batch (for DET: cross-entropy).
  virtual torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& y) = 0;
  /// The module that holds the weights (saved in checkpoints).
  virtual torch::nn::Module& module() = 0;
  virtual const ModelSpec& spec() const = 0;
  /// A formula for reports, e.g. "L = CE(f(x), y)".
  virtual std::string objective() const = 0;
  /// Training stages (IMB-Greedy trains layer by layer); 1 for joint training.
  virtual int64_t stages() const { return 1; }
  /// Switches the objective and the trainable parameters to a stage (1-based).
  virtual void set_stage(int64_t stage) {}
};

struct FamilyInfo {
  std::string name;
  std::string description;
  bool stochastic;
  std::function<std::unique_ptr<TrainableModel>(const ModelSpec&)> create;
  /// The family's reference hyper-parameters for a net with `depth` hidden layers.
  std::function<nlohmann::json(std::size_t depth)> default_hyper;
  /// Its hyper-parameters' table rows (defaults for the paper's two hidden layers).
  std::vector<OptionDescription> hyper_options;
  /// `hyper` with the options of `j` (keys of hyper_options) over it,
  /// checked for `depth` hidden layers; a number for a per-layer option
  /// applies to every layer. Errors name options as `context` spells them.
  std::function<nlohmann::json(const nlohmann::json& hyper, const nlohmann::json& j, std::size_t depth,
                               const OptionContext& context)>
      read_hyper;
  /// The row of a hyper-parameter key, or nullptr.
  const OptionDescription* hyper_option(const std::string& key) const;
};

const std::vector<FamilyInfo>& family_registry();
std::vector<std::string> family_names();
/// Unknown names get a "did you mean" UsageError.
const FamilyInfo& find_family(const std::string& name);
/// Validates the spec and builds a freshly initialised model on the CPU.
std::unique_ptr<TrainableModel> create_model(const ModelSpec& spec);
/// The paper's architecture for a dataset (hidden 512-512, input from the
/// dataset) with the family's reference hyper-parameters.
ModelSpec default_spec(const std::string& family, const std::vector<int64_t>& input_shape, int64_t num_classes);

}  // namespace imbench::models
