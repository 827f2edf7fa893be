// Attack throughput: images/s and input-gradient evaluations/s per attack
// on the MNIST MLPs, beside one bare forward+backward pass (input gradient
// only, parameters frozen) of the same model and batch, so the overhead
// ratio of an attack step can be read off.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <torch/cuda.h>
#include <torch/script.h>

#include <cstdlib>

#include "attacks/attack.h"
#include "attacks/gradient.h"
#include "models/device.h"
#include "models/family.h"
#include "models/torchscript.h"
#include "models/train.h"

namespace {

using namespace imbench;

// IMBENCH_BENCH_DEVICE=cuda (or cuda:N) runs every benchmark on that device
// (default cpu). On a GPU each iteration ends with a device synchronisation,
// so the times are those of the finished work.
torch::Device bench_device() {
  static const torch::Device d = models::parse_device(std::getenv("IMBENCH_BENCH_DEVICE") ? std::getenv("IMBENCH_BENCH_DEVICE") : "cpu");
  return d;
}
void finish_iteration() {
  if (bench_device().is_cuda()) torch::cuda::synchronize();
}
torch::Tensor images(int64_t batch) { return torch::rand({batch, 1, 28, 28}).to(bench_device()); }
torch::Tensor labels(int64_t batch) { return torch::randint(10, {batch}, torch::kLong).to(bench_device()); }

std::unique_ptr<models::TrainableModel> mnist_model(const std::string& family) {
  torch::manual_seed(0);
  models::ModelSpec s;
  s.family = family;
  models::apply_preset("paper", s);
  auto m = models::create_model(s);
  m->set_training(false);
  m->to(bench_device());
  for (auto& p : m->parameters()) p.requires_grad_(false);
  return m;
}

// The floor an attack step is compared with: logits of S samples, CE, and the
// input gradient, as bare as LibTorch allows.
void BM_BareForwardBackward(benchmark::State& state) {
  const std::string family = state.range(0) == 0 ? "det" : "sfnn";
  auto m = mnist_model(family);
  const int64_t batch = state.range(1), samples = state.range(2);
  auto x = images(batch);
  auto y = labels(batch);
  for (auto _ : state) {
    auto xv = x.detach().requires_grad_(true);
    auto z = m->sample_logits(xv, samples).reshape({-1, 10});
    auto loss = torch::nn::functional::cross_entropy(z, y.repeat({samples}));
    benchmark::DoNotOptimize(torch::autograd::grad({loss}, {xv})[0]);
    finish_iteration();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["grad_evals_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch * samples), benchmark::Counter::kIsRate);
  state.SetLabel(fmt::format("{} batch {} samples {} ({})", family, batch, samples, bench_device().str()));
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
  auto x = images(batch);
  auto y = labels(batch);
  int64_t evals = 0;
  for (auto _ : state) {
    const auto r = attack->run(*m, x, y, t, run);
    evals += r.gradient_evaluations.sum().item<int64_t>();
    finish_iteration();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["grad_evals_per_s"] = benchmark::Counter(static_cast<double>(evals), benchmark::Counter::kIsRate);
  state.SetLabel(fmt::format("{} on {} batch {} eot {} ({})", name, family, batch, eot, bench_device().str()));
}

// A bring-your-own stochastic model as a user exports it: a TorchScript MLP
// 784-512-512-10 whose every call averages the logits of 8 internal draws of
// Gaussian noise on the first hidden layer (random weights; only the cost
// matters). With `own_sample_logits` the module also defines
// sample_logits(x, S) -> [S, N, C] (S x 8 draws, the first layer computed once).
std::unique_ptr<models::TorchScriptModel> averaging_script_model(bool own_sample_logits) {
  torch::manual_seed(0);
  torch::jit::Module m("NoisyMlp");
  m.register_parameter("w1", torch::randn({784, 512}) * 0.05, false);
  m.register_parameter("b1", torch::zeros({512}), false);
  m.register_parameter("w2", torch::randn({512, 512}) * 0.05, false);
  m.register_parameter("b2", torch::zeros({512}), false);
  m.register_parameter("w3", torch::randn({512, 10}) * 0.05, false);
  m.register_parameter("b3", torch::zeros({10}), false);
  m.register_attribute("imbench_input_shape", c10::ListType::ofInts(), c10::IValue(std::vector<int64_t>{1, 28, 28}));
  m.register_attribute("imbench_num_classes", c10::IntType::get(), int64_t{10});
  m.register_attribute("imbench_stochastic", c10::BoolType::get(), true);
  m.register_attribute("imbench_internal_samples", c10::IntType::get(), int64_t{8});
  m.define(R"(
def draws(self, x, s: int):
    h = torch.relu(torch.matmul(x.flatten(1), self.w1) + self.b1)
    h = h.unsqueeze(0).unsqueeze(0).repeat(s, 8, 1, 1)
    h = torch.relu(torch.matmul(h + 0.5 * torch.randn_like(h), self.w2) + self.b2)
    return (torch.matmul(h, self.w3) + self.b3).mean(1)
def forward(self, x):
    return self.draws(x, 1)[0]
)");
  if (own_sample_logits)
    m.define(R"(
def sample_logits(self, x, s: int):
    return self.draws(x, s)
)");
  auto model = std::make_unique<models::TorchScriptModel>(std::move(m), "noisy-mlp-8.pt");
  for (auto& p : model->parameters()) p.requires_grad_(false);
  model->to(bench_device());
  return model;
}

// One EOT-16 input gradient on the averaging TorchScript model, three ways.
// Args: way (0: GradientOracle::loss_and_grad with 16 samples, the samples
// folded into the batch; 1: a loop of 16 separate single-sample gradients,
// sample_logits(x, 1) + CE + grad each, as a Python loop would do; 2: the
// oracle on the module that defines its own sample_logits; 3, 4: the oracle
// on imbench's SFNN and VIB paper models, no internal draws), batch, and
// EotOptions::max_rows (0: the default).
// Run with OMP_NUM_THREADS=1 / --threads 1 for the recorded numbers.
void BM_EotGradient(benchmark::State& state) {
  const int64_t way = state.range(0), batch = state.range(1), samples = 16;
  std::unique_ptr<models::Model> m;
  if (way <= 2)
    m = averaging_script_model(way == 2);
  else
    m = mnist_model(way == 3 ? "sfnn" : "vib");
  auto x = images(batch);
  auto y = labels(batch);
  attacks::EotOptions o;
  o.samples = samples;
  if (state.range(2) > 0) o.max_rows = state.range(2);
  attacks::GradientOracle oracle(*m, o);
  const auto ce = attacks::make_loss(attacks::LossKind::kCrossEntropy);
  for (auto _ : state) {
    if (way == 1) {
      torch::Tensor g;
      for (int64_t s = 0; s < samples; ++s) {
        auto xv = x.detach().requires_grad_(true);
        auto loss = torch::nn::functional::cross_entropy(
            m->sample_logits(xv, 1)[0], y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
        auto gs = torch::autograd::grad({loss}, {xv})[0];
        g = s == 0 ? gs : g + gs;
      }
      benchmark::DoNotOptimize(g);
    } else {
      benchmark::DoNotOptimize(oracle.loss_and_grad(x, y, {}, ce).grad);
    }
    finish_iteration();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["grad_evals_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch * samples), benchmark::Counter::kIsRate);
  const char* ways[] = {"eot-16 oracle, folded", "16 separate calls", "eot-16 oracle, own sample_logits",
                        "eot-16 oracle on sfnn paper", "eot-16 oracle on vib paper"};
  state.SetLabel(fmt::format("{} batch {}, max_rows {} ({})", ways[way], batch, o.max_rows, bench_device().str()));
}

// Batches that fill a GPU, registered only when IMBENCH_BENCH_DEVICE names a
// CUDA device (on 2 CPU cores each would take minutes).
bool on_gpu() {
  const char* d = std::getenv("IMBENCH_BENCH_DEVICE");
  return d && std::string(d).rfind("cuda", 0) == 0;
}
void gpu_bare(benchmark::internal::Benchmark* b) {
  if (on_gpu()) b->Args({0, 10000, 1})->Args({0, 60000, 1})->Args({1, 1000, 16})->Args({1, 10000, 16});
}
void gpu_attacks(benchmark::internal::Benchmark* b) {
  if (on_gpu())
    b->Args({4, 0, 10000, 1})->Args({0, 0, 10000, 1})->Args({4, 0, 60000, 1})->Args({0, 0, 60000, 1})
        ->Args({4, 1, 1000, 16})->Args({0, 1, 1000, 16})->Args({4, 1, 10000, 16})->Args({0, 1, 10000, 16});
}
void gpu_eot(benchmark::internal::Benchmark* b) {
  if (on_gpu()) b->Args({3, 10000, 0})->Args({4, 10000, 0});
}

}  // namespace

BENCHMARK(BM_BareForwardBackward)->Apply(gpu_bare)->Args({0, 100, 1})->Args({0, 1000, 1})->Args({1, 100, 1})->Args({1, 100, 16})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Attack)
    ->Args({4, 0, 100, 1})->Args({4, 0, 1000, 1})
    ->Args({0, 0, 100, 1})->Args({0, 0, 1000, 1})
    ->Args({1, 0, 1000, 1})->Args({2, 0, 1000, 1})->Args({3, 0, 1000, 1})
    ->Args({4, 1, 100, 1})->Args({4, 1, 100, 16})->Args({0, 1, 100, 16})->Apply(gpu_attacks)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EotGradient)
    ->Args({0, 100, 0})->Args({1, 100, 0})->Args({2, 100, 0})->Args({0, 1000, 0})->Args({1, 1000, 0})
    ->Args({2, 1000, 0})->Args({3, 1000, 0})->Args({3, 1000, 1 << 16})->Args({4, 1000, 0})->Args({4, 1000, 1 << 16})->Apply(gpu_eot)
    ->Unit(benchmark::kMillisecond);
