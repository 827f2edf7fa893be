#include "harness/evaluator.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include "core/errors.h"
#include "core/interrupt.h"
#include "core/sha256.h"

namespace imbench::harness {
namespace {

using Clock = std::chrono::steady_clock;

template <typename T>
std::vector<T> to_vector(const torch::Tensor& t) {
  const auto c = t.contiguous().cpu();
  return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}

}  // namespace

uint64_t derive_seed(uint64_t master, const std::string& id) {
  return master + std::stoull(sha256_hex(id).substr(0, 12), nullptr, 16);
}

std::set<std::string> probed_cells(const std::vector<JobPlan>& jobs) {
  std::map<std::string, const JobPlan*> smallest;  // model|norm|targeting -> job
  for (const auto& job : jobs) {
    if (!std::isfinite(job.eps) || job.eps <= 0) continue;
    const std::string key = job.model->name + "|" + job.norm + "|" + (job.targeted ? job.target_rule : "none");
    auto& slot = smallest[key];
    if (!slot || job.eps < slot->eps) slot = &job;
  }
  std::set<std::string> ids;
  for (const auto& [key, job] : smallest)
    for (auto it = job->cells.begin(); it != job->cells.end(); ++it)
      if (it->attack->source.empty() && attacks::attack_info(it->attack->kind).iterative &&
          !attacks::attack_info(it->attack->kind).gradient_free) {
        ids.insert(it->id);
        break;
      }
  return ids;
}

CellEvaluator::CellEvaluator(const data::Dataset& examples, torch::Device device, EvaluationSettings settings,
                             Progress progress)
    : ds_(examples), device_(device), settings_(settings), progress_(std::move(progress)) {}

EvaluatedModel CellEvaluator::prepare(const std::string& name, models::LoadedModel loaded, std::string sha256,
                                      const std::string& who) const {
  EvaluatedModel m;
  m.name = name;
  m.loaded = std::move(loaded);
  m.sha256 = std::move(sha256);
  auto& model = m.model();
  models::check_model_fits(model, ds_, who);
  model.set_training(false);
  // Clean predictions once per model, R repeats with fresh samples.
  m.repeats = model.is_stochastic() ? settings_.repeats : 1;
  torch::manual_seed(derive_seed(settings_.seed, name + ".clean"));
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> reps;
  for (int64_t r = 0; r < m.repeats; ++r) {
    std::vector<torch::Tensor> parts;
    for (int64_t b = 0; b < ds_.size(); b += settings_.batch_size) {
      stop_point();
      const int64_t e = std::min(ds_.size(), b + settings_.batch_size);
      parts.push_back(model.predict(ds_.images.slice(0, b, e).to(device_)).cpu().to(torch::kLong));
    }
    reps.push_back(parts.empty() ? torch::zeros({0}, torch::kLong) : torch::cat(parts));
  }
  m.clean_prediction = torch::stack(reps);
  m.clean = m.clean_prediction.eq(ds_.labels.to(torch::kLong).unsqueeze(0));
  return m;
}

reports::ModelInfo CellEvaluator::describe(EvaluatedModel& m, const std::string& paper_json) const {
  auto& model = m.model();
  reports::ModelInfo info;
  info.name = m.name;
  info.description = model.description();
  info.provenance = m.loaded.provenance;
  info.file_sha256 = m.sha256;
  info.stochastic = model.is_stochastic();
  info.prediction_rule = model.is_stochastic()
                             ? fmt::format("mean softmax over {} samples, {} repeats with fresh samples",
                                           model.prediction_samples(), m.repeats)
                             : "argmax of logits";
  info.training_json = m.loaded.training_json;
  info.paper_json = paper_json;
  info.clean_accuracy = m.clean.to(torch::kDouble).mean().item<double>();
  const int64_t n = std::min<int64_t>(100, ds_.size());
  if (n == 0) return info;
  CheckContext ctx;
  ctx.settings = &settings_;
  ctx.model = &model;
  ctx.repeats = m.repeats;
  ctx.x = ds_.images.slice(0, 0, n).to(device_);
  ctx.y = ds_.labels.slice(0, 0, n).to(device_);
  torch::manual_seed(derive_seed(settings_.seed, m.name + ".checks"));
  run_checks(CheckStage::kModel, ctx);
  if (settings_.audit) {
    const int64_t na = std::min<int64_t>(settings_.audit_examples, ds_.size());
    ctx.x = ds_.images.slice(0, 0, na).to(device_);
    ctx.y = ds_.labels.slice(0, 0, na).to(device_);
    ctx.seed = derive_seed(settings_.seed, m.name + ".unbounded");
    run_checks(CheckStage::kModelAudit, ctx);
  }
  info.flags = std::move(ctx.flags);
  return info;
}

attacks::ThreatModel CellEvaluator::threat_of(const JobPlan& job, models::Model& m) const {
  attacks::ThreatModel t;
  t.norm = attacks::parse_norm(job.norm);
  t.eps = job.eps;
  t.target = job.targeted ? attacks::parse_target_rule(job.target_rule) : attacks::TargetRule::kNone;
  t.lower = m.input_bounds().lower;
  t.upper = m.input_bounds().upper;
  t.validate();
  return t;
}

reports::CellResult CellEvaluator::evaluate(const CellTask& task) const {
  const auto& job = *task.job;
  const auto& plan = *task.plan;
  const auto& a = *plan.attack;
  auto& target_m = *task.target;
  auto& target = target_m.model();
  const bool transfer = task.source != nullptr;
  auto& source = transfer ? task.source->model() : target;
  const auto threat = threat_of(job, source);
  auto attack = attacks::create_attack(a.kind, a.options);
  const int64_t R = target_m.repeats, N = ds_.size();
  attacks::RunOptions ro;
  ro.eot.samples = source.is_stochastic() ? a.eot.value_or(settings_.eot) : 1;
  ro.eot.reduction = settings_.eot_reduction;
  ro.repeats = transfer ? 1 : R;
  ro.evaluate_clean = false;
  const uint64_t cell_seed = derive_seed(settings_.seed, task.seed_id.empty() ? plan.id : task.seed_id);
  const auto* prev = task.previous;

  // Which examples: all, or (cascade) those right in at least one repeat so far.
  torch::Tensor prev_adv = prev ? torch::from_blob(const_cast<uint8_t*>(prev->adversarial_correct.data()), {R, N},
                                                   torch::kUInt8).to(torch::kBool).clone()
                                : torch::ones({R, N}, torch::kBool);
  const torch::Tensor todo =
      settings_.cascade && prev ? prev_adv.any(0) : torch::ones({N}, torch::kBool);
  const auto idx = todo.nonzero().squeeze(1);
  const int64_t n_todo = idx.size(0);

  torch::Tensor own = torch::ones({R, N}, torch::kBool);
  torch::Tensor own_pred = torch::full({R, N}, -1, torch::kLong);  // -1: not attacked
  std::vector<torch::Tensor> saved;  // task.save_adversarial: x_adv of each batch, float32 on the CPU
  auto linf = torch::zeros({N}), l2 = torch::zeros({N}), l0 = torch::zeros({N});
  auto loss = torch::full({N}, std::numeric_limits<float>::quiet_NaN());
  auto evals = torch::zeros({N}, torch::kLong);
  auto targets = torch::full({N}, -1, torch::kLong);
  int64_t successes = 0;
  CheckContext checks;
  checks.settings = &settings_;
  checks.model = &target;
  checks.repeats = R;
  checks.attack = &a;
  checks.threat = &threat;
  checks.source = &source;
  checks.transfer = transfer;
  double seconds = 0, check_seconds = 0;  // the attack; the soundness checks of this cell
  for (int64_t b = 0; b < n_todo; b += settings_.batch_size) {
    stop_point();
    if (progress_) progress_(plan.id, b, n_todo);
    const auto bi = idx.slice(0, b, std::min(n_todo, b + settings_.batch_size));
    const auto x = ds_.images.index_select(0, bi).to(device_);
    const auto x_before = x.clone();
    const auto y = ds_.labels.index_select(0, bi).to(device_);
    ro.seed = cell_seed + static_cast<uint64_t>(bi[0].item<int64_t>());
    const auto t0 = Clock::now();
    auto r = attack->run(source, x, y, threat, ro);
    torch::Tensor adv_correct = r.adversarial_correct;
    torch::Tensor success = r.success;
    if (transfer) {
      torch::NoGradGuard no_grad;
      torch::manual_seed(ro.seed ^ 0x5eedULL);
      std::vector<torch::Tensor> right, hit, preds;
      for (int64_t k = 0; k < R; ++k) {
        const auto pred = target.predict(r.x_adv);
        preds.push_back(pred);
        right.push_back(pred.eq(y));
        hit.push_back(r.targets.defined() ? pred.eq(r.targets) : pred.ne(y));
      }
      adv_correct = torch::stack(right);
      success = torch::stack(hit);
      r.adversarial_prediction = torch::stack(preds);
    }
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    own.index_copy_(1, bi, adv_correct.cpu());
    own_pred.index_copy_(1, bi, r.adversarial_prediction.cpu().to(torch::kLong));
    if (task.save_adversarial) saved.push_back(r.x_adv.detach().to(torch::kCPU, torch::kFloat).contiguous());
    successes += success.sum().item<int64_t>();
    linf.index_copy_(0, bi, r.linf.cpu().to(torch::kFloat));
    l2.index_copy_(0, bi, r.l2.cpu().to(torch::kFloat));
    l0.index_copy_(0, bi, r.l0.cpu().to(torch::kFloat));
    loss.index_copy_(0, bi, r.final_loss.detach().cpu().to(torch::kFloat));
    evals.index_copy_(0, bi, r.gradient_evaluations.cpu());
    if (r.targets.defined()) targets.index_copy_(0, bi, r.targets.cpu());
    const CheckBatch batch{x, x_before, y, r.x_adv, adv_correct, &ro};
    checks.batch = &batch;
    const auto c0 = Clock::now();
    run_checks(CheckStage::kBatch, checks);
    check_seconds += std::chrono::duration<double>(Clock::now() - c0).count();
    checks.batch = nullptr;
  }
  if (progress_) progress_(plan.id, n_todo, n_todo);

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
  c.hash = task.hash;
  c.repeats = R;
  c.eot_samples = ro.eot.samples;
  c.config_json = nlohmann::json{{"attack", a.to_json()},
                                 {"options", attack->effective_options(threat)},
                                 {"loss", attacks::to_string(attack->loss_kind())},
                                 {"eps", job.eps_text},
                                 {"eot_samples", ro.eot.samples},
                                 {"eot_reduction", attacks::to_string(ro.eot.reduction)},
                                 {"repeats", R},
                                 {"cascade", settings_.cascade},
                                 {"seed", cell_seed},
                                 {"model", job.model->to_json()}}
                      .dump();
  c.index = to_vector<int64_t>(torch::arange(N, torch::kLong));
  c.label = to_vector<int64_t>(ds_.labels);
  if (job.targeted) c.target = to_vector<int64_t>(targets);
  c.attacked = to_vector<uint8_t>(todo.to(torch::kUInt8));
  c.clean_correct = to_vector<uint8_t>(target_m.clean.to(torch::kUInt8));
  c.adversarial_correct = to_vector<uint8_t>((prev_adv & own).to(torch::kUInt8));
  c.linf = to_vector<float>(linf);
  c.l2 = to_vector<float>(l2);
  c.l0 = to_vector<float>(l0);
  c.final_loss = to_vector<float>(loss);
  c.gradient_evaluations = to_vector<int64_t>(evals);
  c.clean_prediction = to_vector<int64_t>(target_m.clean_prediction);
  c.adversarial_prediction = to_vector<int64_t>(own_pred);
  if (task.save_adversarial) {
    const auto shape = ds_.images.sizes().slice(1);
    c.adversarial_shape.assign(shape.begin(), shape.end());
    if (!saved.empty()) c.adversarial = to_vector<float>(torch::cat(saved));
    saved.clear();
    c.adversarial_index = to_vector<int64_t>(idx);
  }
  c.summarise();
  const double total_evals = evals.to(torch::kDouble).sum().item<double>();
  c.summary["seconds"] = seconds;
  c.summary["images_per_second"] = seconds > 0 ? static_cast<double>(n_todo) / seconds : 0;
  c.summary["gradient_evaluations_per_second"] = seconds > 0 ? total_evals / seconds : 0;
  // Untargeted: x_adv misclassified; targeted: classified as the target; over the attacked examples and the repeats.
  c.summary["attack_success"] = n_todo > 0 ? static_cast<double>(successes) / static_cast<double>(R * n_todo)
                                           : std::numeric_limits<double>::quiet_NaN();
  run_checks(CheckStage::kBatch, checks);  // batch == nullptr: the cell is done, flag
  c.flags = std::move(checks.flags);
  // The probes and the audit run on the first examples this cell attacked,
  // with seeds of their own.
  auto sub_context = [&](int64_t count, const std::string& seed_suffix) {
    const auto sub = idx.slice(0, 0, std::min<int64_t>(count, n_todo));
    CheckContext ctx;
    ctx.settings = &settings_;
    ctx.seed = derive_seed(settings_.seed, plan.id + seed_suffix);
    ctx.model = &target;
    ctx.repeats = R;
    ctx.x = ds_.images.index_select(0, sub).to(device_);
    ctx.y = ds_.labels.index_select(0, sub).to(device_);
    ctx.attack = &a;
    ctx.threat = &threat;
    ctx.source = &target;
    ctx.cell_correct = own.index_select(1, sub);
    return ctx;
  };
  const auto probes_start = Clock::now();
  if ((task.probe || settings_.audit) && !transfer && settings_.probe_examples > 0 && n_todo > 0) {
    // Cheap probes, against the cell's own outcome on the same examples.
    auto probe = sub_context(settings_.probe_examples, ".probe");
    if (progress_) progress_(plan.id + " (probes)", n_todo, n_todo);
    run_checks(CheckStage::kCellProbe, probe);
    c.flags.insert(c.flags.end(), probe.flags.begin(), probe.flags.end());
  }
  c.summary["probe_seconds"] = std::chrono::duration<double>(Clock::now() - probes_start).count();
  if (settings_.audit && !transfer && n_todo > 0) {
    // The expensive checks on the first audit_examples.
    auto audit = sub_context(settings_.audit_examples, ".audit");
    run_checks(CheckStage::kCellAudit, audit);
    c.flags.insert(c.flags.end(), audit.flags.begin(), audit.flags.end());
  }
  check_seconds += std::chrono::duration<double>(Clock::now() - probes_start).count();
  c.summary["check_seconds"] = check_seconds;
  return c;
}

}  // namespace imbench::harness
