// Throughput of the model families: forward and forward+backward+step
// images/s at several batch sizes. Run `imbench_bench --help` for filters;
// ctest runs it briefly as a smoke test.
#include <benchmark/benchmark.h>

#include <thread>

#include "data/synthetic.h"
#include "models/family.h"
#include "models/optimizer.h"
#include "models/train.h"

namespace {

using imbench::models::ModelSpec;

ModelSpec mnist_det() {
  ModelSpec s;
  s.family = "det";
  return s;
}

void BM_DetForward(benchmark::State& state) {
  torch::manual_seed(0);
  auto model = imbench::models::create_model(mnist_det());
  model->set_training(false);
  const int64_t batch = state.range(0);
  auto x = torch::rand({batch, 1, 28, 28});
  torch::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(model->logits(x));
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["threads"] = torch::get_num_threads();
}

// Forward + backward of the training loss (no optimiser step).
void BM_DetForwardBackward(benchmark::State& state) {
  torch::manual_seed(0);
  auto model = imbench::models::create_model(mnist_det());
  model->set_training(true);
  const int64_t batch = state.range(0);
  auto x = torch::rand({batch, 1, 28, 28});
  auto y = torch::randint(10, {batch}, torch::kLong);
  auto params = model->parameters();
  for (auto _ : state) {
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    model->loss(x, y).backward();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["threads"] = torch::get_num_threads();
}

// One optimisation step as the training loop does it (gather the batch,
// loss, backward, Adam step): the number behind "training images/s".
void BM_DetTrainStep(benchmark::State& state) {
  torch::manual_seed(0);
  auto model = imbench::models::create_model(mnist_det());
  model->set_training(true);
  const int64_t batch = state.range(0);
  imbench::data::SyntheticOptions o;
  o.size = 6000;
  const auto ds = imbench::data::make_synthetic(o);
  imbench::models::Optimizer adam(model->parameters(), imbench::models::OptimizerKind::kAdam, 1e-3);
  for (auto _ : state) {
    auto idx = torch::randint(ds.size(), {batch}, torch::kLong);
    auto x = ds.images.index_select(0, idx);
    auto y = ds.labels.index_select(0, idx);
    adam.zero_grad();
    auto loss = model->loss(x, y);
    loss.backward();
    adam.step();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["threads"] = torch::get_num_threads();
}

}  // namespace

BENCHMARK(BM_DetForward)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DetForwardBackward)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DetTrainStep)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

// LibTorch here defaults to one thread; benchmark with all cores, like the CLI.
int main(int argc, char** argv) {
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
