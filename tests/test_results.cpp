// Tests of the benchmark results (reports/results.h and results_io.h,
// merge.h, compare.h, statistics.h, report.h, atomic_file.h): the HDF5 file,
// shard merging, the regression comparison, the statistics and the Markdown
// report.
#include <H5Cpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "reports/atomic_file.h"
#include "reports/compare.h"
#include "reports/merge.h"
#include "reports/report.h"
#include "reports/results.h"
#include "reports/results_io.h"
#include "reports/statistics.h"
#include "tests/test_basics.h"

using namespace imbench;
using namespace imbench::reports;
using imbench::testing_support::error_of;
using imbench::testing_support::TempDir;
using testing::HasSubstr;
using testing::Not;
namespace fs = std::filesystem;

namespace {

const double kInf = std::numeric_limits<double>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::vector<std::string> folder_entries(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A cell of `n` examples and `r` repeats; correct(k, i) says whether example i
// survives the cascade up to this attack in repeat k (clean: i % 10 != 9).
CellResult make_cell(const std::string& model, const std::string& attack, const std::string& norm, double eps,
                     const std::string& eps_text, int64_t position, int64_t r, int64_t n, int64_t eot,
                     const std::function<bool(int64_t, int64_t)>& correct) {
  CellResult c;
  c.id = fmt::format("{}.{}.{}-{}", model, attack, norm, eps_text);
  c.model = model;
  c.attack = attack;
  c.attack_kind = attack;
  c.norm = norm;
  c.eps = eps;
  c.eps_text = eps_text;
  c.target_rule = "none";
  c.group = fmt::format("{}.{}-{}.untargeted", model, norm, eps_text);
  c.cascade_position = position;
  c.threat_model = fmt::format("{} eps={} untargeted, inputs in [0, 1]", norm == "linf" ? "Linf" : "L2", eps_text);
  c.hash = "hash-" + c.id;
  nlohmann::json options = {{"steps", 40}, {"step_size", 0.01}, {"restarts", 1}, {"loss", "ce"}};
  if (attack == "fgsm") options = {{"loss", "ce"}};
  if (attack == "cw") options = {{"steps", 100}, {"binary_search_steps", 9}, {"confidence", 0}};
  c.config_json =
      nlohmann::json{{"attack", attack}, {"options", options}, {"eot", {{"samples", eot}}}, {"repeats", r}}.dump();
  c.repeats = r;
  c.eot_samples = eot;
  const int64_t steps = attack == "fgsm" ? 1 : 40;
  for (int64_t i = 0; i < n; ++i) {
    const bool clean = i % 10 != 9;
    c.index.push_back(i);
    c.label.push_back(i % 10);
    c.attacked.push_back(clean);
    c.linf.push_back(clean ? static_cast<float>(std::isfinite(eps) ? eps : 0.5) : 0.f);
    c.l2.push_back(clean ? 0.25f * static_cast<float>(i) : 0.f);
    c.l0.push_back(clean ? static_cast<float>(10 * i) : 0.f);
    c.final_loss.push_back(clean ? 0.5f + 0.125f * static_cast<float>(i) : kNaN);
    c.gradient_evaluations.push_back(clean ? steps * eot : 0);
  }
  for (int64_t k = 0; k < r; ++k)
    for (int64_t i = 0; i < n; ++i) {
      const bool clean = i % 10 != 9, right = clean && correct(k, i);
      c.clean_correct.push_back(clean);
      c.adversarial_correct.push_back(right);
      // Predictions that agree with the outcomes (-1: not attacked).
      c.clean_prediction.push_back(clean ? i % 10 : (i + 1) % 10);
      c.adversarial_prediction.push_back(!clean ? -1 : right ? i % 10 : (i + 3) % 10);
    }
  c.summarise();
  c.summary["seconds"] = 0.25 * static_cast<double>(steps);
  c.summary["images_per_second"] = static_cast<double>(n) / c.summary["seconds"];
  c.summary["gradient_evaluations_per_second"] = c.summary["images_per_second"] * static_cast<double>(steps * eot);
  return c;
}

ModelInfo make_model(const std::string& name, bool stochastic) {
  ModelInfo m;
  m.name = name;
  m.description = stochastic ? "SFNN 784-200-10 (sigmoid)" : "MLP 784-200-10";
  m.provenance = name + ".pt: imbench train --family " + (stochastic ? "sfnn" : "det") + " --preset quick";
  m.file_sha256 = std::string(64, stochastic ? 'b' : 'a');
  m.stochastic = stochastic;
  m.prediction_rule = stochastic ? "mean softmax over 32 samples" : "argmax of logits";
  m.training_json = nlohmann::json{{"preset", "quick"},
                                   {"epochs", 3},
                                   {"seed", 7},
                                   {"dataset", "mnist"},
                                   {"optimizer", {{"name", "adam"}, {"learning_rate", 0.001}}}}
                        .dump();
  m.clean_accuracy = 0.9;
  return m;
}

std::map<std::string, std::string> root_of(const std::string& shard) {
  return {{"imbench_version", "0.1.0"},
          {"git_revision", "abc1234"},
          {"torch_version", "1.13.0"},
          {"device", "cpu"},
          {"device_name", "test machine"},
          {"threads", "2"},
          {"date", "2024-05-01T12:00:00Z"},
          {"seed", "0"},
          {"matrix_name", "mnist-small"},
          {"matrix_hash", "5e1f00d"},
          {"config_json", "{\"models\": [\"det\", \"sfnn\"]}"},
          {"shard", shard},
          {"dataset", "mnist test"},
          {"examples", "10"}};
}

// Two models (one stochastic, R = 3), two Linf threat models with a cascade
// fgsm -> pgd, an unbounded L2 attack on one model, a flagged cell, paper numbers.
ResultFile report_fixture() {
  ResultFile f;
  f.root = root_of("all");
  ModelInfo det = make_model("det", false), sfnn = make_model("sfnn", true);
  det.flags = {{1, "randomness", false, "identical predictions in 5 passes"},
               {4, "logits", false, "rows are not probabilities"}};
  sfnn.flags = {{1, "randomness", false, "predictions differ between passes: stochastic, EOT used"}};
  sfnn.paper_json = R"({"clean_accuracy": 98.27, "robust_untargeted": 0.0, "robust_targeted": 1.5})";
  f.cells.push_back(
      make_cell("det", "fgsm", "linf", 0.1, "0.1", 0, 1, 10, 1, [](int64_t, int64_t i) { return i < 7; }));
  f.cells.push_back(make_cell("det", "pgd", "linf", 0.1, "0.1", 1, 1, 10, 1, [](int64_t, int64_t i) { return i < 5; }));
  f.cells.push_back(
      make_cell("det", "fgsm", "linf", 0.3, "0.3", 0, 1, 10, 1, [](int64_t, int64_t i) { return i < 4; }));
  f.cells.push_back(make_cell("det", "pgd", "linf", 0.3, "0.3", 1, 1, 10, 1, [](int64_t, int64_t i) { return i < 1; }));
  f.cells.push_back(make_cell("det", "cw", "l2", kInf, "inf", 0, 1, 10, 1, [](int64_t, int64_t) { return false; }));
  auto sfnn_fgsm_01 = [](int64_t k, int64_t i) { return (i + k) % 3 != 0 && i < 8; };
  auto sfnn_fgsm_03 = [](int64_t k, int64_t i) { return (i + k) % 2 == 0; };
  f.cells.push_back(make_cell("sfnn", "fgsm", "linf", 0.1, "0.1", 0, 3, 10, 8, sfnn_fgsm_01));
  f.cells.push_back(make_cell("sfnn", "pgd", "linf", 0.1, "0.1", 1, 3, 10, 8,
                              [&](int64_t k, int64_t i) { return sfnn_fgsm_01(k, i) && i % 2 == 0; }));
  f.cells.push_back(make_cell("sfnn", "fgsm", "linf", 0.3, "0.3", 0, 3, 10, 8, sfnn_fgsm_03));
  f.cells.push_back(make_cell("sfnn", "pgd", "linf", 0.3, "0.3", 1, 3, 10, 8,
                              [&](int64_t k, int64_t i) { return sfnn_fgsm_03(k, i) && i < 5; }));
  f.cells.back().flags = {{6, "iterative-vs-single-step", true, "PGD worse than FGSM on 1 of 10 examples"},
                          {11, "validity", false, "all perturbations within eps and [0, 1]"}};
  f.cells[3].flags = {{11, "validity", false, "all perturbations within eps and [0, 1]"}};
  f.models = {det, sfnn};
  return f;
}

// A file exercising every field: R = 3, eps = inf, NaN losses, an empty
// target, a targeted cell with zero examples, UTF-8 and empty strings.
ResultFile round_trip_fixture() {
  ResultFile f;
  f.root = root_of("all");
  f.root["note"] = "accuracy ± std, é";
  f.root["empty"] = "";
  ModelInfo a = make_model("det", false), b = make_model("sfnn-1.0_x", true);
  a.description = "";
  a.paper_json = R"({"clean_accuracy": 98.27})";
  a.clean_accuracy = 0.875;
  b.flags = {{1, "randomness", true, "logits differ by 0.3 > 1e-4"}, {12, "mode", false, "sampling on, as stated"}};
  f.models = {a, b};

  CellResult c = make_cell("sfnn-1.0_x", "pgd", "linf", 0.3, "0.3", 1, 3, 10, 20,
                           [](int64_t k, int64_t i) { return (i * 7 + k) % 4 == 0; });
  c.summary["custom_metric"] = -2.5;
  c.flags = {{6, "iterative-vs-single-step", true, "PGD worse than FGSM on 3 of 500 examples"}};
  // Adversarial examples of shape [1, 2, 3], one row per attacked example.
  c.adversarial_shape = {1, 2, 3};
  for (std::size_t i = 0; i < c.attacked.size(); ++i) {
    if (!c.attacked[i]) continue;
    c.adversarial_index.push_back(static_cast<int64_t>(i));
    for (int v = 0; v < 6; ++v) c.adversarial.push_back(0.125f * static_cast<float>(i) + 0.01f * static_cast<float>(v));
  }
  c.source_model = "det";
  CellResult inf = make_cell("det", "cw", "l2", kInf, "inf", 0, 1, 4, 1, [](int64_t, int64_t i) { return i == 0; });
  inf.targeted = true;
  inf.target_rule = "least-likely";
  inf.target = {3, 1, 4, 1};
  CellResult empty = make_cell("det", "apgd-ce", "l2", 1.5, "1.5", 2, 2, 0, 1, [](int64_t, int64_t) { return true; });
  empty.targeted = true;
  empty.target_rule = "random";
  empty.attack_kind = "apgd-ce";
  empty.config_json = "{}";
  empty.adversarial_shape = {1, 28, 28};  // saved, but no example was attacked: [0, 1, 28, 28]
  // Cells out of alphabetical order: the file keeps this order.
  f.cells = {c, inf, empty};
  return f;
}

void expect_same_floats(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]))
      EXPECT_TRUE(std::isnan(b[i])) << what << "[" << i << "]";
    else
      EXPECT_EQ(a[i], b[i]) << what << "[" << i << "]";
  }
}

void expect_same_flags(const std::vector<Flag>& a, const std::vector<Flag>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].check, b[i].check) << what;
    EXPECT_EQ(a[i].name, b[i].name) << what;
    EXPECT_EQ(a[i].failed, b[i].failed) << what;
    EXPECT_EQ(a[i].detail, b[i].detail) << what;
  }
}

void expect_same_model(const ModelInfo& a, const ModelInfo& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.provenance, b.provenance);
  EXPECT_EQ(a.file_sha256, b.file_sha256);
  EXPECT_EQ(a.stochastic, b.stochastic);
  EXPECT_EQ(a.prediction_rule, b.prediction_rule);
  EXPECT_EQ(a.training_json, b.training_json);
  EXPECT_EQ(a.paper_json, b.paper_json);
  EXPECT_EQ(a.clean_accuracy, b.clean_accuracy);
  expect_same_flags(a.flags, b.flags, a.name + " flags");
}

void expect_same_cell(const CellResult& a, const CellResult& b) {
  const std::string w = a.id;
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.model, b.model) << w;
  EXPECT_EQ(a.attack, b.attack) << w;
  EXPECT_EQ(a.attack_kind, b.attack_kind) << w;
  EXPECT_EQ(a.norm, b.norm) << w;
  EXPECT_EQ(a.eps, b.eps) << w;  // inf == inf
  EXPECT_EQ(a.eps_text, b.eps_text) << w;
  EXPECT_EQ(a.targeted, b.targeted) << w;
  EXPECT_EQ(a.target_rule, b.target_rule) << w;
  EXPECT_EQ(a.source_model, b.source_model) << w;
  EXPECT_EQ(a.group, b.group) << w;
  EXPECT_EQ(a.cascade_position, b.cascade_position) << w;
  EXPECT_EQ(a.threat_model, b.threat_model) << w;
  EXPECT_EQ(a.hash, b.hash) << w;
  EXPECT_EQ(a.config_json, b.config_json) << w;
  EXPECT_EQ(a.repeats, b.repeats) << w;
  EXPECT_EQ(a.eot_samples, b.eot_samples) << w;
  EXPECT_EQ(a.index, b.index) << w;
  EXPECT_EQ(a.label, b.label) << w;
  EXPECT_EQ(a.target, b.target) << w;
  EXPECT_EQ(a.attacked, b.attacked) << w;
  EXPECT_EQ(a.clean_correct, b.clean_correct) << w;
  EXPECT_EQ(a.adversarial_correct, b.adversarial_correct) << w;
  expect_same_floats(a.linf, b.linf, w + " linf");
  expect_same_floats(a.l2, b.l2, w + " l2");
  expect_same_floats(a.l0, b.l0, w + " l0");
  expect_same_floats(a.final_loss, b.final_loss, w + " final_loss");
  EXPECT_EQ(a.gradient_evaluations, b.gradient_evaluations) << w;
  EXPECT_EQ(a.clean_prediction, b.clean_prediction) << w;
  EXPECT_EQ(a.adversarial_prediction, b.adversarial_prediction) << w;
  EXPECT_EQ(a.adversarial_shape, b.adversarial_shape) << w;
  EXPECT_EQ(a.adversarial_index, b.adversarial_index) << w;
  expect_same_floats(a.adversarial, b.adversarial, w + " adversarial");
  ASSERT_EQ(a.summary.size(), b.summary.size()) << w;
  for (const auto& [key, value] : a.summary) {
    ASSERT_TRUE(b.summary.count(key)) << w << " " << key;
    if (std::isnan(value))
      EXPECT_TRUE(std::isnan(b.summary.at(key))) << w << " " << key;
    else
      EXPECT_EQ(value, b.summary.at(key)) << w << " " << key;
  }
  expect_same_flags(a.flags, b.flags, w + " flags");
}

// Field by field; `root` of `b` may hold the schema keys the reader adds.
void expect_same_file(const ResultFile& a, const ResultFile& b) {
  auto root = a.root;
  root["schema"] = kResultsSchema;
  root["schema_version"] = std::to_string(kResultsSchemaVersion);
  EXPECT_EQ(root, b.root);
  ASSERT_EQ(a.models.size(), b.models.size());
  for (std::size_t i = 0; i < a.models.size(); ++i) expect_same_model(a.models[i], b.models[i]);
  ASSERT_EQ(a.cells.size(), b.cells.size());
  for (std::size_t i = 0; i < a.cells.size(); ++i) expect_same_cell(a.cells[i], b.cells[i]);
}

}  // namespace

// ---- the HDF5 file ----

TEST(Results, RoundTripKeepsEveryField) {
  TempDir dir;
  const ResultFile f = round_trip_fixture();
  ASSERT_TRUE(std::isnan(f.cells[2].summary.at("robust_accuracy")));  // zero examples
  write_results(dir.file("r.h5"), f);
  const ResultFile back = read_results(dir.file("r.h5"));
  expect_same_file(f, back);
  EXPECT_EQ(back.cells[1].eps, kInf);
  EXPECT_TRUE(back.cells[0].target.empty());
  EXPECT_EQ(back.cells[2].size(), 0);
  EXPECT_EQ(back.root.at("schema"), "imbench-results");
  // Only the file itself is left: the temporary file was renamed.
  EXPECT_EQ(folder_entries(dir.path), std::vector<std::string>{"r.h5"});
  // Writing what was read gives the same contents again.
  write_results(dir.file("again.h5"), back);
  expect_same_file(f, read_results(dir.file("again.h5")));
}

namespace {

// The type class and size of an attribute (H5T_STRING: whether it is a
// variable-length UTF-8 string, what h5py reads as str).
std::string type_of(const H5::H5Object& obj, const std::string& key) {
  const H5::Attribute a = obj.openAttribute(key);
  switch (a.getTypeClass()) {
    case H5T_INTEGER:
      return fmt::format("int{}", 8 * a.getIntType().getSize());
    case H5T_FLOAT:
      return fmt::format("float{}", 8 * a.getFloatType().getSize());
    case H5T_STRING: {
      const H5::StrType t = a.getStrType();
      return t.isVariableStr() && t.getCset() == H5T_CSET_UTF8 ? "str" : "fixed or ASCII string";
    }
    case H5T_ENUM:
      return "enum";
    default:
      return "other";
  }
}

// Rewrites a file of this build into the version-1 layout: a float64
// schema_version, string root integers, float64 counts, no predictions and
// no adversarial examples.
void downgrade_to_version_1(const std::string& path) {
  H5::H5File h5(path, H5F_ACC_RDWR);
  H5::Group root = h5.openGroup("/");
  auto put_double = [](H5::H5Object& obj, const std::string& key, double v) {
    obj.removeAttr(key);
    obj.createAttribute(key, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(H5S_SCALAR))
        .write(H5::PredType::NATIVE_DOUBLE, &v);
  };
  auto to_double = [&](H5::H5Object& obj, const std::string& key) {
    double v = 0;
    obj.openAttribute(key).read(H5::PredType::NATIVE_DOUBLE, &v);
    put_double(obj, key, v);
  };
  put_double(root, "schema_version", 1);
  for (const char* key : kIntegerRootAttributes) {
    if (!root.attrExists(key)) continue;
    int64_t v = 0;
    root.openAttribute(key).read(H5::PredType::NATIVE_INT64, &v);
    root.removeAttr(key);
    H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
    type.setCset(H5T_CSET_UTF8);
    root.createAttribute(key, type, H5::DataSpace(H5S_SCALAR)).write(type, std::to_string(v));
  }
  H5::Group cells = h5.openGroup("/cells");
  for (hsize_t i = 0; i < cells.getNumObjs(); ++i) {
    H5::Group g = cells.openGroup(cells.getObjnameByIdx(i));
    for (const char* key : {"attacked_examples", "unreliable"}) to_double(g, key);
    for (const char* d : {"clean_prediction", "adversarial_prediction", "adversarial", "adversarial_index"})
      if (g.nameExists(d)) g.unlink(d);
  }
}

ResultFile without_version_2_records(ResultFile f) {
  for (auto& c : f.cells) {
    c.clean_prediction.clear();
    c.adversarial_prediction.clear();
    c.adversarial_shape.clear();
    c.adversarial.clear();
    c.adversarial_index.clear();
  }
  return f;
}

}  // namespace

TEST(Results, Version2StoresIntegersAsIntegersAndStringsAsUtf8) {
  TempDir dir;
  write_results(dir.file("r.h5"), round_trip_fixture());
  H5::H5File h5(dir.file("r.h5"), H5F_ACC_RDONLY);
  const H5::Group root = h5.openGroup("/");
  for (const char* key : {"schema_version", "seed", "examples", "threads"})
    EXPECT_EQ(type_of(root, key), "int64") << key;
  for (const char* key : {"schema", "imbench_version", "date", "shard", "dataset", "note", "empty"})
    EXPECT_EQ(type_of(root, key), "str") << key;
  int64_t version = 0;
  root.openAttribute("schema_version").read(H5::PredType::NATIVE_INT64, &version);
  EXPECT_EQ(version, 2);
  const H5::Group cell = h5.openGroup("/cells/sfnn-1.0_x.pgd.linf-0.3");
  for (const char* key : {"order", "repeats", "eot_samples", "cascade_position", "attacked_examples", "unreliable"})
    EXPECT_EQ(type_of(cell, key), "int64") << key;
  for (const char* key : {"robust_accuracy", "seconds", "eps", "custom_metric"})
    EXPECT_EQ(type_of(cell, key), "float64");
  for (const char* key : {"id", "model", "norm", "eps_text", "config_json", "flags", "hash", "source_model"})
    EXPECT_EQ(type_of(cell, key), "str") << key;
  for (const char* key : {"name", "description", "provenance", "prediction_rule", "training_json", "flags"})
    EXPECT_EQ(type_of(h5.openGroup("/models/det"), key), "str") << key;

  auto shape_of = [](const H5::DataSet& ds) {
    const H5::DataSpace space = ds.getSpace();
    std::vector<hsize_t> dims(static_cast<std::size_t>(space.getSimpleExtentNdims()));
    space.getSimpleExtentDims(dims.data());
    return dims;
  };
  for (const char* name : {"clean_prediction", "adversarial_prediction"}) {
    const H5::DataSet ds = cell.openDataSet(name);
    EXPECT_EQ(ds.getTypeClass(), H5T_INTEGER) << name;
    EXPECT_EQ(ds.getIntType().getSize(), 8u) << name;
    EXPECT_EQ(shape_of(ds), (std::vector<hsize_t>{3, 10})) << name;
  }
  const H5::DataSet adv = cell.openDataSet("adversarial");
  EXPECT_EQ(adv.getTypeClass(), H5T_FLOAT);
  EXPECT_EQ(adv.getFloatType().getSize(), 4u);
  EXPECT_EQ(shape_of(adv), (std::vector<hsize_t>{9, 1, 2, 3}));
  const H5::DSetCreatPropList props = adv.getCreatePlist();
  EXPECT_EQ(props.getLayout(), H5D_CHUNKED);
  EXPECT_TRUE(props.allFiltersAvail());
  EXPECT_EQ(props.getNfilters(), 1);
  EXPECT_EQ(shape_of(cell.openDataSet("adversarial_index")), std::vector<hsize_t>{9});
  // Saved, with no row: [0, 1, 28, 28].
  EXPECT_EQ(shape_of(h5.openGroup("/cells/det.apgd-ce.l2-1.5").openDataSet("adversarial")),
            (std::vector<hsize_t>{0, 1, 28, 28}));
  // Not saved: no dataset.
  EXPECT_FALSE(h5.openGroup("/cells/det.cw.l2-inf").nameExists("adversarial"));
}

TEST(Results, ReadingWithoutAdversarialExamplesLeavesThemOut) {
  TempDir dir;
  write_results(dir.file("r.h5"), round_trip_fixture());
  const ResultFile numbers = read_results(dir.file("r.h5"), AdversarialExamples::kSkip);
  EXPECT_FALSE(numbers.cells[0].has_adversarial());
  EXPECT_TRUE(numbers.cells[0].adversarial.empty());
  EXPECT_EQ(numbers.cells[0].clean_prediction.size(), 30u);  // the predictions stay
  EXPECT_TRUE(read_results(dir.file("r.h5")).cells[0].has_adversarial());
}

TEST(Results, AdversarialExamplesLeftInTheFileAreCopiedWhenWritten) {
  // Resume and merge keep the examples in their file, not in memory; the
  // writer copies them, also onto the file they come from.
  TempDir dir;
  const ResultFile f = round_trip_fixture();
  write_results(dir.file("a.h5"), f);
  ResultFile ref = read_results(dir.file("a.h5"), AdversarialExamples::kReference);
  const CellResult& c = ref.cells[0];
  EXPECT_TRUE(c.has_adversarial());
  EXPECT_TRUE(c.adversarial.empty());
  EXPECT_EQ(c.adversarial_file, dir.file("a.h5"));
  EXPECT_EQ(c.adversarial_index, f.cells[0].adversarial_index);
  EXPECT_EQ(c.adversarial_shape, f.cells[0].adversarial_shape);
  write_results(dir.file("b.h5"), ref);
  expect_same_file(f, read_results(dir.file("b.h5")));
  write_results(dir.file("a.h5"), ref);  // onto itself
  expect_same_file(f, read_results(dir.file("a.h5")));
  // A cell freed after it was written is copied too.
  ResultFile kept = f;
  kept.cells[0].keep_adversarial_in(dir.file("a.h5"));
  EXPECT_TRUE(kept.cells[0].adversarial.empty());
  write_results(dir.file("c.h5"), kept);
  expect_same_file(f, read_results(dir.file("c.h5")));
  // A file without them is an error naming it, and nothing is written.
  kept.cells[0].adversarial_file = dir.file("empty.h5");
  write_results(dir.file("empty.h5"), ResultFile{});
  EXPECT_THAT(error_of<Error>([&] { write_results(dir.file("d.h5"), kept); }),
              HasSubstr("its adversarial examples are not in " + dir.file("empty.h5")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("d.h5")));
}

TEST(Results, ReadsVersion1FilesAndWritesThemAsVersion2) {
  TempDir dir;
  const ResultFile f = round_trip_fixture();
  write_results(dir.file("v1.h5"), f);
  downgrade_to_version_1(dir.file("v1.h5"));
  {
    H5::H5File h5(dir.file("v1.h5"), H5F_ACC_RDONLY);
    ASSERT_EQ(type_of(h5.openGroup("/"), "seed"), "str");  // the layout of version 1
    ASSERT_EQ(type_of(h5.openGroup("/"), "schema_version"), "float64");
  }
  const ResultFile v1 = read_results(dir.file("v1.h5"));
  EXPECT_EQ(v1.read_version, 1);
  // Everything but the records version 1 did not have; counts read back as numbers.
  expect_same_file(without_version_2_records(f), v1);
  EXPECT_EQ(v1.cells[0].summary.at("attacked_examples"), 9);

  // Written again (as imbench merge does), it is a version-2 file.
  write_results(dir.file("v2.h5"), merge_results({v1}));
  const ResultFile v2 = read_results(dir.file("v2.h5"));
  EXPECT_EQ(v2.read_version, 2);
  EXPECT_EQ(v2.root.at("seed"), "0");
  EXPECT_EQ(v2.root.at("shard"), "merged");
  H5::H5File h5(dir.file("v2.h5"), H5F_ACC_RDONLY);
  EXPECT_EQ(type_of(h5.openGroup("/"), "seed"), "int64");
  EXPECT_EQ(type_of(h5.openGroup("/"), "schema_version"), "int64");
  EXPECT_EQ(type_of(h5.openGroup("/cells/det.cw.l2-inf"), "attacked_examples"), "int64");
  EXPECT_FALSE(h5.openGroup("/cells/det.cw.l2-inf").nameExists("clean_prediction"));  // none to write
}

TEST(Results, ReadsThePublishedVersion1File) {
  // reports/table1-mnist.h5 was written by imbench before version 2.
  const ResultFile f = read_results(std::string(IMBENCH_SOURCE_DIR) + "/reports/table1-mnist.h5");
  EXPECT_EQ(f.read_version, 1);
  EXPECT_EQ(f.root.at("seed"), "0");
  EXPECT_EQ(f.root.at("examples"), "200");
  EXPECT_EQ(f.root.at("threads"), "2");
  EXPECT_EQ(f.root.at("schema_version"), std::to_string(kResultsSchemaVersion));
  ASSERT_FALSE(f.cells.empty());
  for (const auto& c : f.cells) {
    EXPECT_EQ(c.size(), 200) << c.id;
    EXPECT_TRUE(c.clean_prediction.empty()) << c.id;
    EXPECT_TRUE(c.adversarial_prediction.empty()) << c.id;
    EXPECT_FALSE(c.has_adversarial()) << c.id;
    EXPECT_EQ(c.summary.at("attacked_examples"),
              static_cast<double>(std::count(c.attacked.begin(), c.attacked.end(), 1)))
        << c.id;
  }
}

TEST(Results, EmptyFileAndLookups) {
  TempDir dir;
  ResultFile f;
  write_results(dir.file("sub/empty.h5"), f);  // creates the folder
  const ResultFile back = read_results(dir.file("sub/empty.h5"));
  EXPECT_TRUE(back.models.empty());
  EXPECT_TRUE(back.cells.empty());
  const ResultFile r = round_trip_fixture();
  ASSERT_NE(r.find_cell("det.cw.l2-inf"), nullptr);
  EXPECT_EQ(r.find_cell("det.cw.l2-inf")->eps_text, "inf");
  EXPECT_EQ(r.find_cell("det.cw"), nullptr);
  ASSERT_NE(r.find_model("sfnn-1.0_x"), nullptr);
  EXPECT_TRUE(r.find_model("sfnn-1.0_x")->stochastic);
  EXPECT_EQ(r.find_model("sfnn"), nullptr);
}

TEST(Results, WriteRefusesBadRecordsAndLeavesTheOldFile) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  write_results(path, round_trip_fixture());
  const std::string before = read_bytes(path);

  auto refused = [&](const std::function<void(ResultFile&)>& damage) {
    ResultFile f = round_trip_fixture();
    damage(f);
    const std::string message = error_of<Error>([&] { write_results(path, f); });
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(read_bytes(path), before);
    EXPECT_EQ(folder_entries(dir.path), std::vector<std::string>{"r.h5"});
    return message;
  };
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[0].clean_correct.pop_back(); }),
              HasSubstr("clean_correct has 29 values, expected 30"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[0].adversarial_correct.push_back(1); }),
              HasSubstr("adversarial_correct"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[1].final_loss.pop_back(); }), HasSubstr("final_loss"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[1].target.clear(); }), HasSubstr("target has 0 values"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[0].target = {1}; }), HasSubstr("none when untargeted"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[0].repeats = 0; }), HasSubstr("repeats must be >= 1"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[1].id = f.cells[0].id; }), HasSubstr("appears twice"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[1].id = "a/b"; }), HasSubstr("contains '/'"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[1].model = "nobody"; }), HasSubstr("model 'nobody'"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[0].summary["eps"] = 1; }), HasSubstr("summary entry 'eps'"));
  EXPECT_THAT(refused([](ResultFile& f) { f.root["schema"] = "other"; }), HasSubstr("schema"));
  EXPECT_THAT(refused([](ResultFile& f) { f.root["examples"] = "first 10"; }),
              HasSubstr("root attribute examples is 'first 10', expected an integer"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[0].clean_prediction.pop_back(); }),
              HasSubstr("clean_prediction has 29 values, expected 30"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[0].adversarial.pop_back(); }),
              HasSubstr("adversarial has 53 values, expected 54 (9 rows of shape [1, 2, 3])"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[0].adversarial_shape.clear(); }),
              HasSubstr("adversarial examples without their shape"));
  EXPECT_THAT(refused([](ResultFile& f) { f.cells[0].summary["attacked_examples"] = 2.5; }),
              HasSubstr("summary entry 'attacked_examples' is 2.5, expected a count"));

  // A failure while writing (the target is a folder) removes the temporary file.
  std::filesystem::create_directories(dir.file("folder.h5"));
  EXPECT_THAT(error_of<Error>([&] { write_results(dir.file("folder.h5"), round_trip_fixture()); }),
              HasSubstr("folder.h5"));
  EXPECT_EQ(folder_entries(dir.path), (std::vector<std::string>{"folder.h5", "r.h5"}));
  EXPECT_EQ(read_bytes(path), before);
}

TEST(Results, ReadErrorsAreOneLineImbenchErrors) {
  TempDir dir;
  auto read_error = [](const std::string& path) {
    const std::string message = error_of<Error>([&] { read_results(path); });
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_THAT(message, HasSubstr(path));
    return message;
  };
  EXPECT_THAT(read_error(dir.file("missing.h5")), HasSubstr("no such file"));

  write_bytes(dir.file("text.h5"), "model,accuracy\ndet,0.98\n");
  EXPECT_THAT(read_error(dir.file("text.h5")), HasSubstr("not an HDF5 file"));
  write_bytes(dir.file("empty.h5"), "");
  EXPECT_THAT(read_error(dir.file("empty.h5")), HasSubstr("not an HDF5 file"));
  // The HDF5 signature followed by garbage.
  write_bytes(dir.file("garbage.h5"), std::string("\x89HDF\r\n\x1a\n", 8) + std::string(4000, '\x5a'));
  EXPECT_THAT(read_error(dir.file("garbage.h5")), HasSubstr("cannot read"));

  write_results(dir.file("good.h5"), round_trip_fixture());
  const std::string good = read_bytes(dir.file("good.h5"));
  for (std::size_t keep : {good.size() / 2, good.size() - 100, std::size_t{600}}) {
    write_bytes(dir.file("truncated.h5"), good.substr(0, keep));
    EXPECT_THAT(read_error(dir.file("truncated.h5")), HasSubstr("truncated")) << keep;
  }

  // A results file of a later schema version.
  write_results(dir.file("v3.h5"), round_trip_fixture());
  {
    H5::H5File h5(dir.file("v3.h5"), H5F_ACC_RDWR);
    H5::Group root = h5.openGroup("/");
    root.removeAttr("schema_version");
    const int64_t three = 3;
    root.createAttribute("schema_version", H5::PredType::NATIVE_INT64, H5::DataSpace(H5S_SCALAR))
        .write(H5::PredType::NATIVE_INT64, &three);
  }
  EXPECT_THAT(read_error(dir.file("v3.h5")), HasSubstr("schema_version 3 is not supported"));

  // A dataset declaring far more values than it stores is refused before
  // anything is allocated (here 2^40 indices, no chunk written).
  write_results(dir.file("huge.h5"), round_trip_fixture());
  {
    const std::string cell = "/cells/" + read_results(dir.file("huge.h5")).cells[0].id;
    H5::H5File h5(dir.file("huge.h5"), H5F_ACC_RDWR);
    H5::Group g = h5.openGroup(cell);
    g.unlink("index");
    const hsize_t n = hsize_t{1} << 40, chunk = 1024;
    H5::DSetCreatPropList props;
    props.setChunk(1, &chunk);
    g.createDataSet("index", H5::PredType::NATIVE_INT64, H5::DataSpace(1, &n), props);
  }
  EXPECT_THAT(read_error(dir.file("huge.h5")), HasSubstr("declares 1099511627776 values but stores 0 bytes"));

  // An HDF5 file of another kind.
  {
    H5::H5File other(dir.file("other.h5"), H5F_ACC_TRUNC);
    other.createGroup("/images");
  }
  EXPECT_THAT(read_error(dir.file("other.h5")), HasSubstr("without a 'schema' attribute, not an imbench results file"));

  EXPECT_THAT(read_error(dir.path.string()), HasSubstr("folder"));
}

namespace {

std::uint64_t le_at(const std::string& b, std::size_t at, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = n; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}
void put_le(std::string& b, std::size_t at, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

}  // namespace

// libhdf5 1.10.8 follows heap IDs and global heap object sizes unchecked (a
// damaged file read out of bounds and crashed, found by fuzz_results); the
// reader checks them first (h5guard/guard.h) and refuses with one line.
// Writes `bytes` as bad.h5 in `dir` and returns the one line read_results
// refuses it with, which must call it a damaged HDF5 file.
std::string damaged_file_message(const TempDir& dir, const std::string& bytes) {
  write_bytes(dir.file("bad.h5"), bytes);
  const std::string m = error_of<Error>([&] { read_results(dir.file("bad.h5")); });
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_THAT(m, HasSubstr(dir.file("bad.h5") + ": damaged HDF5 file: "));
  return m;
}

TEST(Results, DamagedGlobalHeapIsRefusedNotFollowed) {
  TempDir dir;
  // A file in HDF5's oldest format (no metadata checksums, as imbench wrote
  // before it chose the 1.8 format, and as other tools still may): strings
  // on the root and on a group, in one global heap collection.
  {
    H5::H5File h5(dir.file("good.h5"), H5F_ACC_TRUNC);
    const H5::StrType vlen(H5::PredType::C_S1, H5T_VARIABLE);
    H5::Group root = h5.openGroup("/");
    for (const std::string key : {"schema", "dataset", "date", "device", "git_revision", "matrix_name"})
      root.createAttribute(key, vlen, H5::DataSpace(H5S_SCALAR)).write(vlen, std::string("value of ") + key);
    H5::Group g = h5.createGroup("/cells");
    for (const std::string key : {"attack", "threat_model"})
      g.createAttribute(key, vlen, H5::DataSpace(H5S_SCALAR)).write(vlen, std::string("cell ") + key);
  }
  const std::string good = read_bytes(dir.file("good.h5"));
  const std::size_t gcol = good.find("GCOL");
  ASSERT_NE(gcol, std::string::npos);
  // The collection's objects (index -> size) and the places that name them:
  // a 4-byte length, the collection's 8-byte address and a 4-byte index.
  std::map<std::uint64_t, std::uint64_t> objects;
  const std::uint64_t size = le_at(good, gcol + 8, 8);
  for (std::size_t p = gcol + 16; p + 16 <= gcol + size;) {
    const std::uint64_t index = le_at(good, p, 2), length = le_at(good, p + 8, 8);
    if (index == 0) break;
    objects[index] = length;
    p += 16 + (length + 7) / 8 * 8;
  }
  ASSERT_GE(objects.size(), 8u);
  std::vector<std::size_t> ids;  // offsets of the index field of heap IDs
  for (std::size_t p = 4; p + 12 <= good.size(); ++p) {
    if (p >= gcol && p < gcol + size) continue;
    if (le_at(good, p, 8) != gcol) continue;
    const auto it = objects.find(le_at(good, p + 8, 4));
    if (it != objects.end() && it->first != 0 && it->second == le_at(good, p - 4, 4) && it->second > 0)
      ids.push_back(p + 8);
  }
  ASSERT_GE(ids.size(), 8u);
  auto message_of = [&](const std::string& bytes) { return damaged_file_message(dir, bytes); };
  for (const std::size_t id : {ids.front(), ids.back()}) {
    std::string bad = good;
    put_le(bad, id, 60000, 4);  // an index the collection does not have
    EXPECT_THAT(message_of(bad), HasSubstr("heap object 60000 does not exist"));
    bad = good;
    put_le(bad, id - 12, le_at(good, id - 12, 4) + 1, 4);  // one byte more than the object holds
    EXPECT_THAT(message_of(bad), HasSubstr("the value says"));
    bad = good;
    put_le(bad, id - 8, 0, 8);  // a null string (HDF5's C++ API passed its null pointer to strlen)
    EXPECT_THAT(message_of(bad), HasSubstr("holds a null string"));
  }
  std::string bad = good;
  put_le(bad, gcol + 16 + 8, std::uint64_t{1} << 40, 8);  // the first object's size overruns the collection
  EXPECT_THAT(message_of(bad), HasSubstr("overruns the collection"));
  bad = good;
  put_le(bad, gcol + 8, good.size() * 2, 8);  // the collection reaches past the end of the file
  EXPECT_THAT(message_of(bad), HasSubstr("global heap collection"));
  bad = good;
  bad[gcol] = 'X';  // no collection where the IDs point
  EXPECT_THAT(message_of(bad), HasSubstr("no global heap collection"));
  // The good file passes the guard (and is then refused as what it is: no
  // results file); every input fuzz_results once crashed on gets one line.
  EXPECT_THAT(error_of<Error>([&] { read_results(dir.file("good.h5")); }), Not(HasSubstr("damaged")));
  for (const auto& entry : fs::directory_iterator(std::string(IMBENCH_SOURCE_DIR) + "/fuzz/regressions/fuzz_results")) {
    const std::string m = error_of<Error>([&] { read_results(entry.path().string()); });
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_THAT(m, HasSubstr(entry.path().string())) << m;
  }
}

// The address of an object's header, for the API of HDF5 1.10 and of 1.12 and later.
std::uint64_t object_address(const std::string& file, const std::string& path) {
  const H5::H5File h5(file, H5F_ACC_RDONLY);
#if H5_VERSION_GE(1, 12, 0)
  H5O_info2_t info;
  haddr_t address = HADDR_UNDEF;
  if (H5Oget_info_by_name3(h5.getId(), path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0 ||
      H5VLnative_token_to_addr(h5.getId(), info.token, &address) < 0)
    throw Error("no object " + path);
  return address;
#else
  H5O_info_t info;
  if (H5Oget_info_by_name2(h5.getId(), path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
    throw Error("no object " + path);
  return info.addr;
#endif
}

// libhdf5 1.10.8 decodes attribute messages, enum member names and attribute
// values without bounds (strdup of a name that lost its NUL byte read past
// the object header chunk). In the oldest format nothing checksums an object
// header, so imbench parses each one before HDF5 decodes it.
TEST(Results, DamagedOldFormatObjectHeaderIsRefusedBeforeHdf5DecodesIt) {
  TempDir dir;
  {
    H5::H5File h5(dir.file("good.h5"), H5F_ACC_TRUNC);  // superblock 0, object headers version 1
    H5::Group root = h5.openGroup("/");
    const int seven = 7;
    root.createAttribute("abcdefg", H5::PredType::STD_I32LE, H5::DataSpace(H5S_SCALAR))
        .write(H5::PredType::NATIVE_INT, &seven);
    const H5::StrType vlen(H5::PredType::C_S1, H5T_VARIABLE);
    root.createAttribute("text", vlen, H5::DataSpace(H5S_SCALAR)).write(vlen, std::string("a string"));
    H5::EnumType flag(H5::PredType::STD_U8LE);
    unsigned char values[] = {0, 1};
    flag.insert("NOPE", &values[0]);
    flag.insert("YES", &values[1]);
    H5::Group g = h5.createGroup("/cells");
    const unsigned char yes = 1;
    g.createAttribute("flagged", flag, H5::DataSpace(H5S_SCALAR)).write(flag, &yes);
    H5::DSetCreatPropList compact;
    compact.setLayout(H5D_COMPACT);
    const hsize_t four = 4;
    const std::uint32_t numbers[] = {0x11223344, 0x55667788, 0x99AABBCC, 0xDDEEFF01};
    g.createDataSet("compact", H5::PredType::STD_U32LE, H5::DataSpace(1, &four), compact)
        .write(numbers, H5::PredType::NATIVE_UINT32);
    H5::DSetCreatPropList chunked;
    const hsize_t three = 3;
    chunked.setChunk(1, &three);
    const std::uint32_t more[] = {0x0A0B0C0D, 0x1A1B1C1D, 0x2A2B2C2D, 0x3A3B3C3D};
    g.createDataSet("chunked", H5::PredType::STD_U32LE, H5::DataSpace(1, &four), chunked)
        .write(more, H5::PredType::NATIVE_UINT32);
  }
  const std::string good = read_bytes(dir.file("good.h5"));
  ASSERT_EQ(good[8], 0);  // superblock version 0
  const std::size_t root = le_at(good, 64, 8);  // the root group's symbol table entry: its header address
  ASSERT_LT(root + 16, good.size());
  ASSERT_EQ(good[root], 1);
  const std::size_t name = good.find(std::string("abcdefg") + '\0');
  const std::size_t enum_name = good.find(std::string("NOPE") + '\0');
  ASSERT_NE(name, std::string::npos);
  ASSERT_NE(enum_name, std::string::npos);
  const std::size_t message = name - 8;  // version 1 attribute message: 8 bytes, then the name (8 with its NUL)
  ASSERT_EQ(good[message], 1);
  ASSERT_EQ(le_at(good, message + 2, 2), 8u);
  const std::size_t type = name + 8;  // the int's datatype: class and version, 3 bytes of bits, its size
  ASSERT_EQ(le_at(good, type + 4, 4), 4u);
  auto message_of = [&](const std::string& bytes) { return damaged_file_message(dir, bytes); };
  std::string bad = good;
  bad[name + 7] = 'X';  // the name loses its NUL byte
  EXPECT_THAT(message_of(bad), HasSubstr("has a name without its terminating NUL byte"));
  bad = good;
  put_le(bad, message + 2, 60000, 2);  // a name longer than its message
  EXPECT_THAT(message_of(bad), HasSubstr("has a name longer than the message"));
  bad = good;
  put_le(bad, type + 4, 16, 4);  // an int of 16 bytes: more value than the message holds
  EXPECT_THAT(message_of(bad), HasSubstr("declares 1 values of 16 bytes"));
  bad = good;
  put_le(bad, type + 4, 60000, 4);  // no number has 60000 bytes (libhdf5 copied such floats out of a small chunk)
  EXPECT_THAT(message_of(bad), HasSubstr("declares numbers of 60000 bytes"));
  bad = good;
  put_le(bad, type + 10, 33, 2);  // a 33-bit precision in a 4-byte int
  EXPECT_THAT(message_of(bad), HasSubstr("has a precision of 33 bits at bit 0 in a 4-byte value"));
  const std::size_t text = good.find(std::string("text") + '\0');
  ASSERT_NE(text, std::string::npos);
  ASSERT_EQ(good[text + 8] & 0x0F, 9);  // the variable-length string's datatype follows the padded name
  ASSERT_EQ(le_at(good, text + 12, 4), 16u);
  bad = good;
  put_le(bad, text + 12, 10, 4);  // a variable-length type of 10 bytes: libhdf5 copied 16 per value
  EXPECT_THAT(message_of(bad), HasSubstr("is a variable-length type of 10 bytes (its values take 16 in the file)"));
  bad = good;
  std::fill(bad.begin() + static_cast<std::ptrdiff_t>(enum_name), bad.begin() + static_cast<std::ptrdiff_t>(enum_name) + 16,
            'Z');  // the enum's member names lose their NUL bytes
  EXPECT_THAT(message_of(bad), HasSubstr("enum"));
  bad = good;
  const std::uint64_t cells = object_address(dir.file("good.h5"), "/cells");
  ASSERT_EQ(good[cells], 1);
  put_le(bad, cells + 8, 1u << 30, 4);  // the group's header chunk reaches past the end of the file
  EXPECT_THAT(message_of(bad), HasSubstr("lies past the end of the file"));
  // The root group's header is loaded by H5Fopen itself, which allocated the
  // declared chunk size first (8 GB from a damaged 1.8-format header): it is
  // checked from the superblock before HDF5 opens the file.
  bad = good;
  put_le(bad, root + 8, 0xFFFFFFF0u, 4);
  EXPECT_THAT(message_of(bad), HasSubstr("an object header chunk of '/' (4294967280 bytes"));
  // A compact dataset's layout message (version 3): class 0, a 2-byte size, the data.
  const std::size_t data = good.find(std::string("\x44\x33\x22\x11\x88\x77\x66\x55", 8));
  ASSERT_NE(data, std::string::npos);
  ASSERT_EQ(good[data - 4], 3);
  ASSERT_EQ(le_at(good, data - 2, 2), 16u);
  bad = good;
  put_le(bad, data - 2, 60000, 2);  // more data than the message holds
  EXPECT_THAT(message_of(bad), HasSubstr("stores more data than the message holds"));
  // A chunked dataset's layout message (version 3): class 2, rank 2, the
  // B-tree's address, the chunk's dimensions [3, 4]: 3 values of 4 bytes.
  // libhdf5 sizes its chunk buffers by that last dimension and copies values
  // of the datatype's size: with 2 recorded, it read past a 6-byte chunk.
  std::size_t layout = std::string::npos;
  for (std::size_t at = good.find(std::string("\x03\x02\x02", 3)); at != std::string::npos;
       at = good.find(std::string("\x03\x02\x02", 3), at + 1))
    if (at + 19 <= good.size() && le_at(good, at + 11, 4) == 3 && le_at(good, at + 15, 4) == 4) layout = at;
  ASSERT_NE(layout, std::string::npos);
  bad = good;
  put_le(bad, layout + 15, 2, 4);
  EXPECT_THAT(message_of(bad), HasSubstr("the chunks of '/cells/chunked' hold values of 2 bytes, its datatype values of 4"));
  // The root group's local heap holds the link name "cells"; without its NUL
  // byte (up to the end of the heap's data) HDF5's strlen ran past the heap.
  const std::size_t cells_name = good.find(std::string("cells") + '\0');
  ASSERT_NE(cells_name, std::string::npos);
  std::size_t heap_end = 0;
  for (std::size_t h = good.find("HEAP"); h != std::string::npos; h = good.find("HEAP", h + 1)) {
    const std::uint64_t size = le_at(good, h + 8, 8), at = le_at(good, h + 24, 8);
    if (at <= cells_name && cells_name < at + size) heap_end = at + size;
  }
  ASSERT_GT(heap_end, cells_name);
  bad = good;
  std::fill(bad.begin() + static_cast<std::ptrdiff_t>(cells_name), bad.begin() + static_cast<std::ptrdiff_t>(heap_end), 'Z');
  EXPECT_THAT(message_of(bad), HasSubstr("without a terminating NUL byte"));
  // The good file passes the guard (and is then refused as what it is: no results file).
  EXPECT_THAT(error_of<Error>([&] { read_results(dir.file("good.h5")); }), Not(HasSubstr("damaged")));
}

// A second hard link to one object can close a cycle; libhdf5 1.10.8's
// H5Lvisit followed one forever when the damaged group's reference count
// said 1 (fuzz_results). The guard refuses any object reached twice.
TEST(Results, AnObjectReachedByTwoLinksIsRefused) {
  TempDir dir;
  {
    H5::H5File h5(dir.file("cycle.h5"), H5F_ACC_TRUNC);
    H5::Group g = h5.createGroup("/cells");
    h5.createGroup("/cells/a");
    ASSERT_GE(H5Lcreate_hard(g.getId(), ".", g.getId(), "a/back", H5P_DEFAULT, H5P_DEFAULT), 0);
  }
  EXPECT_THAT(error_of<Error>([&] { read_results(dir.file("cycle.h5")); }),
              AllOf(HasSubstr("links to an object that another link already reaches"), HasSubstr("not read")));
}

// Results files are written in the HDF5 1.8 format (superblock version 2,
// checksummed object headers), and HDF5 and h5py open them: the superblock
// checksum of the in-memory file image is recomputed (tests/cli_soundness.sh
// reads such files with h5py).
TEST(Results, WrittenInTheHdf5Format18WithChecksums) {
  TempDir dir;
  write_results(dir.file("r.h5"), round_trip_fixture());
  const std::string bytes = read_bytes(dir.file("r.h5"));
  ASSERT_GT(bytes.size(), 48u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89HDF\r\n\x1a\n", 8));
  EXPECT_EQ(static_cast<int>(bytes[8]), 2);  // superblock version 2
  EXPECT_NE(bytes.find("OHDR"), std::string::npos);  // version-2 object headers
  EXPECT_NO_THROW(H5::H5File(dir.file("r.h5"), H5F_ACC_RDONLY));
  // One flipped byte inside an object header is caught by its checksum.
  std::string bad = bytes;
  const std::size_t ohdr = bytes.find("OHDR", 48);
  ASSERT_NE(ohdr, std::string::npos);
  bad[ohdr + 20] = static_cast<char>(bad[ohdr + 20] ^ 0x5a);
  write_bytes(dir.file("bad.h5"), bad);
  const std::string m = error_of<Error>([&] { read_results(dir.file("bad.h5")); });
  EXPECT_THAT(m, HasSubstr(dir.file("bad.h5")));
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

namespace {

// A file in the per-attack records layout that `imbench attack --out` wrote
// before it wrote results files: string root attributes ("attack", ...; the
// schema attribute when `schema` is not empty) and a group "white-box".
void write_old_attack_records(const std::string& path, const std::string& schema) {
  H5::H5File file(path, H5F_ACC_TRUNC);
  H5::Group root = file.openGroup("/");
  auto put = [&](const std::string& key, const std::string& value) {
    const H5::StrType type(H5::PredType::C_S1, value.size());
    root.createAttribute(key, type, H5::DataSpace(H5S_SCALAR)).write(type, value);
  };
  if (!schema.empty()) put("schema", schema);
  put("attack", "pgd");
  put("threat_model", "Linf eps=0.3 untargeted, inputs in [0, 1]");
  H5::Group g = file.createGroup("/white-box");
  const std::vector<int64_t> index = {0, 1, 2};
  const hsize_t n = index.size();
  g.createDataSet("index", H5::PredType::NATIVE_INT64, H5::DataSpace(1, &n))
      .write(index.data(), H5::PredType::NATIVE_INT64);
}

}  // namespace

TEST(Results, ReadNamesTheOldPerAttackRecordsFormat) {
  TempDir dir;
  for (const std::string schema : {"imbench-attack-records", ""}) {
    const std::string path = dir.file("attack.h5");
    write_old_attack_records(path, schema);
    const std::string message = error_of<Error>([&] { read_results(path); });
    EXPECT_EQ(message,
              path +
                  ": per-attack records written by `imbench attack --out` of an earlier imbench, not an "
                  "imbench-results file; re-create it by running the attack again (`imbench attack --out` now "
                  "writes imbench-results files)")
        << "schema '" << schema << "'";
  }
}

TEST(Results, EveryWriterFailsWithAOneLineErrorAndLeavesNoTemporaryFile) {
  // A path under a regular file cannot be created: results and text (reports)
  // both go through one atomic writer that turns the filesystem error into an
  // imbench::Error naming the path and removes its temporary file.
  TempDir dir;
  write_bytes(dir.file("plain"), "not a folder");
  const std::string under = dir.file("plain/out");
  const std::vector<std::pair<std::string, std::function<void()>>> writers = {
      {"results", [&] { write_results(under + ".h5", report_fixture()); }},
      {"text", [&] { write_text_atomically(under + ".md", "# report\n"); }}};
  for (const auto& [what, write] : writers) {
    const std::string message = error_of<Error>(write);
    EXPECT_THAT(message, HasSubstr(under)) << what;
    EXPECT_EQ(message.find('\n'), std::string::npos) << what;
  }
  EXPECT_EQ(folder_entries(dir.path), std::vector<std::string>{"plain"});
  EXPECT_EQ(read_bytes(dir.file("plain")), "not a folder");
}

// ---- statistics ----

TEST(Results, SummariseOnAHandComputedExample) {
  CellResult c;
  c.id = "m.a.linf-0.1";
  c.repeats = 3;
  c.index = {0, 1, 2, 3};
  c.attacked = {1, 1, 1, 0};
  c.clean_correct = {1, 1, 1, 0, /**/ 1, 1, 0, 0, /**/ 1, 1, 1, 1};
  c.adversarial_correct = {1, 0, 1, 0, /**/ 1, 0, 0, 0, /**/ 1, 1, 1, 0};
  c.summary["seconds"] = 2;
  c.summarise();
  EXPECT_DOUBLE_EQ(c.summary.at("clean_accuracy"), 0.75);  // 9 of 12
  EXPECT_DOUBLE_EQ(c.summary.at("robust_accuracy"), 0.5);  // 6 of 12
  // Per repeat 0.5, 0.25, 0.75: sample standard deviation 0.25.
  EXPECT_DOUBLE_EQ(c.summary.at("robust_accuracy_std"), 0.25);
  EXPECT_DOUBLE_EQ(c.summary.at("robust_accuracy_worst"), 0.25);  // only example 0 in every repeat
  EXPECT_DOUBLE_EQ(c.summary.at("attacked_examples"), 3);
  EXPECT_DOUBLE_EQ(c.summary.at("seconds"), 2);  // other entries are kept

  c.repeats = 1;
  c.clean_correct.resize(4);
  c.adversarial_correct.resize(4);
  c.summarise();
  EXPECT_DOUBLE_EQ(c.summary.at("robust_accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(c.summary.at("robust_accuracy_std"), 0.0);
  EXPECT_DOUBLE_EQ(c.summary.at("robust_accuracy_worst"), 0.5);

  c.adversarial_correct.pop_back();
  EXPECT_THAT(error_of<Error>([&] { c.summarise(); }), HasSubstr("m.a.linf-0.1"));

  EXPECT_FALSE(c.unreliable());
  c.flags = {{11, "validity", false, ""}};
  EXPECT_FALSE(c.unreliable());
  c.flags.push_back({6, "iterative-vs-single-step", true, "worse on 3"});
  EXPECT_TRUE(c.unreliable());
}

TEST(Results, WilsonInterval) {
  const auto [lo, hi] = wilson_interval(50, 100);
  EXPECT_NEAR(lo, 0.4038, 1e-4);
  EXPECT_NEAR(hi, 0.5962, 1e-4);
  const auto [lo0, hi0] = wilson_interval(0, 10);  // z^2 / (n + z^2) at k = 0
  EXPECT_NEAR(lo0, 0.0, 1e-12);
  EXPECT_NEAR(hi0, 0.27753, 1e-5);
  const auto [lo1, hi1] = wilson_interval(10, 10);
  EXPECT_NEAR(lo1, 1 - 0.27753, 1e-5);
  EXPECT_NEAR(hi1, 1.0, 1e-12);
  EXPECT_EQ(wilson_interval(0, 0), std::make_pair(0.0, 1.0));
  // z = 1 (68%) is narrower than the default 95%.
  EXPECT_LT(wilson_interval(50, 100, 1.0).second, hi);
}

TEST(Results, ExampleAccuracyCountsEffectiveTrials) {
  // Two examples, four repeats. Repeats that always agree: N trials.
  const std::vector<uint8_t> agree{1, 0, 1, 0, 1, 0, 1, 0};
  auto a = example_accuracy(agree, 4, 2);
  EXPECT_DOUBLE_EQ(a.mean, 0.5);
  EXPECT_DOUBLE_EQ(a.effective_trials, 2.0);
  EXPECT_EQ(a.interval, wilson_interval(1, 2));
  // Per-example accuracies 0.5 and 0.5: no spread between examples, so R x N.
  const std::vector<uint8_t> mixed{1, 0, 0, 1, 1, 0, 0, 1};
  a = example_accuracy(mixed, 4, 2);
  EXPECT_DOUBLE_EQ(a.effective_trials, 8.0);
  // One repeat: N, the plain Wilson interval.
  a = example_accuracy({1, 1, 0, 1}, 1, 4);
  EXPECT_DOUBLE_EQ(a.effective_trials, 4.0);
  EXPECT_EQ(a.interval, wilson_interval(3, 4));
  EXPECT_THROW(example_accuracy({1, 0, 1}, 2, 2), Error);
}

// A simulated stochastic classifier: example i is right in each repeat with
// probability q_i, where q_i is 0.95 for 60% of the population and 0.2 for
// the rest (true accuracy 0.65). Over many draws of N = 100 examples and
// R = 10 repeats, the example-level interval covers 0.65 about 95% of the
// time; the interval pooling R x N records as independent does not.
TEST(Results, ExampleIntervalHasItsNominalCoverage) {
  std::mt19937_64 rng(12345);
  std::bernoulli_distribution easy(0.6);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const std::size_t n = 100, r = 10, trials = 4000;
  const double truth = 0.6 * 0.95 + 0.4 * 0.2;
  std::size_t covered = 0, pooled_covered = 0;
  std::vector<uint8_t> records(n * r);
  for (std::size_t t = 0; t < trials; ++t) {
    for (std::size_t i = 0; i < n; ++i) {
      const double q = easy(rng) ? 0.95 : 0.2;
      for (std::size_t k = 0; k < r; ++k) records[k * n + i] = u(rng) < q ? 1 : 0;
    }
    const auto a = example_accuracy(records, r, n);
    covered += a.interval.first <= truth && truth <= a.interval.second;
    const auto pooled = wilson_interval(a.mean * static_cast<double>(n * r), static_cast<double>(n * r));
    pooled_covered += pooled.first <= truth && truth <= pooled.second;
  }
  const double coverage = static_cast<double>(covered) / trials;
  const double pooled_coverage = static_cast<double>(pooled_covered) / trials;
  EXPECT_GT(coverage, 0.93);
  EXPECT_LT(coverage, 0.97);
  EXPECT_LT(pooled_coverage, 0.75);  // about 0.56 in theory: sqrt(R)-ish too narrow
  RecordProperty("coverage", fmt::format("{:.3f}", coverage));
  RecordProperty("pooled_coverage", fmt::format("{:.3f}", pooled_coverage));
  std::printf("coverage %.3f, pooled %.3f\n", coverage, pooled_coverage);
}

TEST(Results, McNemarExactPValue) {
  EXPECT_DOUBLE_EQ(mcnemar_p_value(0, 10), 2 * std::pow(0.5, 10));
  EXPECT_DOUBLE_EQ(mcnemar_p_value(10, 0), 2 * std::pow(0.5, 10));
  EXPECT_NEAR(mcnemar_p_value(3, 7), 2.0 * (1 + 10 + 45 + 120) / 1024, 1e-12);
  EXPECT_EQ(mcnemar_p_value(0, 0), 1.0);
  EXPECT_EQ(mcnemar_p_value(5, 5), 1.0);
  EXPECT_EQ(mcnemar_p_value(1, 0), 1.0);
  // 10^5 discordant pairs: 0.5^n underflows, the log-space sum does not.
  EXPECT_EQ(mcnemar_p_value(50000, 50000), 1.0);
  const double p = mcnemar_p_value(49000, 51000);  // normal approximation: z = 6.32, p = 2.6e-10
  EXPECT_GT(p, 1e-10);
  EXPECT_LT(p, 5e-10);
  EXPECT_DOUBLE_EQ(p, mcnemar_p_value(51000, 49000));
  // 2 * 0.5^2000 is below the double range: 0, never NaN.
  EXPECT_EQ(mcnemar_p_value(0, 2000), 0.0);
  EXPECT_NEAR(mcnemar_p_value(0, 1000), 2 * std::pow(0.5, 1000), 1e-310);
  EXPECT_THROW(mcnemar_p_value(-1, 3), Error);
}

// ---- merge ----

TEST(Results, MergeOfShardsEqualsTheFullFile) {
  TempDir dir;
  ResultFile full = report_fixture();
  ResultFile first, second;
  first.root = root_of("1/2");
  second.root = root_of("2/2");
  first.models = {full.models[0]};
  second.models = {full.models[1], full.models[0]};  // a shared model is kept once
  for (std::size_t i = 0; i < full.cells.size(); ++i) (i < 5 ? first : second).cells.push_back(full.cells[i]);
  second.cells.push_back(full.cells[0]);  // an identical duplicate
  write_results(dir.file("full.h5"), full);
  write_results(dir.file("1.h5"), first);
  write_results(dir.file("2.h5"), second);
  const ResultFile merged = merge_results({read_results(dir.file("1.h5")), read_results(dir.file("2.h5"))});
  EXPECT_EQ(merged.root.at("shard"), "merged");
  full.root["shard"] = "merged";
  expect_same_file(full, merged);
  // ... and it writes and reads back like any file.
  write_results(dir.file("merged.h5"), merged);
  expect_same_file(full, read_results(dir.file("merged.h5")));
}

TEST(Results, MergeRefusesDifferentMatricesAndConflictingCells) {
  const ResultFile a = report_fixture();
  ResultFile b = report_fixture();
  b.root["matrix_name"] = "cifar-big";
  b.root["matrix_hash"] = "77aa";
  std::string message = error_of<Error>([&] { merge_results({a, b}); });
  EXPECT_THAT(message, HasSubstr("different matrices"));
  EXPECT_THAT(message, HasSubstr("'mnist-small' (hash 5e1f00d)"));
  EXPECT_THAT(message, HasSubstr("'cifar-big' (hash 77aa)"));

  ResultFile c = report_fixture();
  c.cells[2].hash = "other";
  message = error_of<Error>([&] { merge_results({a, c}); });
  EXPECT_THAT(message, HasSubstr("cell 'det.fgsm.linf-0.3'"));
  EXPECT_THAT(message, HasSubstr("hash-det.fgsm.linf-0.3 in file 1, other in file 2"));

  ResultFile d = report_fixture();
  d.models[1].file_sha256 = "ff";
  EXPECT_THAT(error_of<Error>([&] { merge_results({a, d}); }), HasSubstr("model 'sfnn'"));
  EXPECT_THROW(merge_results({}), Error);

  // The same file twice merges to itself.
  const ResultFile same = merge_results({a, a});
  EXPECT_EQ(same.cells.size(), a.cells.size());
  EXPECT_EQ(same.models.size(), a.models.size());
}

TEST(Results, MergeRefusesTwoCopiesOfACellWhoseNumbersDiffer) {
  const ResultFile a = report_fixture();
  // One per-example record flipped, hash unchanged: the first file must not silently win.
  ResultFile b = report_fixture();
  b.cells[2].adversarial_correct[1] = b.cells[2].adversarial_correct[1] ? 0 : 1;
  std::string message = error_of<Error>([&] { merge_results({a, b}); });
  EXPECT_THAT(message,
              HasSubstr("cannot merge: cell 'det.fgsm.linf-0.3' has two different results (file 1 and file 2)"));
  EXPECT_THAT(message, HasSubstr("adversarial_correct differs in 1 of "));
  EXPECT_THAT(message, HasSubstr("first at position 1"));
  EXPECT_EQ(message.find('\n'), std::string::npos);
  // A summary number other than a timing.
  ResultFile c = report_fixture();
  c.cells[3].summary["robust_accuracy"] += 0.01;
  message = error_of<Error>([&] { merge_results({a, c}); });
  EXPECT_THAT(message, HasSubstr("cell '" + a.cells[3].id + "'"));
  EXPECT_THAT(message, HasSubstr("summary robust_accuracy"));
  // Another loss value and a missing summary entry: both named.
  ResultFile d = report_fixture();
  d.cells[0].final_loss[0] += 1;
  d.cells[0].summary.erase("robust_accuracy_worst");
  d.cells[0].summary["attack_success_extra"] = 1;
  message = error_of<Error>([&] { merge_results({a, d}); });
  EXPECT_THAT(message, HasSubstr("final_loss differs"));
  EXPECT_THAT(message, HasSubstr("is in one file only"));
  // Timings differ between two honest runs of one cell: merged, first file kept.
  ResultFile e = report_fixture();
  for (auto& cell : e.cells) {
    cell.summary["seconds"] += 3;
    cell.summary["images_per_second"] /= 2;
  }
  const ResultFile merged = merge_results({a, e});
  ASSERT_EQ(merged.cells.size(), a.cells.size());
  EXPECT_EQ(merged.cells[0].summary.at("seconds"), a.cells[0].summary.at("seconds"));
}

// ---- compare ----

namespace {

// One cell of `n` examples: example i is right after the attack when right(i).
ResultFile compare_file(int64_t n, const std::function<bool(int64_t)>& right, int64_t index_offset = 0) {
  ResultFile f;
  f.root = root_of("all");
  f.models = {make_model("det", false)};
  CellResult c = make_cell("det", "pgd", "linf", 0.3, "0.3", 0, 1, n, 1, [&](int64_t, int64_t i) { return right(i); });
  for (auto& i : c.index) i += index_offset;
  c.clean_correct.assign(c.clean_correct.size(), 1);
  c.adversarial_correct.clear();
  for (int64_t i = 0; i < n; ++i) c.adversarial_correct.push_back(right(i));
  c.summarise();
  f.cells = {c};
  return f;
}

}  // namespace

TEST(Results, CompareFlagsAPlantedRegression) {
  const ResultFile base = compare_file(200, [](int64_t i) { return i < 150; });
  const ResultFile next = compare_file(200, [](int64_t i) { return i < 120; });  // 30 flip to wrong
  const CompareResult r = compare_results(base, next, {});
  EXPECT_EQ(r.matched, 1);
  EXPECT_EQ(r.regressions, 1);
  EXPECT_EQ(r.improvements, 0);
  EXPECT_TRUE(r.unmatched.empty());
  EXPECT_THAT(r.markdown, HasSubstr("McNemar (lost 30, gained 0)"));
  EXPECT_THAT(r.markdown, HasSubstr(fmt::format("{:.2e}", 2 * std::pow(0.5, 30))));
  EXPECT_THAT(r.markdown, HasSubstr("-15.00"));
  EXPECT_THAT(r.markdown, HasSubstr("| regression |"));
  EXPECT_THAT(r.markdown, HasSubstr("Linf eps=0.3 untargeted"));

  const CompareResult back = compare_results(next, base, {});
  EXPECT_EQ(back.regressions, 0);
  EXPECT_EQ(back.improvements, 1);
  EXPECT_THAT(back.markdown, HasSubstr("| improvement |"));

  CompareOptions lenient;
  lenient.tolerance = 0.2;  // 20 points allowed
  EXPECT_EQ(compare_results(base, next, lenient).regressions, 0);
  lenient.tolerance = 0.1;
  EXPECT_EQ(compare_results(base, next, lenient).regressions, 1);
  CompareOptions strict_alpha;
  strict_alpha.alpha = 1e-12;  // significant change needed
  EXPECT_EQ(compare_results(base, next, strict_alpha).regressions, 0);

  // A small change is not significant.
  const ResultFile slightly = compare_file(200, [](int64_t i) { return i < 148; });
  const CompareResult small = compare_results(base, slightly, {});
  EXPECT_EQ(small.regressions, 0);
  EXPECT_THAT(small.markdown, HasSubstr("| unchanged |"));
}

TEST(Results, CompareRefusesAChangedConfiguration) {
  ResultFile base = compare_file(200, [](int64_t i) { return i < 150; });
  base.cells[0].config_json = R"({"options": {"steps": 40, "step_size": 0.01}, "eot_samples": 1, "repeats": 1, "seed": 3})";
  ResultFile next = base;
  CompareOptions o;
  EXPECT_EQ(compare_results(base, next, o).config_changes, 0);
  EXPECT_TRUE(compare_results(base, next, o).passed(o));
  // Fewer PGD steps, the same numbers: not a like-for-like comparison.
  next.cells[0].config_json = R"({"options": {"steps": 20, "step_size": 0.01}, "eot_samples": 1, "repeats": 1, "seed": 3})";
  auto r = compare_results(base, next, o);
  EXPECT_EQ(r.config_changes, 1);
  EXPECT_EQ(r.regressions, 0);
  EXPECT_FALSE(r.passed(o));
  EXPECT_THAT(r.markdown, HasSubstr("| configuration changed |"));
  EXPECT_THAT(r.markdown, HasSubstr("options.steps: 40 -> 20"));
  EXPECT_THAT(r.markdown, HasSubstr("1 with a changed configuration"));
  o.allow_config_change = true;
  r = compare_results(base, next, o);
  EXPECT_TRUE(r.passed(o));
  EXPECT_THAT(r.markdown, HasSubstr("| unchanged |"));
  EXPECT_THAT(r.markdown, HasSubstr("--allow-config-change"));
  // Another model file, a stochastic model and another seed are each named.
  next = base;
  next.models[0].file_sha256 = std::string(64, 'f');
  next.models[0].stochastic = true;
  next.cells[0].config_json = R"({"options": {"steps": 40, "step_size": 0.01}, "eot_samples": 1, "repeats": 1, "seed": 4})";
  const auto d = config_differences(base, base.cells[0], next, next.cells[0]);
  EXPECT_THAT(d, testing::Contains(HasSubstr("model file: sha256")));
  EXPECT_THAT(d, testing::Contains(HasSubstr("model: deterministic -> stochastic")));
  EXPECT_THAT(d, testing::Contains(HasSubstr("seed: 3 -> 4")));
  // Other examples are compared with the unpaired test, not refused.
  ResultFile shifted = compare_file(200, [](int64_t i) { return i < 150; }, 1000);
  shifted.cells[0].config_json = base.cells[0].config_json;
  EXPECT_TRUE(config_differences(base, base.cells[0], shifted, shifted.cells[0]).empty());
  // A file written before the matrix keys eot and source were renamed compares equal.
  ResultFile old_names = base, new_names = base;
  old_names.cells[0].config_json = R"({"attack": {"eot": 4, "source": "det"}, "eot_samples": 4})";
  new_names.cells[0].config_json = R"({"attack": {"eot_samples": 4, "source_model": "det"}, "eot_samples": 4})";
  EXPECT_TRUE(config_differences(old_names, old_names.cells[0], new_names, new_names.cells[0]).empty());
  new_names.cells[0].config_json = R"({"attack": {"eot_samples": 8, "source_model": "det"}, "eot_samples": 4})";
  EXPECT_THAT(config_differences(old_names, old_names.cells[0], new_names, new_names.cells[0]),
              testing::Contains(HasSubstr("attack.eot_samples: 4 -> 8")));
}

TEST(Results, CompareIdenticalFilesPasses) {
  const ResultFile f = report_fixture();
  const CompareResult r = compare_results(f, f, {});
  EXPECT_EQ(r.matched, static_cast<int64_t>(f.cells.size()));
  EXPECT_EQ(r.regressions, 0);
  EXPECT_EQ(r.improvements, 0);
  EXPECT_THAT(r.markdown, HasSubstr("Every cell is in both files."));
  EXPECT_THAT(r.markdown, testing::Not(HasSubstr("regression |")));
}

TEST(Results, CompareUsesMajorityOverRepeatsWhenPaired) {
  // Every example right in all 3 repeats, then in 2 of 3: accuracy drops by a
  // third, but no example changes its majority verdict.
  ResultFile base = report_fixture(), next = report_fixture();
  CellResult& b = base.cells[7];
  CellResult& n = next.cells[7];
  ASSERT_EQ(b.repeats, 3);
  b.adversarial_correct.assign(b.adversarial_correct.size(), 1);
  n.adversarial_correct.assign(n.adversarial_correct.size(), 1);
  std::fill(n.adversarial_correct.begin(), n.adversarial_correct.begin() + n.size(), 0);  // repeat 0 all wrong
  const CompareResult r = compare_results(base, next, {});
  EXPECT_EQ(r.regressions, 0);
  EXPECT_THAT(r.markdown, HasSubstr("McNemar (lost 0, gained 0)"));
}

TEST(Results, CompareFailsWhenBaseCellsAreMissingUnlessAllowed) {
  ResultFile base = compare_file(50, [](int64_t i) { return i < 30; });
  const CellResult cell = base.cells[0];
  for (int k = 0; k < 12; ++k) {
    CellResult extra = cell;
    extra.id = fmt::format("det.lost-{:02d}", k);
    base.cells.push_back(extra);
  }
  ResultFile next = compare_file(50, [](int64_t i) { return i < 30; });
  CellResult added = cell;
  added.id = "det.added";
  next.cells.push_back(added);
  CompareOptions o;
  CompareResult r = compare_results(base, next, o);
  EXPECT_EQ(r.matched, 1);
  EXPECT_EQ(r.regressions, 0);
  ASSERT_EQ(r.missing.size(), 12u);
  EXPECT_EQ(r.missing.front(), "det.lost-00");
  EXPECT_EQ(r.only_new, std::vector<std::string>{"det.added"});
  EXPECT_FALSE(r.passed(o));
  // The first 10 by name, then a count.
  EXPECT_THAT(r.markdown, HasSubstr("`det.lost-09` and 2 more (missing from the new file: the comparison fails"));
  EXPECT_EQ(r.markdown.find("det.lost-10"), std::string::npos);
  EXPECT_THAT(r.markdown, HasSubstr("only in the new file: `det.added`"));
  EXPECT_EQ(list_cells(r.missing),
            "`det.lost-00`, `det.lost-01`, `det.lost-02`, `det.lost-03`, `det.lost-04`, "
            "`det.lost-05`, `det.lost-06`, `det.lost-07`, `det.lost-08`, `det.lost-09` and 2 more");
  EXPECT_EQ(list_cells({}), "none");

  o.allow_missing = true;
  r = compare_results(base, next, o);
  EXPECT_TRUE(r.passed(o));
  EXPECT_THAT(r.markdown, HasSubstr("(allowed: --allow-missing)"));

  // Cells only in the new file never fail.
  const CompareResult reverse = compare_results(next, base, {});
  EXPECT_TRUE(reverse.missing.size() == 1 && reverse.missing[0] == "det.added");
  ResultFile superset = next;
  superset.cells.erase(superset.cells.begin() + 1);
  const CompareResult grown = compare_results(superset, base, {});
  EXPECT_TRUE(grown.missing.empty());
  EXPECT_EQ(grown.only_new.size(), 12u);
  EXPECT_TRUE(grown.passed({}));
}

TEST(Results, CompareUsesTheUnpairedTestWhenIndicesDiffer) {
  const ResultFile base = compare_file(200, [](int64_t i) { return i < 150; });
  ResultFile next = compare_file(
      200, [](int64_t i) { return i < 120; }, 1000);
  ResultFile extra = compare_file(10, [](int64_t) { return true; });
  extra.cells[0].id = "det.extra";
  next.cells.push_back(extra.cells[0]);
  const CompareResult r = compare_results(base, next, {});
  EXPECT_EQ(r.matched, 1);
  EXPECT_EQ(r.regressions, 1);
  // 0.75 vs 0.60 on 200 examples each: z = 3.2026, two-sided p = 0.00136.
  EXPECT_THAT(r.markdown, HasSubstr("two-proportion z-test"));
  EXPECT_THAT(r.markdown, HasSubstr("| 0.001 "));
  EXPECT_EQ(r.unmatched, std::vector<std::string>{"det.extra"});
  EXPECT_THAT(r.markdown, HasSubstr("only in the new file: `det.extra`"));
  // Not significant at this size.
  const ResultFile few = compare_file(
      20, [](int64_t i) { return i < 14; }, 1000);
  const ResultFile few_base = compare_file(20, [](int64_t i) { return i < 15; });
  EXPECT_EQ(compare_results(few_base, few, {}).regressions, 0);
}

// ---- report ----

TEST(Results, ReportMatchesTheGoldenFile) {
  TempDir dir;
  ReportOptions options;
  options.curves_dir = dir.file("curves");
  options.curves_link_prefix = "curves/";
  const ResultFile f = report_fixture();
  const std::string report = render_report(f, options);

  const std::string golden = std::string(IMBENCH_SOURCE_DIR) + "/tests/golden/report.md";
  if (const char* update = std::getenv("IMBENCH_UPDATE_GOLDEN"); update && std::string(update) == "1") {
    write_bytes(golden, report);
    GTEST_SKIP() << "rewrote " << golden;
  }
  EXPECT_EQ(report, read_bytes(golden)) << "the report differs from " << golden
                                        << "; run with IMBENCH_UPDATE_GOLDEN=1 to rewrite it after checking";

  // One chart per norm with every model; unbounded eps only: no L2 chart.
  EXPECT_EQ(folder_entries(dir.file("curves")), std::vector<std::string>{"linf.svg"});
  const std::string svg = read_bytes(dir.file("curves/linf.svg"));
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_THAT(svg, HasSubstr("</svg>"));
  EXPECT_THAT(report, HasSubstr("](curves/linf.svg)"));

  // The report depends only on the file: the same after a write and read,
  // and without curves it only lacks the curves section.
  write_results(dir.file("r.h5"), f);
  EXPECT_EQ(render_report(read_results(dir.file("r.h5")), options), report);
  const std::string plain = render_report(f, {});
  EXPECT_THAT(plain, testing::Not(HasSubstr("Robustness curves")));
}

// The lines of the report's Markdown tables, but the models' legend (the
// one table that may be wide).
std::vector<std::string> table_lines_but_the_legend(const std::string& report) {
  std::vector<std::string> lines;
  bool legend = false;
  std::size_t start = 0;
  while (start < report.size()) {
    std::size_t end = report.find('\n', start);
    if (end == std::string::npos) end = report.size();
    const std::string line = report.substr(start, end - start);
    start = end + 1;
    if (line.rfind("## ", 0) == 0) legend = line == "## Models";
    if (!legend && line.rfind("|", 0) == 0) lines.push_back(line);
  }
  return lines;
}

std::size_t code_points(const std::string& s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

TEST(Results, ReportTablesStayNarrowWithLongModelDescriptions) {
  const std::string long_description =
      "SFNN (MLE) 784-512-512-10 (Bernoulli units; predicts with 32x32 branching samples), trained for a long time";
  ResultFile wide = report_fixture();  // split: one accuracy table per threat model
  for (auto& m : wide.models) m.description = m.name + ": " + long_description;
  // Few columns and no paper numbers: one accuracy table for every threat model.
  ResultFile narrow = wide;
  narrow.cells.erase(
      std::remove_if(narrow.cells.begin(), narrow.cells.end(), [](const CellResult& c) { return c.eps != 0.1; }),
      narrow.cells.end());
  for (auto& m : narrow.models) m.paper_json = "{}";
  for (const ResultFile* f : {&wide, &narrow}) {
    const std::string report = render_report(*f, {});
    const auto tables = table_lines_but_the_legend(report);
    ASSERT_GT(tables.size(), 10u);
    for (const auto& line : tables) {
      EXPECT_LE(code_points(line), 170u) << line;
      EXPECT_THAT(line, testing::Not(HasSubstr(long_description)));
    }
    // The descriptions are in the legend, after the summary and before the accuracy tables.
    const auto legend = report.find("## Models");
    ASSERT_NE(legend, std::string::npos);
    EXPECT_LT(report.find("## Summary"), legend);
    EXPECT_LT(legend, report.find("## Robust accuracy"));
    for (const auto& m : f->models) EXPECT_THAT(report, HasSubstr(" | " + m.description));
  }
  EXPECT_THAT(render_report(narrow, {}), HasSubstr("| `sfnn` | 90.00 ± 0.00% [59.6, 98.2] |"));
}

TEST(Results, ReportDrawsEveryModelOnOneChartPerNormAndTargeting) {
  ResultFile f = report_fixture();
  // A targeted L2 threat at a finite eps on both models.
  for (const std::string model : {"det", "sfnn"}) {
    CellResult c = make_cell(model, "pgd-l2", "l2", 1.0, "1", 0, model == "det" ? 1 : 3, 10, model == "det" ? 1 : 8,
                             [](int64_t k, int64_t i) { return i < 3 + k; });
    c.targeted = true;
    c.target_rule = "random";
    c.id += ".targeted";
    c.group = model + ".l2-1.targeted";
    f.cells.push_back(c);
  }
  TempDir dir;
  ReportOptions options;
  options.curves_dir = dir.file("curves");
  options.curves_link_prefix = "curves/";
  const std::string report = render_report(f, options);
  EXPECT_EQ(folder_entries(dir.file("curves")), (std::vector<std::string>{"l2-targeted.svg", "linf.svg"}));
  EXPECT_THAT(report, HasSubstr("](curves/linf.svg)"));
  EXPECT_THAT(report, HasSubstr("](curves/l2-targeted.svg)"));
  for (const std::string name : {"linf.svg", "l2-targeted.svg"}) {
    const std::string svg = read_bytes(dir.file("curves/" + name));
    // Every model is a series, named in the legend.
    EXPECT_THAT(svg, HasSubstr(">det</text>")) << name;
    EXPECT_THAT(svg, HasSubstr(">sfnn</text>")) << name;
    // eps 0 is the clean accuracy (90%): x at the axis (64), y = 324 - 288 x 0.9.
    EXPECT_THAT(svg, HasSubstr("<circle cx=\"64.0\" cy=\"64.8\"")) << name;
    // One band, the stochastic model's (its colour, translucent); none for det.
    std::size_t polygons = 0;
    for (auto at = svg.find("<polygon"); at != std::string::npos; at = svg.find("<polygon", at + 1)) ++polygons;
    EXPECT_EQ(polygons, 1u) << name;
    EXPECT_THAT(svg, HasSubstr("fill=\"#ff7f0e\" fill-opacity=\"0.2\"")) << name;
    // sfnn's pgd at Linf 0.3 is flagged: a hollow point in its colour, on that chart only.
    EXPECT_EQ(svg.find("fill=\"white\" stroke=\"#ff7f0e\"") != std::string::npos, name == "linf.svg") << name;
    // The title is short and says what is drawn.
    EXPECT_THAT(svg, HasSubstr("mnist test, " + std::string(name == "linf.svg" ? "Linf" : "L2 targeted") +
                               ": worst-case robust accuracy</text>"));
  }
}

TEST(Results, ReportOpensWithASummaryAndListsOnlyWhatFired) {
  const std::string report = render_report(report_fixture(), {});
  // The summary comes first: per model, the worst case per threat model and the checks that fired.
  const auto summary = report.find("## Summary");
  ASSERT_NE(summary, std::string::npos);
  EXPECT_LT(summary, report.find("## Configuration"));
  EXPECT_THAT(report, HasSubstr("| `sfnn` | 90.00% | 26.67 ± 5.77%  | 26.67 ± 5.77% ⚠ | —            | ⚠ 6 iterative-vs-single-step |"));
  // Wide: one accuracy table per threat model.
  EXPECT_THAT(report, HasSubstr("### Linf 0.3"));
  EXPECT_THAT(report, HasSubstr("### The paper's numbers"));
  // Diagnostics: the fired check in full, the passing ones counted, no row per passing check.
  EXPECT_THAT(report, HasSubstr("- `sfnn.pgd.linf-0.3`: check 6 iterative-vs-single-step"));
  EXPECT_THAT(report, HasSubstr("| 11    | validity   | 2 cells   |"));
  // A passing check's measurement is only in the folded table.
  EXPECT_GT(report.find("identical predictions in 5 passes"), report.find("<details><summary>What every check measured"));
}

TEST(Results, ReportSaysWhenAllChecksPassed) {
  ResultFile f = report_fixture();
  f.cells[8].flags[0].failed = false;
  const std::string report = render_report(f, {});
  EXPECT_THAT(report, HasSubstr("None: every check passed."));
  EXPECT_THAT(report, HasSubstr("(0 of 6 checks flagged)"));
  EXPECT_THAT(report, testing::Not(HasSubstr("⚠")));
  for (auto& c : f.cells) c.flags.clear();
  for (auto& m : f.models) m.flags.clear();
  EXPECT_THAT(render_report(f, {}), HasSubstr("No checks were recorded"));
  // An empty file renders without failing.
  TempDir dir;
  ReportOptions options;
  options.curves_dir = dir.file("curves");
  const std::string empty = render_report(ResultFile{}, options);
  EXPECT_THAT(empty, HasSubstr("# imbench report: unnamed matrix"));
  EXPECT_THAT(empty, HasSubstr("No finite eps in this file"));
  f.models[0].paper_json = "{not json";
  EXPECT_THAT(error_of<Error>([&] { render_report(f, {}); }), HasSubstr("model 'det': paper_json"));
}
