#include "models/train.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <ATen/Parallel.h>
#include <chrono>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <cmath>
#include <cstdio>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/interrupt.h"
#include "models/device.h"
#include "models/evaluate.h"
#include "models/optimizer.h"

namespace fs = std::filesystem;

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

const OptionTable<TrainOptions>& TrainOptions::table() {
  using O = TrainOptions;
  static const auto table =
      OptionTable<O>()
          .choice("optimizer", &O::optimizer, "adam, adamax (the paper's) or sgd",
                  {OptimizerKind::kAdam, OptimizerKind::kAdamax, OptimizerKind::kSgd}, to_string, parse_optimizer)
          .number("learning_rate", &O::learning_rate, "learning rate", above(0))
          .flag("lr")
          .number("momentum", &O::momentum, "SGD momentum", at_least_and_below(0, 1))
          .integer("batch_size", &O::batch_size, "mini-batch size", between(1, 1 << 20))
          .integer("epochs", &O::epochs, "maximum epochs (with early stopping, an upper bound)", budget(1, 10000))
          .number("grad_clip", &O::grad_clip, "global gradient-norm clip (0 = off)", at_least(0))
          .integer("validation_size", &O::validation_size, "validation split: the last N training images (0 = none)",
                   at_least(0))
          .integer("patience", &O::patience,
                   "early stopping after N epochs without a better validation accuracy (0 = off)", at_least(0))
          .boolean("shuffle", &O::shuffle, "reshuffle the training images every epoch")
          .boolean("flush_denormal", &O::flush_denormal,
                   "flush denormal floats to zero while training (x86 computes with them far slower: 17x for the SFNN "
                   "output layer here); false: keep them, as imbench did before 2026-11-25")
          .integer("seed", &O::seed, "seed of the weight initialisation and the shuffling",
                   seed_range());
  return table;
}

void TrainOptions::validate(const OptionContext& context) const {
  table().validate(*this, context);
  if (patience > 0 && validation_size == 0) {
    const auto& t = table();
    const std::string p = context.name(*t.find("patience")), v = context.name(*t.find("validation_size"));
    throw OptionError("patience", fmt::format("{} needs a validation split: set {} > 0 or {} to 0", p, v, p));
  }
}

nlohmann::json TrainOptions::to_json() const {
  auto j = table().to_json(*this);
  j["device"] = device;
  return j;
}

TrainOptions TrainOptions::from_json(const nlohmann::json& j) {
  TrainOptions o;
  o.flush_denormal = false;  // checkpoints written before the option existed
  nlohmann::json rest = j;
  o.device = rest.value("device", o.device);
  rest.erase("device");
  table().read(rest, {"recorded training option", "training options: ", OptionSpelling::kKey}, o);
  return o;
}

const std::vector<Preset>& presets() {
  static const std::vector<Preset> presets{
      {"quick",
       "Adam 1e-3, batch 100, 20 epochs, no early stopping (validation accuracy on the last 1000 training images is "
       "still recorded); SFNN/IMB: 10 epochs, 8 samples per layer",
       nlohmann::json::object(),
       {{"epochs", 10}, {"train_samples", 8}}},
      {"paper",
       "Adamax 0.01, clip 5, batch 16, patience 20 on the last 1000 training images, <= 200 epochs; SFNN/IMB: 16 "
       "samples per layer",
       {{"optimizer", "adamax"},
        {"learning_rate", 0.01},
        {"grad_clip", 5.0},
        {"batch_size", 16},
        {"epochs", 200},
        {"validation_size", 1000},
        {"patience", 20}},
       nlohmann::json::object()},
  };
  return presets;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.push_back(p.name);
  return names;
}

const Preset& find_preset(const std::string& name) {
  for (const auto& p : presets())
    if (p.name == name) return p;
  throw_unknown_name("preset", name, preset_names());
}

TrainOptions preset_options(const std::string& preset) {
  const auto& p = find_preset(preset);
  return TrainOptions::table().from_json(p.options, {"training option", fmt::format("preset {}: ", p.name)});
}

TrainOptions apply_preset(const std::string& preset, ModelSpec& spec) {
  TrainOptions o = preset_options(preset);
  const auto& family = find_family(spec.family);
  spec.hyper = family.default_hyper(spec.hidden.size());
  // The families that train with branching samples (SFNN, IMB): per-layer train_samples.
  const auto* samples = family.hyper_option("train_samples");
  if (samples && samples->type == OptionType::kIntegerList)
    apply_training_options(find_preset(preset).branching_options, spec, o,
                           {"training option", fmt::format("preset {}: ", preset)});
  return o;
}

std::vector<std::string> training_option_keys() {
  auto keys = TrainOptions::table().keys();
  for (const auto& k : ModelSpec::architecture_table().keys()) keys.push_back(k);
  for (const auto& f : family_registry())
    for (const auto& o : f.hyper_options)
      if (std::find(keys.begin(), keys.end(), o.key) == keys.end()) keys.push_back(o.key);
  return keys;
}

const OptionDescription& training_option(const std::string& family, const std::string& key,
                                         const OptionContext& context) {
  if (const auto* o = TrainOptions::table().find(key)) return *o;
  if (const auto* o = ModelSpec::architecture_table().find(key)) return *o;
  const auto& info = find_family(family);
  if (const auto* o = info.hyper_option(key)) return *o;
  for (const auto& f : family_registry())
    if (const auto* o = f.hyper_option(key)) {
      std::vector<std::string> takes;
      for (const auto& h : info.hyper_options) takes.push_back(h.spelled(context.spelling));
      throw OptionError(key, fmt::format("{} does not apply to family '{}' ({})", context.name(*o), family,
                                         takes.empty() ? "it has no hyper-parameters"
                                                       : fmt::format("it takes: {}", fmt::join(takes, ", "))));
    }
  std::vector<std::string> known;
  for (const auto& k : training_option_keys()) {
    const auto* o = TrainOptions::table().find(k);
    known.push_back(o ? o->spelled(context.spelling) : spell_option(k, context.spelling));
  }
  const std::string name = spell_option(key, context.spelling);
  std::string guess = closest_name(name, known);
  for (const auto& o : TrainOptions::table().describe())  // "lr" in a matrix: the key of --lr
    if (o.flag() == spell_option(key, OptionSpelling::kFlag)) guess = o.spelled(context.spelling);
  throw OptionError(key, fmt::format("unknown {} '{}{}'{}; known: {}", context.what, context.prefix, name,
                                     guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess),
                                     fmt::join(known, ", ")));
}

void apply_training_options(const nlohmann::json& j, ModelSpec& spec, TrainOptions& options,
                            const OptionContext& context) {
  if (!j.is_object()) throw UsageError(fmt::format("{}training options must be a key-value table", context.prefix));
  nlohmann::json train = nlohmann::json::object(), hyper = nlohmann::json::object();
  for (const auto& [key, value] : j.items()) {
    const auto& o = training_option(spec.family, key, context);  // unknown, or not for this family: an OptionError
    if (ModelSpec::architecture_table().find(key))
      throw OptionError(key, fmt::format("{} sets the architecture, which is read before the preset", context.name(o)));
    (TrainOptions::table().find(key) ? train : hyper)[key] = value;
  }
  TrainOptions::table().read(train, context, options);
  spec.hyper = find_family(spec.family).read_hyper(spec.hyper, hyper, spec.hidden.size(), context);
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

torch::Tensor generator_state(at::Generator& gen) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_generator_state(at::Generator& gen, const torch::Tensor& state) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

// Everything the loop needs to continue after a kill as if it had not
// stopped: written at the end of every epoch, and once more when training
// ends (finished = true, with the weights the checkpoint will hold).
struct LoopState {
  nlohmann::json fingerprint;
  int64_t stage = 1, stage_epoch = 0, epoch = 0, since_best = 0, trained_images = 0, optimizer_steps = 0;
  double stage_best = -1, train_seconds = 0, elapsed_seconds = 0;
  bool stage_done = false, finished = false;
  TrainResult result;
  std::vector<torch::Tensor> weights, best, moments;
  torch::Tensor default_generator, shuffle_generator;
};

constexpr const char* kStateFormat = "imbench-train-state";
constexpr int kStateVersion = 1;

void write_tensors(torch::serialize::OutputArchive& a, const std::string& prefix, const std::vector<torch::Tensor>& v) {
  a.write(prefix + "/count", torch::tensor(static_cast<int64_t>(v.size())));
  for (std::size_t i = 0; i < v.size(); ++i) a.write(fmt::format("{}/{}", prefix, i), v[i].detach().to(torch::kCPU));
}

std::vector<torch::Tensor> read_tensors(torch::serialize::InputArchive& a, const std::string& prefix) {
  torch::Tensor count;
  a.read(prefix + "/count", count);
  std::vector<torch::Tensor> v(static_cast<std::size_t>(count.item<int64_t>()));
  for (std::size_t i = 0; i < v.size(); ++i) a.read(fmt::format("{}/{}", prefix, i), v[i]);
  return v;
}

void save_state(const std::string& path, const LoopState& s) {
  torch::serialize::OutputArchive a;
  const nlohmann::json meta = {{"format", kStateFormat},         {"version", kStateVersion},
                               {"fingerprint", s.fingerprint},    {"stage", s.stage},
                               {"stage_epoch", s.stage_epoch},    {"epoch", s.epoch},
                               {"since_best", s.since_best},      {"trained_images", s.trained_images},
                               {"optimizer_steps", s.optimizer_steps}, {"stage_best", s.stage_best},
                               {"train_seconds", s.train_seconds}, {"elapsed_seconds", s.elapsed_seconds},
                               {"stage_done", s.stage_done},      {"finished", s.finished},
                               {"result", s.result.to_json()}};
  a.write("meta", c10::IValue(meta.dump()));
  write_tensors(a, "weights", s.weights);
  write_tensors(a, "best", s.best);
  write_tensors(a, "moments", s.moments);
  a.write("generator/default", s.default_generator);
  a.write("generator/shuffle", s.shuffle_generator);
  std::ostringstream bytes;
  a.save_to(bytes);
  write_file_atomically(path, bytes.str());
}

LoopState load_state(const std::string& path) {
  LoopState s;
  try {
    torch::serialize::InputArchive a;
    a.load_from(path);
    c10::IValue text;
    a.read("meta", text);
    const auto meta = nlohmann::json::parse(text.toStringRef());
    if (meta.at("format") != kStateFormat || meta.at("version") != kStateVersion)
      throw Error(fmt::format("{}: not an imbench training state of version {}", path, kStateVersion));
    s.fingerprint = meta.at("fingerprint");
    s.stage = meta.at("stage").get<int64_t>();
    s.stage_epoch = meta.at("stage_epoch").get<int64_t>();
    s.epoch = meta.at("epoch").get<int64_t>();
    s.since_best = meta.at("since_best").get<int64_t>();
    s.trained_images = meta.at("trained_images").get<int64_t>();
    s.optimizer_steps = meta.at("optimizer_steps").get<int64_t>();
    s.stage_best = meta.at("stage_best").get<double>();
    s.train_seconds = meta.at("train_seconds").get<double>();
    s.elapsed_seconds = meta.at("elapsed_seconds").get<double>();
    s.stage_done = meta.at("stage_done").get<bool>();
    s.finished = meta.at("finished").get<bool>();
    s.result = TrainResult::from_json(meta.at("result"));
    s.weights = read_tensors(a, "weights");
    s.best = read_tensors(a, "best");
    s.moments = read_tensors(a, "moments");
    a.read("generator/default", s.default_generator);
    a.read("generator/shuffle", s.shuffle_generator);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw Error(fmt::format("{}: unreadable training state ({}); delete it to train from the start", path,
                            what.substr(0, what.find('\n'))));
  }
  return s;
}

// What must match for a saved state to be continued: the model, every
// option, the data.
nlohmann::json run_fingerprint(TrainableModel& model, const data::Dataset& train_set, const data::Dataset* validation,
                               const TrainOptions& o) {
  return {{"spec", model.spec().to_json()},
          {"options", o.to_json()},
          {"train", {{"name", train_set.name}, {"split", train_set.split}, {"size", train_set.size()}}},
          {"validation", validation ? validation->size() : 0},
          {"threads", torch::get_num_threads()}};
}

// Flush-to-zero and denormals-are-zero (MXCSR bits 15 and 6) are per
// thread, and at::globalContext().setFlushDenormal sets only the calling
// one: set them on every thread of the OpenMP pool, where LibTorch's and
// OpenBLAS's kernels run. x86 only (elsewhere a no-op).
constexpr unsigned kFtzDaz = 0x8040;

bool flush_denormal_enabled() {
#if defined(__x86_64__) || defined(__i386__)
  return (_mm_getcsr() & kFtzDaz) == kFtzDaz;
#else
  return false;
#endif
}

void set_flush_denormal(bool on) {
#if defined(__x86_64__) || defined(__i386__)
  auto apply = [on] { _mm_setcsr(on ? (_mm_getcsr() | kFtzDaz) : (_mm_getcsr() & ~kFtzDaz)); };
  apply();
  // One chunk per thread of the pool (grain 1 over as many items as threads).
  const int64_t threads = at::get_num_threads();
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) { apply(); });
#else
  (void)on;
#endif
}

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds) + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes) {
  imbench::write_file_atomically(path, bytes);
}

TrainResult train(TrainableModel& model, const data::Dataset& train_set, const data::Dataset* validation,
                  const TrainOptions& o, const ProgressSink& progress, const std::string& state_path) {
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
  // Restored on every way out of train().
  struct FlushDenormal {
    bool before;
    explicit FlushDenormal(bool on) : before(flush_denormal_enabled()) { set_flush_denormal(on); }
    ~FlushDenormal() { set_flush_denormal(before); }
  } flush_denormal(o.flush_denormal);
  auto default_gen = at::detail::getDefaultCPUGenerator();
  const bool use_validation = validation && validation->size() > 0;

  // Resume from the state file when there is one for this very run.
  LoopState st;
  st.fingerprint = run_fingerprint(model, train_set, validation, o);
  bool resumed = false;
  if (!state_path.empty() && fs::exists(state_path)) {
    LoopState saved = load_state(state_path);
    if (saved.fingerprint != st.fingerprint)
      throw Error(fmt::format("{}: holds the training state of another run (other model, options, data or thread "
                              "count); delete it to train from the start",
                              state_path));
    st = std::move(saved);
    restore(model.module(), st.weights);
    set_generator_state(default_gen, st.default_generator);
    set_generator_state(shuffle_gen, st.shuffle_generator);
    resumed = true;
  }
  int64_t saved_epoch = resumed ? st.epoch : -1;  // the epoch the state file holds (-1: none yet)
  auto save = [&](const Optimizer& rule, const std::vector<torch::Tensor>& best, double elapsed) {
    if (state_path.empty()) return;
    saved_epoch = st.epoch;
    st.weights = snapshot(model.module());
    st.best = best;
    st.moments = rule.state();
    st.optimizer_steps = rule.steps();
    st.default_generator = generator_state(default_gen);
    st.shuffle_generator = generator_state(shuffle_gen);
    st.elapsed_seconds = elapsed;
    save_state(state_path, st);
  };

  TrainResult& result = st.result;
  const auto run_start = Clock::now();
  const double elapsed_before = st.elapsed_seconds;
  auto elapsed = [&] { return elapsed_before + seconds_since(run_start); };
  // Estimated time left: the epochs still to run if validation accuracy
  // does not improve again (early stopping), and at most (the epoch cap),
  // at the mean wall time of the epochs so far.
  auto eta = [&](int64_t stage, int64_t stage_epoch, int64_t since_best, double epoch_fraction_left) {
    const double per_epoch = st.epoch > 0 ? elapsed() / std::max(0.01, static_cast<double>(st.epoch) - epoch_fraction_left)
                                          : 0.0;
    int64_t low = 0, high = stage_epochs - stage_epoch;
    if (o.patience > 0 && use_validation) low = std::min(high, std::max<int64_t>(0, o.patience - since_best));
    else low = high;
    const int64_t later = stages - stage;
    high += later * stage_epochs;
    low += later * (o.patience > 0 && use_validation ? std::min(stage_epochs, o.patience + 1) : stage_epochs);
    return std::pair<double, double>{per_epoch * (static_cast<double>(low) + epoch_fraction_left),
                                     per_epoch * (static_cast<double>(high) + epoch_fraction_left)};
  };
  if (resumed && progress && !st.finished)
    progress({st.epoch, stage_epochs * stages, batches, batches, result.history.empty() ? 0.0 : result.history.back().train_loss,
              result.best_validation_accuracy, 0, true, -1, -1,
              fmt::format("resumed after epoch {} from {}", st.epoch, state_path)});

  // SIGINT/SIGTERM (core/interrupt.h): the epoch in progress is discarded; the state of the last finished one is kept.
  if (!st.finished) try {
    const int64_t first_stage = st.stage;
    for (int64_t stage = first_stage; stage <= stages; ++stage) {
      if (stages > 1) model.set_stage(stage);
      std::vector<torch::Tensor> trainable;
      for (auto& p : model.module().parameters())
        if (p.requires_grad()) trainable.push_back(p);
      Optimizer rule(trainable, o.optimizer, o.learning_rate, o.momentum);
      std::vector<torch::Tensor> best;
      if (resumed && stage == first_stage && st.stage_epoch > 0) {
        rule.load_state(st.moments, st.optimizer_steps);
        best = st.best;
      } else {
        st.stage = stage;
        st.stage_epoch = 0;
        st.stage_best = -1;
        st.since_best = 0;
        st.stage_done = false;
      }
      while (!st.stage_done && st.stage_epoch < stage_epochs) {
        ++st.stage_epoch;
        ++st.epoch;
        model.set_training(true);
        auto order = o.shuffle ? torch::randperm(n, shuffle_gen, torch::kLong).to(device)
                               : torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(device));
        auto loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(device));
        const auto epoch_start = Clock::now();
        auto last_draw = epoch_start;
        for (int64_t b = 0; b < batches; ++b) {
          stop_point();
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
            const auto [low, high] = eta(stage, st.stage_epoch, st.since_best,
                                         1.0 - static_cast<double>(b + 1) / static_cast<double>(batches));
            progress({st.epoch, stage_epochs * stages, b + 1, batches,
                      loss_sum.item<double>() / static_cast<double>(hi), result.best_validation_accuracy,
                      static_cast<double>(hi) / s, false, low, high, {}});
          }
        }
        EpochRecord rec;
        rec.epoch = st.epoch;
        rec.stage = stage;
        rec.seconds = seconds_since(epoch_start);
        rec.train_loss = loss_sum.item<double>() / static_cast<double>(n);
        rec.images_per_second = static_cast<double>(n) / rec.seconds;
        st.train_seconds += rec.seconds;
        st.trained_images += n;
        if (!std::isfinite(rec.train_loss))
          throw Error(fmt::format(
              "training diverged: the mean loss of epoch {} is {} (try a smaller --lr or --grad-clip)", st.epoch,
              rec.train_loss));
        bool improved = true;
        if (use_validation) {
          rec.validation_accuracy = evaluate(model, *validation).mean_accuracy;
          improved = rec.validation_accuracy > st.stage_best;
        }
        if (improved) {
          st.stage_best = rec.validation_accuracy;
          result.best_epoch = st.epoch;
          result.best_validation_accuracy = rec.validation_accuracy;
          if (use_validation && o.patience > 0) best = snapshot(model.module());
          st.since_best = 0;
        } else {
          ++st.since_best;
        }
        result.history.push_back(rec);
        if (o.patience > 0 && st.since_best >= o.patience) {
          result.stopped_early = true;
          st.stage_done = true;
        }
        save(rule, best, elapsed());
        if (progress) {
          const auto [low, high] = eta(stage, st.stage_epoch, st.since_best, 0.0);
          progress({st.epoch, stage_epochs * stages, batches, batches, rec.train_loss, rec.validation_accuracy,
                    rec.images_per_second, true, low, high, {}});
        }
      }
      if (!best.empty()) restore(model.module(), best);
      st.stage_done = true;
    }
    if (o.patience == 0 || !use_validation) {
      // The last weights are kept.
      result.best_epoch = st.epoch;
      result.best_validation_accuracy = result.history.back().validation_accuracy;
    }
    result.seconds = elapsed();
    result.images_per_second = static_cast<double>(st.trained_images) / std::max(st.train_seconds, 1e-9);
    st.finished = true;
    if (!state_path.empty()) {
      // The final weights, so that a kill before the checkpoint is written
      // does not repeat the run.
      st.weights = snapshot(model.module());
      st.best.clear();
      st.moments.clear();
      st.default_generator = generator_state(default_gen);
      st.shuffle_generator = generator_state(shuffle_gen);
      st.elapsed_seconds = result.seconds;
      save_state(state_path, st);
    }
  } catch (const Interrupted& e) {
    if (saved_epoch < 0) throw Interrupted(e.signal(), "", false);
    throw Interrupted(e.signal(),
                      fmt::format("the training state after epoch {} of {}{} in {}", saved_epoch,
                                  o.patience > 0 && use_validation ? "at most " : "", stage_epochs * stages,
                                  state_path),
                      true);
  }
  for (auto& p : model.module().parameters()) {
    p.requires_grad_(true);
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();  // no stale gradients for later users
  }
  model.set_training(false);
  return result;
}

ProgressSink stderr_progress() {
  const bool tty = ::isatty(fileno(stderr)) != 0;
  return [tty](const TrainProgress& p) {
    if (!p.note.empty()) {
      fmt::print(stderr, "{}{}\n", tty ? "\r\033[K" : "", p.note);
      std::fflush(stderr);
      return;
    }
    const std::string val =
        p.validation_accuracy < 0 ? std::string("-") : fmt::format("{:.2f}%", 100.0 * p.validation_accuracy);
    std::string left;
    if (p.eta_high_seconds >= 0) {
      left = p.eta_low_seconds < p.eta_high_seconds - 0.5
                 ? fmt::format("  left {} (early stop) to {} (epoch cap)", format_duration(p.eta_low_seconds),
                               format_duration(p.eta_high_seconds))
                 : fmt::format("  left {}", format_duration(p.eta_high_seconds));
    }
    const std::string line = fmt::format("epoch {}/{}  batch {}/{}  loss {:.4f}  val-acc {}  {:.0f} img/s{}", p.epoch,
                                         p.epochs, p.batch, p.batches, p.loss, val, p.images_per_second, left);
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
