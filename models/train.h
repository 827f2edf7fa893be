#pragma once
/// The training loop, its options and presets.
#include <nlohmann/json.hpp>

#include <functional>

#include "core/options.h"
#include "data/dataset.h"
#include "models/family.h"

namespace imbench::models {

enum class OptimizerKind { kAdam, kAdamax, kSgd };
std::string to_string(OptimizerKind kind);
OptimizerKind parse_optimizer(const std::string& name);  ///< "adam", "adamax", "sgd"

/// Options of the training loop. Defaults are the `quick` preset for DET.
/// Each option is a row of table() (key, flag, help, bound): the JSON
/// reader and writer, validate(), `imbench train`'s flags and a matrix's
/// [models.train] keys derive from it. The flag of learning_rate is `--lr`.
struct TrainOptions {
  OptimizerKind optimizer = OptimizerKind::kAdam;
  double learning_rate = 1e-3;
  double momentum = 0.9;          ///< SGD only
  int64_t batch_size = 100;
  int64_t epochs = 20;            ///< upper bound when early stopping is on
  double grad_clip = 0.0;         ///< global gradient-norm clip; 0 = off
  int64_t validation_size = 1000; ///< the last N training images; 0 = no validation
  int64_t patience = 0;           ///< early stopping after N epochs without a better validation accuracy; 0 = off
  bool shuffle = true;            ///< reshuffle every epoch
  /// Flush denormal floats to zero while training (CPU): late in training
  /// gradients and optimiser moments fall below 1.2e-38, and on x86 every
  /// operation on such a number takes a slow microcode path (the SFNN
  /// output layer's forward+backward took 102 ms instead of 6 ms). Checkpoints written before this
  /// option existed read as false.
  bool flush_denormal = true;
  uint64_t seed = 0;              ///< weights init and shuffling
  std::string device = "cpu";     ///< not a row: set by --device or the matrix's device

  static const OptionTable<TrainOptions>& table();
  /// UsageError (an OptionError) naming the bad option as `context` spells it.
  void validate(const OptionContext& context = {"training option", "", OptionSpelling::kFlag}) const;
  nlohmann::json to_json() const;
  /// Options as a checkpoint records them (flush_denormal absent: false).
  static TrainOptions from_json(const nlohmann::json& j);
};

/// A named preset: TrainOptions keys over TrainOptions{}, and more keys
/// (training or family options) for the families that train with branching
/// samples (SFNN, IMB).
struct Preset {
  std::string name;
  std::string description;
  nlohmann::json options;
  nlohmann::json branching_options;
};
/// "quick" (Adam 1e-3, batch 100, 20 epochs, no early stopping; validation
/// accuracy on the last 1000 training images is still recorded; SFNN/IMB: 10
/// epochs, 8 samples per layer) and "paper" (Adamax 0.01, clip 5, batch 16,
/// patience 20 on the last 1000 training images, <= 200 epochs).
const std::vector<Preset>& presets();
const Preset& find_preset(const std::string& name);  ///< "did you mean" for unknown names
TrainOptions preset_options(const std::string& preset);
/// A preset for a family: sets spec.hyper from the family's defaults for the
/// spec's depth, and returns the preset's TrainOptions with its
/// branching_options applied where the family has branching samples.
TrainOptions apply_preset(const std::string& preset, ModelSpec& spec);
std::vector<std::string> preset_names();

/// Every key a matrix's [models.train] table and `imbench train` accept:
/// TrainOptions's rows, the architecture (ModelSpec::architecture_table())
/// and every family's hyper-parameters, in that order.
std::vector<std::string> training_option_keys();
/// The row of a training, architecture or hyper-parameter key for `family`;
/// OptionError "does not apply to family" or "unknown ... (did you mean".
const OptionDescription& training_option(const std::string& family, const std::string& key,
                                         const OptionContext& context);
/// Reads training and family options (not the architecture) over `options`
/// and spec.hyper. A number for a per-layer hyper-parameter applies to
/// every layer. Errors name the option as `context` spells it.
void apply_training_options(const nlohmann::json& j, ModelSpec& spec, TrainOptions& options,
                            const OptionContext& context);

struct EpochRecord {
  int64_t epoch = 0;
  int64_t stage = 1;            ///< training stage (IMB-Greedy); 1 otherwise
  double train_loss = 0;        ///< mean objective over the epoch
  double validation_accuracy = -1;  ///< -1 when there is no validation split
  double seconds = 0;           ///< optimisation time (validation excluded)
  double images_per_second = 0;
};

struct TrainResult {
  std::vector<EpochRecord> history;
  int64_t best_epoch = 0;       ///< the epoch whose weights were kept (of the last stage)
  double best_validation_accuracy = -1;  ///< validation accuracy of the kept weights
  bool stopped_early = false;
  double seconds = 0;           ///< whole run, validation included
  double images_per_second = 0; ///< training images per second of optimisation time
  nlohmann::json to_json() const;
  static TrainResult from_json(const nlohmann::json& j);
};

/// Where progress goes. The CLI passes a sink that redraws one line on a
/// terminal and prints one line per epoch otherwise.
struct TrainProgress {
  int64_t epoch, epochs, batch, batches;
  double loss, validation_accuracy, images_per_second;
  bool epoch_done;
  /// Estimated seconds left for the whole run (every stage): if validation
  /// accuracy stops improving (early stopping) and at most (the epoch cap);
  /// -1 when unknown.
  double eta_low_seconds = -1, eta_high_seconds = -1;
  std::string note;  ///< a message line instead of a progress line (e.g. "resumed after epoch 12")
};
using ProgressSink = std::function<void(const TrainProgress&)>;

/// Trains `model` on `train` (the caller splits off the validation set).
/// Early stopping restores the best weights. A non-finite loss stops
/// training with an imbench::Error.
///
/// With a `state_path`, the loop is resumable: at the end of every epoch it
/// writes (atomically) the weights, the optimiser moments and step count,
/// the epoch and stage, the best weights and score so far, the
/// early-stopping counter, the history, and the state of LibTorch's default
/// CPU generator and of the shuffling generator; and once more when
/// training ends, with the final weights. If the file exists when train()
/// starts, it continues from there, and on the CPU ends with the same
/// weights as an uninterrupted run (a kill loses at most the epoch in
/// progress). A state written by another run (other model, options, data or
/// thread count) is refused with an imbench::Error. The caller deletes the
/// file once the result is safe.
TrainResult train(TrainableModel& model, const data::Dataset& train, const data::Dataset* validation,
                  const TrainOptions& options, const ProgressSink& progress = {}, const std::string& state_path = {});

/// Writes `bytes` to `path` through a temporary file in the same folder and
/// a rename (imbench::write_file_atomically); imbench::Error (one line,
/// "PATH: write failed: disk full") on failure, leaving no temporary file and
/// the previous file as it was.
void write_file_atomically(const std::string& path, const std::string& bytes);

/// A sink writing to stderr: a live line on a terminal, a line per epoch otherwise.
ProgressSink stderr_progress();

}  // namespace imbench::models
