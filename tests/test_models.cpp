// Tests of the models library: DET, training, optimisers, checkpoints,
// TorchScript models, evaluation, devices.
#include <gmock/gmock.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "core/errors.h"
#include "core/sha256.h"
#include "data/synthetic.h"
#include "models/checkpoint.h"
#include "models/det.h"
#include "models/device.h"
#include "models/evaluate.h"
#include "models/load.h"
#include "models/optimizer.h"
#include "models/stochastic.h"
#include "models/torchscript.h"
#include "models/train.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace imbench;
using namespace imbench::models;
using testing::HasSubstr;
using imbench::testing_support::error_of;
using imbench::testing_support::TempDir;
using imbench::testing_support::toy;

namespace {

ModelSpec small_spec(std::vector<int64_t> hidden = {32, 32}) {
  ModelSpec s;
  s.family = "det";
  s.input_shape = {1, 28, 28};
  s.hidden = std::move(hidden);
  s.num_classes = 10;
  return s;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST(Det, ShapesAndInterface) {
  torch::manual_seed(0);
  auto m = create_model(small_spec());
  auto x = torch::rand({5, 1, 28, 28});
  EXPECT_EQ(m->logits(x).sizes(), (std::vector<int64_t>{5, 10}));
  auto s = m->sample_logits(x, 3);
  EXPECT_EQ(s.sizes(), (std::vector<int64_t>{3, 5, 10}));
  EXPECT_TRUE(torch::equal(s[2], m->logits(x)));
  EXPECT_FALSE(m->is_stochastic());
  EXPECT_EQ(m->prediction_rule(), PredictionRule::kArgmaxLogits);
  EXPECT_EQ(m->description(), "DET MLP 784-32-32-10 (sigmoid)");
  EXPECT_EQ(m->predict(x).sizes(), (std::vector<int64_t>{5}));
  auto p = m->predict_proba(x);
  EXPECT_TRUE(torch::allclose(p.sum(1), torch::ones({5})));
  EXPECT_THROW(m->check_input(torch::rand({5, 784})), UsageError);
}

TEST(Det, GlorotUniformInitAndZeroBias) {
  torch::manual_seed(1);
  auto m = create_model(small_spec({64}));
  auto& mlp = dynamic_cast<DetModel&>(*m);
  for (const auto& p : mlp.module().named_parameters()) {
    if (p.key().find("bias") != std::string::npos) {
      EXPECT_EQ(p.value().abs().max().item<float>(), 0.0f) << p.key();
    } else {
      const double bound = std::sqrt(6.0 / static_cast<double>(p.value().size(0) + p.value().size(1)));
      EXPECT_LE(p.value().abs().max().item<double>(), bound) << p.key();
      EXPECT_GT(p.value().abs().max().item<double>(), 0.9 * bound) << p.key();
    }
  }
}

TEST(Det, ReluActivationDiffersFromSigmoid) {
  auto s = small_spec();
  torch::manual_seed(0);
  auto a = create_model(s);
  s.activation = "relu";
  torch::manual_seed(0);
  auto b = create_model(s);
  auto x = torch::rand({4, 1, 28, 28});
  EXPECT_FALSE(torch::allclose(a->logits(x), b->logits(x)));
  EXPECT_THAT(b->description(), HasSubstr("relu"));
}

TEST(ModelSpec, JsonRoundTripAndValidation) {
  auto s = small_spec({7, 9});
  s.hyper = {{"beta", 1e-3}};
  auto back = ModelSpec::from_json(s.to_json());
  EXPECT_EQ(back.to_json(), s.to_json());
  EXPECT_EQ(s.layer_string(), "784-7-9-10");
  auto bad = s;
  bad.hidden = {0};
  EXPECT_THROW(bad.validate(), UsageError);
  bad = s;
  bad.activation = "tanh";
  EXPECT_THAT(error_of<UsageError>([&] { bad.validate(); }), HasSubstr("activation"));
  bad = s;
  bad.family = "dett";
  EXPECT_THAT(error_of<UsageError>([&] { create_model(bad); }), HasSubstr("did you mean 'det'"));
  EXPECT_THROW(ModelSpec::from_json(nlohmann::json{{"family", "det"}}), Error);
}

TEST(TrainOptions, ValidationAndPresets) {
  TrainOptions o;
  o.learning_rate = -1;
  EXPECT_THAT(error_of<UsageError>([&] { o.validate(); }), HasSubstr("--lr"));
  o = TrainOptions{};
  o.patience = 3;
  o.validation_size = 0;
  EXPECT_THAT(error_of<UsageError>([&] { o.validate(); }), HasSubstr("--patience"));
  const auto paper = preset_options("paper");
  EXPECT_EQ(paper.optimizer, OptimizerKind::kAdamax);
  EXPECT_DOUBLE_EQ(paper.learning_rate, 0.01);
  EXPECT_DOUBLE_EQ(paper.grad_clip, 5.0);
  EXPECT_EQ(paper.batch_size, 16);
  EXPECT_EQ(paper.patience, 20);
  EXPECT_EQ(paper.validation_size, 1000);
  EXPECT_THAT(error_of<UsageError>([] { preset_options("quik"); }), HasSubstr("did you mean 'quick'"));
  auto j = paper.to_json();
  EXPECT_EQ(TrainOptions::from_json(j).to_json(), j);
}

// The option tables keep the defaults and the recorded JSON of before the tables.
TEST(TrainOptions, TableKeepsDefaultsAndRecordedJson) {
  // TrainOptions{}.to_json() as recorded before the table; dump() compares types too (0.0 is not 0).
  EXPECT_EQ(TrainOptions().to_json().dump(),
            R"({"batch_size":100,"device":"cpu","epochs":20,"flush_denormal":true,"grad_clip":0.0,)"
            R"("learning_rate":0.001,"momentum":0.9,"optimizer":"adam","patience":0,"seed":0,"shuffle":true,)"
            R"("validation_size":1000})");
  // A checkpoint from before flush_denormal existed reads it as false.
  auto old = TrainOptions().to_json();
  old.erase("flush_denormal");
  EXPECT_FALSE(TrainOptions::from_json(old).flush_denormal);
  // Every row is described once, with the struct's default and the flag the CLI always had.
  const auto rows = TrainOptions::table().describe();
  ASSERT_EQ(rows.size(), 11u);
  EXPECT_EQ(TrainOptions::table().find("learning_rate")->flag(), "--lr");
  EXPECT_EQ(TrainOptions::table().find("batch_size")->flag(), "--batch-size");
  for (const auto& o : rows) EXPECT_EQ(o.default_value, TrainOptions().to_json()[o.key]) << o.key;
  // Presets are rows of data read through the table.
  EXPECT_EQ(preset_options("quick").to_json(), TrainOptions().to_json());
  EXPECT_EQ(preset_names(), (std::vector<std::string>{"quick", "paper"}));
}

TEST(TrainOptions, ValidateNamesTheOptionAsWritten) {
  TrainOptions o;
  o.epochs = 0;
  EXPECT_EQ(error_of<UsageError>([&] { o.validate(); }), "--epochs must be >= 1, got 0");
  EXPECT_EQ(error_of<UsageError>([&] { o.validate({"training option", "models[2].train.", OptionSpelling::kKey}); }),
            "models[2].train.epochs must be >= 1, got 0");
  o = TrainOptions{};
  o.grad_clip = std::numeric_limits<double>::infinity();
  EXPECT_EQ(error_of<UsageError>([&] { o.validate(); }), "--grad-clip must be >= 0, got inf");
  try {
    o.validate();
  } catch (const OptionError& e) {
    EXPECT_EQ(e.key(), "grad_clip");
  }
}

// Family hyper-parameters: typed structs whose defaults live in one place and
// whose JSON is what checkpoints recorded before.
TEST(FamilyHyper, DefaultsAndRecordedJsonAreUnchanged) {
  EXPECT_EQ(find_family("sfnn").default_hyper(2).dump(),
            R"({"beta":[0.0,0.0],"gamma":[1.0,0.0,0.0],"greedy":false,"prior_std":0.5,"test_samples":[32,32],)"
            R"("train_samples":[16,16]})");
  EXPECT_EQ(find_family("imb-greedy").default_hyper(2).dump(),
            R"({"beta":[0.0001,0.0001],"gamma":[1.0,1.0,1.0],"greedy":true,"prior_std":0.5,"test_samples":[32,32],)"
            R"("train_samples":[16,16]})");
  EXPECT_EQ(find_family("imb-joint").default_hyper(1)["gamma"], nlohmann::json({1.0, 1.0}));
  EXPECT_EQ(find_family("vib").default_hyper(2).dump(), R"({"beta":0.001,"k":256,"test_samples":12,"train_samples":1})");
  EXPECT_TRUE(find_family("det").hyper_options.empty());
  // A spec without some keys gets its family's defaults (the constructors hold none of their own).
  ModelSpec s = default_spec("imb-greedy", {1, 28, 28}, 10);
  s.hyper = {{"train_samples", {2, 2}}};
  const auto h = SfnnHyper::from_spec(s);
  EXPECT_TRUE(h.greedy);
  EXPECT_EQ(h.gamma, (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(h.train_samples, (std::vector<int64_t>{2, 2}));
  s.hyper = {{"gama", {1, 1, 1}}};
  EXPECT_THAT(error_of<UsageError>([&] { SfnnHyper::from_spec(s); }), HasSubstr("'gama' (did you mean 'gamma'?)"));
  s.hyper = {{"beta", {0.1, -1}}};
  EXPECT_EQ(error_of<UsageError>([&] { SfnnHyper::from_spec(s); }), "imb-greedy: beta values must be >= 0, got [0.1, -1]");
}

// The fused CPU update must equal the tensor-op path and torch.optim's rules.
class OptimizerTest : public testing::TestWithParam<OptimizerKind> {};

TEST_P(OptimizerTest, FusedEqualsTensorPathAndTorchReference) {
  const OptimizerKind kind = GetParam();
  torch::manual_seed(0);
  std::vector<torch::Tensor> a{torch::randn({33, 17}), torch::randn({70000})};
  std::vector<torch::Tensor> b, c;
  for (auto& t : a) {
    t.requires_grad_();
    b.push_back(t.detach().clone().requires_grad_());
    c.push_back(t.detach().clone().requires_grad_());
  }
  Optimizer fused(a, kind, 0.01, 0.9);
  Optimizer plain(b, kind, 0.01, 0.9);
  plain.set_fused(false);
  std::unique_ptr<torch::optim::Optimizer> reference;
  if (kind == OptimizerKind::kAdam) {
    reference = std::make_unique<torch::optim::Adam>(c, torch::optim::AdamOptions(0.01));
  } else if (kind == OptimizerKind::kSgd) {
    reference = std::make_unique<torch::optim::SGD>(c, torch::optim::SGDOptions(0.01).momentum(0.9));
  }
  for (int step = 0; step < 5; ++step) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      auto g = torch::randn_like(a[i]);
      a[i].mutable_grad() = g.clone();
      b[i].mutable_grad() = g.clone();
      c[i].mutable_grad() = g.clone();
    }
    fused.step();
    plain.step();
    if (reference) reference->step();
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-6)) << "fused vs tensor path, tensor " << i;
    if (reference) {
      EXPECT_TRUE(torch::allclose(a[i], c[i], 1e-5, 1e-6)) << "fused vs torch.optim, tensor " << i;
    }
  }
}

TEST(Optimizer, AdamaxFirstStepIsSignTimesLearningRate) {
  // Step 1: m = 0.1 g, u = |g| + eps, bias correction 1 - 0.9 -> p -= lr * g / (|g| + eps).
  auto p = torch::tensor({1.0f, -2.0f, 3.0f}).requires_grad_();
  p.mutable_grad() = torch::tensor({0.5f, -4.0f, 2.0f});
  Optimizer o({p}, OptimizerKind::kAdamax, 0.01);
  o.step();
  EXPECT_TRUE(torch::allclose(p.detach(), torch::tensor({0.99f, -1.99f, 2.99f}), 0, 1e-6));
}

INSTANTIATE_TEST_SUITE_P(Kinds, OptimizerTest,
                         testing::Values(OptimizerKind::kAdam, OptimizerKind::kAdamax, OptimizerKind::kSgd));

TEST(Train, TinyDetReachesHighAccuracyOnSeparableData) {
  const auto train_set = toy(2000, "train");
  const auto test_set = toy(500, "test");
  torch::manual_seed(0);
  auto m = create_model(small_spec());
  TrainOptions o;
  o.epochs = 5;
  o.seed = 0;
  const auto r = train(*m, train_set, nullptr, o);
  EXPECT_EQ(r.history.size(), 5u);
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
  EXPECT_GE(evaluate(*m, test_set).mean_accuracy, 0.95);
}

TEST(Train, SameSeedSameWeights) {
  const auto train_set = toy(600, "train");
  auto run = [&](uint64_t seed) {
    torch::manual_seed(seed);
    auto m = create_model(small_spec());
    TrainOptions o;
    o.epochs = 2;
    o.seed = seed;
    train(*m, train_set, nullptr, o);
    return m->logits(train_set.images.slice(0, 0, 10)).detach();
  };
  EXPECT_TRUE(torch::equal(run(4), run(4)));
  EXPECT_FALSE(torch::equal(run(4), run(5)));
}

TEST(Train, EarlyStoppingRestoresBestWeights) {
  const auto all = toy(1500, "train");
  const auto split = data::split_validation(all, 300);
  torch::manual_seed(0);
  auto m = create_model(small_spec());
  TrainOptions o;
  o.epochs = 6;
  o.patience = 2;
  o.validation_size = 300;
  o.optimizer = OptimizerKind::kSgd;
  o.learning_rate = 0.5;  // noisy, so the best epoch is rarely the last
  o.batch_size = 20;
  const auto r = train(*m, split.train, &split.validation, o);
  ASSERT_GE(r.best_epoch, 1);
  EXPECT_DOUBLE_EQ(evaluate(*m, split.validation).mean_accuracy, r.best_validation_accuracy);
  double best = 0;
  for (const auto& e : r.history) best = std::max(best, e.validation_accuracy);
  EXPECT_DOUBLE_EQ(best, r.best_validation_accuracy);
}

TEST(Train, RejectsNonFiniteImagesAndClassMismatch) {
  auto ds = toy(100, "train");
  ds.images = ds.images.clone();
  ds.images[3][0][0][0] = std::nanf("");
  auto m = create_model(small_spec());
  TrainOptions o;
  o.epochs = 1;
  EXPECT_THAT(error_of<Error>([&] { train(*m, ds, nullptr, o); }), HasSubstr("NaN"));
  auto s = small_spec();
  s.num_classes = 3;
  auto m3 = create_model(s);
  EXPECT_THROW(train(*m3, toy(100, "train"), nullptr, o), UsageError);
}

TEST(Train, DivergenceIsAnError) {
  auto m = create_model(small_spec());
  TrainOptions o;
  o.epochs = 3;
  o.optimizer = OptimizerKind::kSgd;
  o.learning_rate = 1e38;  // weights overflow to inf, logits to NaN
  EXPECT_THAT(error_of<Error>([&] { train(*m, toy(300, "train"), nullptr, o); }), HasSubstr("diverged"));
}

TEST(Evaluate, MatchesManualCountAndIgnoresRepeatsForDeterministicModels) {
  torch::manual_seed(0);
  auto m = create_model(small_spec());
  const auto ds = toy(250, "test");
  EvalOptions eo;
  eo.batch_size = 64;
  eo.repeats = 4;
  const auto r = evaluate(*m, ds, eo);
  const double manual = m->predict(ds.images).eq(ds.labels).to(torch::kDouble).mean().item<double>();
  EXPECT_DOUBLE_EQ(r.mean_accuracy, manual);
  EXPECT_EQ(r.accuracy_per_repeat.size(), 1u);
  EXPECT_EQ(r.examples, 250);
  auto s = small_spec();
  s.num_classes = 5;
  auto m5 = create_model(s);
  EXPECT_THROW(evaluate(*m5, ds), UsageError);
}

// The model-fits-dataset check names the dataset (a file spec for a test set of your own) and both shapes;
// a file without a num_classes attribute fits any model with at least its largest label + 1 outputs.
TEST(Load, ModelFitsDatasetNamesTheFileAndShapes) {
  torch::manual_seed(0);
  auto m = create_model(small_spec());
  auto ds = toy(8, "test");
  ds.name = "my.npz";
  ds.source = "my.npz: images float32 [8, 1, 28, 28]";
  EXPECT_NO_THROW(check_model_fits(*m, ds, "--model m.ckpt"));
  auto wide = ds;
  wide.images = torch::zeros({8, 3, 32, 32});
  EXPECT_THAT(error_of<UsageError>([&] { check_model_fits(*m, wide, "--model m.ckpt"); }),
              testing::AllOf(HasSubstr("--model m.ckpt"), HasSubstr("[1, 28, 28]"), HasSubstr("my.npz"),
                             HasSubstr("[3, 32, 32]")));
  auto few = ds;
  few.num_classes = 7;
  few.num_classes_from_labels = true;  // labels 0-6: a model with 10 outputs covers them
  EXPECT_NO_THROW(check_model_fits(*m, few, "m"));
  EXPECT_NO_THROW(evaluate(*m, few));
  auto many = few;
  many.num_classes = 12;
  EXPECT_THAT(error_of<UsageError>([&] { check_model_fits(*m, many, "m"); }),
              testing::AllOf(HasSubstr("outputs 10 classes"), HasSubstr("my.npz"), HasSubstr("labels up to 11")));
  auto exact = few;
  exact.num_classes_from_labels = false;  // a num_classes attribute must match exactly
  EXPECT_THAT(error_of<UsageError>([&] { check_model_fits(*m, exact, "m"); }), HasSubstr("my.npz has 7"));
  auto outside = ds;
  outside.images = ds.images.clone();
  outside.images[3][0][5][5] = 1.5;
  EXPECT_THAT(error_of<UsageError>([&] { check_model_fits(*m, outside, "m"); }),
              testing::AllOf(HasSubstr("[0, 1]"), HasSubstr("my.npz"), HasSubstr("1.5]")));
}

TEST(Load, DatasetMismatchWarning) {
  LoadedModel loaded;
  loaded.training_json = R"({"dataset": "mnist", "preset": "quick"})";
  auto ds = toy(4, "test");
  ds.name = "mnist";
  EXPECT_EQ(dataset_mismatch(loaded, ds, "model 'det'"), "");
  ds.name = "fashion-mnist";
  EXPECT_EQ(dataset_mismatch(loaded, ds, "model 'det'"),
            "model 'det' was trained on mnist but is evaluated on fashion-mnist");
  ds.name = "own.npz";
  ds.source = "own.npz: images uint8 [4, 28, 28]";
  EXPECT_THAT(dataset_mismatch(loaded, ds, "model 'det'"),
              testing::AllOf(HasSubstr("model 'det' was trained on mnist"), HasSubstr("own.npz")));
  loaded.training_json = "{}";  // TorchScript: nothing recorded, nothing to compare
  EXPECT_EQ(dataset_mismatch(loaded, ds, "m"), "");
}

TEST(Checkpoint, RoundTripGivesBitIdenticalLogitsAndMetadata) {
  TempDir dir;
  torch::manual_seed(0);
  auto m = create_model(small_spec({16}));
  TrainOptions o;
  o.epochs = 1;
  train(*m, toy(300, "train"), nullptr, o);
  CheckpointMeta meta;
  meta.training = {{"dataset", "synthetic"}, {"options", o.to_json()}};
  meta.metrics = {{"test_accuracy", 0.5}};
  const auto path = dir.file("sub/m.ckpt");
  save_checkpoint(path, *m, meta);
  EXPECT_TRUE(is_checkpoint_file(path));
  auto loaded = load_checkpoint(path);
  auto x = torch::rand({20, 1, 28, 28});
  EXPECT_TRUE(torch::equal(m->logits(x), loaded.model->logits(x)));
  EXPECT_EQ(loaded.meta.spec.to_json(), m->spec().to_json());
  EXPECT_EQ(loaded.meta.training["options"], o.to_json());
  EXPECT_DOUBLE_EQ(loaded.meta.metrics["test_accuracy"].get<double>(), 0.5);
  EXPECT_FALSE(loaded.meta.git_revision.empty());
  EXPECT_EQ(loaded.meta.torch_version.substr(0, 2), std::string(TORCH_VERSION).substr(0, 2));
  EXPECT_EQ(read_checkpoint_meta(path).weights_sha256, loaded.meta.weights_sha256);
  EXPECT_FALSE(fs::exists(path + ".tmp-" + std::to_string(::getpid())));
}

TEST(Checkpoint, TruncatedAndCorruptedFilesAreRejected) {
  TempDir dir;
  auto m = create_model(small_spec({8}));
  const auto path = dir.file("m.ckpt");
  save_checkpoint(path, *m, {});
  const std::string bytes = read_all(path);
  for (std::size_t cut : {std::size_t{0}, std::size_t{10}, std::size_t{40}, bytes.size() / 2, bytes.size() - 30,
                          bytes.size() - 1}) {
    write_all(dir.file("t.ckpt"), bytes.substr(0, cut));
    EXPECT_THROW(load_checkpoint(dir.file("t.ckpt")), Error) << "cut at " << cut;
  }
  for (std::size_t at : {bytes.find("\"hidden\"") + 12, bytes.size() / 2, bytes.size() - 80}) {
    std::string bad = bytes;
    bad[at] = static_cast<char>(bad[at] ^ 0x20);
    write_all(dir.file("c.ckpt"), bad);
    const auto msg = error_of<Error>([&] { load_checkpoint(dir.file("c.ckpt")); });
    EXPECT_THAT(msg, HasSubstr("c.ckpt")) << "flip at " << at;
  }
  std::string bad = bytes;
  bad[bytes.size() / 2] ^= 1;
  write_all(dir.file("c.ckpt"), bad);
  EXPECT_THAT(error_of<Error>([&] { load_checkpoint(dir.file("c.ckpt")); }), HasSubstr("checksum"));
  write_all(dir.file("x.ckpt"), "hello world\n");
  EXPECT_THAT(error_of<Error>([&] { load_checkpoint(dir.file("x.ckpt")); }), HasSubstr("not an imbench checkpoint"));
  EXPECT_THROW(load_checkpoint(dir.file("missing.ckpt")), Error);
}

TEST(Checkpoint, WeightsThatDoNotMatchTheRecordedSpecAreRejected) {
  // Splice the metadata of a 784-8-10 model onto the weights of a
  // 784-16-10 model with a valid checksum: only the shape check can catch it.
  TempDir dir;
  auto a = create_model(small_spec({16}));
  auto b = create_model(small_spec({8}));
  save_checkpoint(dir.file("a.ckpt"), *a, {});
  save_checkpoint(dir.file("b.ckpt"), *b, {});
  const std::string ab = read_all(dir.file("a.ckpt")), bb = read_all(dir.file("b.ckpt"));
  const auto weights_of = [](const std::string& s) { return s.substr(s.find("\nweights ") + 1); };
  const auto meta_of = [](const std::string& s) { return s.substr(0, s.find("\nweights ") + 1); };
  std::string body = meta_of(bb) + weights_of(ab);
  body = body.substr(0, body.rfind("sha256 "));
  body += "sha256 " + sha256_hex(body) + "\n";
  write_all(dir.file("spliced.ckpt"), body);
  EXPECT_THAT(error_of<Error>([&] { load_checkpoint(dir.file("spliced.ckpt")); }), HasSubstr("shape"));
}

TEST(Checkpoint, UnsupportedFormatVersionIsRejected) {
  TempDir dir;
  auto m = create_model(small_spec({8}));
  save_checkpoint(dir.file("m.ckpt"), *m, {});
  std::string bytes = read_all(dir.file("m.ckpt"));
  bytes.replace(bytes.find(" 1\n"), 3, " 9\n");
  write_all(dir.file("v.ckpt"), bytes);
  EXPECT_THAT(error_of<Error>([&] { load_checkpoint(dir.file("v.ckpt")); }), HasSubstr("version 9"));
}

namespace {
// A linear classifier as TorchScript, built in C++ (no Python needed).
torch::jit::Module linear_script(const torch::Tensor& w, const torch::Tensor& b, bool with_attributes,
                                 bool stochastic = false) {
  torch::jit::Module m("Linear");
  m.register_parameter("w", w, false);
  m.register_parameter("b", b, false);
  if (with_attributes) {
    m.register_attribute("imbench_input_shape", c10::ListType::ofInts(), c10::IValue(std::vector<int64_t>{1, 28, 28}));
    m.register_attribute("imbench_stochastic", c10::BoolType::get(), stochastic);
    m.register_attribute("imbench_samples", c10::IntType::get(), int64_t{7});
  }
  if (stochastic)
    m.define(R"(
def forward(self, x):
    z = torch.matmul(x.flatten(1), self.w) + self.b
    return z + torch.randn_like(z)
)");
  else
    m.define(R"(
def forward(self, x):
    return torch.matmul(x.flatten(1), self.w) + self.b
)");
  return m;
}
}  // namespace

TEST(TorchScript, LinearModuleThroughTheModelInterface) {
  TempDir dir;
  torch::manual_seed(0);
  auto w = torch::randn({784, 10}) * 0.01;
  auto b = torch::randn({10});
  linear_script(w, b, true).save(dir.file("lin.pt"));
  auto m = TorchScriptModel::load(dir.file("lin.pt"));
  EXPECT_EQ(m->input_shape(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(m->num_classes(), 10);
  EXPECT_FALSE(m->is_stochastic());
  EXPECT_EQ(m->prediction_samples(), 1);
  auto x = torch::rand({6, 1, 28, 28});
  EXPECT_TRUE(torch::allclose(m->logits(x), torch::matmul(x.flatten(1), w) + b));
  const auto ds = toy(100, "test");
  const auto manual =
      (torch::matmul(ds.images.flatten(1), w) + b).argmax(1).eq(ds.labels).to(torch::kDouble).mean().item<double>();
  EXPECT_DOUBLE_EQ(evaluate(*m, ds).mean_accuracy, manual);
}

TEST(TorchScript, OptionsOverrideAndMissingShapeIsAUsageError) {
  TempDir dir;
  linear_script(torch::zeros({784, 4}), torch::zeros({4}), false).save(dir.file("bare.pt"));
  EXPECT_THAT(error_of<UsageError>([&] { TorchScriptModel::load(dir.file("bare.pt")); }), HasSubstr("input shape"));
  TorchScriptOptions o;
  o.input_shape = std::vector<int64_t>{784};
  auto m = TorchScriptModel::load(dir.file("bare.pt"), o);
  EXPECT_EQ(m->num_classes(), 4);  // inferred from one forward pass
  write_all(dir.file("junk.pt"), "not a zip");
  EXPECT_THROW(TorchScriptModel::load(dir.file("junk.pt"), o), Error);
  EXPECT_THROW(TorchScriptModel::load(dir.file("none.pt"), o), Error);
}

// Issue 15: a module given an --input-shape it does not take (3,32,32 for a
// 784-input model) names the file, the given shape and the interpreter's
// cause (which holds the expected 784), not only "The following operation
// failed in the TorchScript interpreter."
TEST(TorchScript, WrongInputShapeNamesFileAndShapes) {
  TempDir dir;
  linear_script(torch::zeros({784, 4}), torch::zeros({4}), false).save(dir.file("bare.pt"));
  TorchScriptOptions o;
  o.input_shape = std::vector<int64_t>{3, 32, 32};
  const auto message = error_of<Error>([&] { TorchScriptModel::load(dir.file("bare.pt"), o); });
  EXPECT_THAT(message, HasSubstr(dir.file("bare.pt") + ": the module does not accept examples of shape [3, 32, 32] "
                                                        "(given by --input-shape)"));
  EXPECT_THAT(message, HasSubstr("784"));
  EXPECT_THAT(message, testing::Not(HasSubstr("The following operation failed")));
  EXPECT_EQ(message.find('\n'), std::string::npos);
  // With the classes given, the wrong shape shows at the first forward pass: both shapes again.
  o.num_classes = 4;
  auto m = TorchScriptModel::load(dir.file("bare.pt"), o);
  const auto forward = error_of<Error>([&] { m->logits(torch::zeros({2, 3, 32, 32})); });
  EXPECT_THAT(forward, HasSubstr("bare.pt: forward failed on input of shape [2, 3, 32, 32] (the model takes [N, 3, 32, 32])"));
  EXPECT_THAT(forward, HasSubstr("784"));
}

// Issue 15: empty, 10-byte and directory model files say what they are.
TEST(LoadModelFile, EmptyShortAndDirectorySayWhatTheyAre) {
  TempDir dir;
  write_all(dir.file("empty.ckpt"), "");
  write_all(dir.file("ten.ckpt"), "0123456789");
  EXPECT_THAT(error_of<Error>([&] { load_model_file(dir.file("empty.ckpt"), {}, torch::kCPU); }),
              HasSubstr("the file is empty"));
  EXPECT_THAT(error_of<Error>([&] { load_model_file(dir.file("ten.ckpt"), {}, torch::kCPU); }),
              HasSubstr("10 bytes, too short to be an imbench checkpoint or TorchScript file"));
  EXPECT_THAT(error_of<Error>([&] { load_model_file(dir.path.string(), {}, torch::kCPU); }),
              HasSubstr("is a directory"));
  EXPECT_THAT(error_of<Error>([&] { load_model_file("/dev/zero", {}, torch::kCPU); }), HasSubstr("not a regular file"));
  EXPECT_THAT(error_of<Error>([&] { read_checkpoint_meta("/dev/zero"); }), HasSubstr("not a regular file"));
}

TEST(TorchScript, StochasticModuleDrawsIndependentSamples) {
  TempDir dir;
  linear_script(torch::zeros({784, 3}), torch::zeros({3}), true, true).save(dir.file("noisy.pt"));
  auto m = TorchScriptModel::load(dir.file("noisy.pt"));
  EXPECT_TRUE(m->is_stochastic());
  EXPECT_EQ(m->prediction_samples(), 7);
  EXPECT_EQ(m->prediction_rule(), PredictionRule::kMeanSoftmax);
  auto s = m->sample_logits(torch::rand({4, 1, 28, 28}), 5);
  EXPECT_EQ(s.sizes(), (std::vector<int64_t>{5, 4, 3}));
  EXPECT_FALSE(torch::allclose(s[0], s[1]));
  // Logits are N(0, 1) noise: the sample std over draws is near 1.
  EXPECT_NEAR(m->sample_logits(torch::rand({50, 1, 28, 28}), 200).std().item<double>(), 1.0, 0.05);
}

namespace {
// A linear classifier whose noise is drawn inside the module: forward adds
// N(0, 1) noise to the logits, sample_logits(x, S) (given as `sample_logits`,
// TorchScript source) returns S draws. `calls` counts sample_logits calls.
torch::jit::Module sampling_script(const std::string& sample_logits, int64_t classes = 3) {
  torch::jit::Module m("NoisyLinear");
  m.register_parameter("w", torch::ones({784, classes}) * 0.01, false);
  m.register_parameter("b", torch::arange(classes).to(torch::kFloat), false);
  m.register_attribute("imbench_input_shape", c10::ListType::ofInts(), c10::IValue(std::vector<int64_t>{1, 28, 28}));
  m.register_attribute("imbench_samples", c10::IntType::get(), int64_t{6});
  m.register_attribute("calls", c10::IntType::get(), int64_t{0});
  m.define(R"(
def forward(self, x):
    z = torch.matmul(x.flatten(1), self.w) + self.b
    return z + torch.randn_like(z)
)");
  m.define(sample_logits);
  return m;
}

// Draws with std 2 (forward's have std 1), so a test can tell which one ran.
const char* kOwnSampleLogits = R"(
def sample_logits(self, x, s: int):
    self.calls += 1
    z = torch.matmul(x.flatten(1), self.w) + self.b
    return z.unsqueeze(0) + 2.0 * torch.randn([s, z.size(0), z.size(1)], device=z.device)
)";
}  // namespace

TEST(TorchScript, OwnSampleLogitsIsUsedForSamplesAndThePredictionRule) {
  auto module = sampling_script(kOwnSampleLogits);
  auto handle = module;  // shares the module object: reads its `calls`
  TorchScriptModel m(module, "own.pt");
  EXPECT_TRUE(m.uses_own_sample_logits());
  EXPECT_TRUE(m.is_stochastic());  // implied by sample_logits
  EXPECT_EQ(m.prediction_samples(), 6);
  EXPECT_THAT(m.description(), HasSubstr("its own sample_logits"));
  const auto probed = handle.attr("calls").toInt();
  EXPECT_EQ(probed, 1);  // one shape check at load time
  torch::manual_seed(1);
  auto x = torch::rand({50, 1, 28, 28});
  auto s = m.sample_logits(x, 200);
  EXPECT_EQ(s.sizes(), (std::vector<int64_t>{200, 50, 3}));
  EXPECT_EQ(handle.attr("calls").toInt(), probed + 1);
  const auto mean = torch::matmul(x.flatten(1), torch::ones({784, 3}) * 0.01) + torch::arange(3).to(torch::kFloat);
  EXPECT_NEAR((s - mean).std().item<double>(), 2.0, 0.05);  // the module's draws, not forward's
  // The prediction rule: one call with prediction_samples() draws.
  EXPECT_EQ(m.predict_proba(x).sizes(), (std::vector<int64_t>{50, 3}));
  EXPECT_EQ(m.predict(x).size(0), 50);
  EXPECT_EQ(handle.attr("calls").toInt(), probed + 3);
  // Gradients flow through it.
  auto xv = x.clone().requires_grad_(true);
  const auto g = torch::autograd::grad({m.sample_logits(xv, 4).select(2, 0).sum()}, {xv})[0];
  EXPECT_TRUE(torch::allclose(g, torch::full_like(x, 4 * 0.01)));
}

TEST(TorchScript, OwnSampleLogitsProvenanceAndDeterministicOverride) {
  TempDir dir;
  sampling_script(kOwnSampleLogits).save(dir.file("own.pt"));
  const auto loaded = load_model_file(dir.file("own.pt"), {}, torch::kCPU);
  EXPECT_THAT(loaded.provenance, HasSubstr("own sample_logits(x, S)"));
  // Declared deterministic: the method is never called, draws are one forward pass broadcast.
  TorchScriptOptions o;
  o.stochastic = false;
  auto module = sampling_script(kOwnSampleLogits);
  auto handle = module;
  TorchScriptModel det(module, "own.pt", o);
  EXPECT_FALSE(det.uses_own_sample_logits());
  const auto s = det.sample_logits(torch::rand({4, 1, 28, 28}), 3);
  EXPECT_TRUE(torch::equal(s[0], s[2]));
  EXPECT_EQ(handle.attr("calls").toInt(), 0);
  // Without the method nothing changes: forward's draws folded into the batch.
  TempDir d2;
  linear_script(torch::zeros({784, 3}), torch::zeros({3}), true, true).save(d2.file("noisy.pt"));
  auto plain = TorchScriptModel::load(d2.file("noisy.pt"));
  EXPECT_FALSE(plain->uses_own_sample_logits());
  EXPECT_EQ(plain->internal_samples(), 1);
  EXPECT_THAT(load_model_file(d2.file("noisy.pt"), {}, torch::kCPU).provenance,
              testing::Not(HasSubstr("sample_logits")));
}

TEST(TorchScript, WrongSampleLogitsIsAOneLineErrorNamingTheFile) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases{
      {"flat.pt", R"(
def sample_logits(self, x, s: int):
    z = torch.matmul(x.flatten(1), self.w) + self.b
    return z.repeat(s, 1)
)"},
      {"swapped.pt", R"(
def sample_logits(self, x, s: int):
    z = torch.matmul(x.flatten(1), self.w) + self.b
    return z.unsqueeze(1).repeat(1, s, 1)
)"},
      {"nos.pt", R"(
def sample_logits(self, x):
    return torch.matmul(x.flatten(1), self.w).unsqueeze(0)
)"},
  };
  for (const auto& [file, body] : cases) {
    sampling_script(body).save(dir.file(file));
    const auto what = error_of<Error>([&] { TorchScriptModel::load(dir.file(file)); });
    EXPECT_THAT(what, HasSubstr(dir.file(file))) << file;
    EXPECT_THAT(what, HasSubstr("sample_logits")) << file;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  EXPECT_THAT(error_of<Error>([&] { TorchScriptModel::load(dir.file("flat.pt")); }),
              HasSubstr("returned shape [6, 3] for 2 inputs, expected [3, 2, 3]"));
}

TEST(TorchScript, InternalSamplesAttributeAndOption) {
  auto module = sampling_script(kOwnSampleLogits);
  module.register_attribute("imbench_internal_samples", c10::IntType::get(), int64_t{8});
  EXPECT_EQ(TorchScriptModel(module, "k.pt").internal_samples(), 8);
  TorchScriptOptions o;
  o.internal_samples = 0;
  EXPECT_THROW(TorchScriptModel(module, "k.pt", o), UsageError);
}

TEST(Device, ParsingAndClearErrors) {
  EXPECT_TRUE(parse_device("cpu").is_cpu());
  EXPECT_THAT(error_of<UsageError>([] { parse_device("gpu"); }), HasSubstr("unknown device"));
  if (!torch::cuda::is_available()) {
    EXPECT_THAT(error_of<UsageError>([] { parse_device("cuda"); }), HasSubstr("no usable CUDA"));
  } else {
    EXPECT_TRUE(parse_device("cuda").is_cuda());
    EXPECT_THROW(parse_device("cuda:99"), UsageError);
  }
}

TEST(Device, DetOnCudaMatchesCpu_CUDA) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this LibTorch build";
  torch::manual_seed(0);
  auto m = create_model(small_spec());
  auto x = torch::rand({64, 1, 28, 28});
  auto cpu = m->logits(x);
  m->to(torch::Device(torch::kCUDA, 0));
  auto gpu = m->logits(x.to(m->device())).cpu();
  EXPECT_TRUE(torch::allclose(cpu, gpu, 1e-4, 1e-5));
}
