// Every soundness check proven (docs/EVALUATION.md, checks 1-12): for each
// row of check_registry() a test with a planted defect that makes the check
// fire (CheckFires.<Row>) and one on a sound model or attack where it stays
// silent (CheckSilent.<Row>). The checks run as `imbench run` runs them:
// through CellEvaluator (prepare, describe, evaluate) for the per-model,
// per-cell, probe and audit stages, through run_checks on a CheckBatch for
// the batch-level validity check, and on a hand-made ResultFile for the
// cross-cell checks. Checks.EveryRegisteredCheckIsProven ties the two
// suites to the registry.
//
// Most tests use one closed-form model, LineModel: two classes on x in
// [0, 1]^4, logits (0, u) with u = sum(x) - 2. An example's margin |u| says
// exactly what an attack can do: under Linf a perturbation of size eps moves
// u by at most 4 eps, each PGD step of size a by exactly 4 a. Its planted
// defects: a share of the samples rounds the input (a zero input gradient:
// masked gradients), Gaussian noise on u, outputs passed through a softmax.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "harness/checks.h"
#include "harness/evaluator.h"
#include "models/det.h"
#include "models/family.h"
#include "models/train.h"

namespace {

using namespace imbench;
using namespace imbench::harness;

constexpr double kInf = std::numeric_limits<double>::infinity();

struct LineOptions {
  /// Share of the samples (per example and call) that round the input to
  /// 1/1000 first: torch::round has a zero derivative, so those samples give
  /// no input gradient while the logits move by at most 0.002. 1: every
  /// gradient is zero (masked); between 0 and 1: EOT has to find the others.
  double rounded = 0;
  double noise = 0;            ///< std of Gaussian noise added to u on every call
  bool stochastic = false;     ///< what is_stochastic() declares
  bool probabilities = false;  ///< return softmax(logits) instead of logits
};

class LineModel : public models::Model {
 public:
  explicit LineModel(LineOptions o) : o_(o) {}
  torch::Tensor logits(const torch::Tensor& x) override {
    auto in = x;
    if (o_.rounded > 0) {
      const auto rounded = torch::round(x * 1000) / 1000;
      const auto g = torch::bernoulli(torch::full({x.size(0), 1}, o_.rounded, x.options()));
      in = g * rounded + (1 - g) * x;
    }
    auto u = in.sum(1, true) - 2;
    if (o_.noise > 0) u = u + o_.noise * torch::randn_like(u);
    const auto z = torch::cat({torch::zeros_like(u), u}, 1);
    return o_.probabilities ? torch::softmax(z, 1) : z;
  }
  bool is_stochastic() const override { return o_.stochastic; }
  int64_t num_classes() const override { return 2; }
  std::vector<int64_t> input_shape() const override { return {4}; }
  std::string description() const override { return "line"; }
  torch::Device device() const override { return torch::kCPU; }
  void to(torch::Device) override {}
  void set_training(bool) override {}
  std::vector<torch::Tensor> parameters() override { return {}; }

 private:
  LineOptions o_;
};

std::unique_ptr<models::Model> line(LineOptions o) { return std::make_unique<LineModel>(o); }

// 40 examples of margin `margin` (breakable at Linf eps when margin < 4 eps)
// and 8 of margin 1.2 (robust up to eps 0.3), classes alternating: x = 0.5 +
// s m / 4 in every coordinate gives u = s m, class 1 for s = +1.
data::Dataset line_data(double margin, int64_t breakable = 40, int64_t robust = 8) {
  std::vector<torch::Tensor> xs;
  std::vector<int64_t> ys;
  for (int64_t i = 0; i < breakable + robust; ++i) {
    const double m = i < breakable ? margin : 1.2;
    const int64_t y = i % 2;
    xs.push_back(torch::full({4}, 0.5 + (y == 1 ? 1 : -1) * m / 4));
    ys.push_back(y);
  }
  data::Dataset ds;
  ds.name = "line";
  ds.split = "test";
  ds.images = torch::stack(xs).to(torch::kFloat);
  ds.labels = torch::tensor(ys, torch::kLong);
  ds.num_classes = 2;
  return ds;
}

EvaluationSettings settings(bool audit = false, int64_t eot = 16) {
  EvaluationSettings s;
  s.seed = 5;
  s.batch_size = 32;  // two batches of the 48 examples: the batch checks count across them
  s.eot = eot;
  s.repeats = 3;
  s.probe_queries = 0;  // Square's probe (check 9) off but in its own tests: it is most of the time
  s.audit = audit;
  return s;
}

// One model as `imbench run` holds it: the evaluator over a data set, the
// model prepared (eval mode, clean predictions), describe() and evaluate().
class Bench {
 public:
  Bench(std::unique_ptr<models::Model> model, data::Dataset ds, EvaluationSettings s)
      : ds_(std::move(ds)), evaluator_(ds_, torch::kCPU, s) {
    models::LoadedModel loaded;
    loaded.model = std::move(model);
    model_ = evaluator_.prepare("m", std::move(loaded), "sha", "model 'm'");
  }
  /// kModel (and kModelAudit with settings.audit).
  std::vector<reports::Flag> model_flags() { return evaluator_.describe(model_, "{}").flags; }
  /// One white-box cell: kBatch, kCellProbe, and kCellAudit with settings.audit.
  reports::CellResult cell(const std::string& kind, const nlohmann::json& options, double eps,
                           const std::string& norm = "linf") {
    MatrixModel mm;
    mm.name = "m";
    MatrixAttack a;
    a.name = kind;
    a.kind = kind;
    a.options = options;
    a.norm = norm;
    JobPlan job;
    job.group = "m." + norm;
    job.model = &mm;
    job.norm = norm;
    job.eps = eps;
    job.eps_text = fmt::format("{:g}", eps);
    job.cells = {CellPlan{"m." + kind + "." + norm, &a, 0}};
    CellTask task;
    task.job = &job;
    task.plan = &job.cells[0];
    task.target = &model_;
    task.hash = "h";
    // The default probes run on the cells probed_cells picks (a lone gradient cell at a finite eps is one).
    task.probe = probed_cells({job}).count(job.cells[0].id) > 0;
    return evaluator_.evaluate(task);
  }
  models::Model& model() { return model_.model(); }

 private:
  data::Dataset ds_;  // before evaluator_, which holds a reference to it
  CellEvaluator evaluator_;
  EvaluatedModel model_;
};

// The one flag of (check, name) among `flags`; a test failure if there is not exactly one.
reports::Flag the_flag(const std::vector<reports::Flag>& flags, int check, const std::string& name) {
  std::vector<reports::Flag> found;
  for (const auto& f : flags)
    if (f.check == check && f.name == name) found.push_back(f);
  if (found.size() != 1) {
    ADD_FAILURE() << found.size() << " flags of check " << check << " '" << name << "' (expected one)";
    return {check, name, false, "<missing>"};
  }
  // What the check measured, for the log.
  std::printf("[ measured ] %d %s: %s: %s\n", check, name.c_str(), found[0].failed ? "FIRES" : "silent",
              found[0].detail.c_str());
  return found[0];
}

void expect_fires(const std::vector<reports::Flag>& flags, int check, const std::string& name) {
  const auto f = the_flag(flags, check, name);
  EXPECT_TRUE(f.failed) << check << " " << name << ": " << f.detail;
}
void expect_silent(const std::vector<reports::Flag>& flags, int check, const std::string& name) {
  const auto f = the_flag(flags, check, name);
  EXPECT_FALSE(f.failed) << check << " " << name << ": " << f.detail;
}

// PGD options of the tests (Linf eps 0.1 unless said otherwise).
const nlohmann::json kPgd = {{"steps", 10}};  // step 2.5 eps / 10: reaches the ball's vertex in 4 steps
const nlohmann::json kPgdNoStart = {{"steps", 10}, {"random_start", false}};
// A useless step: 10 steps of 1e-4 move u by at most 0.004.
const nlohmann::json kPgdUselessStep = {{"steps", 10}, {"step_size", 1e-4}, {"random_start", false}};

// ---- 1 randomness ---------------------------------------------------------

TEST(CheckFires, Randomness) {
  // Noise on the logits, declared deterministic: attacked without EOT.
  Bench b(line({/*rounded=*/0, /*noise=*/0.5}), line_data(0.2), settings());
  expect_fires(b.model_flags(), 1, "randomness");
}

TEST(CheckSilent, Randomness) {
  Bench deterministic(line({}), line_data(0.2), settings());
  expect_silent(deterministic.model_flags(), 1, "randomness");
  // A random model declared stochastic is fine too.
  Bench stochastic(line({/*rounded=*/0, /*noise=*/0.5, /*stochastic=*/true}), line_data(0.2), settings());
  expect_silent(stochastic.model_flags(), 1, "randomness");
}

// ---- 4 logits ---------------------------------------------------------------

TEST(CheckFires, Logits) {
  Bench b(line({0, 0, false, /*probabilities=*/true}), line_data(0.2), settings());
  expect_fires(b.model_flags(), 4, "logits");
}

TEST(CheckSilent, Logits) {
  Bench b(line({}), line_data(0.2), settings());
  expect_silent(b.model_flags(), 4, "logits");
}

// ---- 5 gradient-health ----------------------------------------------------------

TEST(CheckFires, GradientHealth) {
  // A non-differentiable step (rounding) before the line: every input gradient is zero.
  Bench b(line({/*rounded=*/1}), line_data(0.2), settings());
  expect_fires(b.model_flags(), 5, "gradient-health");
}

TEST(CheckSilent, GradientHealth) {
  Bench b(line({}), line_data(0.2), settings());
  expect_silent(b.model_flags(), 5, "gradient-health");
}

// ---- 12 model-mode ----------------------------------------------------------------

models::ModelSpec small_spec(const std::string& family) {
  auto spec = models::default_spec(family, {4}, 2);
  spec.hidden = {16, 16};
  models::apply_preset("quick", spec);
  return spec;
}

// A DET whose set_training is broken (ignores its argument): left in training
// mode, the evaluator's set_training(false) cannot put it in eval mode.
class StuckInTrainingDet : public models::DetModel {
 public:
  using DetModel::DetModel;
  void set_training(bool) override {}
};

TEST(CheckFires, ModelMode) {
  torch::manual_seed(0);
  auto det = std::make_unique<StuckInTrainingDet>(small_spec("det"));
  det->module().train();
  Bench d(std::move(det), line_data(0.2), settings());
  expect_fires(d.model_flags(), 12, "model-mode");
  // An SFNN left with its sampling off (mean-field): evaluated as a deterministic model.
  auto sfnn = models::create_model(small_spec("sfnn"));
  sfnn->set_sampling(models::Sampling::kMeanField);
  Bench s(std::move(sfnn), line_data(0.2), settings());
  expect_fires(s.model_flags(), 12, "model-mode");
}

TEST(CheckSilent, ModelMode) {
  torch::manual_seed(0);
  // A DET left in training mode is put in eval mode by the evaluator (prepare) before the checks.
  auto det = models::create_model(small_spec("det"));
  det->module().train();
  Bench d(std::move(det), line_data(0.2), settings());
  expect_silent(d.model_flags(), 12, "model-mode");
  // An SFNN sampling, in eval mode.
  Bench s(models::create_model(small_spec("sfnn")), line_data(0.2), settings());
  expect_silent(s.model_flags(), 12, "model-mode");
}

// ---- 11 validity (kBatch, on a CheckBatch as the evaluator builds it) ---------------

// Runs PGD on the batch as CellEvaluator::evaluate does, lets `plant` tamper
// with (x, x_adv) afterwards, then runs the kBatch checks on the batch and at the cell's end.
std::vector<reports::Flag> validity_flags(const std::function<void(torch::Tensor& x, torch::Tensor& x_adv)>& plant) {
  LineModel model({});
  const auto ds = line_data(0.2);
  auto s = settings();
  MatrixAttack a;
  a.name = a.kind = "pgd";
  a.options = kPgd;
  attacks::ThreatModel threat;
  threat.eps = 0.1;
  attacks::RunOptions ro;
  ro.evaluate_clean = false;
  ro.seed = 17;
  auto x = ds.images.clone();
  const auto x_before = x.clone();
  const auto r = attacks::create_attack("pgd", kPgd)->run(model, x, ds.labels, threat, ro);
  auto x_adv = r.x_adv.clone();
  plant(x, x_adv);
  CheckContext checks;
  checks.settings = &s;
  checks.model = &model;
  checks.repeats = 1;
  checks.attack = &a;
  checks.threat = &threat;
  checks.source = &model;
  const CheckBatch batch{x, x_before, ds.labels, x_adv, r.adversarial_correct, &ro};
  checks.batch = &batch;
  run_checks(CheckStage::kBatch, checks);
  checks.batch = nullptr;
  run_checks(CheckStage::kBatch, checks);
  return checks.flags;
}

TEST(CheckFires, Validity) {
  // An example outside the eps-ball.
  expect_fires(validity_flags([](torch::Tensor& x, torch::Tensor& x_adv) { x_adv[0] = x[0] + 0.2; }), 11, "validity");
  // An attack that wrote into its input (x differs from the copy taken before it ran).
  expect_fires(validity_flags([](torch::Tensor& x, torch::Tensor&) { x[1][0] += 0.001f; }), 11, "validity");
}

TEST(CheckSilent, Validity) {
  expect_silent(validity_flags([](torch::Tensor&, torch::Tensor&) {}), 11, "validity");
}

// ---- 6 iterative-vs-single-step ---------------------------------------------------

TEST(CheckFires, IterativeVsSingleStep) {
  // PGD with a useless step leaves the margin-0.2 examples that FGSM (a step of eps: 0.4) breaks.
  Bench b(line({}), line_data(0.2), settings());
  expect_fires(b.cell("pgd", kPgdUselessStep, 0.1).flags, 6, "iterative-vs-single-step");
}

TEST(CheckSilent, IterativeVsSingleStep) {
  // PGD-10 breaks every margin-0.2 example; FGSM cannot break the margin-1.2 ones it leaves.
  Bench b(line({}), line_data(0.2), settings());
  expect_silent(b.cell("pgd", kPgd, 0.1).flags, 6, "iterative-vs-single-step");
}

// ---- 10 unbounded-cell --------------------------------------------------------------

TEST(CheckFires, UnboundedCell) {
  // CW at eps = inf with a budget that finds nothing: one Adam step, a tiny constant.
  Bench b(line({}), line_data(0.2, /*breakable=*/48, /*robust=*/0), settings());
  const auto c = b.cell("cw", {{"steps", 1}, {"binary_search_steps", 1}, {"initial_const", 1e-4}}, kInf, "l2");
  expect_fires(c.flags, 10, "unbounded-cell");
}

TEST(CheckSilent, UnboundedCell) {
  Bench b(line({}), line_data(0.2, /*breakable=*/48, /*robust=*/0), settings());
  const auto c = b.cell("cw", {{"steps", 50}, {"binary_search_steps", 3}, {"initial_const", 1.0}}, kInf, "l2");
  expect_silent(c.flags, 10, "unbounded-cell");
}

// ---- 10 unbounded-attack (kModelAudit) ---------------------------------------------

TEST(CheckFires, UnboundedAttack) {
  // Masked gradients: PGD-100 over the whole box stays at its random start.
  Bench b(line({/*rounded=*/1}), line_data(0.2), settings(/*audit=*/true));
  expect_fires(b.model_flags(), 10, "unbounded-attack");
}

TEST(CheckSilent, UnboundedAttack) {
  Bench b(line({}), line_data(0.2), settings(/*audit=*/true));
  expect_silent(b.model_flags(), 10, "unbounded-attack");
}

// ---- 8 convergence (kCellAudit) ----------------------------------------------------

TEST(CheckFires, Convergence) {
  // Two steps of 0.025 move u by 0.2 < 0.3; doubled to four steps, by 0.4: the budget was too small.
  Bench b(line({}), line_data(0.3), settings(/*audit=*/true));
  const auto c = b.cell("pgd", {{"steps", 2}, {"step_size", 0.025}, {"random_start", false}}, 0.1);
  expect_fires(c.flags, 8, "convergence");
}

TEST(CheckSilent, Convergence) {
  Bench b(line({}), line_data(0.3), settings(/*audit=*/true));
  expect_silent(b.cell("pgd", kPgd, 0.1).flags, 8, "convergence");
}

// ---- 9 noise-vs-white-box (kCellAudit) ----------------------------------------------

TEST(CheckFires, NoiseVsWhiteBox) {
  // Random signs of size eps move u by 0.2 or 0.4 towards the boundary in 5 of 16 draws,
  // enough for margin 0.15; the PGD with a useless step breaks nothing.
  Bench b(line({}), line_data(0.15), settings(/*audit=*/true));
  expect_fires(b.cell("pgd", kPgdUselessStep, 0.1).flags, 9, "noise-vs-white-box");
}

TEST(CheckSilent, NoiseVsWhiteBox) {
  Bench b(line({}), line_data(0.15), settings(/*audit=*/true));
  expect_silent(b.cell("pgd", kPgd, 0.1).flags, 9, "noise-vs-white-box");
}

// ---- 2 eot-doubling (kCellProbe) and eot-convergence (kCellAudit) ---------------------
//
// A randomised-quantisation layer: 90% of the samples round the input (no
// gradient). A PGD step moves only when one of the S EOT samples kept the
// gradient, with probability 1 - 0.9^S: 0.10 (S = 1), 0.41 (5), 0.57 (8),
// 0.81 (16), 0.88 (20), 0.999 (64). Margin 0.26 needs 7 of the 10 steps of
// 0.01 (each moves u by 0.04): robust with probability 1.00 / 0.94 / 0.69 /
// 0.10 / 0.03 / 0.00. The robustness is the EOT budget's, not the model's.

const nlohmann::json kPgdSmallSteps = {{"steps", 10}, {"step_size", 0.01}, {"random_start", false}};
constexpr LineOptions kQuantised90{/*rounded=*/0.9, /*noise=*/0.002, /*stochastic=*/true};

TEST(CheckFires, EotDoubling) {
  Bench b(line(kQuantised90), line_data(0.26), settings(false, /*eot=*/8));
  expect_fires(b.cell("pgd", kPgdSmallSteps, 0.1).flags, 2, "eot-doubling");
}

TEST(CheckSilent, EotDoubling) {
  // The same layer attacked with enough samples: 64 -> 128 changes nothing.
  Bench b(line(kQuantised90), line_data(0.26), settings(false, /*eot=*/64));
  expect_silent(b.cell("pgd", kPgdSmallSteps, 0.1).flags, 2, "eot-doubling");
}

TEST(CheckFires, EotConvergence) {
  // EOT 1 / 5 / 20: still dropping from 5 to 20.
  Bench b(line(kQuantised90), line_data(0.26), settings(/*audit=*/true, 8));
  expect_fires(b.cell("pgd", kPgdSmallSteps, 0.1).flags, 2, "eot-convergence");
}

TEST(CheckSilent, EotConvergence) {
  // Half the samples keep the gradient: EOT 5 already moves on 97% of the
  // steps, so 5 and 20 agree (EOT 1 looking more robust is allowed).
  Bench b(line({/*rounded=*/0.5, /*noise=*/0.002, /*stochastic=*/true}), line_data(0.26), settings(true, 8));
  expect_silent(b.cell("pgd", kPgdSmallSteps, 0.1).flags, 2, "eot-convergence");
}

// ---- 3 fixed-noise-control (kCellProbe and kCellAudit) --------------------------------
//
// 70% of the samples round the input. With 16 EOT samples the stochastic
// model is broken (a step moves with probability 1 - 0.7^16 = 0.997); frozen,
// the examples whose one frozen draw rounds stay at zero gradient and the
// attack fails on them. The frozen model is a deterministic model on which
// the gradient attack does worse: the attack, not the noise, is failing.

constexpr LineOptions kQuantised70{/*rounded=*/0.7, /*noise=*/0.002, /*stochastic=*/true};
constexpr LineOptions kNoisy{/*rounded=*/0, /*noise=*/0.002, /*stochastic=*/true};

TEST(CheckFires, FixedNoiseControlProbe) {
  Bench b(line(kQuantised70), line_data(0.15), settings());
  expect_fires(b.cell("pgd", kPgdNoStart, 0.1).flags, 3, "fixed-noise-control");
}

TEST(CheckSilent, FixedNoiseControlProbe) {
  Bench b(line(kNoisy), line_data(0.15), settings());
  expect_silent(b.cell("pgd", kPgdNoStart, 0.1).flags, 3, "fixed-noise-control");
}

TEST(CheckFires, FixedNoiseControlAudit) {
  Bench b(line(kQuantised70), line_data(0.15), settings(/*audit=*/true));
  expect_fires(b.cell("pgd", kPgdNoStart, 0.1).flags, 3, "fixed-noise-control");
}

TEST(CheckSilent, FixedNoiseControlAudit) {
  Bench b(line(kNoisy), line_data(0.15), settings(/*audit=*/true));
  expect_silent(b.cell("pgd", kPgdNoStart, 0.1).flags, 3, "fixed-noise-control");
}

// ---- 9 black-box-vs-white-box (kCellProbe) -------------------------------------------

EvaluationSettings black_box_settings() {
  auto s = settings();
  s.probe_queries = 100;
  return s;
}

TEST(CheckFires, BlackBoxVsWhiteBox) {
  // A stochastic model whose every sample rounds its input: PGD gets no
  // gradient, Square (queries only) breaks the margin-0.15 examples.
  Bench b(line({/*rounded=*/1, /*noise=*/0.002, /*stochastic=*/true}), line_data(0.15), black_box_settings());
  expect_fires(b.cell("pgd", kPgd, 0.1).flags, 9, "black-box-vs-white-box");
}

TEST(CheckSilent, BlackBoxVsWhiteBox) {
  // PGD breaks the breakable examples; Square cannot break the margin-1.2 ones left.
  Bench b(line(kNoisy), line_data(0.15), black_box_settings());
  expect_silent(b.cell("pgd", kPgd, 0.1).flags, 9, "black-box-vs-white-box");
}

// ---- 7 eps-monotonicity and 9 white-vs-transfer (kCrossCell, on a results file) --------

// A cell of 100 examples, `robust` of them correct after the attack (one repeat).
reports::CellResult cell_record(const std::string& attack, double eps, int robust, const std::string& group,
                                int64_t position, const std::string& source = "") {
  reports::CellResult c;
  c.id = fmt::format("m.{}.linf-{:g}", attack, eps);
  c.model = "m";
  c.attack = attack;
  c.attack_kind = "pgd";
  c.norm = "linf";
  c.eps = eps;
  c.eps_text = fmt::format("{:g}", eps);
  c.group = group;
  c.cascade_position = position;
  c.source_model = source;
  c.repeats = 1;
  for (int i = 0; i < 100; ++i) {
    c.index.push_back(i);
    c.attacked.push_back(1);
    c.clean_correct.push_back(1);
    c.adversarial_correct.push_back(i < robust ? 1 : 0);
  }
  c.summarise();
  return c;
}

std::vector<reports::Flag> cross_cell_flags(reports::ResultFile& file, std::size_t cell) {
  CheckContext ctx;
  ctx.file = &file;
  run_checks(CheckStage::kCrossCell, ctx);
  return file.cells.at(cell).flags;
}

TEST(CheckFires, EpsMonotonicity) {
  reports::ResultFile f;
  f.root["num_classes"] = "10";
  // 45% robust at eps 0.2 after 30% at eps 0.1; 40% at eps 1 (the whole box), above chance.
  f.cells = {cell_record("pgd", 0.1, 30, "a", 0), cell_record("pgd", 0.2, 45, "b", 0),
             cell_record("pgd", 1.0, 40, "c", 0)};
  expect_fires(cross_cell_flags(f, 1), 7, "eps-monotonicity");
  expect_fires(f.cells[2].flags, 7, "eps-monotonicity");
}

TEST(CheckSilent, EpsMonotonicity) {
  reports::ResultFile f;
  f.root["num_classes"] = "10";
  // Falling, within one example of slack, and at chance over the whole box.
  f.cells = {cell_record("pgd", 0.1, 45, "a", 0), cell_record("pgd", 0.2, 30, "b", 0),
             cell_record("pgd", 0.3, 31, "c", 0), cell_record("pgd", 1.0, 10, "d", 0)};
  for (std::size_t i = 1; i < 4; ++i) expect_silent(cross_cell_flags(f, i), 7, "eps-monotonicity");
}

TEST(CheckFires, WhiteVsTransfer) {
  reports::ResultFile f;
  // In one cascade group, transfer from another model after white-box PGD takes 45% down to 20%.
  f.cells = {cell_record("pgd", 0.1, 45, "g", 0), cell_record("pgd-transfer", 0.1, 20, "g", 1, "det")};
  expect_fires(cross_cell_flags(f, 1), 9, "white-vs-transfer");
  expect_fires(f.cells[0].flags, 9, "white-vs-transfer");  // the white-box cell is marked too
}

TEST(CheckSilent, WhiteVsTransfer) {
  reports::ResultFile f;
  // The transfer attack breaks nothing the white-box attack left, or one
  // example of 100: exactly the 1-point slack, whatever the accuracies'
  // rounding (0.45 - 0.44 > 0.01 in doubles).
  for (int left : {45, 44}) {
    f.cells = {cell_record("pgd", 0.1, 45, "g", 0), cell_record("pgd-transfer", 0.1, left, "g", 1, "det")};
    expect_silent(cross_cell_flags(f, 1), 9, "white-vs-transfer");
  }
  for (int robust = 1; robust <= 100; ++robust) {
    f.cells = {cell_record("pgd", 0.1, robust, "g", 0), cell_record("pgd-transfer", 0.1, robust - 1, "g", 1, "det")};
    const auto flags = cross_cell_flags(f, 1);
    ASSERT_EQ(flags.size(), 1u);
    EXPECT_FALSE(flags[0].failed) << flags[0].detail;
  }
}

// ---- every row of the registry is proven ----------------------------------------------

// The test names of each registry row, (number, name, stage) -> CheckFires.<X> / CheckSilent.<X>.
struct Proof {
  int number;
  std::string name;
  CheckStage stage;
  std::string test;
};

std::vector<Proof> proofs() {
  using S = CheckStage;
  return {
      {1, "randomness", S::kModel, "Randomness"},
      {4, "logits", S::kModel, "Logits"},
      {5, "gradient-health", S::kModel, "GradientHealth"},
      {12, "model-mode", S::kModel, "ModelMode"},
      {11, "validity", S::kBatch, "Validity"},
      {6, "iterative-vs-single-step", S::kBatch, "IterativeVsSingleStep"},
      {10, "unbounded-cell", S::kBatch, "UnboundedCell"},
      {2, "eot-doubling", S::kCellProbe, "EotDoubling"},
      {3, "fixed-noise-control", S::kCellProbe, "FixedNoiseControlProbe"},
      {9, "black-box-vs-white-box", S::kCellProbe, "BlackBoxVsWhiteBox"},
      {7, "eps-monotonicity", S::kCrossCell, "EpsMonotonicity"},
      {9, "white-vs-transfer", S::kCrossCell, "WhiteVsTransfer"},
      {10, "unbounded-attack", S::kModelAudit, "UnboundedAttack"},
      {8, "convergence", S::kCellAudit, "Convergence"},
      {9, "noise-vs-white-box", S::kCellAudit, "NoiseVsWhiteBox"},
      {2, "eot-convergence", S::kCellAudit, "EotConvergence"},
      {3, "fixed-noise-control", S::kCellAudit, "FixedNoiseControlAudit"},
  };
}

TEST(Checks, EveryRegisteredCheckIsProven) {
  // The tests this binary holds, by suite.
  std::map<std::string, std::set<std::string>> tests;
  const auto& unit = *testing::UnitTest::GetInstance();
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const auto& suite = *unit.GetTestSuite(i);
    for (int j = 0; j < suite.total_test_count(); ++j) tests[suite.name()].insert(suite.GetTestInfo(j)->name());
  }
  const auto table = proofs();
  std::set<std::string> named;
  for (const auto& check : check_registry()) {
    int rows = 0;
    for (const auto& p : table) {
      if (p.number != check.number || p.name != check.name || p.stage != check.stage) continue;
      ++rows;
      EXPECT_EQ(tests["CheckFires"].count(p.test), 1u) << "no CheckFires." << p.test << " for " << check.name;
      EXPECT_EQ(tests["CheckSilent"].count(p.test), 1u) << "no CheckSilent." << p.test << " for " << check.name;
    }
    EXPECT_EQ(rows, 1) << "check " << check.number << " " << check.name << " (" << to_string(check.stage)
                       << "): no row in proofs()";
  }
  EXPECT_EQ(table.size(), check_registry().size());  // no row for a check that is not registered
  // And no test in the two suites that the table does not name.
  for (const auto& p : table) named.insert(p.test);
  for (const char* suite : {"CheckFires", "CheckSilent"})
    for (const auto& t : tests[suite]) EXPECT_EQ(named.count(t), 1u) << suite << "." << t << " is not in proofs()";
}

}  // namespace
