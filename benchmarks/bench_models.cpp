// Throughput of the model families: forward and forward+backward+step
// images/s at several batch sizes. Run `imbench_bench --help` for filters;
// ctest runs it briefly as a smoke test.
#include <benchmark/benchmark.h>

#include <fmt/format.h>

#include <cstdlib>
#include <thread>

#include <torch/cuda.h>

#include "data/synthetic.h"
#include "models/device.h"
#include "models/family.h"
#include "models/optimizer.h"
#include "models/stochastic.h"
#include "models/train.h"

namespace {

using imbench::models::ModelSpec;

// IMBENCH_BENCH_DEVICE=cuda (or cuda:N) runs BM_TrainStep there (default cpu);
// each iteration then ends with a device synchronisation.
torch::Device bench_device() {
  const char* d = std::getenv("IMBENCH_BENCH_DEVICE");
  static const torch::Device device = imbench::models::parse_device(d ? d : "cpu");
  return device;
}

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
// loss, backward, optimiser step): the number behind "training images/s".
// Args: family index, preset index, batch size (0 = the preset's), and for
// the SFNN/IMB families the training graph (0: fused branching layers, the
// default; 1: the plain per-sample reference graph).
const char* const kFamilies[] = {"det", "sfnn", "imb-joint", "imb-greedy", "vib"};
const char* const kPresets[] = {"quick", "paper"};

void BM_TrainStep(benchmark::State& state) {
  torch::manual_seed(0);
  ModelSpec spec = mnist_det();
  spec.family = kFamilies[state.range(0)];
  const auto options = imbench::models::apply_preset(kPresets[state.range(1)], spec);
  auto model = imbench::models::create_model(spec);
  model->set_training(true);
  const auto device = bench_device();
  model->to(device);
  const bool reference = state.range(3) != 0;
  if (auto* sfnn = dynamic_cast<imbench::models::SfnnModel*>(model.get()))
    sfnn->set_training_kernel(reference ? imbench::models::SfnnModel::TrainingKernel::kReference
                                        : imbench::models::SfnnModel::TrainingKernel::kFused);
  const int64_t batch = state.range(2) > 0 ? state.range(2) : options.batch_size;  // 0: the preset's
  imbench::data::SyntheticOptions o;
  o.size = 6000;
  const auto ds = imbench::data::make_synthetic(o);
  const auto images = ds.images.to(device), labels = ds.labels.to(device);
  imbench::models::Optimizer opt(model->parameters(), options.optimizer, options.learning_rate, options.momentum);
  for (auto _ : state) {
    auto idx = torch::randint(ds.size(), {batch}, torch::TensorOptions(torch::kLong).device(device));
    auto x = images.index_select(0, idx);
    auto y = labels.index_select(0, idx);
    opt.zero_grad();
    auto loss = model->loss(x, y);
    loss.backward();
    if (options.grad_clip > 0) torch::nn::utils::clip_grad_norm_(opt.params(), options.grad_clip);
    opt.step();
    if (device.is_cuda()) torch::cuda::synchronize();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(fmt::format("{} {} batch {}{} ({})", spec.family, kPresets[state.range(1)], batch,
                             dynamic_cast<imbench::models::SfnnModel*>(model.get()) ? (reference ? " reference" : " fused")
                                                                                    : "",
                             device.str()));
  state.counters["threads"] = torch::get_num_threads();
}

// S samples of the logits per image in one call (what attacks with EOT use)
// against S separate single-sample calls.
void BM_SampleLogits(benchmark::State& state) {
  torch::manual_seed(0);
  ModelSpec spec = mnist_det();
  spec.family = kFamilies[state.range(0)];
  imbench::models::apply_preset("paper", spec);
  auto model = imbench::models::create_model(spec);
  model->set_training(false);
  const int64_t samples = state.range(1), batch = 100;
  const bool looped = state.range(2) != 0;
  auto x = torch::rand({batch, 1, 28, 28});
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    if (looped) {
      for (int64_t s = 0; s < samples; ++s) benchmark::DoNotOptimize(model->sample_logits(x, 1));
    } else {
      benchmark::DoNotOptimize(model->sample_logits(x, samples));
    }
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(fmt::format("{} {} samples {}", spec.family, samples, looped ? "as separate calls" : "in one call"));
}

// The prediction rule over all test-time samples (SFNN: 32x32 branching paths).
void BM_PredictProba(benchmark::State& state) {
  torch::manual_seed(0);
  ModelSpec spec = mnist_det();
  spec.family = kFamilies[state.range(0)];
  imbench::models::apply_preset("paper", spec);
  auto model = imbench::models::create_model(spec);
  model->set_training(false);
  auto x = torch::rand({100, 1, 28, 28});
  for (auto _ : state) benchmark::DoNotOptimize(model->predict_proba(x));
  state.SetItemsProcessed(state.iterations() * 100);
  state.SetLabel(fmt::format("{}, {} samples", spec.family, model->prediction_samples()));
}

}  // namespace

BENCHMARK(BM_DetForward)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DetForwardBackward)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
// DET at batch 100 and 1000; every family with its quick and paper settings.
BENCHMARK(BM_TrainStep)->Args({0, 0, 100, 0})->Args({0, 0, 1000, 0})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TrainStep)->ArgsProduct({{0, 4}, {0, 1}, {0}, {0}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TrainStep)->ArgsProduct({{1, 2, 3}, {0, 1}, {0}, {0, 1}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SampleLogits)->ArgsProduct({{1, 4}, {1, 16}, {0, 1}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PredictProba)->DenseRange(1, 4, 3)->Unit(benchmark::kMillisecond);

// LibTorch here defaults to one thread; benchmark with all cores, like the CLI.
int main(int argc, char** argv) {
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
