#include "harness/runner.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fmt/ostream.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "attacks/attack.h"
#include "attacks/registry.h"
#include "core/errors.h"
#include "core/interrupt.h"
#include "core/sha256.h"
#include "core/version.h"
#include "data/dataset.h"
#include "data/user_data.h"
#include "harness/checks.h"
#include "harness/evaluator.h"
#include "harness/matrix.h"
#include "harness/progress.h"
#include "harness/training.h"
#include "models/device.h"
#include "models/load.h"
#include "reports/markdown.h"
#include "reports/report.h"
#include "reports/results.h"
#include "reports/results_io.h"

namespace fs = std::filesystem;

namespace imbench::harness {

namespace {

using Clock = std::chrono::steady_clock;

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// The processor's model name (CPU) or the device string (GPU), for results files.
std::string hardware_name(torch::Device device) {
  if (device.is_cuda()) return models::device_description(device);
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos)
      return line.substr(line.find(':') + 2) + fmt::format(", {} threads", torch::get_num_threads());
  return models::device_description(device);
}

double seconds_since_epoch() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

class Runner {
 public:
  Runner(const RunRequest& req, std::ostream& out) : req_(req), out_(out) {}

  reports::ResultFile run();

 private:
  reports::ResultFile run_cells();
  EvaluatedModel& model_slot(const std::string& name);
  void ensure_checkpoint(const MatrixModel& m);
  void save();
  void progress(const std::string& what, int64_t done, int64_t total);
  void dry_run(const std::vector<const JobPlan*>& mine, const std::vector<std::string>& names);
  void print_estimated_work(const std::vector<const JobPlan*>& mine,
                            const std::function<bool(const std::string&)>& stochastic);

  const RunRequest& req_;
  std::ostream& out_;
  Matrix matrix_;
  std::string out_path_;
  data::Dataset ds_;
  int64_t full_size_ = 0;
  torch::Device device_{torch::kCPU};
  std::unique_ptr<CellEvaluator> evaluator_;
  std::map<std::string, EvaluatedModel> slots_;
  reports::ResultFile file_;
  bool tty_ = false;
  Clock::time_point start_;
  int64_t cells_total_ = 0, cells_done_ = 0;
  // Work-weighted progress (harness/progress.h): cell `cell_index_` is running.
  std::unique_ptr<ProgressMeter> meter_;
  std::size_t cell_index_ = 0;
  bool cell_started_ = false;
  std::unique_ptr<ProgressLine> line_;
  int64_t saved_cells_ = -1;  // cells in the results file on disk (-1: no file of this matrix yet)
  std::string running_cell_;  // the cell being evaluated ("" between cells)
};

// A live line on a terminal; without one (a log), a plain line every 30 s on
// stderr, so that `imbench attack` (which prints its table at the end) and
// long cells say where they are.
void Runner::progress(const std::string& what, int64_t done, int64_t total) {
  if (!meter_) return;
  if (!cell_started_) {
    meter_->start(cell_index_, total);
    cell_started_ = true;
  }
  meter_->update(done, total);
  if (req_.quiet) return;
  line_->show(fmt::format("[cell {}/{}] {}: {}/{} images; {}", cells_done_ + 1, cells_total_, what, done, total,
                          meter_->summary(static_cast<std::size_t>(cells_done_))));
}

void Runner::ensure_checkpoint(const MatrixModel& m) {
  if (m.checkpoint.empty() || fs::exists(m.checkpoint)) return;
  if (m.family.empty())
    throw Error(fmt::format("model '{}': checkpoint {} does not exist (give family = \"...\" to train it when missing)",
                            m.name, m.checkpoint));
  if (data::is_file_dataset(matrix_.dataset))
    throw Error(
        fmt::format("model '{}': checkpoint {} does not exist, and it cannot be trained here: the matrix's "
                    "dataset {} is a test set of your own (training needs a registered dataset; train it with "
                    "'imbench train --dataset NAME --out {}')",
                    m.name, m.checkpoint, matrix_.dataset, m.checkpoint));
  fmt::print(out_, "model '{}': {} is missing, training {} with preset {}\n", m.name, m.checkpoint, m.family, m.preset);
  auto plan = plan_training(m.family, matrix_.dataset, m.preset, m.train);
  plan.options.device = matrix_.device;
  plan.options.validate();
  const int threads = torch::get_num_threads();
  train_to_checkpoint(plan, {data::resolve_data_dir(req_.data_dir), req_.cifar10_dir}, m.checkpoint, out_, req_.quiet);
  torch::set_num_threads(threads);
}

EvaluatedModel& Runner::model_slot(const std::string& name) {
  auto it = slots_.find(name);
  if (it != slots_.end()) return it->second;
  const auto& m = matrix_.model(name);
  ensure_checkpoint(m);
  const auto& ts = m.torchscript_options;
  if (!fs::exists(m.file())) throw Error(fmt::format("model '{}': {} does not exist", name, m.file()));
  const std::string who = m.described_as.empty() ? fmt::format("model '{}'", name) : m.described_as;
  auto loaded = models::load_model_file(m.file(), ts, device_);
  const std::string warning = models::dataset_mismatch(loaded, ds_, who);
  auto slot = evaluator_->prepare(name, std::move(loaded), sha256_file(m.file()), who);  // refuses a misfit first
  if (!warning.empty()) fmt::print(stderr, "{}warning: {}\n", tty_ ? "\r\033[K" : "", warning);
  return slots_.emplace(name, std::move(slot)).first->second;
}

void Runner::save() {
  if (!req_.write) return;
  reports::write_results(out_path_, file_);
  saved_cells_ = static_cast<int64_t>(file_.cells.size());
}

// The work of every cell (harness/progress.h) into meter_, and its total as one line.
void Runner::print_estimated_work(const std::vector<const JobPlan*>& mine,
                                  const std::function<bool(const std::string&)>& stochastic) {
  std::vector<ProgressMeter::Cell> work;
  for (const auto* job : mine)
    for (const auto& plan : job->cells) {
      const auto& a = *plan.attack;
      const auto& info = attacks::attack_info(a.kind);
      const bool noisy = stochastic(a.source.empty() ? job->model->name : a.source);
      const std::string options = attacks::create_attack(a.kind, a.options)->options_json().dump();
      // Plus judging x_adv: R forward passes (a third of a gradient each). Counting the
      // prediction rule's samples too (SFNN: 32x32 paths) overweighted those cells 10x
      // on the quick matrix: the branching readout shares most of the work.
      const double repeats = stochastic(job->model->name) ? static_cast<double>(matrix_.repeats) : 1.0;
      work.push_back(
          {work_per_example(info.budget_options, options, noisy ? a.eot.value_or(matrix_.eot) : 1, info.gradient_free) +
               repeats / 3,
           ds_.size(), matrix_.cascade && plan.position > 0});
    }
  meter_ = std::make_unique<ProgressMeter>(std::move(work), seconds_since_epoch);
  line_ = std::make_unique<ProgressLine>(tty_, seconds_since_epoch);
  fmt::print(out_,
             "estimated work: {:.3g} M gradient evaluations (examples x EOT samples x attack budget, before "
             "cascades remove examples); the ETA follows from the rate of the first cells\n",
             meter_->estimated_work() / 1e6);
}

// --dry-run: every model file loaded and checked against the data (a missing
// one with a family: its training planned and printed), then the work and the
// cascade jobs; nothing is trained, attacked or written.
void Runner::dry_run(const std::vector<const JobPlan*>& mine, const std::vector<std::string>& names) {
  const data::DataPaths paths{data::resolve_data_dir(req_.data_dir), req_.cifar10_dir};
  std::map<std::string, bool> stochastic;
  for (const auto& n : names) {
    const auto& m = matrix_.model(n);
    const std::string who = m.described_as.empty() ? fmt::format("model '{}'", n) : m.described_as;
    if (!m.checkpoint.empty() && !fs::exists(m.checkpoint)) {
      if (m.family.empty())
        throw Error(fmt::format("{}: checkpoint {} does not exist (give family = \"...\" to train it when missing)",
                                who, m.checkpoint));
      auto plan = plan_training(m.family, matrix_.dataset, m.preset, m.train);
      plan.options.device = matrix_.device;
      plan.options.validate();
      fmt::print(out_, "model {}: {} is missing; training {} with preset {}:\n", n, m.checkpoint, m.family, m.preset);
      describe_training(plan, paths, m.checkpoint, out_);
      stochastic[n] = models::find_family(m.family).stochastic;
      continue;
    }
    if (!fs::exists(m.file())) throw Error(fmt::format("{}: {} does not exist", who, m.file()));
    const auto loaded = models::load_model_file(m.file(), m.torchscript_options, device_);
    models::check_model_fits(*loaded.model, ds_, who);
    stochastic[n] = loaded.model->is_stochastic();
    fmt::print(out_, "model {}: {} ({}; {})\n", n, loaded.model->description(),
               stochastic[n] ? "stochastic" : "deterministic", loaded.provenance);
  }
  print_estimated_work(mine, [&](const std::string& name) { return stochastic.at(name); });
  for (const auto* job : mine) {
    std::vector<std::string> attacks;
    for (const auto& plan : job->cells)
      attacks.push_back(plan.attack->source.empty()
                            ? plan.attack->name
                            : fmt::format("{} (transfer from {})", plan.attack->name, plan.attack->source));
    fmt::print(out_, "  {}: {}\n", job->group, fmt::join(attacks, matrix_.cascade ? " -> " : ", "));
  }
  std::string written;
  if (req_.write) {
    written = fmt::format("; it would write {}", out_path_);
    if (req_.report != "-")
      written += " and " + (req_.report.empty() ? fs::path(out_path_).replace_extension(".md").string() : req_.report);
  }
  fmt::print(out_, "dry run: {} cells in {} cascade jobs would run{}; nothing was trained, attacked or written\n",
             cells_total_, mine.size(), written);
}

// SIGINT/SIGTERM (core/interrupt.h) stop the cell in progress; what is on
// disk (the finished cells, and the training state of a model being
// trained) is named in the one line cli/main.cpp prints.
reports::ResultFile Runner::run() {
  try {
    return run_cells();
  } catch (const Interrupted& e) {
    if (tty_ && !req_.quiet) fmt::print(stderr, "\r\033[K");
    std::vector<std::string> kept;
    if (!e.kept().empty()) kept.push_back(e.kept());
    if (saved_cells_ >= 0)
      kept.push_back(fmt::format("{} of {} cells in {}{}", std::min(saved_cells_, cells_total_), cells_total_,
                                 out_path_,
                                 running_cell_.empty() ? "" : fmt::format(" (cell {} was stopped and discarded)", running_cell_)));
    // `run` resumes its file; `attack` resumes a file of the same command (RunRequest::replace_other_matrix).
    const bool resumable = req_.write && (saved_cells_ >= 0 || e.resumable());
    throw Interrupted(e.signal(), fmt::format("{}", fmt::join(kept, " and ")), resumable);
  }
}

reports::ResultFile Runner::run_cells() {
  start_ = Clock::now();
  tty_ = ::isatty(fileno(stderr)) != 0;
  matrix_ = req_.matrix ? *req_.matrix : parse_matrix_file(req_.matrix_path);
  for (const auto& w : matrix_.warnings) fmt::print(stderr, "imbench: warning: {}\n", w);
  if (req_.device) matrix_.device = *req_.device;
  if (req_.save_adversarial) {
    matrix_.save_adversarial = true;
    for (auto& a : matrix_.attacks) a.save_adversarial = true;
  }
  const auto shard = req_.shard.empty() ? std::pair<int64_t, int64_t>{1, 1} : parse_shard(req_.shard);
  const std::string suffix = req_.shard.empty() ? "" : fmt::format("-shard-{}-of-{}", shard.first, shard.second);
  out_path_ = req_.out.empty() ? fmt::format("results/{}{}.h5", matrix_.name, suffix) : req_.out;
  if (req_.write && fs::is_directory(out_path_))
    throw UsageError(fmt::format("--out {}: is a directory, expected a file name", out_path_));
  device_ = models::parse_device(matrix_.device);
  const std::string hash = matrix_.hash();

  // An existing file must be a result of this matrix; its finished cells are kept.
  if (req_.write && req_.resume && fs::exists(out_path_)) {
    // Saved adversarial examples stay in the file (save() copies them from there).
    auto existing = reports::read_results(out_path_, reports::AdversarialExamples::kReference);
    const auto it = existing.root.find("matrix_hash");
    const bool other = it == existing.root.end() || it->second != hash;
    if (other && req_.replace_other_matrix) {
      fmt::print(out_, "{}: results of another command, replaced\n", out_path_);
    } else if (other) {
      throw Error(fmt::format(
          "{} holds results of another matrix ('{}', hash {}), not of {} (hash {}){}; choose another --out or remove "
          "the file",
          out_path_, existing.root.count("matrix_name") ? existing.root["matrix_name"] : "?",
          it == existing.root.end() ? "none" : it->second.substr(0, 12), matrix_.path, hash.substr(0, 12),
          existing.read_version != reports::kResultsSchemaVersion
              ? fmt::format(" (it was written by imbench {} with results schema version {}; this imbench writes "
                            "version {} and hashes matrices with the renamed keys eot_samples and source_model)",
                            existing.root.count("imbench_version") ? existing.root["imbench_version"] : "?",
                            existing.read_version, reports::kResultsSchemaVersion)
              : ""));
    } else {
      fmt::print(out_, "{} {}: {} finished cells\n", req_.dry_run ? "would resume" : "resuming", out_path_,
                 existing.cells.size());
      if (!req_.dry_run) {
        saved_cells_ = static_cast<int64_t>(existing.cells.size());
        file_ = std::move(existing);
      }
    }
  }

  const data::DataPaths paths{data::resolve_data_dir(req_.data_dir), req_.cifar10_dir};
  const auto full = data::load_dataset(matrix_.dataset, data::parse_split(matrix_.split), paths);
  full_size_ = full.size();
  ds_ = full.first(matrix_.examples);
  if (ds_.size() == 0) throw UsageError("the matrix selects no examples");
  if (!req_.dry_run)
    evaluator_ = std::make_unique<CellEvaluator>(
        ds_, device_, EvaluationSettings::of(matrix_, req_.audit),
        [this](const std::string& what, int64_t done, int64_t total) { progress(what, done, total); });

  const auto jobs = plan_jobs(matrix_);
  const auto probed = probed_cells(jobs);
  std::vector<const JobPlan*> mine;
  for (std::size_t i = 0; i < jobs.size(); ++i)
    if (in_shard(i, shard)) mine.push_back(&jobs[i]);
  for (const auto* j : mine) cells_total_ += static_cast<int64_t>(j->cells.size());

  file_.root = {{"schema", reports::kResultsSchema},
                {"schema_version", std::to_string(reports::kResultsSchemaVersion)},
                {"imbench_version", kVersion},
                {"git_revision", kGitRevision},
                {"torch_version", TORCH_VERSION},
                {"device", matrix_.device},
                {"device_name", hardware_name(device_)},
                {"threads", std::to_string(torch::get_num_threads())},
                {"date", now_utc()},
                {"seed", std::to_string(matrix_.seed)},
                {"matrix_name", matrix_.name},
                {"matrix_path", matrix_.path},
                {"matrix_hash", hash},
                {"config_json", matrix_.to_json().dump()},
                {"shard", req_.shard.empty() ? "all" : req_.shard},
                {"dataset", fmt::format("{} {}: first {} of {}", matrix_.dataset, matrix_.split, ds_.size(), full_size_)},
                {"examples", std::to_string(ds_.size())},
                {"num_classes", std::to_string(ds_.num_classes)}};
  fmt::print(out_, "matrix {} ({}): {} jobs, {} cells in {}; {} examples of {} {}; seed {}; device {}\n", matrix_.name,
             matrix_.path, mine.size(), cells_total_, req_.shard.empty() ? "all shards" : "shard " + req_.shard, ds_.size(),
             matrix_.dataset, matrix_.split, matrix_.seed, models::device_description(device_));
  if (!ds_.source.empty()) fmt::print(out_, "data: {}\n", ds_.source);

  // Models (trained when missing), their clean accuracy and cheap checks.
  std::vector<std::string> names;
  for (const auto* j : mine) {
    if (std::find(names.begin(), names.end(), j->model->name) == names.end()) names.push_back(j->model->name);
    for (const auto& c : j->cells)
      if (!c.attack->source.empty() && std::find(names.begin(), names.end(), c.attack->source) == names.end())
        names.push_back(c.attack->source);
  }
  if (req_.dry_run) {
    dry_run(mine, names);
    return std::move(file_);
  }
  for (const auto& n : names) {
    auto info = evaluator_->describe(model_slot(n), matrix_.model(n).paper.dump());
    auto it = std::find_if(file_.models.begin(), file_.models.end(), [&](const auto& m) { return m.name == n; });
    if (it != file_.models.end()) {
      if (it->file_sha256 != info.file_sha256)
        fmt::print(out_, "model '{}' changed since the file was written: its cells run again\n", n);
      *it = info;
    } else {
      file_.models.push_back(info);
    }
    fmt::print(out_, "model {}: {}; clean accuracy {} on {} examples\n", n, info.description,
               reports::format_percent(info.clean_accuracy), ds_.size());
  }
  // A file without a num_classes attribute: the models' classes (chance level for the checks), not the largest label
  // + 1.
  if (ds_.num_classes_from_labels && !names.empty())
    file_.root["num_classes"] = std::to_string(model_slot(names.front()).model().num_classes());
  save();

  // The work of every cell, for the ETA (cascades shrink later cells to the survivors).
  print_estimated_work(mine, [this](const std::string& name) { return model_slot(name).model().is_stochastic(); });

  cell_index_ = 0;
  for (const auto* job : mine) {
    const reports::CellResult* prev = nullptr;
    std::string prev_hash;
    for (const auto& plan : job->cells) {
      const auto& a = *plan.attack;
      nlohmann::json key{{"matrix", hash},
                         {"cell", plan.id},
                         {"model_sha256", model_slot(job->model->name).sha256},
                         {"source_sha256", a.source.empty() ? "" : model_slot(a.source).sha256},
                         {"previous", prev_hash},
                         {"imbench_schema", reports::kResultsSchemaVersion}};
      const std::string cell_hash = sha256_hex(key.dump());
      const bool save_adversarial = matrix_.saves_adversarial(a);
      auto it = std::find_if(file_.cells.begin(), file_.cells.end(), [&](const auto& c) { return c.id == plan.id; });
      // A finished cell is kept unless its adversarial examples are asked for
      // and it has none (saving them is not part of the hash: it changes no number).
      const bool lacks_adversarial = save_adversarial && it != file_.cells.end() && !it->has_adversarial();
      if (it != file_.cells.end() && it->hash == cell_hash && lacks_adversarial)
        fmt::print(out_, "[cell {}/{}] {}: done earlier without its adversarial examples, run again to save them\n",
                   cells_done_ + 1, cells_total_, plan.id);
      if (it != file_.cells.end() && it->hash == cell_hash && !lacks_adversarial) {
        prev = &*it;
        prev_hash = cell_hash;
        ++cells_done_;
        meter_->finish(cell_index_++, /*skipped=*/true);
        fmt::print(out_, "[cell {}/{}] {}: done earlier, kept\n", cells_done_, cells_total_, plan.id);
        continue;
      }
      CellTask task;
      task.job = job;
      task.plan = &plan;
      task.target = &model_slot(job->model->name);
      task.source = a.source.empty() ? nullptr : &model_slot(a.source);
      task.previous = prev;
      task.hash = cell_hash;
      task.seed_id = a.seed_id;
      task.probe = probed.count(plan.id) > 0;
      task.save_adversarial = save_adversarial;
      cell_started_ = false;
      running_cell_ = plan.id;
      auto cell = evaluator_->evaluate(task);
      if (!cell_started_) meter_->start(cell_index_, 0);
      meter_->finish(cell_index_++);
      if (it != file_.cells.end()) {
        *it = std::move(cell);
      } else {
        file_.cells.push_back(std::move(cell));
        it = file_.cells.end() - 1;
      }
      save();
      running_cell_.clear();
      // Its adversarial examples are in the file now: later saves copy them from there.
      if (req_.write) it->keep_adversarial_in(out_path_);
      ++cells_done_;
      prev = &*it;
      prev_hash = cell_hash;
      if (tty_ && !req_.quiet) fmt::print(stderr, "\r\033[K");
      const auto eta = meter_->eta_seconds();
      fmt::print(out_, "[cell {}/{}] {}: robust accuracy {} ({} attacked, {:.1f} s, {:.0f} images/s){}; ETA {}\n",
                 cells_done_, cells_total_, it->id,
                 reports::format_percent(it->summary["robust_accuracy"], it->summary["robust_accuracy_std"]),
                 static_cast<int64_t>(it->summary["attacked_examples"]), it->summary["seconds"],
                 it->summary["images_per_second"], it->unreliable() ? " UNRELIABLE" : "",
                 eta ? format_duration(*eta) : "?");
      out_.flush();
    }
  }
  apply_cross_cell_checks(file_);
  save();
  const double total = std::chrono::duration<double>(Clock::now() - start_).count();
  if (!req_.write) return std::move(file_);
  fmt::print(out_, "results: {} ({} cells, {})\n", out_path_, file_.cells.size(), format_duration(total));
  if (req_.report != "-") {
    std::string report = req_.report;
    if (report.empty()) report = (fs::path(out_path_).replace_extension(".md")).string();
    reports::write_report(report, file_);
    fmt::print(out_, "report: {}\n", report);
  }
  return std::move(file_);
}

}  // namespace

reports::ResultFile evaluate_matrix(const RunRequest& request, std::ostream& out) {
  Runner runner(request, out);
  return runner.run();
}

int run_matrix(const RunRequest& request, std::ostream& out) {
  evaluate_matrix(request, out);
  return 0;
}

}  // namespace imbench::harness
