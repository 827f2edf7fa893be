// The harness: matrix files (parsing and every error message), job planning
// and shards, training plans, and the soundness checks on planted defects.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include "core/errors.h"
#include "harness/checks.h"
#include "harness/matrix.h"
#include "harness/progress.h"
#include "harness/training.h"
#include "models/family.h"
#include "test_support.h"

namespace {

using namespace imbench;
using namespace imbench::harness;
using testing::HasSubstr;

const char* kGood = R"(
name = "t"
dataset = "synthetic"
examples = 50
seed = 3
eot_samples = 4
repeats = 2

[[models]]
name = "det"
family = "det"
preset = "quick"
checkpoint = "x/det.ckpt"
train = { epochs = 2, hidden = [32, 32] }
paper = { clean_accuracy = 98.27 }

[[models]]
name = "sfnn"
family = "sfnn"
checkpoint = "x/sfnn.ckpt"

[[attacks]]
name = "fgsm"
eps = [0.1, "8/255"]

[[attacks]]
name = "pgd"
eps = [0.1]
options = { steps = 5, random_start = false }

[[attacks]]
name = "cw-t"
attack = "cw"
norm = "l2"
eps = ["inf"]
targeted = true
target_rule = "next"
options = { steps = 10 }

[[attacks]]
name = "pgd-transfer"
attack = "pgd"
eps = [0.1]
source_model = "det"
)";

std::string error_of_text(const std::string& text) {
  try {
    parse_matrix_text(text, "m.toml");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "no error";
}

// Replaces the first occurrence of `from` in the good matrix.
std::string good_with(const std::string& from, const std::string& to) {
  std::string s = kGood;
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

TEST(Matrix, ParsesEveryField) {
  const auto m = parse_matrix_text(kGood, "m.toml");
  EXPECT_EQ(m.name, "t");
  EXPECT_EQ(m.dataset, "synthetic");
  EXPECT_EQ(m.examples, 50);
  EXPECT_EQ(m.seed, 3u);
  EXPECT_EQ(m.eot, 4);
  EXPECT_EQ(m.repeats, 2);
  EXPECT_TRUE(m.cascade);
  ASSERT_EQ(m.models.size(), 2u);
  EXPECT_EQ(m.models[0].train["epochs"], 2);
  EXPECT_EQ(m.models[0].paper["clean_accuracy"], 98.27);
  EXPECT_EQ(m.models[1].preset, "quick");
  ASSERT_EQ(m.attacks.size(), 4u);
  EXPECT_EQ(m.attacks[0].kind, "fgsm");
  ASSERT_EQ(m.attacks[0].eps.size(), 2u);
  EXPECT_DOUBLE_EQ(m.attacks[0].eps[1], 8.0 / 255.0);
  EXPECT_EQ(m.attacks[0].eps_text[1], "8/255");
  EXPECT_TRUE(std::isinf(m.attacks[2].eps[0]));
  EXPECT_EQ(m.attacks[2].target_rule, "next");
  EXPECT_EQ(m.attacks[3].source, "det");
  EXPECT_EQ(m.hash().size(), 64u);
}

TEST(Matrix, OldKeyNamesStillWorkWithANote) {
  // eot -> eot_samples and source -> source_model (the names of the HDF5
  // fields and the flags): old files keep working, and say so.
  const auto m = parse_matrix_text(good_with("eot_samples = 4", "eot = 4"), "m.toml");
  EXPECT_EQ(m.eot, 4);
  ASSERT_EQ(m.warnings.size(), 1u);
  EXPECT_THAT(m.warnings[0], HasSubstr("m.toml:6: eot: deprecated key, renamed 'eot_samples'"));
  const auto t = parse_matrix_text(good_with("source_model = \"det\"", "source = \"det\""), "m.toml");
  EXPECT_EQ(t.attacks[3].source, "det");
  ASSERT_EQ(t.warnings.size(), 1u);
  EXPECT_THAT(t.warnings[0], HasSubstr("attacks[3].source: deprecated key, renamed 'source_model'"));
  EXPECT_TRUE(parse_matrix_text(kGood, "m.toml").warnings.empty());
  EXPECT_EQ(m.hash(), parse_matrix_text(kGood, "m.toml").hash()) << "a renamed key is the same matrix";
  EXPECT_THAT(error_of_text(good_with("eot_samples = 4", "eot_samples = 4\neot = 4")),
              HasSubstr("m.toml:7: eot: give eot_samples only ('eot' is its old, deprecated name)"));
  EXPECT_THAT(error_of_text(good_with("source_model = \"det\"", "source_model = \"nope\"")),
              HasSubstr("attacks[3].source_model: unknown model 'nope'"));
}

TEST(Matrix, ShippedMatricesParseAndPlan) {
  // benchmarks/matrices/*.toml are read with every parse-time check (attack
  // options, training options); a broken one must fail here, not for a user.
  for (const char* name : {"quick", "paper-mnist", "paper-cifar10"}) {
    const auto m = parse_matrix_file(std::string(IMBENCH_SOURCE_DIR) + "/benchmarks/matrices/" + name + ".toml");
    EXPECT_EQ(m.name, name);
    EXPECT_FALSE(plan_jobs(m).empty()) << name;
  }
}

TEST(Matrix, HashIgnoresBatchingButNotSettings) {
  const auto a = parse_matrix_text(kGood, "m.toml");
  const auto b = parse_matrix_text(good_with("seed = 3", "seed = 3\nbatch_size = 7"), "m.toml");
  const auto c = parse_matrix_text(good_with("seed = 3", "seed = 4"), "m.toml");
  EXPECT_EQ(a.hash(), b.hash());
  EXPECT_NE(a.hash(), c.hash());
}

TEST(Matrix, SaveAdversarialIsReadButNotHashed) {
  // Saving adversarial examples changes no number: the matrix hash (and so
  // every cell's resume key) stays; an attack may override the matrix.
  const auto a = parse_matrix_text(kGood, "m.toml");
  const auto b = parse_matrix_text(good_with("seed = 3", "seed = 3\nsave_adversarial = true"), "m.toml");
  const auto c = parse_matrix_text(
      good_with("options = { steps = 10 }", "options = { steps = 10 }\nsave_adversarial = true"), "m.toml");
  EXPECT_FALSE(a.save_adversarial);
  EXPECT_TRUE(b.save_adversarial);
  EXPECT_EQ(a.hash(), b.hash());
  EXPECT_EQ(a.hash(), c.hash());
  EXPECT_TRUE(b.to_json()["save_adversarial"].get<bool>());  // recorded in the results file's config_json
  for (const auto& attack : b.attacks) EXPECT_TRUE(b.saves_adversarial(attack)) << attack.name;
  ASSERT_EQ(c.attacks[2].name, "cw-t");
  EXPECT_TRUE(c.saves_adversarial(c.attacks[2]));
  EXPECT_FALSE(c.saves_adversarial(c.attacks[0]));
  EXPECT_FALSE(c.attacks[2].to_json().contains("save_adversarial"));  // not in the cells' configuration
  EXPECT_EQ(error_of_text(good_with("seed = 3", "seed = 3\nsave_adversarial = 1")),
            "m.toml:6: save_adversarial: expected true or false, got an integer");
}

TEST(Matrix, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(error_of_text(good_with("seed = 3", "sede = 3")), "m.toml:5: sede: unknown key (did you mean 'seed'?)");
  EXPECT_EQ(error_of_text(good_with("examples = 50", "examples = \"50\"")),
            "m.toml:4: examples: expected an integer, got a string");
  EXPECT_EQ(error_of_text(good_with("name = \"fgsm\"", "name = \"fgsn\"")),
            "m.toml:23: attacks[0].attack: unknown attack 'fgsn' (did you mean 'fgsm'?); known: fgsm, pgd, cw, apgd-ce, "
            "apgd-dlr, square");
  EXPECT_EQ(error_of_text(good_with("family = \"sfnn\"", "family = \"sfn\"")),
            "m.toml:19: models[1].family: unknown family 'sfn' (did you mean 'sfnn'?); known: det, sfnn, imb-joint, "
            "imb-greedy, vib");
  EXPECT_EQ(error_of_text(good_with("source_model = \"det\"", "source_model = \"dte\"")),
            "m.toml:44: attacks[3].source_model: unknown model 'dte' (did you mean 'det'?)");
  EXPECT_EQ(error_of_text(good_with("eps = [0.1, \"8/255\"]", "eps = [0.1, \"8/0\"]")),
            "m.toml:24: attacks[0].eps: '8/0' is not a number, a fraction like 8/255, or inf");
  EXPECT_EQ(error_of_text(good_with("eps = [0.1, \"8/255\"]", "eps = [0.1, 0.1]")),
            "m.toml:24: attacks[0].eps: eps 0.1 is listed twice");
  // Training options are checked when the file is read, not when training starts, and named by their key path.
  EXPECT_THAT(error_of_text(good_with("epochs = 2", "epoch = 2")),
              testing::StartsWith("m.toml:14: unknown training option 'models[0].train.epoch' (did you mean 'epochs'?); "
                                  "known: optimizer, learning_rate,"));
  EXPECT_EQ(error_of_text(good_with("epochs = 2", "epochs = \"many\"")),
            "m.toml:14: models[0].train.epochs must be an integer, got \"many\"");
  EXPECT_EQ(error_of_text(good_with("epochs = 2", "epochs = 2, k = 8")),
            "m.toml:14: models[0].train.k does not apply to family 'det' (it has no hyper-parameters)");
  EXPECT_EQ(error_of_text(good_with("epochs = 2", "epochs = 0")), "m.toml:14: models[0].train.epochs must be >= 1, got 0");
  EXPECT_EQ(error_of_text(good_with("epochs = 2", "epochs = -1")),
            "m.toml:14: models[0].train.epochs must be >= 1, got -1");
  EXPECT_EQ(error_of_text(good_with("hidden = [32, 32]", "hidden = [32, 0]")),
            "m.toml:14: models[0].train.hidden values must be >= 1, got [32, 0]");
  EXPECT_EQ(error_of_text(good_with("epochs = 2", "epochs = 2, patience = 3, validation_size = 0")),
            "m.toml:14: models[0].train.patience needs a validation split: set models[0].train.validation_size > 0 or "
            "models[0].train.patience to 0");
  // The key's own line in a [models.train] table.
  EXPECT_EQ(error_of_text(good_with("train = { epochs = 2, hidden = [32, 32] }",
                                    "[models.train]\nepochs = 2\nlr = 0.1\n")),
            "m.toml:16: unknown training option 'models[0].train.lr' (did you mean 'learning_rate'?); known: optimizer, "
            "learning_rate, momentum, batch_size, epochs, grad_clip, validation_size, patience, shuffle, "
            "flush_denormal, seed, hidden, activation, train_samples, test_samples, gamma, beta, prior_std, k");
  EXPECT_NE(error_of_text("name = \"x\"\nexamples = [1,").find("m.toml:2:"), std::string::npos);
  // The attack rejects its options at parse time, not hours into a run.
  EXPECT_NE(error_of_text(good_with("steps = 5,", "stpes = 5,")).find("attacks[1].options: "), std::string::npos);
  EXPECT_NE(error_of_text(good_with("name = \"pgd\"\neps = [0.1]", "name = \"pgd\"\neps = [\"inf\"]")).find("needs a finite eps"),
            std::string::npos);
  EXPECT_NE(error_of_text(good_with("checkpoint = \"x/sfnn.ckpt\"", "")).find("exactly one of checkpoint"), std::string::npos);
  EXPECT_NE(error_of_text(good_with("name = \"sfnn\"", "name = \"det\"")).find("used twice"), std::string::npos);
  EXPECT_NE(error_of_text(good_with("target_rule = \"next\"", "target_rule = \"nxt\"")).find("expected \"random\""),
            std::string::npos);
  EXPECT_NE(error_of_text("name = \"x\"\n[[models]]\nname=\"a\"\ncheckpoint=\"a\"\n").find("no [[attacks]]"), std::string::npos);
  // TorchScript descriptions belong to TorchScript models; a checkpoint records them.
  EXPECT_NE(error_of_text(good_with("checkpoint = \"x/sfnn.ckpt\"", "checkpoint = \"x/sfnn.ckpt\"\nnum_classes = 10"))
                .find("models[1].input_shape: input_shape/num_classes/stochastic/samples describe TorchScript models only"),
            std::string::npos);
  const std::string torchscript = "torchscript = \"x/sfnn.pt\"\ninput_shape = [1, 28, 28]\nnum_classes = 10";
  const std::string sfnn_checkpoint = "family = \"sfnn\"\ncheckpoint = \"x/sfnn.ckpt\"";
  EXPECT_EQ(error_of_text(good_with(sfnn_checkpoint, torchscript)), "no error");
  const auto ts = parse_matrix_text(good_with(sfnn_checkpoint, torchscript), "m.toml").models[1];
  EXPECT_EQ(ts.torchscript_options.input_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(ts.to_json()["num_classes"], 10);
  EXPECT_FALSE(ts.to_json().contains("samples"));  // unset options are not written (the matrix hash is unchanged)
  // Its description is read through the TorchScript option table: types and bounds, by key, at the key's line.
  EXPECT_EQ(error_of_text(good_with(sfnn_checkpoint, torchscript + "\nsamples = 0")),
            "m.toml:22: models[1].samples must be >= 1, got 0");
  EXPECT_EQ(error_of_text(good_with(sfnn_checkpoint, torchscript + "\nstochastic = 1")),
            "m.toml:22: models[1].stochastic must be true or false, got 1");
  EXPECT_EQ(error_of_text(good_with(sfnn_checkpoint, "torchscript = \"x/sfnn.pt\"\ninput_shape = [1, 0, 28]")),
            "m.toml:20: models[1].input_shape values must be >= 1, got [1, 0, 28]");
  EXPECT_EQ(error_of_text(good_with("seed = 3", "seed = 3\nsplit = \"valid\"")),
            "m.toml:6: split: expected \"test\" or \"train\"");
  EXPECT_EQ(parse_matrix_text(good_with("seed = 3", "seed = 3\nsplit = \"train\""), "m.toml").split, "train");
}

// A test set of your own as the dataset: the spelling is checked when the matrix is read, the file when it runs.
TEST(Matrix, DatasetMayBeAFileOfYourOwn) {
  for (const char* spec : {"own.npz", "data/own.h5:images,labels", "x.npy,y.npy"}) {
    const auto m =
        parse_matrix_text(good_with("dataset = \"synthetic\"", fmt::format("dataset = \"{}\"", spec)), "m.toml");
    EXPECT_EQ(m.dataset, spec);
  }
  EXPECT_THAT(error_of_text(good_with("dataset = \"synthetic\"", "dataset = \"x.npy\"")),
              testing::StartsWith("m.toml:3: dataset: dataset 'x.npy': a .npy file holds one array"));
  EXPECT_THAT(error_of_text(good_with("dataset = \"synthetic\"", "dataset = \"own.npz\"\nsplit = \"train\"")),
              testing::StartsWith("m.toml:4: split: dataset \"own.npz\" is a test set of your own"));
  EXPECT_THAT(error_of_text(good_with("dataset = \"synthetic\"", "dataset = \"minst\"")),
              testing::AllOf(testing::HasSubstr("did you mean 'mnist'"), testing::HasSubstr("X.npy,Y.npy")));
}

TEST(Matrix, MissingFileIsAUsageError) {
  EXPECT_NE(testing_support::error_of<UsageError>([] { parse_matrix_file("/nonexistent/m.toml"); }).find("cannot be read"),
            std::string::npos);
}

TEST(Matrix, PlansCascadeGroupsInOrder) {
  const auto m = parse_matrix_text(kGood, "m.toml");
  const auto jobs = plan_jobs(m);
  // det: linf-0.1 (fgsm, pgd), linf-8/255 (fgsm), l2-inf targeted (cw-t); sfnn: the same plus the transfer from det.
  ASSERT_EQ(jobs.size(), 6u);
  EXPECT_EQ(jobs[0].group, "det.linf-0.1.untargeted");
  ASSERT_EQ(jobs[0].cells.size(), 2u);
  EXPECT_EQ(jobs[0].cells[0].id, "det.fgsm.linf-0.1");
  EXPECT_EQ(jobs[0].cells[1].id, "det.pgd.linf-0.1");
  EXPECT_EQ(jobs[0].cells[1].position, 1);
  EXPECT_EQ(jobs[1].group, "det.linf-8_255.untargeted");
  EXPECT_EQ(jobs[2].group, "det.l2-inf.targeted-next");
  EXPECT_EQ(jobs[3].group, "sfnn.linf-0.1.untargeted");
  ASSERT_EQ(jobs[3].cells.size(), 3u);
  EXPECT_EQ(jobs[3].cells[2].id, "sfnn.pgd-transfer.linf-0.1");
}

TEST(Matrix, ShardsPartitionTheJobs) {
  EXPECT_EQ(parse_shard("2/3"), (std::pair<int64_t, int64_t>{2, 3}));
  for (const char* bad : {"0/2", "3/2", "1", "a/b", "1/0", "1/2x"})
    EXPECT_NE(testing_support::error_of<UsageError>([&] { parse_shard(bad); }).find("--shard"), std::string::npos) << bad;
  for (std::size_t i = 0; i < 10; ++i) {
    int owners = 0;
    for (int64_t k = 1; k <= 3; ++k) owners += in_shard(i, {k, 3});
    EXPECT_EQ(owners, 1);
  }
}

TEST(Training, PlanAppliesOverridesAndRejectsBadOnes) {
  const auto p = plan_training("sfnn", "synthetic", "quick", {{"epochs", 3}, {"hidden", {16, 8}}, {"train_samples", 4}});
  EXPECT_EQ(p.options.epochs, 3);
  EXPECT_EQ(p.spec.hidden, (std::vector<int64_t>{16, 8}));
  EXPECT_EQ(p.spec.hyper["train_samples"], nlohmann::json({4, 4}));
  // The quick preset's branching options; gamma, one number for every layer.
  const auto q = plan_training("imb-joint", "synthetic", "quick", {{"gamma", 0.5}});
  EXPECT_EQ(q.options.epochs, 10);
  EXPECT_EQ(q.spec.hyper["train_samples"], nlohmann::json({8, 8}));
  EXPECT_EQ(q.spec.hyper["gamma"], nlohmann::json({0.5, 0.5, 0.5}));
  const auto v = plan_training("vib", "synthetic", "paper", {{"k", 8}, {"beta", 0.01}});
  EXPECT_EQ(v.spec.hyper, nlohmann::json({{"k", 8}, {"beta", 0.01}, {"train_samples", 1}, {"test_samples", 12}}));
  EXPECT_EQ(v.options.epochs, 200);
  auto error = [](const std::string& family, const nlohmann::json& j, OptionSpelling spelling) {
    return testing_support::error_of<UsageError>(
        [&] { plan_training(family, "synthetic", "quick", j, {"training option", "", spelling}); });
  };
  const auto key = OptionSpelling::kKey, flag = OptionSpelling::kFlag;
  // Unknown names: "did you mean", as written.
  EXPECT_THAT(error("det", {{"epoch", 3}}, key), HasSubstr("unknown training option 'epoch' (did you mean 'epochs'?)"));
  EXPECT_THAT(error("det", {{"epoch", 3}}, flag),
              HasSubstr("unknown training option '--epoch' (did you mean '--epochs'?); known: --optimizer, --lr,"));
  EXPECT_THAT(error("det", {{"learning_rat", 3}}, key), HasSubstr("(did you mean 'learning_rate'?)"));
  // Options of another family.
  EXPECT_EQ(error("det", {{"train_samples", 4}}, key),
            "train_samples does not apply to family 'det' (it has no hyper-parameters)");
  EXPECT_EQ(error("sfnn", {{"k", 4}}, flag),
            "--k does not apply to family 'sfnn' (it takes: --train-samples, --test-samples, --gamma, --beta, "
            "--prior-std)");
  // Wrong types.
  EXPECT_EQ(error("det", {{"epochs", "many"}}, key), "epochs must be an integer, got \"many\"");
  EXPECT_EQ(error("det", {{"learning_rate", "fast"}}, flag), "--lr must be a number, got \"fast\"");
  EXPECT_EQ(error("det", {{"hidden", 512}}, key), "hidden must be a list of integers, got 512");
  EXPECT_EQ(error("sfnn", {{"gamma", {1, "a", 0}}}, key), "gamma must be a list of numbers, got [1, \"a\", 0]");
  EXPECT_EQ(error("det", {{"activation", "tanh"}}, flag), "--activation must be one of sigmoid, relu, got \"tanh\"");
  EXPECT_THAT(error("det", {{"optimizer", "adamw"}}, key), HasSubstr("optimizer: unknown optimizer 'adamw'"));
  // Out of bounds, per spelling.
  EXPECT_EQ(error("det", {{"epochs", 0}}, flag), "--epochs must be >= 1, got 0");
  EXPECT_EQ(error("det", {{"epochs", 0}}, key), "epochs must be >= 1, got 0");
  EXPECT_EQ(error("det", {{"learning_rate", 0}}, flag), "--lr must be > 0, got 0");
  EXPECT_EQ(error("det", {{"learning_rate", 0}}, key), "learning_rate must be > 0, got 0");
  EXPECT_EQ(error("det", {{"momentum", 1.0}}, key), "momentum must be in [0, 1), got 1");
  EXPECT_EQ(error("det", {{"seed", -1}}, flag), "--seed must be >= 0, got -1");
  EXPECT_EQ(error("sfnn", {{"train_samples", {4, 0}}}, flag), "--train-samples values must be >= 1, got [4, 0]");
  EXPECT_EQ(error("sfnn", {{"train_samples", {4, 4, 4}}}, flag),
            "--train-samples needs 2 values (one per hidden layer), got 3");
  EXPECT_EQ(error("imb-joint", {{"gamma", {1, 1}}}, key), "gamma needs 3 values (gamma_0 and one per hidden layer), got 2");
  EXPECT_EQ(error("imb-joint", {{"gamma", 0}}, key), "gamma needs at least one positive value");
  EXPECT_EQ(error("vib", {{"k", 0}}, flag), "--k must be >= 1, got 0");
  EXPECT_EQ(error("imb-greedy", {{"epochs", 1}}, key), "epochs 1 is fewer than the 2 training stages of family 'imb-greedy'");
  EXPECT_EQ(error("vib", {{"train_samples", {1, 2}}}, key), "train_samples must be an integer, got [1, 2]");
  for (const auto& m : {error("det", {{"epoch", 3}}, flag), error("sfnn", {{"k", 4}}, key)})
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

// A two-class linear model whose outputs we control.
class ConstantModel : public models::Model {
 public:
  explicit ConstantModel(torch::Tensor out, bool noisy = false) : out_(std::move(out)), noisy_(noisy) {}
  torch::Tensor logits(const torch::Tensor& x) override {
    auto z = out_.expand({x.size(0), out_.size(0)}) + x.flatten(1).sum(1, true) * 0;
    return noisy_ ? z + torch::randn_like(z) : z;
  }
  bool is_stochastic() const override { return false; }
  int64_t num_classes() const override { return out_.size(0); }
  std::vector<int64_t> input_shape() const override { return {4}; }
  std::string description() const override { return "constant"; }
  torch::Device device() const override { return torch::kCPU; }
  void to(torch::Device) override {}
  void set_training(bool) override {}
  std::vector<torch::Tensor> parameters() override { return {}; }

 private:
  torch::Tensor out_;
  bool noisy_;
};

TEST(Checks, RandomnessFlagsAHiddenStochasticModel) {
  const auto x = torch::rand({8, 4});
  ConstantModel calm(torch::tensor({1.0f, 2.0f}));
  EXPECT_FALSE(check_randomness(calm, x).failed);
  ConstantModel noisy(torch::tensor({1.0f, 2.0f}), true);
  const auto f = check_randomness(noisy, x);
  EXPECT_TRUE(f.failed);
  EXPECT_EQ(f.check, 1);
}

TEST(Checks, LogitsCheckFlagsProbabilities) {
  const auto x = torch::rand({8, 4});
  ConstantModel logits(torch::tensor({-3.0f, 2.0f}));
  EXPECT_FALSE(check_logits(logits, x).failed);
  ConstantModel probs(torch::tensor({0.25f, 0.75f}));
  EXPECT_TRUE(check_logits(probs, x).failed);
}

TEST(Checks, GradientHealthFlagsZeroGradients) {
  const auto x = torch::rand({8, 4});
  const auto y = torch::zeros({8}, torch::kLong);
  ConstantModel flat(torch::tensor({-3.0f, 2.0f}));  // output independent of x: all-zero gradients
  const auto f = check_gradient_health(flat, x, y, {});
  EXPECT_TRUE(f.failed) << f.detail;
  auto m = models::create_model(models::default_spec("det", {1, 28, 28}, 10));
  const auto g = check_gradient_health(*m, torch::rand({8, 1, 28, 28}), torch::zeros({8}, torch::kLong), {});
  EXPECT_FALSE(g.failed) << g.detail;
}

TEST(Checks, ValidityCountsEveryKindOfViolation) {
  attacks::ThreatModel t;
  t.eps = 0.1;
  const auto x = torch::full({4, 3}, 0.5f);
  auto adv = x.clone();
  EXPECT_EQ(count_invalid(adv, x, x.clone(), t), 0);
  adv[0][0] = 0.7f;                                  // outside the ball
  adv[1][1] = std::numeric_limits<float>::quiet_NaN();  // not finite
  auto moved = x.clone();
  moved[2][2] = 0.0f;                                // the input was modified
  EXPECT_EQ(count_invalid(adv, x, moved, t), 3);
  t.eps = 1.0;
  auto out_of_box = x.clone();
  out_of_box[3][0] = 1.2f;
  EXPECT_EQ(count_invalid(out_of_box, x, x.clone(), t), 1);
}

TEST(Checks, FixedNoiseModelIsDeterministic) {
  auto spec = models::default_spec("sfnn", {1, 28, 28}, 10);
  spec.hidden = {16, 16};
  models::apply_preset("quick", spec);
  auto m = models::create_model(spec);
  const auto x = torch::rand({5, 1, 28, 28});
  torch::NoGradGuard g;
  EXPECT_FALSE(torch::equal(m->logits(x), m->logits(x)));  // the model itself samples
  FixedNoiseModel fixed(*m, 7);
  EXPECT_TRUE(torch::equal(fixed.logits(x), fixed.logits(x)));
  EXPECT_FALSE(fixed.is_stochastic());
}

TEST(Checks, RegistryHoldsEveryCheckOfEvaluationMdOnce) {
  // docs/EVALUATION.md numbers its checks 1-12. Four have a cheap half that
  // runs by default and an expensive one: 2 and 3 (a probe on a few examples,
  // the full audit), 9 (transfer across cells, noise in the audit), 10 (an
  // unbounded cell's own result, PGD-100 per model in the audit).
  std::map<int, std::set<std::string>> names;
  std::map<int, int> rows;
  std::ifstream doc(std::string(IMBENCH_SOURCE_DIR) + "/docs/EVALUATION.md");
  const std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
  for (const auto& c : check_registry()) {
    EXPECT_TRUE(static_cast<bool>(c.run)) << c.name;
    EXPECT_FALSE(c.summary.empty()) << c.name;
    names[c.number].insert(c.name);
    ++rows[c.number];
    // Every check has its row in the documentation's table.
    EXPECT_THAT(text, HasSubstr(fmt::format("| {} | `{}` |", c.number, c.name))) << c.name;
  }
  for (int n = 1; n <= 12; ++n) EXPECT_EQ(names.count(n), 1u) << "check " << n << " is not registered";
  using Names = std::set<std::string>;
  EXPECT_EQ(names[2], (Names{"eot-doubling", "eot-convergence"}));
  EXPECT_EQ(names[3], (Names{"fixed-noise-control"}));
  EXPECT_EQ(rows[3], 2);  // the probe and the audit, under one name (only one of them runs)
  EXPECT_EQ(names[9], (Names{"white-vs-transfer", "noise-vs-white-box", "black-box-vs-white-box"}));
  EXPECT_EQ(names[10], (Names{"unbounded-cell", "unbounded-attack"}));
  for (const auto& [n, v] : rows) {
    if (n != 2 && n != 3 && n != 9 && n != 10) {
      EXPECT_EQ(v, 1) << "check " << n;
    }
  }
}

TEST(Checks, StagesRunOnlyTheirChecks) {
  // A cross-cell run on an empty file adds nothing and touches no model.
  reports::ResultFile f;
  CheckContext ctx;
  ctx.file = &f;
  run_checks(CheckStage::kCrossCell, ctx);
  EXPECT_TRUE(ctx.flags.empty());
  // The model stage on a constant model whose outputs look like probabilities flags checks 4 and 5.
  ConstantModel probs(torch::tensor({0.25f, 0.75f}));
  EvaluationSettings settings;
  CheckContext m;
  m.settings = &settings;
  m.model = &probs;
  m.x = torch::rand({8, 4});
  m.y = torch::zeros({8}, torch::kLong);
  run_checks(CheckStage::kModel, m);
  std::vector<int> seen, failed;
  for (const auto& flag : m.flags) {
    seen.push_back(flag.check);
    if (flag.failed) failed.push_back(flag.check);
  }
  EXPECT_EQ(seen, (std::vector<int>{1, 4, 5, 12}));
  EXPECT_EQ(failed, (std::vector<int>{4, 5}));  // probabilities; and a constant output has all-zero gradients
}

reports::CellResult cell(const std::string& attack, double eps, double acc, const std::string& group, int64_t pos,
                         const std::string& source = "") {
  reports::CellResult c;
  c.id = "m." + attack + "." + std::to_string(eps);
  c.model = "m";
  c.attack = attack;
  c.norm = "linf";
  c.eps = eps;
  c.eps_text = std::to_string(eps);
  c.group = group;
  c.cascade_position = pos;
  c.source_model = source;
  c.index.assign(100, 0);
  c.summary["robust_accuracy"] = acc;
  c.summary["robust_accuracy_std"] = 0;
  return c;
}

TEST(Checks, CrossCellChecksFlagNonMonotoneEpsAndStrongTransfer) {
  reports::ResultFile f;
  f.root["num_classes"] = "10";
  f.cells = {cell("pgd", 0.1, 0.50, "g1", 0), cell("pgd", 0.2, 0.60, "g2", 0), cell("pgd", 0.3, 0.45, "g3", 0),
             cell("pgd-t", 0.3, 0.20, "g3", 1, "det"), cell("pgd", 1.0, 0.40, "g4", 0)};
  // A per-cell flag of --audit that shares check number 9: not the cross-cell checks' to replace.
  f.cells[0].flags.push_back({9, "noise-vs-white-box", true, "random noise beat the white-box attack"});
  apply_cross_cell_checks(f);
  auto failed = [&](int i, int check) {
    for (const auto& fl : f.cells[i].flags)
      if (fl.check == check && fl.failed) return true;
    return false;
  };
  EXPECT_FALSE(failed(0, 7));
  EXPECT_TRUE(failed(1, 7));   // 60% at 0.2 > 50% at 0.1
  EXPECT_FALSE(failed(2, 7));
  EXPECT_TRUE(failed(4, 7));   // 40% at eps 1 is above chance
  EXPECT_TRUE(failed(3, 9));   // the transfer attack removed 20 points the white-box attack left
  EXPECT_TRUE(failed(2, 9));   // and the white-box cell is marked too
  EXPECT_TRUE(f.cells[2].unreliable());
  EXPECT_TRUE(failed(0, 9));   // the audit's flag is kept
  // Idempotent: running the checks again does not duplicate flags.
  const auto before = f.cells[1].flags.size();
  apply_cross_cell_checks(f);
  EXPECT_EQ(f.cells[1].flags.size(), before);
  EXPECT_TRUE(failed(0, 9));
}

}  // namespace

// ---- work-weighted progress (harness/progress.h) ----

TEST(Progress, WorkPerExampleIsEotTimesTheAttacksBudget) {
  EXPECT_DOUBLE_EQ(work_per_example({"steps", "restarts"}, R"({"steps": 40, "restarts": 2, "step_size": 0.01})", 8, false),
                   640);
  EXPECT_DOUBLE_EQ(work_per_example({}, R"({"loss": "ce"})", 1, false), 1);  // FGSM on a deterministic model
  EXPECT_DOUBLE_EQ(work_per_example({"queries", "restarts"}, R"({"queries": 300, "restarts": 1})", 1, true), 100);
}

TEST(Progress, TheEtaWeighsTheRemainingCellsByTheirWork) {
  double now = 0;
  // A cheap cell, one ten times dearer, then a cheap cascaded one.
  ProgressMeter m({{1, 100, false}, {10, 100, false}, {1, 100, true}}, [&] { return now; });
  EXPECT_DOUBLE_EQ(m.estimated_work(), 1200);
  EXPECT_FALSE(m.eta_seconds().has_value());  // nothing timed yet
  m.start(0, 100);
  now = 1;
  m.update(100, 100);
  m.finish(0);
  // 100 units took 1 s; 1,100 are left: 11 s (counting cells alike would say 2 s).
  ASSERT_TRUE(m.eta_seconds().has_value());
  EXPECT_NEAR(*m.eta_seconds(), 11, 1e-9);
  m.start(1, 100);
  now = 6;
  m.update(50, 100);  // half of the dear cell: 600 of 1,200 done in 6 s
  EXPECT_NEAR(*m.eta_seconds(), 6, 1e-9);
  EXPECT_NEAR(m.fraction_done(), 0.5, 1e-12);
  now = 11;
  m.finish(1);
  // The cascaded cell attacks only the 20 survivors: 20 units left.
  m.start(2, 20);
  EXPECT_NEAR(*m.eta_seconds(), 11.0 / 1100 * 20, 1e-9);
  EXPECT_THAT(m.summary(2), HasSubstr("cells 2/3"));
  now = 11.2;
  m.finish(2);
  EXPECT_NEAR(*m.eta_seconds(), 0, 1e-12);
  EXPECT_DOUBLE_EQ(m.fraction_done(), 1);
}

TEST(Progress, KeptCellsCostNothingAndCascadesShrinkTheEstimate) {
  double now = 0;
  ProgressMeter m({{5, 100, false}, {1, 100, false}, {1, 100, true}, {1, 100, true}}, [&] { return now; });
  m.finish(0, /*skipped=*/true);  // done in an earlier run
  m.start(1, 100);
  now = 2;
  m.finish(1);
  m.start(2, 10);  // 10% survived the cascade
  now = 2.2;
  m.finish(2);
  // The last cell is expected to see 10% too: 10 units left at 110 units per 2.2 s.
  EXPECT_NEAR(*m.eta_seconds(), 2.2 / 110 * 10, 1e-9);
  EXPECT_EQ(format_duration(187), "3m07s");
  EXPECT_EQ(format_duration(59.6), "1m00s");
}
