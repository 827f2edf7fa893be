#include "cli/commands.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <filesystem>
#include <optional>
#include <thread>

#include "core/errors.h"
#include "core/version.h"
#include "data/dataset.h"
#include "data/fetch.h"
#include "models/checkpoint.h"
#include "models/device.h"
#include "models/evaluate.h"
#include "models/torchscript.h"
#include "models/train.h"
#include "reports/markdown.h"

namespace fs = std::filesystem;

namespace imbench::cli {

std::vector<std::string> dataset_names() { return data::dataset_names(); }
std::vector<std::string> family_names() { return models::family_names(); }
std::vector<std::string> preset_names() { return models::preset_names(); }

namespace {

data::DataPaths paths_of(const CommonOptions& c) { return {data::resolve_data_dir(c.data_dir), c.cifar10_dir}; }

// Threads and seed before any tensor work; returns the device.
torch::Device prepare(const CommonOptions& c) {
  if (c.threads < 0) throw UsageError("--threads must be >= 0 (0 = all cores)");
  // LibTorch 1.13 from Debian starts with one OpenMP thread; 0 means all cores.
  torch::set_num_threads(c.threads > 0 ? c.threads
                                       : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const auto device = models::parse_device(c.device);
  models::seed_everything(c.seed);
  return device;
}

std::string model_kind(const models::Model& m) {
  return m.is_stochastic() ? "stochastic" : "deterministic";
}

}  // namespace

int run_data_fetch(const DataFetchCommand& cmd, std::ostream& out) {
  const std::string dir = data::resolve_data_dir(cmd.common.data_dir);
  const std::vector<std::string> all{"mnist", "fashion-mnist", "cifar10"};
  std::vector<std::string> which;
  if (cmd.dataset == "all") which = all;
  else if (std::find(all.begin(), all.end(), cmd.dataset) != all.end()) which = {cmd.dataset};
  else throw_unknown_name("dataset to fetch", cmd.dataset, {"mnist", "fashion-mnist", "cifar10", "all"});
  if (!cmd.from.empty() && which != std::vector<std::string>{"cifar10"})
    throw UsageError("--from applies to --dataset cifar10 only");
  for (const auto& name : which) {
    if (name == "mnist") {
      data::fetch_mnist(dir, out);
    } else if (name == "fashion-mnist") {
      const auto ds = data::load_dataset("fashion-mnist", data::Split::kTest, {dir, ""});
      fmt::print(out, "fashion-mnist: readable ({} test images; Debian package dataset-fashion-mnist)\n", ds.size());
    } else if (!cmd.from.empty()) {
      data::link_cifar10(dir, cmd.from, out);
    } else if (cmd.dataset == "cifar10") {
      throw UsageError("cifar10 cannot be downloaded here: pass --from DIR with a cifar-10-batches-bin folder");
    } else {
      fmt::print(out, "cifar10: skipped (pass --dataset cifar10 --from DIR to link a cifar-10-batches-bin folder)\n");
    }
  }
  return 0;
}

int run_data_list(const CommonOptions& common, std::ostream& out) {
  const auto paths = paths_of(common);
  reports::MarkdownTable t({"dataset", "status", "description"});
  for (const auto& d : data::dataset_registry()) {
    std::string status;
    try {
      const auto train = d.load(data::Split::kTrain, paths);
      const auto test = d.load(data::Split::kTest, paths);
      status = fmt::format("ok: {} train / {} test", train.size(), test.size());
    } catch (const std::exception& e) {
      status = "missing";
    }
    t.add_row({d.name, status, d.description});
  }
  fmt::print(out, "data directory: {}\n\n{}", paths.data_dir, t.render());
  return 0;
}

int run_train(const TrainCommand& cmd, std::ostream& out) {
  const auto& info = data::find_dataset(cmd.dataset);
  models::ModelSpec spec = models::default_spec(cmd.family, info.example_shape, info.num_classes);
  if (cmd.hidden) spec.hidden = *cmd.hidden;
  if (cmd.activation) spec.activation = *cmd.activation;
  models::TrainOptions o = models::apply_preset(cmd.preset, spec);
  // Overrides keep the shape of the family's value: a list per layer, or one number (vib).
  auto set_hyper = [&](const char* key, const auto& value, const char* option) {
    if (!value) return;
    if (!spec.hyper.contains(key))
      throw UsageError(fmt::format("--{} does not apply to family '{}'", option, cmd.family));
    if (spec.hyper[key].is_array()) {
      spec.hyper[key] = *value;
    } else if (value->size() == 1) {
      spec.hyper[key] = (*value)[0];
    } else {
      throw UsageError(fmt::format("--{} takes one value for family '{}'", option, cmd.family));
    }
  };
  set_hyper("train_samples", cmd.train_samples, "train-samples");
  set_hyper("test_samples", cmd.test_samples, "test-samples");
  set_hyper("gamma", cmd.gamma, "gamma");
  set_hyper("beta", cmd.beta, "beta");
  if (cmd.bottleneck) {
    if (cmd.family != "vib") throw UsageError(fmt::format("--k does not apply to family '{}'", cmd.family));
    spec.hyper["k"] = *cmd.bottleneck;
  }
  if (cmd.optimizer) o.optimizer = models::parse_optimizer(*cmd.optimizer);
  if (cmd.learning_rate) o.learning_rate = *cmd.learning_rate;
  if (cmd.grad_clip) o.grad_clip = *cmd.grad_clip;
  if (cmd.momentum) o.momentum = *cmd.momentum;
  if (cmd.batch_size) o.batch_size = *cmd.batch_size;
  if (cmd.epochs) o.epochs = *cmd.epochs;
  if (cmd.patience) o.patience = *cmd.patience;
  if (cmd.validation_size) o.validation_size = *cmd.validation_size;
  if (cmd.seed_given) o.seed = cmd.common.seed;
  o.device = cmd.common.device;
  o.validate();
  spec.validate();
  models::create_model(spec);  // rejects bad hyper-parameters before any data is loaded
  const std::string path =
      cmd.out.empty() ? fmt::format("checkpoints/{}-{}-{}.ckpt", cmd.family, cmd.dataset, cmd.preset) : cmd.out;
  if (fs::is_directory(path)) throw UsageError(fmt::format("--out {}: is a directory, expected a file name", path));

  CommonOptions common = cmd.common;
  common.seed = o.seed;
  const auto device = prepare(common);
  const auto paths = paths_of(cmd.common);
  const auto full_train = data::load_dataset(cmd.dataset, data::Split::kTrain, paths);
  const auto test = data::load_dataset(cmd.dataset, data::Split::kTest, paths);
  const auto split = data::split_validation(full_train, o.validation_size);

  auto model = models::create_model(spec);
  fmt::print(out, "training {} on {} ({} train / {} validation images), preset {}, seed {}, device {}\n",
             model->description(), cmd.dataset, split.train.size(), split.validation.size(), cmd.preset, o.seed,
             models::device_description(device));
  fmt::print(out, "objective: {}\noptions: {}\n", model->objective(), o.to_json().dump());
  out.flush();
  const auto result = models::train(*model, split.train, o.validation_size > 0 ? &split.validation : nullptr, o,
                                    cmd.quiet ? models::ProgressSink{} : models::stderr_progress());
  const auto eval = models::evaluate(*model, test);
  std::optional<models::EvalResult> mean_field;
  if (model->is_stochastic()) {
    models::SamplingGuard guard(*model, models::Sampling::kMeanField);
    mean_field = models::evaluate(*model, test);
  }

  models::CheckpointMeta meta;
  meta.training = {{"dataset", cmd.dataset},
                   {"train_examples", split.train.size()},
                   {"train_split", split.train.split},
                   {"validation_split", split.validation.split},
                   {"preset", cmd.preset},
                   {"options", o.to_json()},
                   {"threads", torch::get_num_threads()},
                   {"device", models::device_description(device)},
                   {"objective", model->objective()},
                   {"result", result.to_json()}};
  meta.metrics = {{"test_accuracy", eval.mean_accuracy},
                  {"test_examples", eval.examples},
                  {"prediction_rule", models::to_string(model->prediction_rule())},
                  {"prediction_samples", model->prediction_samples()},
                  {"best_validation_accuracy", result.best_validation_accuracy}};
  if (mean_field) meta.metrics["mean_field_test_accuracy"] = mean_field->mean_accuracy;
  models::save_checkpoint(path, *model, meta);

  fmt::print(out, "trained {} epochs (best {}{}) in {:.1f} s, {:.0f} training images/s\n", result.history.size(),
             result.best_epoch, result.stopped_early ? ", early stop" : "", result.seconds, result.images_per_second);
  fmt::print(out, "test accuracy: {} ({} {} test images, {}{}, seed {}, device {})\n",
             reports::format_percent(eval.mean_accuracy), eval.examples, cmd.dataset,
             models::to_string(model->prediction_rule()),
             model->is_stochastic() ? fmt::format(" over {} samples, one pass", model->prediction_samples()) : "",
             o.seed, models::device_description(device));
  if (mean_field)
    fmt::print(out, "mean-field test accuracy: {} (probabilities propagated instead of samples)\n",
               reports::format_percent(mean_field->mean_accuracy));
  fmt::print(out, "checkpoint: {}\n", path);
  return 0;
}

int run_eval(const EvalCommand& cmd, std::ostream& out) {
  if (cmd.limit < 0) throw UsageError("--limit must be >= 0 (0 = all examples)");
  if (cmd.repeats < 1) throw UsageError("--repeats must be >= 1");
  const auto device = prepare(cmd.common);
  std::unique_ptr<models::Model> model;
  std::string provenance;
  if (models::is_checkpoint_file(cmd.model)) {
    if (cmd.input_shape || cmd.num_classes || cmd.samples || cmd.stochastic)
      throw UsageError("--input-shape/--num-classes/--samples/--stochastic apply to TorchScript models only; "
                       "an imbench checkpoint records them");
    auto loaded = models::load_checkpoint(cmd.model, device);
    const auto& t = loaded.meta.training;
    provenance = fmt::format("trained on {} with preset {} (seed {}), imbench {} ({})",
                             t.value("dataset", "?"), t.value("preset", "?"),
                             t.contains("options") ? t["options"].value("seed", uint64_t{0}) : 0,
                             loaded.meta.imbench_version, loaded.meta.git_revision);
    model = std::move(loaded.model);
  } else {
    models::TorchScriptOptions ts;
    ts.input_shape = cmd.input_shape;
    ts.num_classes = cmd.num_classes;
    ts.samples = cmd.samples;
    ts.stochastic = cmd.stochastic;
    model = models::TorchScriptModel::load(cmd.model, ts, device);
    provenance = "TorchScript module";
  }
  const auto full = data::load_dataset(cmd.dataset, data::parse_split(cmd.split), paths_of(cmd.common));
  const auto ds = full.first(cmd.limit);
  models::EvalOptions eo;
  eo.batch_size = cmd.batch_size;
  eo.repeats = cmd.repeats;
  const auto r = models::evaluate(*model, ds, eo);

  fmt::print(out, "model: {} ({}; {})\n", model->description(), model_kind(*model), provenance);
  fmt::print(out, "prediction rule: {}{}\n", models::to_string(model->prediction_rule()),
             model->is_stochastic() ? fmt::format(" over {} samples", model->prediction_samples()) : "");
  fmt::print(out, "data: {} {} split, first {} of {} examples; seed {}; device {}; imbench {} ({})\n", cmd.dataset,
             cmd.split, ds.size(), full.size(), cmd.common.seed, models::device_description(device), kVersion,
             kGitRevision);
  if (!model->is_stochastic() && cmd.repeats > 1)
    fmt::print(out, "note: the model is deterministic, so --repeats {} was evaluated once\n", cmd.repeats);
  reports::MarkdownTable t({"prediction", "examples", "repeats", "accuracy", "error", "worst repeat", "images/s"});
  auto row = [&](const std::string& what, const models::EvalResult& e) {
    t.add_row({what, std::to_string(e.examples), std::to_string(e.accuracy_per_repeat.size()),
               reports::format_percent(e.mean_accuracy, e.std_accuracy),
               reports::format_percent(1.0 - e.mean_accuracy, e.std_accuracy), reports::format_percent(e.worst_accuracy),
               fmt::format("{:.0f}", e.images_per_second)});
  };
  row(model->is_stochastic() ? fmt::format("mean softmax, {} samples", model->prediction_samples()) : "argmax of logits", r);
  if (model->is_stochastic() && dynamic_cast<models::TrainableModel*>(model.get())) {
    models::SamplingGuard guard(*model, models::Sampling::kMeanField);
    row("mean-field", models::evaluate(*model, ds, {eo.batch_size, 1}));
  }
  fmt::print(out, "\n{}", t.render());
  return 0;
}

int run_info(const InfoCommand& cmd, std::ostream& out) {
  const auto meta = models::read_checkpoint_meta(cmd.path);
  fmt::print(out, "{}\n", meta.to_json().dump(2));
  return 0;
}

}  // namespace imbench::cli
