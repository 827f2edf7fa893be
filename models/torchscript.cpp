#include "models/torchscript.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "core/errors.h"

// Declared in torch/csrc/jit/codegen/fuser/interface.h, which Debian's
// libtorch-dev does not ship; defined in libtorch_cpu of 1.13 and 2.x alike
// (Python: torch._C._jit_override_can_fuse_on_cpu).
namespace torch::jit {
TORCH_API void overrideCanFuseOnCPU(bool value);
}  // namespace torch::jit

namespace imbench::models {
namespace {

// TorchScript's profiling executor hands a graph, after its profiling runs,
// to the TensorExpr fuser, which compiles the fused CPU kernels with LLVM
// when LibTorch was built with LLVM. Debian's LibTorch 1.13 was not, so CPU
// graphs ran op by op; Debian's 2.6 is (LLVM linked into libtorch_cpu), and
// there the first call after profiling spent minutes in LLVMCodeGen on a
// two-op sample_logits (test killed after 204 s; 0.65 s on 1.13). imbench
// keeps the op-by-op CPU execution on every LibTorch: the same numbers as
// the eager models, and no JIT compile inside a timed attack. GPU fusion is
// unchanged.
void keep_cpu_graphs_unfused() {
  static const bool done = [] {
    torch::jit::overrideCanFuseOnCPU(false);
    return true;
  }();
  (void)done;
}

// The line of a c10 error that says what went wrong: an interpreter error's
// first line is only "The following operation failed in the TorchScript
// interpreter."; the cause ("RuntimeError: mat1 and mat2 shapes cannot be
// multiplied (1x3072 and 784x4)") is its last line.
// The interpreter rethrows what failed inside it as a std::runtime_error
// (that first line, a TorchScript traceback, then the cause), not a c10::Error.
std::string cause_of(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  const std::string what = c10_error ? c10_error->what_without_backtrace() : e.what();
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= what.size()) {
    const auto end = std::min(what.find('\n', start), what.size());
    std::string line = what.substr(start, end - start);
    const auto first = line.find_first_not_of(" \t");
    if (first != std::string::npos) lines.push_back(line.substr(first));
    start = end + 1;
  }
  if (lines.empty()) return "unknown error";
  if (lines.front().rfind("The following operation failed in the TorchScript interpreter", 0) == 0)
    return lines.back();
  return lines.front();
}

}  // namespace

const OptionTable<TorchScriptOptions>& TorchScriptOptions::table() {
  using O = TorchScriptOptions;
  static const auto table =
      OptionTable<O>()
          .integer_list("input_shape", &O::input_shape,
                        "TorchScript: input shape of one example, e.g. 1,28,28 (default: the module's imbench_input_shape)",
                        at_least(1))
          .integer("num_classes", &O::num_classes,
                   "TorchScript: number of classes (default: imbench_num_classes, else one forward pass)", at_least(2))
          .boolean("stochastic", &O::stochastic,
                   "TorchScript: the module samples noise on every call (default: imbench_stochastic, else false)")
          .integer("samples", &O::samples,
                   "TorchScript: draws averaged by the prediction rule (default: imbench_samples, else 1)", at_least(1));
  return table;
}

TorchScriptModel::TorchScriptModel(torch::jit::Module module, const std::string& name,
                                   const TorchScriptOptions& o)
    : module_(std::move(module)), name_(name) {
  keep_cpu_graphs_unfused();
  auto attr = [&](const char* key) -> std::optional<c10::IValue> {
    if (module_.hasattr(key)) return module_.attr(key);
    return std::nullopt;
  };
  own_sample_logits_ = module_.find_method("sample_logits").has_value();
  if (own_sample_logits_) {
    const auto& args = module_.get_method("sample_logits").function().getSchema().arguments();
    if (args.size() != 3 || args[2].type()->kind() != c10::TypeKind::IntType)
      throw Error(
          fmt::format("{}: the module's sample_logits must take (x, S: int) and return [S, N, C] logits", name_));
  }
  try {
    if (o.input_shape) input_shape_ = *o.input_shape;
    else if (auto a = attr("imbench_input_shape")) input_shape_ = a->toIntVector();
    else
      throw UsageError(fmt::format("{}: the input shape is unknown: pass --input-shape (e.g. 1,28,28) or store "
                                   "imbench_input_shape in the module",
                                   name_));
    if (auto a = attr("imbench_bounds")) {
      auto v = a->toDoubleVector();
      if (v.size() != 2) throw Error(fmt::format("{}: imbench_bounds must hold [lower, upper]", name_));
      bounds_ = {v[0], v[1]};
    }
    if (o.stochastic) stochastic_ = *o.stochastic;
    else if (auto a = attr("imbench_stochastic")) stochastic_ = a->toBool();
    else stochastic_ = own_sample_logits_;
    if (o.samples) samples_ = *o.samples;
    else if (auto a = attr("imbench_samples")) samples_ = a->toInt();
    if (o.internal_samples) internal_samples_ = *o.internal_samples;
    else if (auto a = attr("imbench_internal_samples")) internal_samples_ = a->toInt();
    if (o.num_classes) num_classes_ = *o.num_classes;
    else if (auto a = attr("imbench_num_classes")) num_classes_ = a->toInt();
  } catch (const c10::Error& e) {
    throw Error(fmt::format("{}: bad imbench_* attribute: {}", name_, e.what_without_backtrace()));
  }
  for (auto d : input_shape_)
    if (d <= 0) throw UsageError(fmt::format("{}: input shape entries must be positive", name_));
  if (!(bounds_.lower < bounds_.upper)) throw UsageError(fmt::format("{}: input bounds must satisfy lower < upper", name_));
  if (samples_ < 1) throw UsageError(fmt::format("{}: sample count must be >= 1", name_));
  if (internal_samples_ < 1) throw UsageError(fmt::format("{}: internal sample count must be >= 1", name_));
  if (!stochastic_) samples_ = 1;
  module_.eval();
  if (num_classes_ == 0) {
    std::vector<int64_t> shape{1};
    shape.insert(shape.end(), input_shape_.begin(), input_shape_.end());
    torch::NoGradGuard no_grad;
    c10::IValue out;
    try {
      out = module_.forward({torch::zeros(shape)});
    } catch (const std::exception& e) {
      const bool given = o.input_shape.has_value();
      std::string recorded;
      if (given && module_.hasattr("imbench_input_shape")) {
        try {
          recorded = fmt::format("; the module records imbench_input_shape [{}]",
                                 fmt::join(module_.attr("imbench_input_shape").toIntVector(), ", "));
        } catch (const c10::Error&) {
        }
      }
      throw Error(fmt::format("{}: the module does not accept examples of shape [{}] ({}){}: {}", name_,
                              fmt::join(input_shape_, ", "),
                              given ? "given by --input-shape" : "its imbench_input_shape", recorded, cause_of(e)));
    }
    num_classes_ = logits(torch::zeros(shape)).size(1);
  }
  if (num_classes_ < 2) throw UsageError(fmt::format("{}: the module outputs {} classes (need >= 2)", name_, num_classes_));
  if (uses_own_sample_logits()) {  // one probe, so a wrong shape fails at load time
    std::vector<int64_t> shape{2};
    shape.insert(shape.end(), input_shape_.begin(), input_shape_.end());
    torch::NoGradGuard no_grad;
    sample_logits(torch::zeros(shape), 3);
  }
}

std::unique_ptr<TorchScriptModel> TorchScriptModel::load(const std::string& path, const TorchScriptOptions& o,
                                                         torch::Device device) {
  if (!std::filesystem::exists(path)) throw Error(fmt::format("{}: file not found", path));
  torch::jit::Module m;
  try {
    m = torch::jit::load(path, torch::Device(torch::kCPU));
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw Error(fmt::format("{}: not a loadable TorchScript module: {}", path, what.substr(0, what.find('\n'))));
  }
  auto model = std::make_unique<TorchScriptModel>(std::move(m), path, o);
  model->to(device);
  return model;
}

torch::Tensor TorchScriptModel::logits(const torch::Tensor& x) {
  c10::IValue out;
  try {
    out = module_.forward({x});
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: forward failed on input of shape [{}] (the model takes [N, {}]): {}", name_,
                            fmt::join(x.sizes(), ", "), fmt::join(input_shape_, ", "), cause_of(e)));
  }
  if (!out.isTensor()) throw Error(fmt::format("{}: forward must return a tensor of logits", name_));
  auto t = out.toTensor();
  if (t.dim() != 2 || t.size(0) != x.size(0))
    throw Error(fmt::format("{}: forward returned shape [{}], expected [N, C] logits", name_, fmt::join(t.sizes(), ", ")));
  return t;
}

torch::Tensor TorchScriptModel::sample_logits(const torch::Tensor& x, int64_t samples) {
  if (!uses_own_sample_logits()) return Model::sample_logits(x, samples);
  if (samples < 1) throw UsageError(fmt::format("sample count must be >= 1, got {}", samples));
  c10::IValue out;
  try {
    out = module_.get_method("sample_logits")({x, samples});
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: sample_logits failed on input of shape [{}] (the model takes [N, {}]): {}", name_,
                            fmt::join(x.sizes(), ", "), fmt::join(input_shape_, ", "), cause_of(e)));
  }
  if (!out.isTensor()) throw Error(fmt::format("{}: sample_logits must return a tensor of logits [S, N, C]", name_));
  auto t = out.toTensor();
  if (t.dim() != 3 || t.size(0) != samples || t.size(1) != x.size(0) || t.size(2) != num_classes_)
    throw Error(fmt::format("{}: sample_logits(x, {}) returned shape [{}] for {} inputs, expected [{}, {}, {}]", name_,
                            samples, fmt::join(t.sizes(), ", "), x.size(0), samples, x.size(0), num_classes_));
  return t;
}

std::string TorchScriptModel::description() const {
  std::string kind = "deterministic";
  if (stochastic_) {
    kind = fmt::format("stochastic, {} samples", samples_);
    if (internal_samples_ > 1) kind += fmt::format(", {} internal draws per call", internal_samples_);
    if (uses_own_sample_logits()) kind += ", its own sample_logits";
  }
  return fmt::format("TorchScript {} (input [{}], {} classes, {})", name_, fmt::join(input_shape_, ", "), num_classes_,
                     kind);
}

void TorchScriptModel::to(torch::Device device) {
  module_.to(device);
  device_ = device;
}

std::vector<torch::Tensor> TorchScriptModel::parameters() {
  std::vector<torch::Tensor> out;
  for (const auto& p : module_.parameters()) out.push_back(p);
  return out;
}

}  // namespace imbench::models
