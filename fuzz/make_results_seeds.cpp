// Writes the seed corpus of fuzz_results with imbench's own writer
// (reports::write_results): small valid results files, schema version 2.
//
//     make_results_seeds OUTDIR
//
// seed-det.h5: one deterministic model, a cascade fgsm -> pgd at one eps,
// 4 examples; seed-sfnn-adv.h5: a stochastic model (R = 2), a flag, paper
// numbers and saved adversarial examples.
#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "reports/results.h"
#include "reports/results_io.h"

using namespace imbench::reports;

namespace {

CellResult cell(const std::string& model, const std::string& attack, int64_t position, int64_t repeats, int64_t n) {
  CellResult c;
  c.id = fmt::format("{}.{}.linf-0.1", model, attack);
  c.model = model;
  c.attack = c.attack_kind = attack;
  c.norm = "linf";
  c.eps = 0.1;
  c.eps_text = "0.1";
  c.target_rule = "none";
  c.group = model + ".linf-0.1.untargeted";
  c.cascade_position = position;
  c.threat_model = "Linf eps=0.1 untargeted, inputs in [0, 1]";
  c.hash = "hash-" + c.id;
  c.config_json = nlohmann::json{{"attack", attack}, {"options", {{"steps", 10}}}, {"repeats", repeats}}.dump();
  c.repeats = repeats;
  c.eot_samples = repeats > 1 ? 4 : 1;
  for (int64_t i = 0; i < n; ++i) {
    c.index.push_back(i);
    c.label.push_back(i % 10);
    c.attacked.push_back(true);
    c.linf.push_back(0.1f);
    c.l2.push_back(0.5f);
    c.l0.push_back(7.f);
    c.final_loss.push_back(0.25f);
    c.gradient_evaluations.push_back(10);
  }
  for (int64_t k = 0; k < repeats; ++k)
    for (int64_t i = 0; i < n; ++i) {
      const bool right = (i + k + position) % 2 == 0;
      c.clean_correct.push_back(true);
      c.adversarial_correct.push_back(right);
      c.clean_prediction.push_back(i % 10);
      c.adversarial_prediction.push_back(right ? i % 10 : (i + 1) % 10);
    }
  c.summarise();
  c.summary["seconds"] = 0.5;
  return c;
}

ResultFile file(bool stochastic) {
  ResultFile f;
  f.root = {{"imbench_version", "0.1.0"},
            {"git_revision", "fuzzseed0000"},
            {"torch_version", "1.13.0"},
            {"device", "cpu"},
            {"device_name", "fuzz seed"},
            {"threads", "1"},
            {"date", "2026-01-01T00:00:00Z"},
            {"seed", "0"},
            {"matrix_name", "fuzz"},
            {"matrix_hash", "0f"},
            {"config_json", "{}"},
            {"shard", "all"},
            {"dataset", "synthetic test"},
            {"examples", "4"}};
  ModelInfo m;
  m.name = stochastic ? "sfnn" : "det";
  m.description = stochastic ? "SFNN 4-3-10 (sigmoid)" : "MLP 4-3-10";
  m.provenance = m.name + ".ckpt";
  m.file_sha256 = std::string(64, 'a');
  m.stochastic = stochastic;
  m.prediction_rule = stochastic ? "mean softmax over 32 samples" : "argmax of logits";
  m.clean_accuracy = 1.0;
  if (stochastic) {
    m.flags = {{1, "randomness", false, "predictions differ between passes"}};
    m.paper_json = R"({"clean_accuracy": 98.0})";
  }
  f.models.push_back(m);
  const int64_t r = stochastic ? 2 : 1;
  f.cells.push_back(cell(m.name, "fgsm", 0, r, 4));
  f.cells.push_back(cell(m.name, "pgd", 1, r, 4));
  if (stochastic) {
    auto& c = f.cells.back();
    c.adversarial_shape = {1, 2, 2};
    c.adversarial_index = {0, 1, 2, 3};
    for (int i = 0; i < 16; ++i) c.adversarial.push_back(0.0625f * static_cast<float>(i));
    c.flags = {{6, "iterative-vs-single-step", true, "PGD worse than FGSM on 1 of 4 examples"}};
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_results_seeds OUTDIR\n");
    return 2;
  }
  try {
    write_results(std::string(argv[1]) + "/seed-det.h5", file(false));
    write_results(std::string(argv[1]) + "/seed-sfnn-adv.h5", file(true));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
