#include "harness/training.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <filesystem>

#include "core/errors.h"
#include "core/interrupt.h"
#include "data/user_data.h"
#include "models/checkpoint.h"
#include "models/device.h"
#include "models/evaluate.h"
#include "reports/markdown.h"

namespace imbench::harness {

TrainPlan plan_training(const std::string& family, const std::string& dataset, const std::string& preset,
                        const nlohmann::json& overrides, const OptionContext& context) {
  if (!overrides.is_object()) throw UsageError("training overrides must be a JSON object");
  if (data::is_file_dataset(dataset))
    throw UsageError(
        fmt::format("dataset '{}': imbench trains on registered datasets only ({}); a file of your own "
                    "is a test set for eval, attack and run",
                    dataset, fmt::join(data::dataset_names(), ", ")));
  const auto& info = data::find_dataset(dataset);
  TrainPlan p{family, dataset, preset, models::default_spec(family, info.example_shape, info.num_classes), {}};
  // The architecture first: the preset derives per-layer hyper-parameters from the depth.
  const auto& architecture = models::ModelSpec::architecture_table();
  nlohmann::json rest = overrides, shape = nlohmann::json::object();
  for (const auto& key : architecture.keys())
    if (rest.contains(key)) {
      shape[key] = rest[key];
      rest.erase(key);
    }
  architecture.read(shape, context, p.spec);
  p.options = models::apply_preset(preset, p.spec);
  models::apply_training_options(rest, p.spec, p.options, context);
  p.options.validate(context);
  p.spec.validate();
  // Rejects bad hyper-parameters before any data is loaded.
  const int64_t stages = models::create_model(p.spec)->stages();
  if (p.options.epochs < stages)
    throw OptionError("epochs", fmt::format("{} {} is fewer than the {} training stages of family '{}'",
                                            context.name(*models::TrainOptions::table().find("epochs")),
                                            p.options.epochs, stages, family));
  return p;
}

std::string training_state_path(const std::string& checkpoint) { return checkpoint + ".train-state"; }

void describe_training(const TrainPlan& plan, const data::DataPaths& paths, const std::string& path,
                       std::ostream& out) {
  const auto& o = plan.options;
  const auto device = models::parse_device(o.device);
  const auto full_train = data::load_dataset(plan.dataset, data::Split::kTrain, paths);
  const auto test = data::load_dataset(plan.dataset, data::Split::kTest, paths);
  const auto split = data::split_validation(full_train, o.validation_size);
  const auto model = models::create_model(plan.spec);
  fmt::print(out, "would train {} on {} ({} train / {} validation / {} test images), preset {}, seed {}, device {}\n",
             model->description(), plan.dataset, split.train.size(), split.validation.size(), test.size(), plan.preset,
             o.seed, models::device_description(device));
  fmt::print(out, "objective: {}\noptions: {}\n", model->objective(), o.to_json().dump());
  const int64_t batches = (split.train.size() + o.batch_size - 1) / o.batch_size;
  fmt::print(
      out, "epochs: {}{}{}{}; {} batches of {} images per epoch\n", o.patience > 0 ? "at most " : "", o.epochs,
      o.patience > 0 ? fmt::format(" (early stopping after {} epochs without a better validation accuracy)", o.patience)
                     : "",
      model->stages() > 1 ? fmt::format(", split between {} stages", model->stages()) : "", batches, o.batch_size);
  const auto state = training_state_path(path);
  if (std::filesystem::exists(state))
    fmt::print(out, "{} exists: training would resume from it if it records this training\n", state);
  fmt::print(out, "would write {}{}\n", path, std::filesystem::exists(path) ? " (replacing the existing file)" : "");
}

TrainOutcome train_to_checkpoint(const TrainPlan& plan, const data::DataPaths& paths, const std::string& path,
                                 std::ostream& out, bool quiet) {
  const auto& o = plan.options;
  const auto device = models::parse_device(o.device);
  models::seed_everything(o.seed);
  const auto full_train = data::load_dataset(plan.dataset, data::Split::kTrain, paths);
  const auto test = data::load_dataset(plan.dataset, data::Split::kTest, paths);
  const auto split = data::split_validation(full_train, o.validation_size);

  auto model = models::create_model(plan.spec);
  fmt::print(out, "training {} on {} ({} train / {} validation images), preset {}, seed {}, device {}\n",
             model->description(), plan.dataset, split.train.size(), split.validation.size(), plan.preset, o.seed,
             models::device_description(device));
  fmt::print(out, "objective: {}\noptions: {}\n", model->objective(), o.to_json().dump());
  out.flush();
  TrainOutcome outcome;
  // The resumable state lives next to the checkpoint until the checkpoint is written.
  const std::string state_path = training_state_path(path);
  outcome.result = models::train(*model, split.train, o.validation_size > 0 ? &split.validation : nullptr, o,
                                 quiet ? models::ProgressSink{} : models::stderr_progress(), state_path);
  models::EvalResult eval;
  try {
    eval = models::evaluate(*model, test);
    outcome.test_accuracy = eval.mean_accuracy;
    if (model->is_stochastic()) {
      models::SamplingGuard guard(*model, models::Sampling::kMeanField);
      outcome.mean_field_test_accuracy = models::evaluate(*model, test).mean_accuracy;
    }
  } catch (const Interrupted& e) {  // stopped while testing: the state holds the trained weights
    throw Interrupted(e.signal(), fmt::format("the finished training ({} epochs) in {}", outcome.result.history.size(),
                                              state_path),
                      true);
  }

  models::CheckpointMeta meta;
  meta.training = {{"dataset", plan.dataset},
                   {"train_examples", split.train.size()},
                   {"train_split", split.train.split},
                   {"validation_split", split.validation.split},
                   {"preset", plan.preset},
                   {"options", o.to_json()},
                   {"threads", torch::get_num_threads()},
                   {"device", models::device_description(device)},
                   {"objective", model->objective()},
                   {"result", outcome.result.to_json()}};
  meta.metrics = {{"test_accuracy", eval.mean_accuracy},
                  {"test_examples", eval.examples},
                  {"prediction_rule", models::to_string(model->prediction_rule())},
                  {"prediction_samples", model->prediction_samples()},
                  {"best_validation_accuracy", outcome.result.best_validation_accuracy}};
  if (outcome.mean_field_test_accuracy) meta.metrics["mean_field_test_accuracy"] = *outcome.mean_field_test_accuracy;
  models::save_checkpoint(path, *model, meta);
  std::error_code ec;
  std::filesystem::remove(state_path, ec);

  const auto& r = outcome.result;
  fmt::print(out, "trained {} epochs (best {}{}) in {:.1f} s, {:.0f} training images/s\n", r.history.size(), r.best_epoch,
             r.stopped_early ? ", early stop" : "", r.seconds, r.images_per_second);
  fmt::print(out, "test accuracy: {} ({} {} test images, {}{}, seed {}, device {})\n",
             reports::format_percent(eval.mean_accuracy), eval.examples, plan.dataset,
             models::to_string(model->prediction_rule()),
             model->is_stochastic() ? fmt::format(" over {} samples, one pass", model->prediction_samples()) : "", o.seed,
             models::device_description(device));
  if (outcome.mean_field_test_accuracy)
    fmt::print(out, "mean-field test accuracy: {} (probabilities propagated instead of samples)\n",
               reports::format_percent(*outcome.mean_field_test_accuracy));
  fmt::print(out, "checkpoint: {}\n", path);
  return outcome;
}

}  // namespace imbench::harness
