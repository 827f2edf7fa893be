#include "harness/zoo.h"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/errors.h"
#include "core/sha256.h"
#include "core/version.h"
#include "data/dataset.h"
#include "models/checkpoint.h"
#include "models/device.h"
#include "models/evaluate.h"
#include "models/family.h"
#include "models/train.h"

namespace fs = std::filesystem;

namespace imbench::harness {
namespace {

constexpr const char* kFormat = "imbench-zoo";
constexpr int kVersion = 1;

// Path of `file` relative to the manifest's folder ("mnist/x.ckpt", or
// "../checkpoints/x.ckpt" for a file outside the zoo).
std::string relative_to(const std::string& file, const fs::path& folder) {
  return fs::relative(fs::absolute(file), fs::absolute(folder)).generic_string();
}

std::string retrain_command(const nlohmann::json& training, const std::string& family, const std::string& variant_flags,
                            const std::string& out) {
  const auto& o = training.at("options");
  std::string cmd = fmt::format("imbench train --family {} --dataset {} --preset {} --seed {} --threads {}{}", family,
                                training.at("dataset").get<std::string>(), training.at("preset").get<std::string>(),
                                o.at("seed").get<uint64_t>(), training.value("threads", 0), variant_flags);
  // Options the preset does not set are spelled out (none for the paper preset).
  const auto preset = models::preset_options(training.at("preset").get<std::string>());
  if (o.at("epochs").get<int64_t>() != preset.epochs) cmd += fmt::format(" --epochs {}", o.at("epochs").get<int64_t>());
  if (!o.value("flush_denormal", false)) cmd += " --flush-denormal 0";
  return cmd + " --out " + out;
}

// How a model differs from its family's reference under its preset: in its
// activation, its objective's hyper-parameters, or the preset's optimisation
// settings (not in width, depth, prediction samples or the epoch budget,
// which the architecture, the test record and the history show):
// {"activation relu", " --activation relu"}, or {"", ""} for the reference.
std::pair<std::string, std::string> variant_of(const models::ModelSpec& spec, const std::string& preset,
                                               const nlohmann::json& options) {
  models::ModelSpec ref = models::default_spec(spec.family, spec.input_shape, spec.num_classes);
  ref.hidden = spec.hidden;
  const auto ref_options = models::apply_preset(preset, ref).to_json();
  std::vector<std::string> parts;
  std::string flags;
  for (const std::string key :
       {"optimizer", "learning_rate", "momentum", "batch_size", "grad_clip", "patience", "validation_size"}) {
    const std::string flag = models::TrainOptions::table().find(key)->flag();
    if (!options.contains(key) || !ref_options.contains(key) || options.at(key) == ref_options.at(key)) continue;
    const std::string text = options.at(key).is_string() ? options.at(key).get<std::string>() : options.at(key).dump();
    parts.push_back(key + " " + text);
    flags += " " + flag + " " + text;
  }
  if (spec.activation != ref.activation) {
    parts.push_back("activation " + spec.activation);
    flags += " --activation " + spec.activation;
  }
  for (const auto& [key, value] : spec.hyper.items()) {
    if (key == "test_samples" || (ref.hyper.contains(key) && ref.hyper.at(key) == value)) continue;
    std::string text;
    if (value.is_array()) {
      for (const auto& v : value) text += (text.empty() ? "" : ",") + v.dump();
    } else {
      text = value.dump();
    }
    parts.push_back(key + " " + text);
    if (const auto* o = models::find_family(spec.family).hyper_option(key)) flags += " " + o->flag() + " " + text;
  }
  return {fmt::format("{}", fmt::join(parts, "; ")), flags};
}

// "activation relu; k 128" -> "activation-relu_k-128": part of an entry's name.
std::string slug(const std::string& variant) {
  std::string s;
  for (std::size_t i = 0; i < variant.size(); ++i) {
    const char c = variant[i];
    if (c == ';') {
      s += '_';
      ++i;  // the space after it
      continue;
    }
    s += c == ' ' ? '-' : c == ',' ? '.' : c;
  }
  return s;
}

}  // namespace

nlohmann::json read_zoo_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot read the zoo manifest", path));
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
  if (!j.is_object() || j.value("format", "") != kFormat || !j.contains("models") || !j["models"].is_array())
    throw Error(fmt::format("{}: not an imbench zoo manifest (format '{}', a 'models' list)", path, kFormat));
  if (j.value("version", 0) != kVersion)
    throw Error(fmt::format("{}: zoo manifest version {} is not supported (this imbench reads {})", path,
                            j.value("version", 0), kVersion));
  return j;
}

void zoo_add(const std::vector<std::string>& checkpoints, const ZooAddOptions& o, std::ostream& out) {
  if (checkpoints.empty()) throw UsageError("zoo add: name at least one checkpoint");
  if (o.passes < 1) throw UsageError(fmt::format("--passes must be >= 1, got {}", o.passes));
  const fs::path folder = fs::path(o.manifest).parent_path().empty() ? fs::path(".") : fs::path(o.manifest).parent_path();
  nlohmann::json manifest = fs::exists(o.manifest)
                                ? read_zoo_manifest(o.manifest)
                                : nlohmann::json{{"format", kFormat},
                                                 {"version", kVersion},
                                                 {"description",
                                                  "imbench model zoo: checkpoints trained by imbench, their training "
                                                  "record and test metrics. Regenerate an entry with 'imbench zoo add "
                                                  "FILE'; check the files with 'imbench zoo verify'."},
                                                 {"models", nlohmann::json::array()}};
  for (const auto& path : checkpoints) {
    auto loaded = models::load_checkpoint(path);
    auto& model = *loaded.model;
    const auto& meta = loaded.meta;
    const auto& training = meta.training;
    if (!training.contains("dataset") || !training.contains("result"))
      throw Error(fmt::format("{}: the checkpoint records no training run (not trained by imbench train)", path));
    const std::string dataset = training.at("dataset").get<std::string>();
    const auto test = data::load_dataset(dataset, data::Split::kTest, o.paths);
    models::seed_everything(o.seed);
    models::EvalOptions eo;
    eo.batch_size = o.batch_size;
    eo.repeats = model.is_stochastic() ? o.passes : 1;
    const auto eval = models::evaluate(model, test, eo);
    nlohmann::json test_json = {{"examples", eval.examples},
                                {"passes", eo.repeats},
                                {"accuracy_per_pass", eval.accuracy_per_repeat},
                                {"accuracy_mean", eval.mean_accuracy},
                                {"accuracy_std", eval.std_accuracy},
                                {"prediction", models::to_string(model.prediction_rule())},
                                {"prediction_samples", model.prediction_samples()},
                                {"seed", o.seed},
                                {"device", models::device_description(torch::kCPU)},
                                {"evaluated_by", fmt::format("imbench {} ({})", imbench::kVersion, kGitRevision)},
                                {"seconds", eval.seconds}};
    if (model.is_stochastic()) {
      models::SamplingGuard guard(model, models::Sampling::kMeanField);
      test_json["mean_field_accuracy"] = models::evaluate(model, test, {o.batch_size, 1, {}}).mean_accuracy;
    }
    const auto result = models::TrainResult::from_json(training.at("result"));
    nlohmann::json curve = nlohmann::json::array();
    for (const auto& e : result.history) curve.push_back({e.epoch, e.stage, e.validation_accuracy, e.train_loss});
    const std::string rel = relative_to(path, folder);
    const bool shipped = rel.rfind("..", 0) != 0;
    const auto& spec = meta.spec;
    const auto seed = training.at("options").at("seed").get<uint64_t>();
    const std::string preset = training.at("preset").get<std::string>();
    const auto [variant, variant_flags] = variant_of(spec, preset, training.at("options"));
    const std::string name =
        fmt::format("{}-{}-{}{}-s{}", spec.family, dataset, preset, variant.empty() ? "" : "-" + slug(variant), seed);
    nlohmann::json entry = {
        {"name", name},
        {"file", rel},
        {"shipped", shipped},
        {"family", spec.family},
        {"dataset", dataset},
        {"architecture", spec.layer_string()},
        {"preset", training.at("preset")},
        {"variant", variant},
        {"seed", seed},
        {"train_examples", training.value("train_examples", int64_t{0})},
        {"validation_examples", training.at("options").at("validation_size")},
        {"options", training.at("options")},
        {"epochs", static_cast<int64_t>(result.history.size())},
        {"best_epoch", result.best_epoch},
        {"stopped_early", result.stopped_early},
        {"best_validation_accuracy", result.best_validation_accuracy},
        {"training_seconds", result.seconds},
        {"training_images_per_second", result.images_per_second},
        {"threads", training.value("threads", 0)},
        {"training_device", training.value("device", "")},
        {"trained_by", fmt::format("imbench {} ({})", meta.imbench_version, meta.git_revision)},
        {"created_utc", meta.created_utc},
        {"retrain", retrain_command(training, spec.family, variant_flags, fs::path(path).lexically_normal().generic_string())},
        {"validation_curve", curve},
        {"test", test_json},
        {"bytes", static_cast<int64_t>(fs::file_size(path))},
        {"sha256", sha256_file(path)},
        {"weights_sha256", meta.weights_sha256}};
    auto& list = manifest["models"];
    bool replaced = false;
    for (auto& e : list)
      if (e.value("name", "") == name) {
        e = entry;
        replaced = true;
      }
    if (!replaced) list.push_back(entry);
    fmt::print(out, "{} {}: {} test accuracy {:.2f}%{} over {} pass(es){}; {} epochs (best {}), {:.0f} s training\n",
               replaced ? "updated" : "added", name, dataset, 100 * eval.mean_accuracy,
               eval.std_accuracy > 0 ? fmt::format(" +- {:.2f}", 100 * eval.std_accuracy) : "", eo.repeats,
               test_json.contains("mean_field_accuracy")
                   ? fmt::format(", mean-field {:.2f}%", 100 * test_json["mean_field_accuracy"].get<double>())
                   : "",
               result.history.size(), result.best_epoch, result.seconds);
  }
  std::sort(manifest["models"].begin(), manifest["models"].end(),
            [](const nlohmann::json& a, const nlohmann::json& b) { return a.at("name") < b.at("name"); });
  models::write_file_atomically(o.manifest, manifest.dump(2) + "\n");
  fmt::print(out, "manifest: {} ({} models)\n", o.manifest, manifest["models"].size());
}

void zoo_verify(const std::string& path, std::ostream& out) {
  const auto manifest = read_zoo_manifest(path);
  const fs::path folder = fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
  int64_t total = 0, shipped = 0, present = 0;
  for (const auto& e : manifest["models"]) {
    const std::string name = e.value("name", "?");
    const fs::path file = folder / e.at("file").get<std::string>();
    const bool ships = e.at("shipped").get<bool>();
    if (!fs::exists(file)) {
      if (ships) throw Error(fmt::format("{}: {} is listed as shipped but {} is missing", path, name, file.string()));
      fmt::print(out, "{}: not shipped, not present ({})\n", name, file.string());
      continue;
    }
    const auto bytes = static_cast<int64_t>(fs::file_size(file));
    const std::string sum = sha256_file(file.string());
    if (sum != e.at("sha256").get<std::string>())
      throw Error(fmt::format("{}: {}: SHA-256 mismatch: manifest {}, file {}", path, file.string(),
                              e.at("sha256").get<std::string>().substr(0, 16), sum.substr(0, 16)));
    ++present;
    if (ships) {
      if (bytes > kZooFileCap)
        throw Error(fmt::format("{}: {} is {} bytes, over the zoo's {} per file", path, file.string(), bytes, kZooFileCap));
      total += bytes;
      ++shipped;
    }
    fmt::print(out, "{}: ok ({} bytes, sha256 {}){}\n", name, bytes, sum.substr(0, 16), ships ? "" : ", not shipped");
  }
  if (total > kZooTotalCap)
    throw Error(fmt::format("{}: the shipped models take {} bytes, over the zoo's {}", path, total, kZooTotalCap));
  fmt::print(out, "{} models listed, {} present and verified, {} shipped ({:.1f} MB of {:.0f} MB)\n",
             manifest["models"].size(), present, shipped, total / 1e6, kZooTotalCap / 1e6);
}

}  // namespace imbench::harness
