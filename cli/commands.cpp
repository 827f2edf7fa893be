#include "cli/commands.h"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <fmt/ranges.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <thread>

#include "attacks/attack.h"
#include "core/errors.h"
#include "core/options.h"
#include "core/version.h"
#include "data/dataset.h"
#include "data/fetch.h"
#include "harness/checks.h"
#include "harness/evaluator.h"
#include "harness/matrix.h"
#include "harness/progress.h"
#include "harness/runner.h"
#include "harness/training.h"
#include "harness/zoo.h"
#include "models/checkpoint.h"
#include "models/device.h"
#include "models/evaluate.h"
#include "models/load.h"
#include "models/torchscript.h"
#include "models/train.h"
#include "reports/atomic_file.h"
#include "reports/compare.h"
#include "reports/export.h"
#include "reports/markdown.h"
#include "reports/merge.h"
#include "reports/report.h"
#include "reports/results.h"
#include "reports/results_io.h"
#include "reports/zoo_report.h"

namespace fs = std::filesystem;

namespace imbench::cli {

std::vector<std::string> dataset_names() { return data::dataset_names(); }
std::vector<std::string> family_names() { return models::family_names(); }
std::vector<std::string> preset_names() { return models::preset_names(); }

std::string preset_help() {
  std::vector<std::string> parts;
  for (const auto& p : models::presets()) parts.push_back(fmt::format("{} ({})", p.name, p.description));
  return fmt::format("{}", fmt::join(parts, " or "));
}

std::vector<TrainFlag> train_flags() {
  std::vector<TrainFlag> flags;
  auto with_bound = [](const OptionDescription& o, const std::string& defaults) {
    return fmt::format("{} ({}{})", o.help, o.bound.empty() ? "" : o.bound + ", ", defaults);
  };
  // Training options: the default of each preset, where they differ.
  std::vector<std::pair<std::string, nlohmann::json>> presets;
  for (const auto& name : models::preset_names()) presets.push_back({name, models::preset_options(name).to_json()});
  for (const auto& o : models::TrainOptions::table().describe()) {
    std::vector<std::string> values;
    bool same = true;
    for (const auto& [name, j] : presets) {
      auto d = o;
      d.default_value = j.at(o.key);
      values.push_back(fmt::format("{} {}", name, d.default_text()));
      same = same && j.at(o.key) == presets.front().second.at(o.key);
    }
    flags.push_back({o, with_bound(o, same ? "default " + o.default_text()
                                           : fmt::format("default: {}", fmt::join(values, ", ")))});
  }
  for (const auto& o : models::ModelSpec::architecture_table().describe())
    flags.push_back({o, with_bound(o, "default " + o.default_text())});
  // Family hyper-parameters: one flag per key; families whose rows say the same share one entry.
  struct Group {
    std::string text;
    std::vector<std::string> families;
  };
  std::vector<std::pair<std::string, std::vector<Group>>> hyper;  // key -> groups
  for (const auto& f : models::family_registry())
    for (const auto& o : f.hyper_options) {
      auto h = std::find_if(hyper.begin(), hyper.end(), [&](const auto& x) { return x.first == o.key; });
      if (h == hyper.end()) {
        h = hyper.insert(hyper.end(), {o.key, {}});
        flags.push_back({o, ""});
      }
      const std::string text = with_bound(o, "default " + o.default_text());
      auto g = std::find_if(h->second.begin(), h->second.end(), [&](const Group& x) { return x.text == text; });
      if (g == h->second.end()) h->second.push_back({text, {f.name}});
      else g->families.push_back(f.name);
    }
  for (const auto& [key, groups] : hyper) {
    std::vector<std::string> parts;
    for (const auto& g : groups) parts.push_back(fmt::format("{}: {}", fmt::join(g.families, ", "), g.text));
    auto it = std::find_if(flags.begin(), flags.end(), [&](const TrainFlag& t) { return t.option.key == key; });
    it->help = fmt::format("{}", fmt::join(parts, "; "));
    // A list for one family, a number for another: the value name says both.
    for (const auto& f : models::family_registry())
      if (const auto* o = f.hyper_option(key); o && o->type != it->option.type)
        it->option.type = it->option.type == OptionType::kIntegerList || o->type == OptionType::kIntegerList
                              ? OptionType::kIntegerList
                              : OptionType::kNumberList;
  }
  return flags;
}

namespace {

data::DataPaths paths_of(const CommonOptions& c) { return {data::resolve_data_dir(c.data_dir), c.cifar10_dir}; }

// Threads and seed before any tensor work; returns the device.
torch::Device prepare(const CommonOptions& c) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (c.threads < 0 || c.threads > 4 * cores)
    throw UsageError(fmt::format("--threads must be in [0, {}] (4 x the {} cores here; 0 = all cores), got {}",
                                 4 * cores, cores, c.threads));
  // LibTorch 1.13 from Debian starts with one OpenMP thread; 0 means all cores.
  torch::set_num_threads(c.threads > 0 ? c.threads
                                       : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const auto device = models::parse_device(c.device);
  models::seed_everything(c.seed);
  return device;
}

// A budget flag of the command itself (not an option table's): at most `cap`
// unless IMBENCH_ALLOW_LARGE_BUDGET=1.
void check_budget_flag(const std::string& flag, int64_t value, int64_t cap) {
  const bool large = large_budget_allowed();
  const int64_t max = large ? static_cast<int64_t>(kMaxLargeBudget) : cap;
  if (value > max)
    throw UsageError(fmt::format(
        "{} must be <= {}{}, got {}", flag, max,
        large ? ""
              : fmt::format(" ({}=1 allows up to {})", kAllowLargeBudgetEnv, static_cast<int64_t>(kMaxLargeBudget)),
        value));
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
    } catch (const std::exception&) {
      status = "missing";
    }
    t.add_row({d.name, status, d.description});
  }
  fmt::print(out, "data directory: {}\n\n{}", paths.data_dir, t.render());
  return 0;
}

int run_train(const TrainCommand& cmd, std::ostream& out) {
  // The flags become the same overrides a matrix file's [models.train] table gives, named as flags.
  const OptionContext flags{"training option", "", OptionSpelling::kFlag};
  nlohmann::json o = nlohmann::json::object();
  for (const auto& [key, text] : cmd.options)
    o[key] = option_value_from_text(models::training_option(cmd.family, key, flags), text);
  auto plan = harness::plan_training(cmd.family, cmd.dataset, cmd.preset, o, flags);
  plan.options.device = cmd.common.device;
  plan.options.validate();
  const std::string path =
      cmd.out.empty() ? fmt::format("checkpoints/{}-{}-{}.ckpt", cmd.family, cmd.dataset, cmd.preset) : cmd.out;
  if (fs::is_directory(path)) throw UsageError(fmt::format("--out {}: is a directory, expected a file name", path));
  if (!cmd.force && fs::exists(path) && !models::is_checkpoint_file(path))
    throw UsageError(fmt::format("--out {}: exists and is not an imbench checkpoint; choose another file or pass --force "
                                 "to replace it",
                                 path));
  CommonOptions common = cmd.common;
  common.seed = plan.options.seed;
  prepare(common);
  if (cmd.dry_run) {
    harness::describe_training(plan, paths_of(cmd.common), path, out);
    fmt::print(out, "dry run: nothing was trained or written\n");
    return 0;
  }
  harness::train_to_checkpoint(plan, paths_of(cmd.common), path, out, cmd.quiet);
  return 0;
}

// Evaluation progress on stderr: a live line on a terminal, else a plain
// line every 30 s (logs); images done of all, rate and the time left.
std::function<void(int64_t, int64_t)> eval_progress() {
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [start] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  auto line = std::make_shared<harness::ProgressLine>(::isatty(fileno(stderr)) != 0, seconds);
  return [line, seconds](int64_t done, int64_t total) {
    const double elapsed = seconds();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
    line->show(fmt::format("eval: {}/{} images (examples x repeats), {:.0f} images/s, elapsed {}, ETA {}", done, total,
                           rate, harness::format_duration(elapsed),
                           rate > 0 ? harness::format_duration(static_cast<double>(total - done) / rate) : "-"));
    if (done == total) line->clear();
  };
}

int run_eval(const EvalCommand& cmd, std::ostream& out) {
  if (cmd.examples < 0) throw UsageError("--examples must be >= 0 (0 = all examples)");
  if (cmd.repeats < 0) throw UsageError("--repeats must be >= 0 (0 = 10 for stochastic models, 1 otherwise)");
  check_budget_flag("--repeats", cmd.repeats, 10000);
  const auto device = prepare(cmd.common);
  auto loaded = models::load_model_file(cmd.model, cmd.torchscript, device);
  auto& model = loaded.model;
  const auto full = data::load_dataset(cmd.dataset, data::parse_split(cmd.split), paths_of(cmd.common));
  const auto ds = full.first(cmd.examples);
  const std::string who = "--model " + cmd.model;
  models::check_model_fits(*model, ds, who);
  if (const auto warning = models::dataset_mismatch(loaded, ds, who); !warning.empty())
    fmt::print(stderr, "warning: {}\n", warning);
  const int64_t repeats = cmd.repeats > 0 ? cmd.repeats : (model->is_stochastic() ? 10 : 1);
  if (cmd.dry_run) {
    fmt::print(out, "model: {} ({}; {})\n", model->description(), model_kind(*model), loaded.provenance);
    fmt::print(out, "dry run: would evaluate the first {} of {} {} {} examples{}; nothing was evaluated\n", ds.size(),
               full.size(), cmd.dataset, cmd.split,
               model->is_stochastic() ? fmt::format(", {} repeat(s) with fresh samples", repeats) : "");
    return 0;
  }
  models::EvalOptions eo;
  eo.batch_size = cmd.batch_size;
  eo.repeats = repeats;
  if (!cmd.quiet) eo.progress = eval_progress();
  const auto r = models::evaluate(*model, ds, eo);

  fmt::print(out, "model: {} ({}; {})\n", model->description(), model_kind(*model), loaded.provenance);
  fmt::print(out, "prediction rule: {}{}\n", models::to_string(model->prediction_rule()),
             model->is_stochastic() ? fmt::format(" over {} samples", model->prediction_samples()) : "");
  fmt::print(out, "data: {} {} split, first {} of {} examples; seed {}; device {}; imbench {} ({})\n", cmd.dataset,
             cmd.split, ds.size(), full.size(), cmd.common.seed, models::device_description(device), kVersion,
             kGitRevision);
  if (!ds.source.empty()) fmt::print(out, "file: {}\n", ds.source);
  if (!model->is_stochastic() && repeats > 1)
    fmt::print(out, "note: the model is deterministic, so --repeats {} was evaluated once\n", repeats);
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
    models::EvalOptions once = eo;
    once.repeats = 1;
    row("mean-field", models::evaluate(*model, ds, once));
  }
  fmt::print(out, "\n{}", t.render());
  // The per-model soundness checks of every run (docs/EVALUATION.md), on the first 100 examples.
  if (ds.size() == 0) return 0;
  harness::EvaluationSettings settings;
  settings.seed = cmd.common.seed;
  harness::CheckContext checks;
  checks.settings = &settings;
  checks.model = model.get();
  checks.repeats = repeats;
  const int64_t n = std::min<int64_t>(100, ds.size());
  checks.x = ds.images.slice(0, 0, n).to(device);
  checks.y = ds.labels.slice(0, 0, n).to(device);
  torch::manual_seed(harness::derive_seed(cmd.common.seed, "model.checks"));
  harness::run_checks(harness::CheckStage::kModel, checks);
  std::size_t fired = 0;
  for (const auto& f : checks.flags)
    if (f.failed) {
      ++fired;
      fmt::print(out, "⚠ check {} ({}): {}\n", f.check, f.name, f.detail);
    }
  if (fired == 0)
    fmt::print(out, "\nsoundness: every model check passed ({} checks on the first {} examples)\n", checks.flags.size(), n);
  else
    fmt::print(out, "soundness: ⚠ {} of {} model checks fired (docs/EVALUATION.md)\n", fired, checks.flags.size());
  return cmd.fail_on_unreliable && fired > 0 ? reports::kUnreliableExitStatus : 0;
}

int run_zoo(const ZooCommand& cmd, std::ostream& out) {
  if (cmd.action == "add") {
    prepare(cmd.common);
    harness::ZooAddOptions o;
    o.manifest = cmd.manifest;
    o.passes = cmd.passes;
    o.seed = cmd.common.seed;
    o.paths = paths_of(cmd.common);
    harness::zoo_add(cmd.checkpoints, o, out);
    return 0;
  }
  if (cmd.action == "verify") {
    harness::zoo_verify(cmd.manifest, out);
    return 0;
  }
  if (cmd.action == "report") {
    const auto manifest = harness::read_zoo_manifest(cmd.manifest);
    const std::string command =
        fmt::format("imbench zoo report --manifest {}{}", cmd.manifest, cmd.out.empty() ? "" : " --out " + cmd.out);
    const std::string md = reports::render_zoo_report(manifest, cmd.manifest, command);
    if (cmd.out.empty()) {
      out << md;
    } else {
      models::write_file_atomically(cmd.out, md);
      fmt::print(out, "report: {}\n", cmd.out);
    }
    return 0;
  }
  throw_unknown_name("zoo subcommand", cmd.action, {"add", "verify", "report"});
}

int run_info(const InfoCommand& cmd, std::ostream& out) {
  const auto meta = models::read_checkpoint_meta(cmd.path);
  fmt::print(out, "{}\n", meta.to_json().dump(2));
  return 0;
}

}  // namespace imbench::cli

namespace imbench::cli {

int run_attack_list(std::ostream& out) {
  for (const auto& info : attacks::attack_registry()) {
    const auto a = info.create(nlohmann::json::object(), OptionSpelling::kKey);
    std::vector<std::string> norms;
    if (a->supports(attacks::Norm::kLinf)) norms.push_back("linf");
    if (a->supports(attacks::Norm::kL2)) norms.push_back("l2");
    std::vector<std::string> traits;
    if (info.iterative) traits.push_back("iterative");
    if (info.minimises_norm) traits.push_back("minimum-norm (eps may be inf)");
    if (!info.budget_options.empty())
      traits.push_back(fmt::format("the audit doubles {}", fmt::join(info.budget_options, ", ")));
    fmt::print(out, "## {}\n\n{}\n\nnorms: {}; loss: {}{}\n\n", info.name, info.description, fmt::join(norms, ", "),
               attacks::to_string(a->loss_kind()), traits.empty() ? "" : fmt::format("; {}", fmt::join(traits, "; ")));
    reports::MarkdownTable t({"key", "flag", "type", "default", "help"});
    for (const auto& o : info.options)
      t.add_row({o.key, o.flag(),
                 o.type == OptionType::kChoice ? fmt::format("{}", fmt::join(o.choices, ", "))
                 : o.bound.empty()                      ? o.type_name()
                                                        : fmt::format("{} {}", o.type_name(), o.bound),
                 o.default_text(), o.help});
    fmt::print(out, "{}\n", t.render());
  }
  return 0;
}

namespace {

harness::MatrixModel matrix_model(const std::string& name, const std::string& path, const TorchScriptFlags& ts,
                                  const std::string& described_as) {
  harness::MatrixModel m;
  m.name = name;
  m.described_as = described_as;
  (models::is_checkpoint_file(path) ? m.checkpoint : m.torchscript) = path;
  m.torchscript_options = ts;
  return m;
}

double median_of(std::vector<float> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  return v[(v.size() - 1) / 2];  // the lower median, as torch::median
}

}  // namespace

// `imbench attack` is a one-cell matrix (plus one transfer cell per --transfer-to
// model) evaluated by the same cell evaluator as `imbench run`.
int run_attack(const AttackCommand& cmd, std::ostream& out) {
  if (cmd.examples < 0) throw UsageError("--examples must be >= 0 (0 = all examples)");
  if (cmd.batch_size < 1) throw UsageError("--batch-size must be >= 1");
  if (cmd.eot_samples < 0 || cmd.repeats < 0) throw UsageError("--eot-samples and --repeats must be >= 0 (0 = automatic)");
  check_budget_flag("--eot-samples", cmd.eot_samples, 100000);
  check_budget_flag("--repeats", cmd.repeats, 10000);
  if (cmd.batch_size > (1 << 20))
    throw UsageError(fmt::format("--batch-size must be <= {}, got {}", 1 << 20, cmd.batch_size));
  // The attacks (one, or a cascade) and the eps (one, or a sweep).
  auto attack_list = cmd.attacks;
  if (attack_list.empty()) attack_list.emplace_back(cmd.attack, cmd.attack_options_json);
  auto eps_list = cmd.eps_list;
  auto eps_texts = cmd.eps_texts;
  if (eps_list.empty()) {
    eps_list = {cmd.eps};
    eps_texts = {cmd.eps_text.empty() ? fmt::format("{}", cmd.eps) : cmd.eps_text};
  }
  const auto norm = attacks::parse_norm(cmd.norm);
  const auto rule = cmd.targeted ? attacks::parse_target_rule(cmd.target_rule) : attacks::TargetRule::kNone;
  if (rule == attacks::TargetRule::kGiven)
    throw UsageError("--target-rule given is for the library API; on the command line use random, least-likely or next");
  std::vector<nlohmann::json> attack_options;
  for (const auto& [name, options_json] : attack_list) {
    try {
      attack_options.push_back(nlohmann::json::parse(options_json));
    } catch (const nlohmann::json::exception& e) {
      throw UsageError(fmt::format("attack options are not valid JSON: {}", e.what()));
    }
    const auto attack = attacks::create_attack(name, attack_options.back());
    if (!attack->supports(norm)) throw UsageError(fmt::format("attack '{}' does not support --norm {}", name, cmd.norm));
    for (double eps : eps_list) {
      if (std::isinf(eps) && !attack->minimises_norm()) {
        std::vector<std::string> minimum_norm;
        for (const auto& info : attacks::attack_registry())
          if (info.minimises_norm) minimum_norm.push_back(info.name);
        throw UsageError(fmt::format("attack '{}' needs a finite --eps (inf is for minimum-norm attacks: {})", name,
                                     fmt::join(minimum_norm, ", ")));
      }
      if (!(eps >= 0)) throw UsageError(fmt::format("--eps must be >= 0, got {}", eps));
    }
  }
  attacks::parse_eot_reduction(cmd.eot_reduction);
  data::parse_split(cmd.split);
  if (!cmd.out.empty() && fs::is_directory(cmd.out)) throw UsageError(fmt::format("--out {}: is a directory", cmd.out));
  if (cmd.save_adversarial && cmd.out.empty())
    throw UsageError("--save-adversarial stores the adversarial examples in the results file: give --out FILE.h5");
  auto need_file = [](const std::string& flag, const std::string& path) {
    if (!fs::exists(path)) throw UsageError(fmt::format("{} {}: no such file", flag, path));
    if (!fs::is_regular_file(path)) throw UsageError(fmt::format("{} {}: not a regular file", flag, path));
  };
  need_file("--model", cmd.model);
  for (const auto& path : cmd.transfer_to) need_file("--transfer-to", path);
  // --out replaces an earlier attack's file (this format or the per-attack
  // records of earlier imbench versions), never the results of a matrix. The
  // results of this very command (a run stopped by a signal or a kill) are
  // resumed: the cells it finished are kept.
  bool resume = false;
  std::set<std::pair<std::string, std::string>> earlier_cells;  // (id, hash) of the cells already in --out
  if (!cmd.out.empty() && fs::exists(cmd.out) && !reports::is_attack_records_file(cmd.out)) {
    std::optional<std::string> matrix;  // nullopt: not a results file at all
    try {
      const auto existing = reports::read_results(cmd.out, reports::AdversarialExamples::kSkip);
      const auto it = existing.root.find("matrix_name");
      matrix = it == existing.root.end() ? std::string("?") : it->second;
      for (const auto& c : existing.cells) earlier_cells.emplace(c.id, c.hash);
    } catch (const Error&) {
    }
    resume = matrix == "attack";
    if (cmd.force) matrix = "attack";
    if (!matrix)
      throw UsageError(fmt::format("--out {}: exists and is not an imbench results file{}; choose another file or pass "
                                   "--force to replace it",
                                   cmd.out, models::is_checkpoint_file(cmd.out) ? " (it is a checkpoint)" : ""));
    if (*matrix != "attack")
      throw UsageError(fmt::format("--out {}: holds the results of matrix '{}', which imbench attack does not "
                                   "overwrite; choose another file or pass --force to replace it",
                                   cmd.out, *matrix));
  }

  harness::Matrix m;
  m.path = "this imbench attack command";
  m.name = "attack";
  m.dataset = cmd.dataset;
  m.split = cmd.split;
  m.examples = cmd.examples;
  m.seed = cmd.common.seed;
  m.device = cmd.common.device;
  m.batch_size = cmd.batch_size;
  m.cascade = false;
  m.eot = cmd.eot_samples > 0 ? cmd.eot_samples : 16;            // stochastic models only; deterministic ones take 1
  m.eot_reduction = cmd.eot_reduction;
  m.repeats = cmd.repeats > 0 ? cmd.repeats : 10;  // likewise
  m.save_adversarial = cmd.save_adversarial;
  // Fixed names: the seeds derive from them, not from file names.
  std::vector<std::string> names{"model"};
  m.models.push_back(matrix_model(names[0], cmd.model, cmd.torchscript, "--model " + cmd.model));
  for (std::size_t i = 0; i < cmd.transfer_to.size(); ++i) {
    names.push_back(fmt::format("transfer-{}", i + 1));
    m.models.push_back(matrix_model(names.back(), cmd.transfer_to[i], {}, "--transfer-to " + cmd.transfer_to[i]));
  }
  // One attack entry per listed attack, each at every eps; several attacks
  // run as a cascade (later ones only on the examples still right).
  m.cascade = attack_list.size() > 1;
  for (std::size_t k = 0; k < attack_list.size(); ++k) {
    harness::MatrixAttack a;
    a.name = attack_list[k].first;
    a.kind = attack_list[k].first;
    a.options = attack_options[k];
    a.norm = cmd.norm;
    a.eps = eps_list;
    a.eps_text = eps_texts;
    a.targeted = cmd.targeted;
    a.target_rule = cmd.targeted ? cmd.target_rule : "random";
    a.models = {names[0]};
    // One seed stream per attack: every transfer cell rebuilds its white-box adversarial examples.
    a.seed_id = k == 0 ? "attack" : "attack-" + a.name;
    m.attacks.push_back(a);
    if (!cmd.transfer_to.empty()) {
      a.name += "-transfer";
      a.source = names[0];
      a.models.assign(names.begin() + 1, names.end());
      m.attacks.push_back(a);
    }
  }
  std::vector<std::string> attack_names;
  for (const auto& [name, options] : attack_list) attack_names.push_back(name);
  m.description = fmt::format("imbench attack: {} {} eps {} on {}", fmt::join(attack_names, ", "), cmd.norm,
                              fmt::join(eps_texts, ", "), cmd.model);

  const auto device = prepare(cmd.common);
  harness::RunRequest req;
  req.matrix = m;
  req.write = !cmd.out.empty();
  req.quiet = cmd.quiet;
  req.resume = resume;
  req.replace_other_matrix = true;
  req.out = cmd.out;
  req.report = "-";
  req.data_dir = cmd.common.data_dir;
  req.cifar10_dir = cmd.common.cifar10_dir;
  if (cmd.dry_run) {
    req.dry_run = true;
    harness::evaluate_matrix(req, out);
    return 0;
  }
  std::ostream silent(nullptr);  // the table below says it all
  const auto file = harness::evaluate_matrix(req, silent);
  if (::isatty(fileno(stderr))) fmt::print(stderr, "\r\033[K");

  const auto& white = file.cells.front();
  const auto* info = file.find_model(names[0]);
  const bool several = file.cells.size() > 1 + cmd.transfer_to.size();  // a sweep or a cascade
  fmt::print(out, "model: {} ({})\n", info->description, info->provenance);
  fmt::print(out, "threat model: {}{}\n", white.threat_model,
             eps_list.size() > 1 ? fmt::format(" (eps swept: {})", fmt::join(eps_texts, ", ")) : "");
  std::set<std::string> described;
  for (const auto& c : file.cells) {
    if (!c.source_model.empty() || !described.insert(c.attack).second) continue;
    const auto config = nlohmann::json::parse(c.config_json);
    fmt::print(out, "attack: {} {} (loss {}); EOT {} sample(s) per gradient ({}); R = {} evaluation repeat(s)\n",
               c.attack, config["options"].dump(), config["loss"].get<std::string>(), c.eot_samples,
               config["eot_reduction"].get<std::string>(), c.repeats);
  }
  if (attack_list.size() > 1)
    fmt::print(out, "cascade: {} in this order, each on the examples the ones before it left right; a row's robust "
                    "accuracy counts what survived it and every attack before it (the last is the worst case)\n",
               fmt::join(attack_names, " -> "));
  fmt::print(out, "prediction rule: {}\n", info->prediction_rule);
  fmt::print(out, "data: {} images; seed {}; device {}; imbench {} ({})\n\n", file.root.at("dataset"), cmd.common.seed,
             models::device_description(device), kVersion, kGitRevision);
  std::vector<std::string> header{"evaluated on"};
  if (several) header.insert(header.end(), {"attack", "eps"});
  header.insert(header.end(), {"clean accuracy", "robust accuracy", "worst repeat", "attack success", "median L2",
                               "median Linf", "grad evals / image", "images/s"});
  reports::MarkdownTable table(header);
  double seconds = 0, evals = 0;
  for (const auto& c : file.cells) {
    const bool transfer = !c.source_model.empty();
    std::vector<float> l2, linf;
    double cell_evals = 0;
    for (int64_t i = 0; i < c.size(); ++i)
      if (c.attacked[static_cast<std::size_t>(i)]) {
        l2.push_back(c.l2[static_cast<std::size_t>(i)]);
        linf.push_back(c.linf[static_cast<std::size_t>(i)]);
        cell_evals += static_cast<double>(c.gradient_evaluations[static_cast<std::size_t>(i)]);
      }
    auto s = c.summary;
    const double attacked = std::max(1.0, s["attacked_examples"]);
    const auto* mi = file.find_model(c.model);
    auto failed = [](const reports::Flag& f) { return f.failed; };
    const bool flagged =
        std::any_of(c.flags.begin(), c.flags.end(), failed) || std::any_of(mi->flags.begin(), mi->flags.end(), failed);
    if (!transfer) {
      seconds += s["seconds"];
      evals += cell_evals;
    }
    const bool has_success = c.summary.count("attack_success") && !std::isnan(c.summary.at("attack_success"));
    std::vector<std::string> row{
        fmt::format("{} ({}){}", mi->description, transfer ? "transfer" : "white-box", flagged ? " ⚠" : "")};
    if (several) row.insert(row.end(), {c.attack, c.eps_text});
    row.insert(row.end(), {reports::format_percent(s["clean_accuracy"]),
                           reports::format_percent(s["robust_accuracy"], s["robust_accuracy_std"]),
                           reports::format_percent(s["robust_accuracy_worst"]),
                           has_success ? reports::format_percent(s["attack_success"]) : "—",
                           fmt::format("{:.4f}", median_of(l2)), fmt::format("{:.4f}", median_of(linf)),
                           fmt::format("{:.0f}", cell_evals / attacked),
                           transfer ? "-" : fmt::format("{:.1f}", s["images_per_second"])});
    table.add_row(row);
  }
  fmt::print(out, "{}", table.render());
  fmt::print(out,
             "\nrobust accuracy: accuracy on x_adv under the prediction rule, mean (± std) over repeats; worst repeat: "
             "share of images right in every repeat.{}\n{:.2f} s in the attacks, {:.0f} gradient evaluations/s\n",
             cmd.transfer_to.empty()
                 ? ""
                 : fmt::format(" Transfer rows: the white-box adversarial examples of {} (the attack is re-run with "
                               "the same seeds for each) evaluated on another model.",
                               cmd.model),
             seconds, evals / std::max(seconds, 1e-9));
  // The checks that fired (⚠ above): the model's first, then the cells'.
  for (const auto& mi : file.models)
    for (const auto& f : mi.flags)
      if (f.failed) fmt::print(out, "⚠ check {} ({}) on {}: {}\n", f.check, f.name, mi.name, f.detail);
  for (const auto& c : file.cells)
    for (const auto& f : c.flags)
      if (f.failed) fmt::print(out, "⚠ check {} ({}) on {}: {}\n", f.check, f.name, c.id, f.detail);
  if (!cmd.out.empty())
    fmt::print(out, "results: {} (imbench-results: imbench report, compare and merge read it)\n", cmd.out);
  if (resume) {
    const auto kept = std::count_if(file.cells.begin(), file.cells.end(),
                                    [&](const auto& c) { return earlier_cells.count({c.id, c.hash}) > 0; });
    if (kept > 0)
      fmt::print(out,
                 "note: {} of {} cells were kept from {}, written by an earlier run of this same command (their "
                 "timings are from that run; remove the file to run them again)\n",
                 kept, file.cells.size(), cmd.out);
  }
  const auto soundness = reports::soundness_of(file);
  fmt::print(out, "{}\n", soundness.line());
  return cmd.fail_on_unreliable && soundness.any() ? reports::kUnreliableExitStatus : 0;
}

int run_run(const RunCommand& cmd, std::ostream& out) {
  prepare(cmd.common);
  harness::RunRequest r;
  r.matrix_path = cmd.matrix;
  r.out = cmd.out;
  r.report = cmd.report;
  r.shard = cmd.shard;
  r.audit = cmd.audit;
  if (cmd.device_given) r.device = cmd.common.device;
  r.data_dir = cmd.common.data_dir;
  r.cifar10_dir = cmd.common.cifar10_dir;
  r.quiet = cmd.quiet;
  r.dry_run = cmd.dry_run;
  r.save_adversarial = cmd.save_adversarial;
  const auto file = harness::evaluate_matrix(r, out);
  if (cmd.dry_run) return 0;
  const auto soundness = reports::soundness_of(file);
  fmt::print(out, "{}\n", soundness.line());
  return cmd.fail_on_unreliable && soundness.any() ? reports::kUnreliableExitStatus : 0;
}


int run_report(const ReportCommand& cmd, std::ostream& out) {
  const auto file = reports::read_results(cmd.file, reports::AdversarialExamples::kSkip);
  if (cmd.out.empty()) {
    out << reports::render_report(file, {});
  } else {
    reports::write_report(cmd.out, file);
    fmt::print(out, "report: {} (curves in {})\n", cmd.out, reports::report_options_for(cmd.out).curves_dir);
  }
  if (!cmd.fail_on_unreliable) return 0;
  const auto soundness = reports::soundness_of(file);
  if (!cmd.out.empty() || soundness.any()) fmt::print(cmd.out.empty() ? std::cerr : out, "{}\n", soundness.line());
  return soundness.any() ? reports::kUnreliableExitStatus : 0;
}

int run_export(const ExportCommand& cmd, std::ostream& out) {
  if (cmd.format != "csv") throw_unknown_name("export format", cmd.format, {"csv"});
  if (!cmd.out.empty() && fs::is_directory(cmd.out)) throw UsageError(fmt::format("--out {}: is a directory", cmd.out));
  const auto file = reports::read_results(cmd.file, reports::AdversarialExamples::kSkip);
  const std::string csv = reports::export_csv(file);
  if (cmd.out.empty()) {
    out << csv;
  } else {
    reports::write_text_atomically(cmd.out, csv);
    std::size_t rows = 0;
    for (const auto& c : file.cells) rows += static_cast<std::size_t>(c.size() * std::max<int64_t>(1, c.repeats));
    fmt::print(out, "export: {} ({} rows, {} cells)\n", cmd.out, rows, file.cells.size());
  }
  return 0;
}

int run_merge(const MergeCommand& cmd, std::ostream& out) {
  if (cmd.inputs.size() < 2) throw UsageError("imbench merge: give at least two result files");
  for (const auto& in : cmd.inputs)
    if (fs::exists(cmd.out) && fs::equivalent(in, cmd.out))
      throw UsageError(fmt::format("--out {} is one of the inputs; write the merge to a new file", cmd.out));
  std::vector<reports::ResultFile> files;
  // Saved adversarial examples stay in the shards: the writer copies them from there.
  for (const auto& in : cmd.inputs)
    files.push_back(reports::read_results(in, reports::AdversarialExamples::kReference));
  auto merged = reports::merge_results(files);
  harness::apply_cross_cell_checks(merged);
  reports::write_results(cmd.out, merged);
  fmt::print(out, "merged {} files: {} models, {} cells -> {}\n", files.size(), merged.models.size(), merged.cells.size(),
             cmd.out);
  return 0;
}

int run_compare(const CompareCommand& cmd, std::ostream& out) {
  if (!(cmd.tolerance >= 0 && cmd.tolerance < 1)) throw UsageError("--tolerance must be in [0, 1) (0.02 = 2 points)");
  if (!(cmd.alpha > 0 && cmd.alpha < 1)) throw UsageError("--alpha must be in (0, 1)");
  const auto base = reports::read_results(cmd.base, reports::AdversarialExamples::kSkip);
  const auto next = reports::read_results(cmd.next, reports::AdversarialExamples::kSkip);
  reports::CompareOptions o;
  o.tolerance = cmd.tolerance;
  o.alpha = cmd.alpha;
  o.allow_config_change = cmd.allow_config_change;
  o.allow_missing = cmd.allow_missing;
  const auto r = reports::compare_results(base, next, o);
  // r.markdown ends with the summary line (cells compared, regressions, improvements, tolerance, alpha).
  const std::string text = fmt::format("# imbench compare\n\nbase: {} ({})\nnew:  {} ({})\n\n{}", cmd.base,
                                       base.root.count("git_revision") ? base.root.at("git_revision") : "?", cmd.next,
                                       next.root.count("git_revision") ? next.root.at("git_revision") : "?", r.markdown);
  out << text;
  if (!cmd.out.empty()) reports::write_text_atomically(cmd.out, text);
  if (r.matched == 0) throw Error("no cell of the base file is in the new file: nothing to compare");
  if (!r.missing.empty() && !o.allow_missing)
    throw Error(fmt::format("{}: {} of the {} cells of {} are missing: {} (--allow-missing compares the rest)",
                            cmd.next, r.missing.size(), base.cells.size(), cmd.base, reports::list_cells(r.missing)));
  return r.passed(o) ? 0 : 1;
}

}  // namespace imbench::cli
