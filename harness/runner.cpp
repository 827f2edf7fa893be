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
#include <map>

#include "attacks/attack.h"
#include "core/errors.h"
#include "core/sha256.h"
#include "core/version.h"
#include "data/dataset.h"
#include "harness/checks.h"
#include "harness/matrix.h"
#include "harness/training.h"
#include "models/checkpoint.h"
#include "models/device.h"
#include "reports/markdown.h"
#include "reports/results.h"

namespace fs = std::filesystem;

namespace imbench::harness {

LoadedModel load_model_file(const std::string& path, const models::TorchScriptOptions& ts, torch::Device device) {
  if (models::is_checkpoint_file(path)) {
    if (ts.input_shape || ts.num_classes || ts.samples || ts.stochastic)
      throw UsageError("--input-shape/--num-classes/--samples/--stochastic apply to TorchScript models only; "
                       "an imbench checkpoint records them");
    auto loaded = models::load_checkpoint(path, device);
    const auto& t = loaded.meta.training;
    LoadedModel m;
    m.provenance = fmt::format("{}: trained on {} with preset {} (seed {}), imbench {} ({})", path, t.value("dataset", "?"),
                               t.value("preset", "?"),
                               t.contains("options") ? t["options"].value("seed", uint64_t{0}) : 0,
                               loaded.meta.imbench_version, loaded.meta.git_revision);
    auto record = t;
    record.erase("result");  // the epoch history is in the checkpoint; keep the file small
    record["test_accuracy"] = loaded.meta.metrics.value("test_accuracy", -1.0);
    m.training_json = record.dump();
    m.model = std::move(loaded.model);
    return m;
  }
  LoadedModel m;
  m.model = models::TorchScriptModel::load(path, ts, device);
  m.provenance = path + ": TorchScript module";
  return m;
}

void check_model_fits(models::Model& model, const data::Dataset& ds, const std::string& who) {
  model.check_input(ds.images.slice(0, 0, std::min<int64_t>(1, ds.size())));
  if (model.num_classes() != ds.num_classes)
    throw UsageError(fmt::format("{} outputs {} classes but {} has {}", who, model.num_classes(), ds.name, ds.num_classes));
}

namespace {

using Clock = std::chrono::steady_clock;

struct ModelSlot {
  LoadedModel loaded;
  std::string sha256;
  torch::Tensor clean;  ///< bool [R, N] on the CPU: prediction rule right on the clean examples
  int64_t repeats = 1;
};

uint64_t seed_of(uint64_t master, const std::string& id) {
  return master + std::stoull(sha256_hex(id).substr(0, 12), nullptr, 16);
}

template <typename T>
std::vector<T> to_vector(const torch::Tensor& t) {
  const auto c = t.contiguous().cpu();
  return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}

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

std::string duration(double s) {
  if (s < 60) return fmt::format("{:.0f}s", s);
  if (s < 3600) return fmt::format("{:.0f}m{:02.0f}s", std::floor(s / 60), std::fmod(s, 60));
  return fmt::format("{:.0f}h{:02.0f}m", std::floor(s / 3600), std::floor(std::fmod(s, 3600) / 60));
}

// Attacks that take many gradient steps: a single FGSM/FGM step must not beat them (check 6).
bool iterative(const std::string& kind) { return kind == "pgd" || kind == "apgd-ce" || kind == "apgd-dlr" || kind == "cw"; }

class Runner {
 public:
  Runner(const RunRequest& req, std::ostream& out) : req_(req), out_(out) {}

  int run();

 private:
  ModelSlot& model_slot(const std::string& name);
  void ensure_checkpoint(const MatrixModel& m);
  reports::ModelInfo model_info(const std::string& name);
  std::vector<reports::Flag> audit_cell(const JobPlan& job, const CellPlan& plan, const attacks::ThreatModel& threat,
                                        const torch::Tensor& idx);
  reports::CellResult run_cell(const JobPlan& job, const CellPlan& plan, const reports::CellResult* prev,
                               const std::string& hash);
  attacks::RunOptions run_options(const MatrixAttack& a, models::Model& source, int64_t repeats) const;
  attacks::ThreatModel threat_of(const JobPlan& job, models::Model& m) const;
  void save();
  void progress(const std::string& what, int64_t done, int64_t total);

  const RunRequest& req_;
  std::ostream& out_;
  Matrix matrix_;
  std::string out_path_;
  data::Dataset ds_;
  int64_t full_size_ = 0;
  torch::Device device_{torch::kCPU};
  std::map<std::string, ModelSlot> slots_;
  reports::ResultFile file_;
  bool tty_ = false;
  Clock::time_point start_;
  int64_t cells_total_ = 0, cells_done_ = 0;
  double run_seconds_ = 0;
};

void Runner::progress(const std::string& what, int64_t done, int64_t total) {
  if (!tty_ || req_.quiet) return;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double frac = (static_cast<double>(cells_done_) + (total > 0 ? static_cast<double>(done) / total : 0)) /
                      std::max<double>(1, static_cast<double>(cells_total_));
  const std::string eta = frac > 0.01 ? duration(elapsed / frac - elapsed) : "?";
  fmt::print(stderr, "\r\033[K[cell {}/{}] {}: {}/{} images, elapsed {}, ETA {}", cells_done_ + 1, cells_total_, what,
             done, total, duration(elapsed), eta);
}

void Runner::ensure_checkpoint(const MatrixModel& m) {
  if (m.checkpoint.empty() || fs::exists(m.checkpoint)) return;
  if (m.family.empty())
    throw Error(fmt::format("model '{}': checkpoint {} does not exist (give family = \"...\" to train it when missing)",
                            m.name, m.checkpoint));
  fmt::print(out_, "model '{}': {} is missing, training {} with preset {}\n", m.name, m.checkpoint, m.family, m.preset);
  auto plan = plan_training(m.family, matrix_.dataset, m.preset, m.train);
  plan.options.device = matrix_.device;
  plan.options.validate();
  const int threads = torch::get_num_threads();
  train_to_checkpoint(plan, {data::resolve_data_dir(req_.data_dir), req_.cifar10_dir}, m.checkpoint, out_, req_.quiet);
  torch::set_num_threads(threads);
}

ModelSlot& Runner::model_slot(const std::string& name) {
  auto it = slots_.find(name);
  if (it != slots_.end()) return it->second;
  const auto& m = matrix_.model(name);
  ensure_checkpoint(m);
  models::TorchScriptOptions ts;
  ts.input_shape = m.input_shape;
  ts.num_classes = m.num_classes;
  ts.samples = m.samples;
  ts.stochastic = m.stochastic;
  if (!fs::exists(m.file())) throw Error(fmt::format("model '{}': {} does not exist", name, m.file()));
  ModelSlot slot;
  slot.loaded = load_model_file(m.file(), ts, device_);
  slot.sha256 = sha256_file(m.file());
  auto& model = *slot.loaded.model;
  check_model_fits(model, ds_, fmt::format("model '{}'", name));
  model.set_training(false);
  // Clean predictions once per model, R repeats with fresh samples.
  slot.repeats = model.is_stochastic() ? matrix_.repeats : 1;
  torch::manual_seed(seed_of(matrix_.seed, name + ".clean"));
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> reps;
  for (int64_t r = 0; r < slot.repeats; ++r) {
    std::vector<torch::Tensor> parts;
    for (int64_t b = 0; b < ds_.size(); b += matrix_.batch_size) {
      const int64_t e = std::min(ds_.size(), b + matrix_.batch_size);
      parts.push_back(model.predict(ds_.images.slice(0, b, e).to(device_)).cpu().eq(ds_.labels.slice(0, b, e)));
    }
    reps.push_back(parts.empty() ? torch::zeros({0}, torch::kBool) : torch::cat(parts));
  }
  slot.clean = torch::stack(reps);
  return slots_.emplace(name, std::move(slot)).first->second;
}

reports::ModelInfo Runner::model_info(const std::string& name) {
  auto& slot = model_slot(name);
  auto& model = *slot.loaded.model;
  const auto& m = matrix_.model(name);
  reports::ModelInfo info;
  info.name = name;
  info.description = model.description();
  info.provenance = slot.loaded.provenance;
  info.file_sha256 = slot.sha256;
  info.stochastic = model.is_stochastic();
  info.prediction_rule = model.is_stochastic()
                             ? fmt::format("mean softmax over {} samples, {} repeats with fresh samples",
                                           model.prediction_samples(), slot.repeats)
                             : "argmax of logits";
  info.training_json = slot.loaded.training_json;
  info.paper_json = m.paper.dump();
  info.clean_accuracy = slot.clean.to(torch::kDouble).mean().item<double>();
  // Cheap model-level checks on the first examples.
  const int64_t n = std::min<int64_t>(100, ds_.size());
  if (n > 0) {
    const auto x = ds_.images.slice(0, 0, n).to(device_);
    const auto y = ds_.labels.slice(0, 0, n).to(device_);
    torch::manual_seed(seed_of(matrix_.seed, name + ".checks"));
    info.flags.push_back(check_randomness(model, x));
    info.flags.push_back(check_logits(model, x));
    attacks::EotOptions eot;
    eot.samples = matrix_.eot;
    eot.reduction = attacks::parse_eot_reduction(matrix_.eot_reduction);
    info.flags.push_back(check_gradient_health(model, x, y, eot));
    info.flags.push_back(check_model_mode(model));
    if (req_.audit) {
      // 10: an attack with an eps covering the whole input box must (nearly) always succeed.
      const int64_t na = std::min<int64_t>(matrix_.audit_examples, ds_.size());
      auto pgd = attacks::create_attack("pgd", {{"steps", 100}});
      attacks::ThreatModel t;
      t.eps = model.input_bounds().upper - model.input_bounds().lower;
      t.lower = model.input_bounds().lower;
      t.upper = model.input_bounds().upper;
      attacks::RunOptions ro;
      ro.eot = eot;
      ro.repeats = slot.repeats;
      ro.seed = seed_of(matrix_.seed, name + ".unbounded");
      const auto r = pgd->run(model, ds_.images.slice(0, 0, na).to(device_), ds_.labels.slice(0, 0, na).to(device_), t, ro);
      const double acc = r.robust_accuracy();
      info.flags.push_back({10, "unbounded-attack", acc > 0.02,
                            fmt::format("PGD-100 Linf with eps = {:g} (the whole box) on {} examples: robust accuracy {:.2f}% "
                                        "(flag above 2%)",
                                        t.eps, na, acc * 100)});
    }
  }
  return info;
}

attacks::ThreatModel Runner::threat_of(const JobPlan& job, models::Model& m) const {
  attacks::ThreatModel t;
  t.norm = attacks::parse_norm(job.norm);
  t.eps = job.eps;
  t.target = job.targeted ? attacks::parse_target_rule(job.target_rule) : attacks::TargetRule::kNone;
  t.lower = m.input_bounds().lower;
  t.upper = m.input_bounds().upper;
  t.validate();
  return t;
}

attacks::RunOptions Runner::run_options(const MatrixAttack& a, models::Model& source, int64_t repeats) const {
  attacks::RunOptions o;
  o.eot.samples = source.is_stochastic() ? a.eot.value_or(matrix_.eot) : 1;
  o.eot.reduction = attacks::parse_eot_reduction(matrix_.eot_reduction);
  o.repeats = repeats;
  return o;
}

// The expensive checks (2, 3, 8, 9-noise) on the first audit_examples of the
// examples this white-box cell attacked.
std::vector<reports::Flag> Runner::audit_cell(const JobPlan& job, const CellPlan& plan, const attacks::ThreatModel& threat,
                                              const torch::Tensor& idx) {
  std::vector<reports::Flag> flags;
  const auto& a = *plan.attack;
  auto& slot = model_slot(job.model->name);
  auto& model = *slot.loaded.model;
  const auto sub = idx.slice(0, 0, std::min<int64_t>(matrix_.audit_examples, idx.size(0)));
  if (sub.size(0) == 0) return flags;
  const auto x = ds_.images.index_select(0, sub).to(device_);
  const auto y = ds_.labels.index_select(0, sub).to(device_);
  const double n = static_cast<double>(sub.size(0));
  const uint64_t seed = seed_of(matrix_.seed, plan.id + ".audit");
  auto run_with = [&](models::Model& m, const nlohmann::json& options, int64_t eot, int64_t repeats) {
    auto attack = attacks::create_attack(a.kind, options);
    auto ro = run_options(a, m, repeats);
    if (m.is_stochastic()) ro.eot.samples = eot;
    ro.seed = seed;
    return attack->run(m, x, y, threat, ro);
  };
  auto tol = [&](double p) { return std::max(0.02, 2 * std::sqrt(std::max(p * (1 - p), 0.01) / n)); };
  const int64_t eot = model.is_stochastic() ? a.eot.value_or(matrix_.eot) : 1;
  const auto base = run_with(model, a.options, eot, slot.repeats);
  const double acc = base.robust_accuracy();
  // 8: doubling the budget must not change the result much.
  nlohmann::json doubled = a.options;
  const auto defaults = attacks::create_attack(a.kind, a.options)->options_json();
  std::vector<std::string> changed;
  for (const char* key : {"steps", "restarts", "binary_search_steps"})
    if (defaults.contains(key)) {
      doubled[key] = defaults[key].get<int64_t>() * 2;
      changed.push_back(key);
    }
  if (!changed.empty()) {
    const double acc2 = run_with(model, doubled, eot, slot.repeats).robust_accuracy();
    flags.push_back({8, "convergence", acc - acc2 > tol(acc),
                     fmt::format("doubling {} on {} examples: robust accuracy {:.2f}% -> {:.2f}% (flag when it drops > {:.1f} points)",
                                 fmt::join(changed, ", "), sub.size(0), acc * 100, acc2 * 100, tol(acc) * 100)});
  }
  // 9 (noise part): random noise of size eps must not beat the attack.
  if (std::isfinite(threat.eps)) {
    torch::manual_seed(seed + 1);
    torch::Tensor d;
    if (threat.norm == attacks::Norm::kLinf) {
      d = (torch::randint(0, 2, x.sizes(), x.options()) * 2 - 1) * threat.eps;
    } else {
      d = torch::randn_like(x);
      d = d / d.flatten(1).norm(2, 1).clamp_min(1e-12).view(attacks::per_example_shape(x)) * threat.eps;
    }
    const auto xn = attacks::project_to_threat(x + d, x, threat);
    torch::NoGradGuard no_grad;
    double noise_acc = 0;
    for (int64_t r = 0; r < slot.repeats; ++r) noise_acc += model.predict(xn).eq(y).to(torch::kDouble).mean().item<double>();
    noise_acc /= static_cast<double>(slot.repeats);
    flags.push_back({9, "noise-vs-white-box", noise_acc < acc - tol(acc),
                     fmt::format("random {} noise of size eps: accuracy {:.2f}% vs {:.2f}% under the attack ({} examples)",
                                 threat.norm == attacks::Norm::kLinf ? "sign" : "L2", noise_acc * 100, acc * 100, sub.size(0))});
  }
  if (model.is_stochastic()) {
    // 2: more EOT samples must not help the model, and the result should have converged.
    std::vector<double> accs;
    for (int64_t s : {1, 5, 20}) accs.push_back(run_with(model, a.options, s, slot.repeats).robust_accuracy());
    const double t = tol(accs[1]);
    const bool rising = accs[1] > accs[0] + t || accs[2] > accs[1] + t;
    const bool dropping = accs[2] < accs[1] - t;
    flags.push_back({2, "eot-convergence", rising || dropping,
                     fmt::format("robust accuracy at EOT 1 / 5 / 20: {:.2f}% / {:.2f}% / {:.2f}% on {} examples{}", accs[0] * 100,
                                 accs[1] * 100, accs[2] * 100, sub.size(0),
                                 rising ? " (not non-increasing)" : dropping ? " (still dropping at 20)" : "")});
    // 3: with the noise frozen the model is deterministic; the attack must work on it.
    FixedNoiseModel fixed(model, seed + 2);
    const double fixed_acc = run_with(fixed, a.options, 1, 1).robust_accuracy();
    flags.push_back({3, "fixed-noise-control", fixed_acc > acc + tol(acc),
                     fmt::format("attack on the model with its noise frozen: robust accuracy {:.2f}% (stochastic: {:.2f}%)",
                                 fixed_acc * 100, acc * 100)});
  }
  return flags;
}

reports::CellResult Runner::run_cell(const JobPlan& job, const CellPlan& plan, const reports::CellResult* prev,
                                     const std::string& hash) {
  const auto& a = *plan.attack;
  auto& target_slot = model_slot(job.model->name);
  auto& target = *target_slot.loaded.model;
  const bool transfer = !a.source.empty();
  auto& source = transfer ? *model_slot(a.source).loaded.model : target;
  const auto threat = threat_of(job, source);
  auto attack = attacks::create_attack(a.kind, a.options);
  const int64_t R = target_slot.repeats, N = ds_.size();
  auto ro = run_options(a, source, transfer ? 1 : R);
  ro.evaluate_clean = false;
  const uint64_t cell_seed = seed_of(matrix_.seed, plan.id);

  // Which examples: all, or (cascade) those right in at least one repeat so far.
  torch::Tensor prev_adv = prev ? torch::from_blob(const_cast<uint8_t*>(prev->adversarial_correct.data()), {R, N},
                                                   torch::kUInt8).to(torch::kBool).clone()
                                : torch::ones({R, N}, torch::kBool);
  const torch::Tensor clean = target_slot.clean;
  torch::Tensor todo = matrix_.cascade ? (prev ? prev_adv.any(0) : torch::ones({N}, torch::kBool)) : torch::ones({N}, torch::kBool);
  const auto idx = todo.nonzero().squeeze(1);
  const int64_t n_todo = idx.size(0);

  torch::Tensor own = torch::ones({R, N}, torch::kBool);
  auto linf = torch::zeros({N}), l2 = torch::zeros({N}), l0 = torch::zeros({N});
  auto loss = torch::full({N}, std::numeric_limits<float>::quiet_NaN());
  auto evals = torch::zeros({N}, torch::kLong);
  auto targets = torch::full({N}, -1, torch::kLong);
  int64_t invalid = 0, single_broke = 0, single_checked = 0;
  const bool check_single = !transfer && iterative(a.kind) && std::isfinite(threat.eps);
  const auto single = check_single ? attacks::create_attack("fgsm") : nullptr;  // FGSM under Linf, FGM under L2
  double seconds = 0;
  for (int64_t b = 0; b < n_todo; b += matrix_.batch_size) {
    progress(plan.id, b, n_todo);
    const auto bi = idx.slice(0, b, std::min(n_todo, b + matrix_.batch_size));
    const auto x = ds_.images.index_select(0, bi).to(device_);
    const auto x_before = x.clone();
    const auto y = ds_.labels.index_select(0, bi).to(device_);
    ro.seed = cell_seed + static_cast<uint64_t>(bi[0].item<int64_t>());
    const auto t0 = Clock::now();
    auto r = attack->run(source, x, y, threat, ro);
    torch::Tensor adv_correct = r.adversarial_correct;
    if (transfer) {
      torch::NoGradGuard no_grad;
      torch::manual_seed(ro.seed ^ 0x5eedULL);
      std::vector<torch::Tensor> reps;
      for (int64_t k = 0; k < R; ++k) reps.push_back(target.predict(r.x_adv).eq(y));
      adv_correct = torch::stack(reps);
    }
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    invalid += count_invalid(r.x_adv, x, x_before, threat);
    own.index_copy_(1, bi, adv_correct.cpu());
    linf.index_copy_(0, bi, r.linf.cpu().to(torch::kFloat));
    l2.index_copy_(0, bi, r.l2.cpu().to(torch::kFloat));
    l0.index_copy_(0, bi, r.l0.cpu().to(torch::kFloat));
    loss.index_copy_(0, bi, r.final_loss.detach().cpu().to(torch::kFloat));
    evals.index_copy_(0, bi, r.gradient_evaluations.cpu());
    if (r.targets.defined()) targets.index_copy_(0, bi, r.targets.cpu());
    // Check 6: a single step must not break examples this iterative attack left robust.
    if (check_single) {
      const auto survivors = adv_correct.to(torch::kDouble).mean(0) >= 0.5;
      const auto si = survivors.nonzero().squeeze(1);
      if (si.numel() > 0) {
        auto so = ro;
        so.seed = ro.seed + 1;
        const auto rs = single->run(source, x.index_select(0, si), y.index_select(0, si), threat, so);
        single_broke += (rs.adversarial_correct.to(torch::kDouble).mean(0) < 0.5).sum().item<int64_t>();
        single_checked += si.numel();
      }
    }
  }
  progress(plan.id, n_todo, n_todo);

  reports::CellResult c;
  c.id = plan.id;
  c.model = job.model->name;
  c.attack = a.name;
  c.attack_kind = a.kind;
  c.norm = job.norm;
  c.eps = job.eps;
  c.eps_text = job.eps_text;
  c.targeted = job.targeted;
  c.target_rule = job.target_rule;
  c.source_model = a.source;
  c.group = job.group;
  c.cascade_position = plan.position;
  c.threat_model = threat.describe();
  c.hash = hash;
  c.repeats = R;
  c.eot_samples = ro.eot.samples;
  c.config_json = nlohmann::json{{"attack", a.to_json()},
                                 {"options", attack->effective_options(threat)},
                                 {"loss", attacks::to_string(attack->loss_kind())},
                                 {"eps", job.eps_text},
                                 {"eot_samples", ro.eot.samples},
                                 {"eot_reduction", attacks::to_string(ro.eot.reduction)},
                                 {"repeats", R},
                                 {"cascade", matrix_.cascade},
                                 {"seed", cell_seed},
                                 {"model", job.model->to_json()}}
                      .dump();
  c.index = to_vector<int64_t>(torch::arange(N, torch::kLong));
  c.label = to_vector<int64_t>(ds_.labels);
  if (job.targeted) c.target = to_vector<int64_t>(targets);
  c.attacked = to_vector<uint8_t>(todo.to(torch::kUInt8));
  c.clean_correct = to_vector<uint8_t>(clean.to(torch::kUInt8));
  c.adversarial_correct = to_vector<uint8_t>((prev_adv & own).to(torch::kUInt8));
  c.linf = to_vector<float>(linf);
  c.l2 = to_vector<float>(l2);
  c.l0 = to_vector<float>(l0);
  c.final_loss = to_vector<float>(loss);
  c.gradient_evaluations = to_vector<int64_t>(evals);
  c.summarise();
  const double total_evals = evals.to(torch::kDouble).sum().item<double>();
  c.summary["seconds"] = seconds;
  c.summary["images_per_second"] = seconds > 0 ? static_cast<double>(n_todo) / seconds : 0;
  c.summary["gradient_evaluations_per_second"] = seconds > 0 ? total_evals / seconds : 0;
  c.flags.push_back({11, "validity", invalid > 0,
                     fmt::format("{} of {} adversarial examples outside the eps-ball or the box, non-finite, or with a modified input",
                                 invalid, n_todo)});
  if (single_checked > 0) {
    const double share = static_cast<double>(single_broke) / static_cast<double>(single_checked);
    const double limit = target.is_stochastic() ? 0.05 : 0.01;
    c.flags.push_back({6, "iterative-vs-single-step", share > limit && single_broke > 1,
                       fmt::format("{} broke {} of the {} examples {} left robust ({:.1f}%; flag above {:.0f}%)",
                                   threat.norm == attacks::Norm::kLinf ? "FGSM" : "FGM", single_broke, single_checked, a.name,
                                   share * 100, limit * 100)});
  }
  if (req_.audit && !transfer) {
    const auto more = audit_cell(job, plan, threat, idx);
    c.flags.insert(c.flags.end(), more.begin(), more.end());
  }
  return c;
}

void Runner::save() { reports::write_results(out_path_, file_); }

int Runner::run() {
  start_ = Clock::now();
  tty_ = ::isatty(fileno(stderr)) != 0;
  matrix_ = parse_matrix_file(req_.matrix_path);
  if (req_.device) matrix_.device = *req_.device;
  const auto shard = req_.shard.empty() ? std::pair<int64_t, int64_t>{1, 1} : parse_shard(req_.shard);
  const std::string suffix = req_.shard.empty() ? "" : fmt::format("-shard-{}-of-{}", shard.first, shard.second);
  out_path_ = req_.out.empty() ? fmt::format("results/{}{}.h5", matrix_.name, suffix) : req_.out;
  if (fs::is_directory(out_path_)) throw UsageError(fmt::format("--out {}: is a directory, expected a file name", out_path_));
  device_ = models::parse_device(matrix_.device);
  const std::string hash = matrix_.hash();

  // An existing file must be a result of this matrix; its finished cells are kept.
  if (fs::exists(out_path_)) {
    auto existing = reports::read_results(out_path_);
    const auto it = existing.root.find("matrix_hash");
    if (it == existing.root.end() || it->second != hash)
      throw Error(fmt::format("{} holds results of another matrix ('{}', hash {}), not of {} (hash {}); choose another "
                              "--out or remove the file",
                              out_path_, existing.root.count("matrix_name") ? existing.root["matrix_name"] : "?",
                              it == existing.root.end() ? "none" : it->second.substr(0, 12), matrix_.path,
                              hash.substr(0, 12)));
    file_ = std::move(existing);
    fmt::print(out_, "resuming {}: {} finished cells\n", out_path_, file_.cells.size());
  }

  const data::DataPaths paths{data::resolve_data_dir(req_.data_dir), req_.cifar10_dir};
  const auto full = data::load_dataset(matrix_.dataset, data::Split::kTest, paths);
  full_size_ = full.size();
  ds_ = full.first(matrix_.examples);
  if (ds_.size() == 0) throw UsageError("the matrix selects no examples");

  const auto jobs = plan_jobs(matrix_);
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
                {"dataset", fmt::format("{} test: first {} of {}", matrix_.dataset, ds_.size(), full_size_)},
                {"examples", std::to_string(ds_.size())},
                {"num_classes", std::to_string(ds_.num_classes)}};
  fmt::print(out_, "matrix {} ({}): {} jobs, {} cells in {}; {} examples of {} test; seed {}; device {}\n", matrix_.name,
             matrix_.path, mine.size(), cells_total_, req_.shard.empty() ? "all shards" : "shard " + req_.shard, ds_.size(),
             matrix_.dataset, matrix_.seed, models::device_description(device_));

  // Models (trained when missing), their clean accuracy and cheap checks.
  std::vector<std::string> names;
  for (const auto* j : mine) {
    if (std::find(names.begin(), names.end(), j->model->name) == names.end()) names.push_back(j->model->name);
    for (const auto& c : j->cells)
      if (!c.attack->source.empty() && std::find(names.begin(), names.end(), c.attack->source) == names.end())
        names.push_back(c.attack->source);
  }
  for (const auto& n : names) {
    auto info = model_info(n);
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
  save();

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
      auto it = std::find_if(file_.cells.begin(), file_.cells.end(), [&](const auto& c) { return c.id == plan.id; });
      if (it != file_.cells.end() && it->hash == cell_hash) {
        prev = &*it;
        prev_hash = cell_hash;
        ++cells_done_;
        fmt::print(out_, "[cell {}/{}] {}: done earlier, kept\n", cells_done_, cells_total_, plan.id);
        continue;
      }
      auto cell = run_cell(*job, plan, prev, cell_hash);
      if (it != file_.cells.end()) {
        *it = std::move(cell);
      } else {
        file_.cells.push_back(std::move(cell));
        it = file_.cells.end() - 1;
      }
      save();
      ++cells_done_;
      prev = &*it;
      prev_hash = cell_hash;
      if (tty_ && !req_.quiet) fmt::print(stderr, "\r\033[K");
      fmt::print(out_, "[cell {}/{}] {}: robust accuracy {} ({} attacked, {:.1f} s, {:.0f} images/s){}\n", cells_done_,
                 cells_total_, it->id, reports::format_percent(it->summary["robust_accuracy"], it->summary["robust_accuracy_std"]),
                 static_cast<int64_t>(it->summary["attacked_examples"]), it->summary["seconds"],
                 it->summary["images_per_second"], it->unreliable() ? " UNRELIABLE" : "");
      out_.flush();
    }
  }
  apply_cross_cell_checks(file_);
  save();
  const double total = std::chrono::duration<double>(Clock::now() - start_).count();
  fmt::print(out_, "results: {} ({} cells, {})\n", out_path_, file_.cells.size(), duration(total));
  if (req_.report != "-") {
    std::string report = req_.report;
    if (report.empty()) report = (fs::path(out_path_).replace_extension(".md")).string();
    reports::write_text_atomically(report, reports::render_report(file_, reports::report_options_for(report)));
    fmt::print(out_, "report: {}\n", report);
  }
  return 0;
}

}  // namespace

int run_matrix(const RunRequest& request, std::ostream& out) {
  Runner runner(request, out);
  return runner.run();
}

}  // namespace imbench::harness
