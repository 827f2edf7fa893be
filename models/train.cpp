#include "models/train.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/errors.h"
#include "models/device.h"
#include "models/evaluate.h"
#include "models/optimizer.h"

namespace imbench::models {

std::string to_string(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kAdam: return "adam";
    case OptimizerKind::kAdamax: return "adamax";
    case OptimizerKind::kSgd: return "sgd";
  }
  return "?";
}

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "adam") return OptimizerKind::kAdam;
  if (name == "adamax") return OptimizerKind::kAdamax;
  if (name == "sgd") return OptimizerKind::kSgd;
  throw_unknown_name("optimizer", name, {"adam", "adamax", "sgd"});
}

void TrainOptions::validate() const {
  auto bad = [](const std::string& m) { throw UsageError(m); };
  if (!(learning_rate > 0) || !std::isfinite(learning_rate)) bad(fmt::format("--lr must be a positive number, got {}", learning_rate));
  if (!(momentum >= 0 && momentum < 1)) bad(fmt::format("--momentum must be in [0, 1), got {}", momentum));
  if (batch_size < 1) bad(fmt::format("--batch-size must be >= 1, got {}", batch_size));
  if (epochs < 1) bad(fmt::format("--epochs must be >= 1, got {}", epochs));
  if (!(grad_clip >= 0) || !std::isfinite(grad_clip)) bad(fmt::format("--grad-clip must be >= 0 (0 = off), got {}", grad_clip));
  if (validation_size < 0) bad(fmt::format("--validation-size must be >= 0, got {}", validation_size));
  if (patience < 0) bad(fmt::format("--patience must be >= 0 (0 = off), got {}", patience));
  if (patience > 0 && validation_size == 0) bad("--patience needs a validation split: set --validation-size > 0 or --patience 0");
}

nlohmann::json TrainOptions::to_json() const {
  return {{"optimizer", to_string(optimizer)}, {"learning_rate", learning_rate}, {"momentum", momentum},
          {"batch_size", batch_size},          {"epochs", epochs},               {"grad_clip", grad_clip},
          {"validation_size", validation_size}, {"patience", patience},         {"shuffle", shuffle},
          {"seed", seed},                      {"device", device}};
}

TrainOptions TrainOptions::from_json(const nlohmann::json& j) {
  TrainOptions o;
  o.optimizer = parse_optimizer(j.at("optimizer").get<std::string>());
  o.learning_rate = j.at("learning_rate").get<double>();
  o.momentum = j.at("momentum").get<double>();
  o.batch_size = j.at("batch_size").get<int64_t>();
  o.epochs = j.at("epochs").get<int64_t>();
  o.grad_clip = j.at("grad_clip").get<double>();
  o.validation_size = j.at("validation_size").get<int64_t>();
  o.patience = j.at("patience").get<int64_t>();
  o.shuffle = j.at("shuffle").get<bool>();
  o.seed = j.at("seed").get<uint64_t>();
  o.device = j.at("device").get<std::string>();
  return o;
}

std::vector<std::string> preset_names() { return {"quick", "paper"}; }

TrainOptions preset_options(const std::string& preset) {
  TrainOptions o;
  if (preset == "quick") return o;
  if (preset == "paper") {
    o.optimizer = OptimizerKind::kAdamax;
    o.learning_rate = 0.01;
    o.grad_clip = 5.0;
    o.batch_size = 16;
    o.epochs = 200;
    o.validation_size = 1000;
    o.patience = 20;
    return o;
  }
  throw_unknown_name("preset", preset, preset_names());
}

TrainOptions apply_preset(const std::string& preset, ModelSpec& spec) {
  TrainOptions o = preset_options(preset);
  const auto& family = find_family(spec.family);
  spec.hyper = family.default_hyper(spec.hidden.size());
  if (spec.hyper.contains("train_samples") && spec.hyper["train_samples"].is_array()) {
    // SFNN / IMB families: branching samples per layer.
    if (preset == "quick") {
      spec.hyper["train_samples"] = std::vector<int64_t>(spec.hidden.size(), 8);
      o.epochs = 10;
    }
  }
  return o;
}

nlohmann::json TrainResult::to_json() const {
  nlohmann::json h = nlohmann::json::array();
  for (const auto& e : history)
    h.push_back({{"epoch", e.epoch}, {"stage", e.stage}, {"train_loss", e.train_loss}, {"validation_accuracy", e.validation_accuracy},
                 {"seconds", e.seconds}, {"images_per_second", e.images_per_second}});
  return {{"history", h}, {"best_epoch", best_epoch}, {"best_validation_accuracy", best_validation_accuracy},
          {"stopped_early", stopped_early}, {"seconds", seconds}, {"images_per_second", images_per_second}};
}

TrainResult TrainResult::from_json(const nlohmann::json& j) {
  TrainResult r;
  for (const auto& e : j.at("history"))
    r.history.push_back({e.at("epoch").get<int64_t>(), e.value("stage", int64_t{1}), e.at("train_loss").get<double>(),
                         e.at("validation_accuracy").get<double>(), e.at("seconds").get<double>(),
                         e.at("images_per_second").get<double>()});
  r.best_epoch = j.at("best_epoch").get<int64_t>();
  r.best_validation_accuracy = j.at("best_validation_accuracy").get<double>();
  r.stopped_early = j.at("stopped_early").get<bool>();
  r.seconds = j.at("seconds").get<double>();
  r.images_per_second = j.at("images_per_second").get<double>();
  return r;
}

namespace {

std::vector<torch::Tensor> snapshot(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (auto& p : m.parameters()) out.push_back(p.detach().clone());
  for (auto& b : m.buffers()) out.push_back(b.detach().clone());
  return out;
}

void restore(torch::nn::Module& m, const std::vector<torch::Tensor>& saved) {
  torch::NoGradGuard no_grad;
  std::size_t i = 0;
  for (auto& p : m.parameters()) p.copy_(saved[i++]);
  for (auto& b : m.buffers()) b.copy_(saved[i++]);
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

TrainResult train(TrainableModel& model, const data::Dataset& train_set, const data::Dataset* validation,
                  const TrainOptions& o, const ProgressSink& progress) {
  o.validate();
  const torch::Device device = parse_device(o.device);
  if (train_set.size() == 0) throw UsageError("training set is empty");
  model.check_input(train_set.images.slice(0, 0, 1));
  if (train_set.num_classes != model.num_classes())
    throw UsageError(fmt::format("{} has {} classes but the model outputs {}", train_set.name, train_set.num_classes,
                                 model.num_classes()));
  if (!torch::isfinite(train_set.images).all().item<bool>())
    throw Error(fmt::format("{} {}: training images contain NaN or Inf", train_set.name, train_set.split));
  const int64_t stages = model.stages();
  if (o.epochs < stages)
    throw UsageError(fmt::format("--epochs {} is fewer than the {} training stages of this family", o.epochs, stages));
  // Greedy families split the epoch budget equally between their stages.
  const int64_t stage_epochs = o.epochs / stages;
  model.to(device);
  // The whole split lives on the training device; batches are gathered there.
  const auto images = train_set.images.to(device);
  const auto labels = train_set.labels.to(device);
  const int64_t n = train_set.size();
  const int64_t batches = (n + o.batch_size - 1) / o.batch_size;
  auto shuffle_gen = at::detail::createCPUGenerator(o.seed);
  const bool use_validation = validation && validation->size() > 0;

  TrainResult result;
  double train_seconds = 0;
  int64_t trained_images = 0, epoch = 0;
  const auto run_start = Clock::now();
  for (int64_t stage = 1; stage <= stages; ++stage) {
    if (stages > 1) model.set_stage(stage);
    std::vector<torch::Tensor> trainable;
    for (auto& p : model.module().parameters())
      if (p.requires_grad()) trainable.push_back(p);
    Optimizer rule(trainable, o.optimizer, o.learning_rate, o.momentum);
    std::vector<torch::Tensor> best;
    double stage_best = -1;
    int64_t since_best = 0;
    for (int64_t stage_epoch = 1; stage_epoch <= stage_epochs; ++stage_epoch) {
      ++epoch;
      model.set_training(true);
      auto order = o.shuffle ? torch::randperm(n, shuffle_gen, torch::kLong).to(device)
                             : torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(device));
      auto loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(device));
      const auto epoch_start = Clock::now();
      auto last_draw = epoch_start;
      for (int64_t b = 0; b < batches; ++b) {
        const int64_t lo = b * o.batch_size, hi = std::min(n, lo + o.batch_size);
        auto idx = order.slice(0, lo, hi);
        auto x = images.index_select(0, idx);
        auto y = labels.index_select(0, idx);
        rule.zero_grad();
        auto loss = model.loss(x, y);
        loss.backward();
        if (o.grad_clip > 0) torch::nn::utils::clip_grad_norm_(rule.params(), o.grad_clip);
        rule.step();
        loss_sum += loss.detach() * static_cast<double>(hi - lo);
        if (progress && seconds_since(last_draw) > 0.25) {
          last_draw = Clock::now();
          const double s = seconds_since(epoch_start);
          progress({epoch, stage_epochs * stages, b + 1, batches, loss_sum.item<double>() / static_cast<double>(hi),
                    result.best_validation_accuracy, static_cast<double>(hi) / s, false});
        }
      }
      EpochRecord rec;
      rec.epoch = epoch;
      rec.stage = stage;
      rec.seconds = seconds_since(epoch_start);
      rec.train_loss = loss_sum.item<double>() / static_cast<double>(n);
      rec.images_per_second = static_cast<double>(n) / rec.seconds;
      train_seconds += rec.seconds;
      trained_images += n;
      if (!std::isfinite(rec.train_loss))
        throw Error(fmt::format("training diverged: the mean loss of epoch {} is {} (try a smaller --lr or --grad-clip)",
                                epoch, rec.train_loss));
      bool improved = true;
      if (use_validation) {
        rec.validation_accuracy = evaluate(model, *validation).mean_accuracy;
        improved = rec.validation_accuracy > stage_best;
      }
      if (improved) {
        stage_best = rec.validation_accuracy;
        result.best_epoch = epoch;
        result.best_validation_accuracy = rec.validation_accuracy;
        if (use_validation && o.patience > 0) best = snapshot(model.module());
        since_best = 0;
      } else {
        ++since_best;
      }
      result.history.push_back(rec);
      if (progress)
        progress({epoch, stage_epochs * stages, batches, batches, rec.train_loss, rec.validation_accuracy,
                  rec.images_per_second, true});
      if (o.patience > 0 && since_best >= o.patience) {
        result.stopped_early = true;
        break;
      }
    }
    if (!best.empty()) restore(model.module(), best);
  }
  if (o.patience == 0 || !use_validation) {
    // The last weights are kept.
    result.best_epoch = epoch;
    result.best_validation_accuracy = result.history.back().validation_accuracy;
  }
  for (auto& p : model.module().parameters()) {
    p.requires_grad_(true);
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();  // no stale gradients for later users
  }
  model.set_training(false);
  result.seconds = seconds_since(run_start);
  result.images_per_second = static_cast<double>(trained_images) / std::max(train_seconds, 1e-9);
  return result;
}

ProgressSink stderr_progress() {
  const bool tty = ::isatty(fileno(stderr)) != 0;
  return [tty](const TrainProgress& p) {
    const std::string val =
        p.validation_accuracy < 0 ? std::string("-") : fmt::format("{:.2f}%", 100.0 * p.validation_accuracy);
    const std::string line = fmt::format("epoch {}/{}  batch {}/{}  loss {:.4f}  val-acc {}  {:.0f} img/s", p.epoch,
                                         p.epochs, p.batch, p.batches, p.loss, val, p.images_per_second);
    if (tty) {
      fmt::print(stderr, "\r\033[K{}", line);
      if (p.epoch_done) fmt::print(stderr, "\n");
    } else if (p.epoch_done) {
      fmt::print(stderr, "{}\n", line);
    }
    std::fflush(stderr);
  };
}

}  // namespace imbench::models
