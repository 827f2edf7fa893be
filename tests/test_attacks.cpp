// Tests of the attack engine: invariants of every registered attack,
// closed forms on a linear model, orderings, EOT, and a differential test of
// PGD against a plain reference loop.
#include <gmock/gmock.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <algorithm>
#include <map>
#include <numeric>

#include "attacks/apgd.h"
#include "attacks/attack.h"
#include "attacks/cw.h"
#include "attacks/pgd.h"
#include "attacks/square.h"
#include "core/errors.h"
#include "data/synthetic.h"
#include "models/det.h"
#include "models/stochastic.h"
#include "models/torchscript.h"
#include "models/train.h"
#include "tests/test_support.h"

using namespace imbench;
using namespace imbench::attacks;
using testing::HasSubstr;

namespace {

data::Dataset toy(int64_t n, const std::string& split, std::vector<int64_t> shape = {1, 8, 8}) {
  data::SyntheticOptions o;
  o.size = n;
  o.noise = 0.2;
  o.seed = 5;
  o.example_shape = std::move(shape);
  return data::make_synthetic(o, split);
}

models::ModelSpec spec_for(const std::string& family) {
  models::ModelSpec s;
  s.family = family;
  s.input_shape = {1, 8, 8};
  s.hidden = {32, 32};
  s.num_classes = 10;
  s.hyper = models::find_family(family).default_hyper(2);
  if (family != "det" && family != "vib") {
    s.hyper["train_samples"] = std::vector<int64_t>{4, 4};
    s.hyper["test_samples"] = std::vector<int64_t>{8, 8};
  }
  return s;
}

// A small undefended classifier trained once per family and shared by the tests.
models::TrainableModel& trained(const std::string& family) {
  static std::map<std::string, std::unique_ptr<models::TrainableModel>> cache;
  auto& slot = cache[family];
  if (!slot) {
    torch::manual_seed(0);
    slot = models::create_model(spec_for(family));
    models::TrainOptions o;
    o.epochs = 8;
    o.validation_size = 0;
    o.learning_rate = 3e-3;
    models::train(*slot, toy(2000, "train"), nullptr, o);
  }
  return *slot;
}

// A linear two-class model: logits = (0, w.x + b), built on DET's layers.
struct LinearTwoClass {
  std::unique_ptr<models::TrainableModel> model;
  torch::Tensor w;
  double b;
};
LinearTwoClass linear_model() {
  models::ModelSpec s;
  s.family = "det";
  s.input_shape = {4};
  s.hidden = {};
  s.num_classes = 2;
  LinearTwoClass l{models::create_model(s), torch::tensor({0.5f, -1.0f, 2.0f, 0.25f}), 0.1};
  auto& layer = *dynamic_cast<models::MlpImpl&>(l.model->module()).layers[0]->as<torch::nn::Linear>();
  torch::NoGradGuard g;
  layer.weight.zero_();
  layer.weight[1].copy_(l.w);
  layer.bias.copy_(torch::tensor({0.0f, static_cast<float>(l.b)}));
  return l;
}

ThreatModel threat(Norm norm, double eps) {
  ThreatModel t;
  t.norm = norm;
  t.eps = eps;
  return t;
}

// Every registered attack with options small enough for tests.
std::unique_ptr<Attack> quick_attack(const std::string& name, bool randomness = true) {
  nlohmann::json o = nlohmann::json::object();
  if (name == "pgd") o = {{"steps", 10}, {"random_start", randomness}};
  if (name == "cw") o = {{"steps", 50}, {"binary_search_steps", 3}, {"initial_const", 1.0}};
  if (name == "apgd-ce" || name == "apgd-dlr") o = {{"steps", 20}, {"random_start", randomness}};
  if (name == "square") o = {{"queries", 300}};  // random by design: no deterministic mode
  return create_attack(name, o);
}

std::vector<std::pair<std::string, Norm>> every_attack_and_norm() {
  std::vector<std::pair<std::string, Norm>> out;
  for (const auto& name : attack_names())
    for (Norm n : {Norm::kLinf, Norm::kL2})
      if (create_attack(name)->supports(n)) out.emplace_back(name, n);
  return out;
}

double eps_for(Norm n) { return n == Norm::kLinf ? 0.1 : 1.0; }

}  // namespace

TEST(AttackRegistry, ListsTheAttacksAndRejectsUnknownNamesAndOptions) {
  EXPECT_EQ(attack_names(), (std::vector<std::string>{"fgsm", "pgd", "cw", "apgd-ce", "apgd-dlr", "square"}));
  try {
    create_attack("pgdd");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("did you mean 'pgd'"));
  }
  try {
    create_attack("pgd", {{"stpes", 3}});
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("did you mean 'steps'"));
  }
  EXPECT_THROW(create_attack("pgd", {{"steps", "many"}}), UsageError);
  EXPECT_THROW(create_attack("pgd", {{"steps", 0}}), UsageError);
  EXPECT_EQ(Apgd::checkpoints(100), (std::vector<int64_t>{0, 22, 41, 57, 70, 80, 87, 93, 99}));
}

TEST(Registry, EveryAttacksRecordedOptionsReadBackToTheSameAttack) {
  // Results record options_json(); reading it back must give the same options
  // (an option written but not read would make the record unusable).
  for (const auto& info : attack_registry()) {
    const auto recorded = create_attack(info.name, nlohmann::json::object())->options_json();
    EXPECT_EQ(create_attack(info.name, recorded)->options_json(), recorded) << info.name;
  }
}

TEST(Registry, PgdRecordsTheStepSizeItUses) {
  const auto pgd = create_attack("pgd", {{"steps", 20}});
  EXPECT_EQ(pgd->options_json()["step_size"].get<double>(), 0.0);  // 0: the default rule
  EXPECT_DOUBLE_EQ(pgd->effective_options(threat(Norm::kLinf, 0.1))["step_size"].get<double>(), 2.5 * 0.1 / 20);
  EXPECT_EQ(pgd->effective_options(threat(Norm::kLinf, 0.1))["step_size"].get<double>(), 2.5 * 0.1 / 20);  // bit for bit
  // step_size_factor scales the rule with eps (Madry et al.'s MNIST run: 40 steps of 0.01 at eps 0.3).
  const auto madry = create_attack("pgd", {{"steps", 40}, {"step_size_factor", 40 * 0.01 / 0.3}});
  EXPECT_DOUBLE_EQ(madry->effective_options(threat(Norm::kLinf, 0.3))["step_size"].get<double>(), 0.01);
  EXPECT_DOUBLE_EQ(madry->effective_options(threat(Norm::kLinf, 0.15))["step_size"].get<double>(), 0.005);
  const auto fixed = create_attack("pgd", {{"steps", 20}, {"step_size", 0.01}});
  EXPECT_DOUBLE_EQ(fixed->effective_options(threat(Norm::kLinf, 0.1))["step_size"].get<double>(), 0.01);
  // Other attacks record their options as given.
  const auto cw = create_attack("cw", nlohmann::json::object());
  EXPECT_EQ(cw->effective_options(threat(Norm::kL2, 1.0)), cw->options_json());
}

// Option tables (core/options.h) and registry traits.

TEST(OptionTable, DefaultsAreTheStructsAndUnchanged) {
  // The recorded defaults as they were before the tables (options added since may add keys);
  // dump() compares types too (0.0 is not 0).
  const std::map<std::string, std::string> before{
      {"fgsm", R"({"loss":"ce"})"},
      {"pgd", R"({"check_every":10,"early_stop":false,"loss":"ce","random_start":true,"restarts":1,)"
              R"("step_size":0.0,"steps":40})"},
      {"cw", R"({"abort_early":true,"binary_search_steps":9,"confidence":0.0,"initial_const":0.001,)"
             R"("learning_rate":0.01,"steps":1000})"},
      {"apgd-ce", R"({"momentum":0.75,"random_start":true,"restarts":1,"rho":0.75,"steps":100})"},
      {"apgd-dlr", R"({"momentum":0.75,"random_start":true,"restarts":1,"rho":0.75,"steps":100})"},
      {"square", R"({"early_stop":true,"loss":"margin","p_init":0.8,"queries":5000,"restarts":1})"},
  };
  for (const auto& info : attack_registry()) {
    const auto defaults = create_attack(info.name)->options_json();
    const auto recorded_before = nlohmann::json::parse(before.at(info.name));
    for (const auto& [key, value] : recorded_before.items())
      EXPECT_EQ(defaults.value(key, nlohmann::json()).dump(), value.dump()) << info.name << " " << key;
    // The registry's description lists exactly the recorded keys, with their defaults.
    nlohmann::json described = nlohmann::json::object();
    for (const auto& o : info.options) described[o.key] = o.default_value;
    EXPECT_EQ(described.dump(), defaults.dump()) << info.name;
  }
  EXPECT_EQ(FgsmOptions::table().to_json(FgsmOptions{}), FgsmOptions().to_json());
  EXPECT_EQ(PgdOptions::from_json(nlohmann::json::object()).to_json(), PgdOptions().to_json());
  EXPECT_EQ(CwOptions::from_json(nlohmann::json::object()).to_json(), CwOptions().to_json());
  EXPECT_EQ(ApgdOptions::from_json(nlohmann::json::object(), LossKind::kDlr, "apgd-dlr").to_json(),
            ApgdOptions().to_json());
  // null means "the default", as before.
  EXPECT_EQ(create_attack("pgd", {{"steps", nullptr}})->options_json()["steps"], 40);
}

namespace {

// A valid value other than the default, per type.
nlohmann::json other_value(const OptionDescription& o) {
  switch (o.type) {
    case OptionType::kInteger: return o.default_value.get<int64_t>() + 1;
    case OptionType::kNumber: return o.default_value.get<double>() == 0 ? 0.5 : o.default_value.get<double>() / 2;
    case OptionType::kBool: return !o.default_value.get<bool>();
    case OptionType::kChoice: return o.choices.back() == o.default_text() ? o.choices.front() : o.choices.back();
    case OptionType::kIntegerList:
    case OptionType::kNumberList: break;  // no attack takes a list
  }
  return nullptr;
}

}  // namespace

TEST(OptionTable, EveryOptionIsAcceptedAsKeyAndRoundTrips) {
  for (const auto& info : attack_registry())
    for (const auto& o : info.options) {
      const auto value = other_value(o);
      for (auto spelling : {OptionSpelling::kKey, OptionSpelling::kFlag}) {
        const auto options = create_attack(info.name, {{o.key, value}}, spelling)->options_json();
        EXPECT_EQ(options[o.key], value) << info.name << " " << o.key;
        EXPECT_EQ(create_attack(info.name, options)->options_json(), options) << info.name << " " << o.key;
      }
      EXPECT_EQ(read_attack_options(info.name, {{o.key, value}}, OptionSpelling::kFlag)[o.key], value);
      std::string dashed = o.key;
      std::replace(dashed.begin(), dashed.end(), '_', '-');
      EXPECT_EQ(o.flag(), "--" + dashed);
    }
  EXPECT_EQ(create_attack("pgd", {{"loss", "cw"}})->loss_kind(), LossKind::kMargin);  // parse_loss's alias stays
}

TEST(OptionTable, ErrorsNameTheOptionAsWritten) {
  auto message = [](const std::string& attack, const nlohmann::json& j, OptionSpelling s) {
    return testing_support::error_of<UsageError>([&] { create_attack(attack, j, s); });
  };
  const auto key = OptionSpelling::kKey, flag = OptionSpelling::kFlag;
  EXPECT_THAT(message("pgd", {{"stpes", 3}}, key), HasSubstr("'stpes' (did you mean 'steps'?)"));
  EXPECT_THAT(message("pgd", {{"step_sise", 3}}, flag), HasSubstr("'--step-sise' (did you mean '--step-size'?)"));
  EXPECT_THAT(message("pgd", {{"stpes", 3}}, flag), HasSubstr("known: --steps, --step-size"));
  EXPECT_EQ(message("pgd", {{"steps", "many"}}, key), "pgd: steps must be an integer, got \"many\"");
  EXPECT_EQ(message("pgd", {{"steps", 2.5}}, flag), "pgd: --steps must be an integer, got 2.5");
  EXPECT_EQ(message("pgd", {{"early_stop", 1}}, flag), "pgd: --early-stop must be true or false, got 1");
  EXPECT_EQ(message("cw", {{"confidence", "high"}}, key), "cw: confidence must be a number, got \"high\"");
  EXPECT_EQ(message("fgsm", {{"loss", 2}}, key), "fgsm: loss must be one of ce, margin, dlr, got 2");
  EXPECT_THAT(message("fgsm", {{"loss", "hinge"}}, flag), HasSubstr("fgsm: --loss: unknown loss 'hinge'"));
  EXPECT_EQ(message("pgd", {{"steps", 0}}, key), "pgd: steps must be >= 1, got 0");
  EXPECT_EQ(message("pgd", {{"step_size", -0.5}}, flag), "pgd: --step-size must be >= 0, got -0.5");
  EXPECT_EQ(message("cw", {{"binary_search_steps", 0}}, flag), "cw: --binary-search-steps must be >= 1, got 0");
  EXPECT_EQ(message("cw", {{"learning_rate", 0}}, key), "cw: learning_rate must be > 0, got 0");
  EXPECT_EQ(message("apgd-dlr", {{"rho", 1.5}}, key), "apgd-dlr: rho must be in (0, 1], got 1.5");
  EXPECT_EQ(message("apgd-ce", {{"steps", 1}}, flag), "apgd-ce: --steps must be >= 2, got 1");
  EXPECT_EQ(message("pgd", nlohmann::json::array(), key), "pgd: options must be a key-value table");
  for (const auto& m : {message("pgd", {{"stpes", 3}}, flag), message("apgd-ce", {{"loss", "ce"}}, key)})
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST(AttackRegistry, TraitsAreTheRunnersRules) {
  const auto& fgsm = attack_info("fgsm");
  EXPECT_FALSE(fgsm.iterative);
  EXPECT_TRUE(fgsm.budget_options.empty());
  for (const char* name : {"pgd", "cw", "apgd-ce", "apgd-dlr"}) EXPECT_TRUE(attack_info(name).iterative) << name;
  using Names = std::vector<std::string>;
  EXPECT_EQ(attack_info("pgd").budget_options, (Names{"steps", "restarts"}));
  EXPECT_EQ(attack_info("cw").budget_options, (Names{"steps", "binary_search_steps"}));
  EXPECT_EQ(attack_info("apgd-ce").budget_options, (Names{"steps", "restarts"}));
  EXPECT_EQ(attack_info("apgd-dlr").budget_options, (Names{"steps", "restarts"}));
  EXPECT_TRUE(attack_info("square").iterative);
  EXPECT_EQ(attack_info("square").budget_options, (Names{"queries", "restarts"}));
  for (const auto& info : attack_registry()) {
    // The audit doubled, before the registry said so, whichever of these the defaults hold
    // (Square, added since, has queries where the others have steps).
    const auto defaults = create_attack(info.name)->options_json();
    Names doubled;
    for (const char* key : {"steps", "queries", "restarts", "binary_search_steps"})
      if (defaults.contains(key)) doubled.push_back(key);
    EXPECT_EQ(info.budget_options, doubled) << info.name;
    for (const auto& key : info.budget_options) EXPECT_EQ(info.option(key)->type, OptionType::kInteger) << key;
    EXPECT_EQ(info.minimises_norm, create_attack(info.name)->minimises_norm()) << info.name;
    EXPECT_EQ(info.minimises_norm, info.name == "cw");
    EXPECT_EQ(&attack_info(info.name), &info);
  }
  EXPECT_THAT(testing_support::error_of<UsageError>([] { attack_info("apgd-cd"); }),
              HasSubstr("did you mean 'apgd-ce'"));
}

class EveryAttack : public testing::TestWithParam<std::pair<std::string, Norm>> {};

TEST_P(EveryAttack, InvariantsHold) {
  const auto& [name, norm] = GetParam();
  auto& model = trained("det");
  const auto ds = toy(64, "test");
  const auto x = ds.images.clone(), y = ds.labels.clone();
  const auto t = threat(norm, eps_for(norm));
  RunOptions run;
  run.seed = 3;
  auto attack = quick_attack(name);
  const auto r = attack->run(model, x, y, t, run);
  // The input is unchanged.
  EXPECT_TRUE(torch::equal(x, ds.images));
  // Inside the ball (with tolerance) and the box; finite.
  const auto d = r.x_adv - x;
  const auto dist = norm == Norm::kLinf ? linf_norm(d) : l2_norm(d);
  EXPECT_LE(dist.max().item<double>(), t.eps + 1e-6) << name;
  EXPECT_GE(r.x_adv.min().item<double>(), 0.0);
  EXPECT_LE(r.x_adv.max().item<double>(), 1.0);
  EXPECT_TRUE(torch::isfinite(r.x_adv).all().item<bool>());
  // Recorded norms are those of the returned x_adv (computed here without the library's norm helpers).
  EXPECT_TRUE(torch::allclose(r.linf, d.abs().flatten(1).amax(1)));
  EXPECT_TRUE(torch::allclose(r.l2, d.flatten(1).pow(2).sum(1).sqrt(), 1e-5, 1e-6));
  EXPECT_EQ(r.adversarial_correct.sizes(), (std::vector<int64_t>{1, 64}));
  if (name == "square")  // score-based: queries only
    EXPECT_EQ(r.gradient_evaluations.max().item<int64_t>(), 0);
  else
    EXPECT_GE(r.gradient_evaluations.min().item<int64_t>(), 1);
  // The attack does something on an undefended model.
  EXPECT_LT(r.robust_accuracy(), r.clean_accuracy()) << name;
  // Same seed, same x_adv.
  EXPECT_TRUE(torch::equal(attack->run(model, x, y, t, run).x_adv, r.x_adv)) << name;
  // eps = 0 is the identity.
  EXPECT_TRUE(torch::equal(attack->run(model, x, y, threat(norm, 0.0), run).x_adv, x)) << name;
  // Parameters are left as they were and collect no gradient.
  for (const auto& p : model.parameters()) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_FALSE(p.grad().defined());
  }
}

TEST_P(EveryAttack, ABatchEqualsEachExampleAlone) {
  const auto& [name, norm] = GetParam();
  if (name == "square")
    GTEST_SKIP() << "Square draws its windows at random: a batch and one example alone draw different ones";
  auto& model = trained("det");
  const auto ds = toy(6, "test");
  auto attack = quick_attack(name, /*randomness=*/false);
  const auto t = threat(norm, eps_for(norm));
  const auto batch = attack->run(model, ds.images, ds.labels, t, {}).x_adv;
  for (int64_t i = 0; i < 6; ++i) {
    const auto single = attack->run(model, ds.images.slice(0, i, i + 1), ds.labels.slice(0, i, i + 1), t, {}).x_adv;
    // BLAS may round a batch differently from one row; a sign flip of a
    // near-zero gradient component moves single pixels, so compare with a
    // tolerance on at most 1% of the pixels.
    const auto differ = ((single[0] - batch[i]).abs() > 1e-4).to(torch::kDouble).mean().item<double>();
    EXPECT_LE(differ, 0.01) << name << " example " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Attacks, EveryAttack, testing::ValuesIn(every_attack_and_norm()), [](const auto& info) {
  std::string n = info.param.first + (info.param.second == Norm::kLinf ? "_linf" : "_l2");
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
});

TEST(ClosedForm, FgsmOnALinearTwoClassModel) {
  auto l = linear_model();
  auto x = torch::full({3, 4}, 0.5f);
  auto y = torch::tensor({0, 0, 1}, torch::kLong);
  const double eps = 0.1;
  auto fgsm = create_attack("fgsm");
  const auto r = fgsm->run(*l.model, x, y, threat(Norm::kLinf, eps), {});
  // Class 0 is attacked by raising w.x (sign(w)), class 1 by lowering it.
  const auto s = l.w.sign();
  EXPECT_TRUE(torch::allclose(r.x_adv[0], x[0] + eps * s, 0, 1e-7));
  EXPECT_TRUE(torch::allclose(r.x_adv[2], x[2] - eps * s, 0, 1e-7));
  // The logit difference moves by exactly eps ||w||_1 (Linf) and eps ||w||_2 (L2).
  const auto margin_of = [&](const torch::Tensor& v) {
    torch::NoGradGuard g;
    const auto z = l.model->logits(v);
    return (z.select(1, 1) - z.select(1, 0));
  };
  const auto before = margin_of(x);
  EXPECT_NEAR((margin_of(r.x_adv) - before)[0].item<double>(), eps * l.w.abs().sum().item<double>(), 1e-5);
  EXPECT_NEAR((before - margin_of(r.x_adv))[2].item<double>(), eps * l.w.abs().sum().item<double>(), 1e-5);
  const auto r2 = fgsm->run(*l.model, x, y, threat(Norm::kL2, eps), {});
  EXPECT_NEAR((margin_of(r2.x_adv) - before)[0].item<double>(), eps * l.w.norm().item<double>(), 1e-5);
  EXPECT_NEAR(r2.l2[0].item<double>(), eps, 1e-6);
}

TEST(Differential, PgdMatchesAPlainReferenceLoop) {
  auto& model = trained("det");
  const auto ds = toy(50, "test");
  const double eps = 0.1, alpha = 0.02;
  const int64_t steps = 15;
  auto pgd = create_attack("pgd", {{"steps", steps}, {"step_size", alpha}, {"random_start", false}});
  const auto r = pgd->run(model, ds.images, ds.labels, threat(Norm::kLinf, eps), {});
  // The reference: the textbook loop, written independently here.
  auto x0 = ds.images;
  auto xa = x0.clone();
  for (int64_t k = 0; k < steps; ++k) {
    auto xv = xa.detach().requires_grad_(true);
    auto loss = torch::nn::functional::cross_entropy(model.logits(xv), ds.labels,
                                                     torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    auto g = torch::autograd::grad({loss}, {xv})[0];
    xa = xa + alpha * g.sign();
    xa = torch::min(torch::max(xa, x0 - eps), x0 + eps).clamp(0, 1);
  }
  EXPECT_TRUE(torch::allclose(r.x_adv, xa, 0, 1e-5)) << (r.x_adv - xa).abs().max();
  EXPECT_EQ(r.gradient_evaluations[0].item<int64_t>(), steps);
}

TEST(Orderings, PgdBeatsFgsmAndMoreRestartsNeverHurt) {
  auto& model = trained("det");
  const auto ds = toy(300, "test");
  const auto t = threat(Norm::kLinf, 0.05);
  RunOptions run;
  run.seed = 1;
  const auto fgsm = create_attack("fgsm")->run(model, ds.images, ds.labels, t, run);
  const auto pgd = create_attack("pgd", {{"steps", 20}})->run(model, ds.images, ds.labels, t, run);
  EXPECT_GE(pgd.success.to(torch::kDouble).mean().item<double>(), fgsm.success.to(torch::kDouble).mean().item<double>());
  // Per example: PGD fails where FGSM succeeds on at most 1% of the examples.
  const double worse = (fgsm.success & pgd.success.logical_not()).to(torch::kDouble).mean().item<double>();
  EXPECT_LE(worse, 0.01);
  const auto one = create_attack("pgd", {{"steps", 5}, {"restarts", 1}})->run(model, ds.images, ds.labels, t, run);
  const auto three = create_attack("pgd", {{"steps", 5}, {"restarts", 3}})->run(model, ds.images, ds.labels, t, run);
  EXPECT_FALSE((one.success & three.success.logical_not()).any().item<bool>());
}

TEST(Targeted, PgdAndApgdReachTheTargetOnAnUndefendedModel) {
  auto& model = trained("det");
  const auto ds = toy(100, "test");
  auto t = threat(Norm::kLinf, 0.3);
  t.target = TargetRule::kNextClass;
  for (const char* name : {"pgd", "apgd-ce"}) {
    const auto r = create_attack(name)->run(model, ds.images, ds.labels, t, {});
    EXPECT_TRUE(torch::equal(r.targets, (ds.labels + 1).remainder(10)));
    EXPECT_GE(r.success.to(torch::kDouble).mean().item<double>(), 0.9)
        << name << " clean " << r.clean_accuracy() << " robust " << r.robust_accuracy();
  }
  // The targeted DLR loss (as in AutoAttack's APGD-T) pushes z_t above z_y:
  // it is built to cause misclassification, not to reach t.
  const auto dlr = create_attack("apgd-dlr")->run(model, ds.images, ds.labels, t, {});
  EXPECT_LE(dlr.robust_accuracy(), 0.1);
  t.target = TargetRule::kRandom;
  const auto r = create_attack("fgsm")->run(model, ds.images, ds.labels, t, {});
  EXPECT_FALSE(r.targets.eq(ds.labels).any().item<bool>());
}

TEST(Cw, UnboundedReachesAllExamplesAndIsSmallerThanItsStart) {
  auto& model = trained("det");
  const auto ds = toy(100, "test");
  const auto t = threat(Norm::kL2, std::numeric_limits<double>::infinity());
  const auto r = create_attack("cw", {{"steps", 200}, {"binary_search_steps", 5}})->run(model, ds.images, ds.labels, t, {});
  EXPECT_GE(r.success.to(torch::kDouble).mean().item<double>(), 0.99);
  EXPECT_THROW(create_attack("pgd")->run(model, ds.images, ds.labels, t, {}), UsageError);
  // A larger confidence needs larger perturbations.
  const auto confident = create_attack("cw", {{"steps", 200}, {"binary_search_steps", 8}, {"confidence", 1.0}})
                             ->run(model, ds.images, ds.labels, t, {});
  EXPECT_GE(confident.success.to(torch::kDouble).mean().item<double>(), 0.99);
  EXPECT_GT(confident.l2.median().item<double>(), r.l2.median().item<double>());
}

TEST(Eot, OneSampleOnADeterministicModelIsThePlainGradient) {
  auto& model = trained("det");
  const auto ds = toy(20, "test");
  for (auto reduction : {EotReduction::kPredictionRule, EotReduction::kMeanLoss}) {
    EotOptions o;
    o.samples = 4;  // ignored: the model is deterministic
    o.reduction = reduction;
    GradientOracle oracle(model, o);
    EXPECT_EQ(oracle.samples(), 1);
    const auto out = oracle.loss_and_grad(ds.images, ds.labels, {}, make_loss(LossKind::kCrossEntropy));
    auto xv = ds.images.clone().requires_grad_(true);
    auto loss = torch::nn::functional::cross_entropy(
        model.logits(xv), ds.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    const auto plain = torch::autograd::grad({loss}, {xv})[0];
    EXPECT_TRUE(torch::allclose(out.grad, plain, 1e-5, 1e-7));
    EXPECT_EQ(oracle.gradient_evaluations(), 20);
  }
}

TEST(Eot, GradientVarianceFallsWithSamplesOnAStochasticModel) {
  for (const char* family : {"sfnn", "vib"}) {
    auto& model = trained(family);
    const auto ds = toy(8, "test");
    auto variance = [&](int64_t s) {
      EotOptions o;
      o.samples = s;
      o.reduction = EotReduction::kMeanLoss;
      GradientOracle oracle(model, o);
      std::vector<torch::Tensor> grads;
      for (int k = 0; k < 30; ++k)
        grads.push_back(oracle.loss_and_grad(ds.images, ds.labels, {}, make_loss(LossKind::kCrossEntropy)).grad);
      return torch::stack(grads).var(0).mean().item<double>();
    };
    const double v1 = variance(1), v16 = variance(16);
    EXPECT_GT(v1, 0) << family;
    // Expected ratio 16; allow sampling noise in the variance estimates.
    EXPECT_LT(v16, v1 / 4) << family << ": " << v1 << " vs " << v16;
  }
}

TEST(Eot, ChunksHoldAtMostMaxRowsRowsOfWork) {
  EotOptions o;
  EXPECT_EQ(eot_chunk_size(o, 16, 8), o.max_rows / 128);
  EXPECT_EQ(eot_chunk_size(o, 1, 1), o.max_rows);
  EXPECT_EQ(eot_chunk_size(o, 16, 1, /*on_gpu=*/true), o.max_rows_gpu / 16);
  o.max_rows = 100;
  EXPECT_EQ(eot_chunk_size(o, 16, 8), 1);  // never empty
  EXPECT_EQ(eot_chunk_size(o, 3, 1), 33);
}

TEST(Eot, ChunkedEqualsUnchunkedOnADeterministicModel) {
  auto& model = trained("det");
  const auto ds = toy(50, "test");
  for (auto loss : {LossKind::kCrossEntropy, LossKind::kDlr}) {
    EotOptions whole, chunked;
    chunked.max_rows = 7;  // 8 chunks of 7 examples, the last of 1
    GradientOracle a(model, whole), b(model, chunked);
    const auto oa = a.loss_and_grad(ds.images, ds.labels, {}, make_loss(loss));
    const auto ob = b.loss_and_grad(ds.images, ds.labels, {}, make_loss(loss));
    // Equal up to float32 rounding (the matrix products see other batch sizes).
    EXPECT_TRUE(torch::allclose(oa.grad, ob.grad, 1e-4, 1e-5));
    EXPECT_TRUE(torch::allclose(oa.loss, ob.loss, 1e-4, 1e-5));
    EXPECT_TRUE(torch::allclose(oa.log_probs, ob.log_probs, 1e-4, 1e-5));
    EXPECT_EQ(a.gradient_evaluations(), b.gradient_evaluations());
  }
}

TEST(Eot, ChunkedEqualsUnchunkedInDistributionOnAStochasticModel) {
  // 40 EOT-8 gradients each way, one pass for the batch or one example per
  // pass. Per example the two mean gradients point the same way (cosine >=
  // 0.97; two unchunked runs give 0.99 to 1.0, an example's mean against its
  // neighbour's 0.69 to 0.88 on these models) with the same norm, and the
  // mean losses agree within 5 standard errors.
  for (const char* family : {"sfnn", "vib"}) {
    auto& model = trained(family);
    const auto ds = toy(8, "test");
    auto run = [&](int64_t max_rows) {
      EotOptions o;
      o.samples = 8;
      o.max_rows = max_rows;
      GradientOracle oracle(model, o);
      std::vector<torch::Tensor> g, l;
      for (int k = 0; k < 40; ++k) {
        const auto out = oracle.loss_and_grad(ds.images, ds.labels, {}, make_loss(LossKind::kCrossEntropy));
        g.push_back(out.grad.flatten(1));
        l.push_back(out.loss);
      }
      return std::make_pair(torch::stack(g).to(torch::kDouble), torch::stack(l).to(torch::kDouble));
    };
    torch::manual_seed(11);
    const auto [gw, lw] = run(1 << 20);
    const auto [gc, lc] = run(8);
    const auto cos = torch::cosine_similarity(gw.mean(0), gc.mean(0), 1);
    const auto ratio = gc.mean(0).norm(2, 1) / gw.mean(0).norm(2, 1);
    EXPECT_GE(cos.min().item<double>(), 0.97) << family;
    EXPECT_GE(ratio.min().item<double>(), 0.8) << family;
    EXPECT_LE(ratio.max().item<double>(), 1.25) << family;
    const auto se = ((lw.var(0) + lc.var(0)) / 40).sqrt();
    EXPECT_LE(((lw.mean(0) - lc.mean(0)).abs() / se).max().item<double>(), 5.0) << family;
  }
}

TEST(Eot, GradientsThroughATorchScriptModulesOwnSampleLogits) {
  // Linear logits W x + b plus N(0, 1) noise drawn inside the module's
  // sample_logits; `calls` counts its calls. With additive noise the
  // mean-loss EOT gradient of CE is W^T (mean_s softmax(z_s) - onehot(y)).
  torch::manual_seed(0);
  const auto w = torch::randn({64, 10}) * 0.3, b = torch::zeros({10});
  torch::jit::Module module("NoisyLinear");
  module.register_parameter("w", w, false);
  module.register_parameter("b", b, false);
  module.register_attribute("imbench_input_shape", c10::ListType::ofInts(), c10::IValue(std::vector<int64_t>{1, 8, 8}));
  module.register_attribute("imbench_internal_samples", c10::IntType::get(), int64_t{2});
  module.register_attribute("calls", c10::IntType::get(), int64_t{0});
  module.define(R"(
def forward(self, x):
    z = torch.matmul(x.flatten(1), self.w) + self.b
    return z + torch.randn_like(z)
def sample_logits(self, x, s: int):
    self.calls += 1
    z = torch.matmul(x.flatten(1), self.w) + self.b
    return z.unsqueeze(0) + torch.randn([s, z.size(0), z.size(1)])
)");
  auto handle = module;
  models::TorchScriptModel model(module, "noisy-linear.pt");
  ASSERT_TRUE(model.uses_own_sample_logits());
  const int64_t before = handle.attr("calls").toInt();
  const auto ds = toy(10, "test");
  EotOptions o;
  o.samples = 4;
  o.max_rows = 16;  // 16 / (4 samples x 2 internal draws) = 2 examples per call
  o.reduction = EotReduction::kMeanLoss;
  GradientOracle oracle(model, o);
  const auto out = oracle.loss_and_grad(ds.images, ds.labels, {}, make_loss(LossKind::kCrossEntropy));
  EXPECT_EQ(handle.attr("calls").toInt() - before, 5);
  EXPECT_EQ(out.grad.sizes(), ds.images.sizes());
  EXPECT_EQ(oracle.gradient_evaluations(), 40);
  // Averaged over many draws the gradient approaches W^T (E softmax(z) - onehot(y)).
  o.samples = 4000;
  o.max_rows = 1 << 20;
  GradientOracle many(model, o);
  const auto g = many.loss_and_grad(ds.images, ds.labels, {}, make_loss(LossKind::kCrossEntropy)).grad.flatten(1);
  const auto z = torch::matmul(ds.images.flatten(1), w) + b;
  const auto p = torch::softmax(z.unsqueeze(0) + torch::randn({20000, 10, 10}), -1).mean(0);
  const auto expected = torch::matmul(p - torch::one_hot(ds.labels, 10).to(torch::kFloat), w.t());
  EXPECT_LT((g - expected).abs().max().item<double>(), 0.02);
  EXPECT_GT(expected.abs().max().item<double>(), 0.2);
}

TEST(Stochastic, ResultsKeepEveryRepeatAndUseEot) {
  auto& model = trained("sfnn");
  const auto ds = toy(40, "test");
  RunOptions run;
  run.eot.samples = 8;
  run.repeats = 5;
  const auto r = create_attack("pgd", {{"steps", 5}})->run(model, ds.images, ds.labels, threat(Norm::kLinf, 0.1), run);
  EXPECT_EQ(r.adversarial_correct.sizes(), (std::vector<int64_t>{5, 40}));
  EXPECT_EQ(r.eot_samples, 8);
  EXPECT_EQ(r.gradient_evaluations[0].item<int64_t>(), 5 * 8);
  // The summaries against the per-repeat records computed by hand.
  std::vector<double> acc(5, 0.0);
  int64_t always = 0;
  for (int64_t i = 0; i < 40; ++i) {
    int64_t right = 0;
    for (int64_t k = 0; k < 5; ++k) {
      const bool c = r.adversarial_correct[k][i].item<bool>();
      right += c;
      acc[k] += c / 40.0;
    }
    always += right == 5;
  }
  const double mean = std::accumulate(acc.begin(), acc.end(), 0.0) / 5;
  double ss = 0;
  for (double a : acc) ss += (a - mean) * (a - mean);
  EXPECT_NEAR(r.robust_accuracy(), mean, 1e-12);
  EXPECT_NEAR(r.robust_accuracy_std(), std::sqrt(ss / 4), 1e-12);  // sample std over the 5 repeats
  EXPECT_NEAR(r.robust_accuracy_worst(), always / 40.0, 1e-12);   // correct in every repeat
  EXPECT_LE(r.robust_accuracy(), r.clean_accuracy());
}

TEST(RunValidation, BadInputsAreUsageErrors) {
  auto& model = trained("det");
  const auto ds = toy(4, "test");
  auto pgd = create_attack("pgd");
  EXPECT_THROW(pgd->run(model, ds.images * 2, ds.labels, threat(Norm::kLinf, 0.1), {}), UsageError);
  EXPECT_THROW(pgd->run(model, ds.images.flatten(1), ds.labels, threat(Norm::kLinf, 0.1), {}), UsageError);
  EXPECT_THROW(pgd->run(model, ds.images, ds.labels + 10, threat(Norm::kLinf, 0.1), {}), UsageError);
  EXPECT_THROW(pgd->run(model, ds.images, ds.labels, threat(Norm::kLinf, -1), {}), UsageError);
  auto nan = ds.images.clone();
  nan[0][0][0][0] = std::nanf("");
  EXPECT_THROW(pgd->run(model, nan, ds.labels, threat(Norm::kLinf, 0.1), {}), Error);
  EXPECT_THROW(create_attack("fgsm")->run(model, ds.images, ds.labels, threat(Norm::kLinf, std::numeric_limits<double>::infinity()), {}), UsageError);
}

// ---- the threat model (attacks/threat_model.h, through attacks/attack.h) ----

TEST(ThreatModel, EpsIsWrittenAsPeopleWriteIt) {
  EXPECT_EQ(attacks::format_eps(8.0 / 255.0), "8/255");
  EXPECT_EQ(attacks::format_eps(2.0 / 255.0), "2/255");
  EXPECT_EQ(attacks::format_eps(0.3), "0.3");
  EXPECT_EQ(attacks::format_eps(0.1), "0.1");
  EXPECT_EQ(attacks::format_eps(0.0), "0");
  EXPECT_EQ(attacks::format_eps(1.5), "1.5");
}

TEST(ThreatModel, DescribeAndValidate) {
  attacks::ThreatModel t;
  t.norm = attacks::Norm::kLinf;
  t.eps = 8.0 / 255.0;
  EXPECT_EQ(t.describe(), "Linf eps=8/255 untargeted, inputs in [0, 1]");
  t.norm = attacks::Norm::kL2;
  t.eps = 1.5;
  t.target = attacks::TargetRule::kLeastLikely;
  EXPECT_EQ(t.describe(), "L2 eps=1.5 targeted, target least-likely, inputs in [0, 1]");
  t.eps = -1;
  EXPECT_THROW(t.validate(), UsageError);
  t.eps = std::nan("");
  EXPECT_THROW(t.validate(), UsageError);
  t.eps = std::numeric_limits<double>::infinity();  // unbounded: for minimum-norm attacks
  EXPECT_NO_THROW(t.validate());
  EXPECT_EQ(t.describe(), "L2 eps=inf targeted, target least-likely, inputs in [0, 1]");
  t.eps = 0.1;
  t.lower = 1;
  EXPECT_THROW(t.validate(), UsageError);
}

TEST(ThreatModel, ParsingWithSuggestions) {
  EXPECT_EQ(attacks::parse_norm("linf"), attacks::Norm::kLinf);
  EXPECT_EQ(attacks::parse_norm("l2"), attacks::Norm::kL2);
  try {
    attacks::parse_norm("l3");
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("did you mean 'l2'"));
  }
  EXPECT_EQ(attacks::parse_target_rule("least-likely"), attacks::TargetRule::kLeastLikely);
  EXPECT_THROW(attacks::parse_target_rule("least"), UsageError);
}

// ---- Square Attack (attacks/square.h) ----

namespace {

// A model that delegates to another, counts the rows it is asked to score
// (an input row of a sample_logits call with S samples counts S on a
// stochastic model, 1 on a deterministic one) and, with levels > 0, rounds
// its input to multiples of 1/levels first: torch::round has a zero
// derivative, so every input gradient is exactly zero (masked gradients)
// while the scores still change when a pixel crosses a level.
class WrappedModel : public models::Model {
 public:
  explicit WrappedModel(models::Model& inner, double levels = 0) : inner_(inner), levels_(levels) {}
  torch::Tensor logits(const torch::Tensor& x) override {
    rows += x.size(0);
    return inner_.logits(input(x));
  }
  torch::Tensor sample_logits(const torch::Tensor& x, int64_t samples) override {
    rows += x.size(0) * (inner_.is_stochastic() ? samples : 1);
    return inner_.sample_logits(input(x), samples);
  }
  torch::Tensor predict_proba(const torch::Tensor& x) override { return inner_.predict_proba(input(x)); }
  bool is_stochastic() const override { return inner_.is_stochastic(); }
  int64_t num_classes() const override { return inner_.num_classes(); }
  std::vector<int64_t> input_shape() const override { return inner_.input_shape(); }
  models::PredictionRule prediction_rule() const override { return inner_.prediction_rule(); }
  int64_t prediction_samples() const override { return inner_.prediction_samples(); }
  std::string description() const override { return "wrapped " + inner_.description(); }
  torch::Device device() const override { return inner_.device(); }
  void to(torch::Device d) override { inner_.to(d); }
  void set_training(bool training) override { inner_.set_training(training); }
  std::vector<torch::Tensor> parameters() override { return inner_.parameters(); }
  int64_t rows = 0;

 private:
  torch::Tensor input(const torch::Tensor& x) const { return levels_ > 0 ? torch::round(x * levels_) / levels_ : x; }
  models::Model& inner_;
  double levels_;
};

}  // namespace

TEST(Square, OptionsAndTheScheduleOfP) {
  // The paper's schedule for 10,000 queries: p_init halved after iterations 10, 50, 200, ..., 8000.
  EXPECT_DOUBLE_EQ(Square::p_at(0.8, 0, 10000), 0.8);
  EXPECT_DOUBLE_EQ(Square::p_at(0.8, 10, 10000), 0.8);
  EXPECT_DOUBLE_EQ(Square::p_at(0.8, 11, 10000), 0.4);
  EXPECT_DOUBLE_EQ(Square::p_at(0.8, 50, 10000), 0.4);
  EXPECT_DOUBLE_EQ(Square::p_at(0.8, 51, 10000), 0.2);
  EXPECT_DOUBLE_EQ(Square::p_at(0.5, 5000, 10000), 0.5 / 128);
  EXPECT_DOUBLE_EQ(Square::p_at(0.8, 9999, 10000), 0.8 / 512);
  // Rescaled to the budget: with 1000 queries iteration i counts as 10 i.
  EXPECT_DOUBLE_EQ(Square::p_at(0.8, 1, 1000), 0.8);
  EXPECT_DOUBLE_EQ(Square::p_at(0.8, 2, 1000), 0.4);
  EXPECT_DOUBLE_EQ(Square::p_at(0.8, 21, 1000), 0.8 / 8);
  EXPECT_DOUBLE_EQ(Square::p_at(0.8, 999, 1000), 0.8 / 512);
  EXPECT_EQ(create_attack("square")->loss_kind(), LossKind::kMargin);
  EXPECT_EQ(create_attack("square", {{"loss", "ce"}})->loss_kind(), LossKind::kCrossEntropy);
  const auto message = [](const nlohmann::json& j) {
    return testing_support::error_of<UsageError>([&] { create_attack("square", j); });
  };
  EXPECT_EQ(message({{"p_init", 0}}), "square: p_init must be in (0, 1], got 0");
  EXPECT_EQ(message({{"p_init", 1.5}}), "square: p_init must be in (0, 1], got 1.5");
  EXPECT_EQ(message({{"queries", 0}}), "square: queries must be >= 1, got 0");
  EXPECT_EQ(message({{"restarts", 0}}), "square: restarts must be >= 1, got 0");
  EXPECT_THAT(message({{"loss", "dlr"}}), HasSubstr("margin or ce"));
  EXPECT_EQ(create_attack("square", {{"queries", 123}})->options_json()["queries"], 123);
}

TEST(Square, BreaksAModelWithMaskedGradientsWherePgdFails) {
  WrappedModel masked(trained("det"), /*levels=*/10);
  const auto ds = toy(200, "test");
  {
    // The gradient is zero everywhere: PGD has nothing to follow.
    FrozenModel frozen(masked);
    GradientOracle oracle(masked, {});
    const auto g = oracle.loss_and_grad(ds.images, ds.labels, {}, make_loss(LossKind::kCrossEntropy)).grad;
    EXPECT_EQ(g.abs().max().item<double>(), 0.0);
  }
  RunOptions run;
  run.seed = 1;
  for (Norm norm : {Norm::kLinf, Norm::kL2}) {
    const auto t = threat(norm, norm == Norm::kLinf ? 0.1 : 1.0);
    const auto pgd = create_attack("pgd", {{"steps", 40}})->run(masked, ds.images, ds.labels, t, run);
    // The reference: PGD on the same network without the rounding.
    const auto pgd_plain = create_attack("pgd", {{"steps", 40}})->run(trained("det"), ds.images, ds.labels, t, run);
    const int64_t queries = 1000;
    masked.rows = 0;
    const auto start = std::chrono::steady_clock::now();
    const auto square = create_attack("square", {{"queries", queries}})->run(masked, ds.images, ds.labels, t, run);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double clean = pgd.clean_accuracy();
    std::printf(
        "masked gradients, %s: clean %.3f, PGD-40 %.3f, Square-%lld %.3f (%.2f s, %lld example queries); "
        "PGD-40 without the rounding %.3f\n",
        t.describe().c_str(), clean, pgd.robust_accuracy(), static_cast<long long>(queries), square.robust_accuracy(),
        seconds, static_cast<long long>(masked.rows), pgd_plain.robust_accuracy());
    EXPECT_GE(clean, 0.8);
    // PGD is left at its random start; Square needs no gradient and gets
    // close to what PGD finds on the network without the rounding.
    EXPECT_GE(pgd.robust_accuracy(), clean - 0.1) << to_string(norm);
    EXPECT_LE(square.robust_accuracy(), 0.35) << to_string(norm);
    EXPECT_GE(pgd.robust_accuracy() - square.robust_accuracy(), 0.6) << to_string(norm);
    EXPECT_LE(square.robust_accuracy(), pgd_plain.robust_accuracy() + 0.15) << to_string(norm);
    EXPECT_EQ(square.gradient_evaluations.max().item<int64_t>(), 0);
  }
}

TEST(Square, SameSeedSameResultOtherSeedOtherResult) {
  const auto ds = toy(16, "test");
  for (const char* family : {"det", "sfnn"}) {
    auto& model = trained(family);
    for (Norm norm : {Norm::kLinf, Norm::kL2}) {
      const auto t = threat(norm, eps_for(norm) / 2);
      auto square = create_attack("square", {{"queries", 50}, {"early_stop", false}});
      RunOptions run;
      run.eot.samples = 4;
      run.seed = 11;
      const auto a = square->run(model, ds.images, ds.labels, t, run).x_adv;
      const auto b = square->run(model, ds.images, ds.labels, t, run).x_adv;
      run.seed = 12;
      const auto c = square->run(model, ds.images, ds.labels, t, run).x_adv;
      EXPECT_TRUE(torch::equal(a, b)) << family << " " << to_string(norm);
      EXPECT_FALSE(torch::equal(a, c)) << family << " " << to_string(norm);
    }
  }
}

TEST(Square, SpendsExactlyItsQueryBudget) {
  WrappedModel counted(trained("det"));
  const auto ds = toy(20, "test");
  RunOptions run;
  run.evaluate_clean = false;  // then Attack::run scores only x_adv: 20 rows
  for (Norm norm : {Norm::kLinf, Norm::kL2})
    for (int64_t queries : {1, 37})
      for (int64_t restarts : {1, 3}) {
        counted.rows = 0;
        create_attack("square", {{"queries", queries}, {"restarts", restarts}, {"early_stop", false}})
            ->run(counted, ds.images, ds.labels, threat(norm, eps_for(norm)), run);
        EXPECT_EQ(counted.rows, 20 * queries * restarts + 20) << to_string(norm) << " " << queries << " " << restarts;
      }
  // With early stop (the default) an example is not queried once it is fooled.
  counted.rows = 0;
  const auto r = create_attack("square", {{"queries", 200}, {"restarts", 2}})
                     ->run(counted, ds.images, ds.labels, threat(Norm::kLinf, 0.3), run);
  EXPECT_GE(r.success.to(torch::kDouble).mean().item<double>(), 0.9);
  EXPECT_GE(counted.rows, 20 + 20);
  EXPECT_LT(counted.rows, (20 * 200 * 2 + 20) / 4);
  // A stochastic model: every query scores the S EOT samples (their mean softmax).
  WrappedModel sampled(trained("sfnn"));
  RunOptions eot = run;
  eot.eot.samples = 4;
  const auto s = create_attack("square", {{"queries", 10}, {"early_stop", false}})
                     ->run(sampled, ds.images, ds.labels, threat(Norm::kLinf, 0.1), eot);
  EXPECT_EQ(s.eot_samples, 4);
  // 10 queries of 4 samples, then Attack::run's final loss (4 samples); predictions go through predict_proba.
  EXPECT_EQ(sampled.rows, 20 * 10 * 4 + 20 * 4);
}

TEST(Square, VectorsAndColourImagesKeepTheirThreatModel) {
  // A vector input [4]: one row, windows are intervals. The linear model's
  // label flips at the Linf vertex -sign(w) (eps 0.3) and along -w (L2 eps 1).
  auto l = linear_model();
  const auto x = torch::full({4, 4}, 0.5f);
  const auto y = torch::ones({4}, torch::kLong);  // w.x + b = 0.975 > 0: class 1
  RunOptions run;
  run.seed = 2;
  for (Norm norm : {Norm::kLinf, Norm::kL2}) {
    const auto r = create_attack("square", {{"queries", 200}})
                       ->run(*l.model, x, y, threat(norm, norm == Norm::kLinf ? 0.3 : 1.0), run);
    EXPECT_TRUE(r.success.all().item<bool>()) << to_string(norm);
  }
  // Colour images [3, 8, 8]: under Linf every pixel ends at x + eps or x - eps
  // (inside the box here); under L2 the perturbation has norm eps.
  models::ModelSpec s;
  s.family = "det";
  s.input_shape = {3, 8, 8};
  s.hidden = {16};
  s.num_classes = 10;
  torch::manual_seed(4);
  auto model = models::create_model(s);
  const auto xc = 0.3 + 0.4 * torch::rand({8, 3, 8, 8});
  const auto yc = model->predict(xc);
  const auto lin = create_attack("square", {{"queries", 30}})->run(*model, xc, yc, threat(Norm::kLinf, 0.1), run);
  EXPECT_LT((lin.x_adv - xc).abs().sub(0.1).abs().max().item<double>(), 1e-6);
  const auto l2 = create_attack("square", {{"queries", 30}})->run(*model, xc, yc, threat(Norm::kL2, 1.0), run);
  EXPECT_LT((l2.l2 - 1.0).abs().max().item<double>(), 1e-4);
  EXPECT_LE(l2.l2.max().item<double>(), 1.0 + 1e-6);
}

namespace {

// A 100-class model of one input t in [0, 1] whose cross-entropy for class 0
// rises monotonically from t = 0 to t = 1, while class 0 loses the argmax
// only on the window t in (0.1, 0.3): z_0 = 0, z_1 = 0.2 - 20 (t - 0.2)^2,
// z_2..z_99 = 4 t - 4.1. Gradient ascent on the loss walks to t = 1, which is
// correctly classified; adversarial points all have a lower loss.
class LowLossWindowModel : public models::Model {
 public:
  torch::Tensor logits(const torch::Tensor& x) override {
    const auto t = x.view({x.size(0), 1});
    const auto z1 = 0.2 - 20 * (t - 0.2).pow(2);
    const auto rest = (4 * t - 4.1).expand({x.size(0), 98});
    return torch::cat({torch::zeros_like(t), z1, rest}, 1);
  }
  bool is_stochastic() const override { return false; }
  int64_t num_classes() const override { return 100; }
  std::vector<int64_t> input_shape() const override { return {1}; }
  std::string description() const override { return "low-loss window"; }
  torch::Device device() const override { return torch::kCPU; }
  void to(torch::Device) override {}
  void set_training(bool) override {}
  std::vector<torch::Tensor> parameters() override { return {}; }
};

}  // namespace

TEST(Apgd, KeepsAnAdversarialPointOverAHigherLossOne) {
  LowLossWindowModel model;
  const int64_t n = 400;
  const auto x = torch::full({n, 1}, 0.5f), y = torch::zeros({n}, torch::kLong);
  // Every random start in (0.1, 0.3) (a fifth of the ball [0, 1]) is
  // adversarial; the iterates then climb the loss to t = 1, which is not.
  for (int64_t restarts : {1, 3}) {
    auto attack = create_attack("apgd-ce", {{"steps", 10}, {"restarts", restarts}});
    RunOptions run;
    run.seed = 11;
    const auto r = attack->run(model, x, y, threat(Norm::kLinf, 0.5), run);
    EXPECT_DOUBLE_EQ(r.clean_accuracy(), 1.0);
    // Keeping the highest-loss point returns t = 1 for every example (robust 100%).
    const double expected = std::pow(0.8, static_cast<double>(restarts));
    EXPECT_NEAR(r.robust_accuracy(), expected, 0.07) << restarts << " restarts";
    // Every example whose kept point is adversarial sits in the window.
    const auto t = r.x_adv.view({n});
    const auto fooled = r.adversarial_correct[0].logical_not();
    EXPECT_TRUE((t.masked_select(fooled) > 0.1).all().item<bool>());
    EXPECT_TRUE((t.masked_select(fooled) < 0.3).all().item<bool>());
  }
}

// ---- The same attacks on a CUDA device (skipped where LibTorch has no GPU) ----

namespace {

// A copy of trained(family) on `device`: same weights, bit for bit.
std::unique_ptr<models::TrainableModel> copy_on(const std::string& family, torch::Device device) {
  auto& src = trained(family);
  auto copy = models::create_model(spec_for(family));
  {
    torch::NoGradGuard g;
    auto from = src.parameters(), to = copy->parameters();
    EXPECT_EQ(from.size(), to.size());
    for (size_t i = 0; i < from.size() && i < to.size(); ++i) to[i].copy_(from[i]);
  }
  copy->set_training(false);
  copy->to(device);
  return copy;
}

}  // namespace

// Every attack and norm on the GPU: the result lives on the device, keeps the
// invariants, and (random starts off) equals the CPU run on the same weights
// and inputs up to float32 rounding. Tolerance: as in ABatchEqualsEachExampleAlone,
// a sign flip of a near-zero gradient moves single pixels, so at most 1% of
// the pixels may differ by more than 1e-4 (APGD: 5%, its step size halves
// where the loss stalls, so a rounding difference forks the path: 1.9% of
// the pixels on an H200); the robust accuracy may differ by
// at most 2 of 64 examples. Square draws on the device's generator, so its
// CUDA and CPU points differ: it is checked for the invariants alone.
TEST_P(EveryAttack, OnCudaMatchesCpu_CUDA) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this LibTorch build";
  const auto& [name, norm] = GetParam();
  const torch::Device cuda(torch::kCUDA, 0);
  auto& cpu_model = trained("det");
  auto gpu_model = copy_on("det", cuda);
  const auto ds = toy(64, "test");
  const auto t = threat(norm, eps_for(norm));
  RunOptions run;
  run.seed = 3;
  auto attack = quick_attack(name, /*randomness=*/false);
  const auto cpu = attack->run(cpu_model, ds.images, ds.labels, t, run);
  const auto gpu = attack->run(*gpu_model, ds.images.to(cuda), ds.labels.to(cuda), t, run);
  ASSERT_TRUE(gpu.x_adv.is_cuda()) << name;
  const auto x_adv = gpu.x_adv.cpu();
  const auto d = x_adv - ds.images;
  const auto dist = norm == Norm::kLinf ? d.abs().flatten(1).amax(1) : d.flatten(1).pow(2).sum(1).sqrt();
  EXPECT_LE(dist.max().item<double>(), t.eps + 1e-5) << name;
  EXPECT_GE(x_adv.min().item<double>(), 0.0);
  EXPECT_LE(x_adv.max().item<double>(), 1.0);
  EXPECT_LT(gpu.robust_accuracy(), gpu.clean_accuracy()) << name;
  EXPECT_DOUBLE_EQ(gpu.clean_accuracy(), cpu.clean_accuracy()) << name;
  if (name == "square") return;
  const auto differ = ((x_adv - cpu.x_adv).abs() > 1e-4).to(torch::kDouble).mean().item<double>();
  EXPECT_LE(differ, name.rfind("apgd", 0) == 0 ? 0.05 : 0.01) << name;
  EXPECT_NEAR(gpu.robust_accuracy(), cpu.robust_accuracy(), 2.0 / 64 + 1e-9) << name;
}

// The stochastic families on the GPU: EOT PGD runs there end to end (the
// gradient oracle folds 8 samples into the batch), and its result agrees in
// distribution with the CPU's (the two devices draw different noise, so only
// the robust accuracies are compared, within 25 points on 64 toy examples).
TEST(Eot, StochasticFamiliesAttackOnCuda_CUDA) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this LibTorch build";
  const torch::Device cuda(torch::kCUDA, 0);
  const auto ds = toy(64, "test");
  for (const char* family : {"sfnn", "imb-joint", "vib"}) {
    auto& cpu_model = trained(family);
    auto gpu_model = copy_on(family, cuda);
    ASSERT_TRUE(gpu_model->is_stochastic()) << family;
    RunOptions run;
    run.seed = 1;
    run.eot.samples = 8;
    run.repeats = 3;
    auto attack = create_attack("pgd", {{"steps", 10}});
    const auto t = threat(Norm::kLinf, 0.1);
    const auto cpu = attack->run(cpu_model, ds.images, ds.labels, t, run);
    const auto gpu = attack->run(*gpu_model, ds.images.to(cuda), ds.labels.to(cuda), t, run);
    ASSERT_TRUE(gpu.x_adv.is_cuda()) << family;
    EXPECT_EQ(gpu.eot_samples, 8) << family;
    EXPECT_LE((gpu.x_adv.cpu() - ds.images).abs().max().item<double>(), 0.1 + 1e-5) << family;
    EXPECT_NEAR(gpu.clean_accuracy(), cpu.clean_accuracy(), 0.1) << family;
    EXPECT_NEAR(gpu.robust_accuracy(), cpu.robust_accuracy(), 0.25) << family;
  }
}
