// Attack throughput: images/s and input-gradient evaluations/s per attack
// on the MNIST MLPs, beside one bare forward+backward pass (input gradient
// only, parameters frozen) of the same model and batch, so the overhead
// ratio of an attack step can be read off.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "attacks/attack.h"
#include "models/family.h"
#include "models/train.h"

namespace {

using namespace imbench;

std::unique_ptr<models::TrainableModel> mnist_model(const std::string& family) {
  torch::manual_seed(0);
  models::ModelSpec s;
  s.family = family;
  models::apply_preset("paper", s);
  auto m = models::create_model(s);
  m->set_training(false);
  for (auto& p : m->parameters()) p.requires_grad_(false);
  return m;
}

// The floor an attack step is compared with: logits of S samples, CE, and the
// input gradient, as bare as LibTorch allows.
void BM_BareForwardBackward(benchmark::State& state) {
  const std::string family = state.range(0) == 0 ? "det" : "sfnn";
  auto m = mnist_model(family);
  const int64_t batch = state.range(1), samples = state.range(2);
  auto x = torch::rand({batch, 1, 28, 28});
  auto y = torch::randint(10, {batch}, torch::kLong);
  for (auto _ : state) {
    auto xv = x.detach().requires_grad_(true);
    auto z = m->sample_logits(xv, samples).reshape({-1, 10});
    auto loss = torch::nn::functional::cross_entropy(z, y.repeat({samples}));
    benchmark::DoNotOptimize(torch::autograd::grad({loss}, {xv})[0]);
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["grad_evals_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch * samples), benchmark::Counter::kIsRate);
  state.SetLabel(fmt::format("{} batch {} samples {}", family, batch, samples));
}

// Args: attack (0 pgd-40 linf, 1 fgsm, 2 apgd-ce 100, 3 cw 100x1, 4 pgd-1 step), family (0 det, 1 sfnn),
// batch, EOT samples.
void BM_Attack(benchmark::State& state) {
  const std::string family = state.range(1) == 0 ? "det" : "sfnn";
  auto m = mnist_model(family);
  const int64_t batch = state.range(2), eot = state.range(3);
  std::unique_ptr<attacks::Attack> attack;
  attacks::ThreatModel t;
  t.eps = 0.3;
  std::string name;
  switch (state.range(0)) {
    case 0: attack = attacks::create_attack("pgd"), name = "pgd-40 linf"; break;
    case 1: attack = attacks::create_attack("fgsm"), name = "fgsm"; break;
    case 2: attack = attacks::create_attack("apgd-ce"), name = "apgd-ce 100 linf"; break;
    case 3:
      attack = attacks::create_attack("cw", {{"steps", 100}, {"binary_search_steps", 1}}), name = "cw-l2 100x1";
      t.norm = attacks::Norm::kL2;
      t.eps = std::numeric_limits<double>::infinity();
      break;
    default: attack = attacks::create_attack("pgd", {{"steps", 1}}), name = "pgd 1 step"; break;
  }
  attacks::RunOptions run;
  run.eot.samples = eot;
  auto x = torch::rand({batch, 1, 28, 28});
  auto y = torch::randint(10, {batch}, torch::kLong);
  int64_t evals = 0;
  for (auto _ : state) {
    const auto r = attack->run(*m, x, y, t, run);
    evals += r.gradient_evaluations.sum().item<int64_t>();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["grad_evals_per_s"] = benchmark::Counter(static_cast<double>(evals), benchmark::Counter::kIsRate);
  state.SetLabel(fmt::format("{} on {} batch {} eot {}", name, family, batch, eot));
}

}  // namespace

BENCHMARK(BM_BareForwardBackward)->Args({0, 100, 1})->Args({0, 1000, 1})->Args({1, 100, 1})->Args({1, 100, 16})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Attack)
    ->Args({4, 0, 100, 1})->Args({4, 0, 1000, 1})
    ->Args({0, 0, 100, 1})->Args({0, 0, 1000, 1})
    ->Args({1, 0, 1000, 1})->Args({2, 0, 1000, 1})->Args({3, 0, 1000, 1})
    ->Args({4, 1, 100, 1})->Args({4, 1, 100, 16})->Args({0, 1, 100, 16})
    ->Unit(benchmark::kMillisecond);
