#include "attacks/gradient.h"

#include <fmt/format.h>

#include <cmath>

#include "core/errors.h"
#include "core/interrupt.h"

namespace imbench::attacks {

std::string to_string(EotReduction r) {
  return r == EotReduction::kPredictionRule ? "prediction-rule" : "mean-loss";
}

EotReduction parse_eot_reduction(const std::string& name) {
  if (name == "prediction-rule") return EotReduction::kPredictionRule;
  if (name == "mean-loss") return EotReduction::kMeanLoss;
  throw_unknown_name("EOT reduction", name, {"prediction-rule", "mean-loss"});
}

void EotOptions::validate() const {
  if (samples < 1) throw UsageError(fmt::format("--eot must be >= 1, got {}", samples));
  if (max_rows < 1 || max_rows_gpu < 1) throw UsageError("EOT max_rows must be >= 1");
}

int64_t eot_chunk_size(const EotOptions& options, int64_t samples, int64_t internal_samples, bool on_gpu) {
  const int64_t rows = on_gpu ? options.max_rows_gpu : options.max_rows;
  return std::max<int64_t>(1, rows / (samples * std::max<int64_t>(1, internal_samples)));
}

LossFn make_loss(LossKind kind) {
  return [kind](const torch::Tensor& z, const torch::Tensor& y, const torch::Tensor& t) {
    return attack_loss(kind, z, y, t);
  };
}

GradientOracle::GradientOracle(models::Model& model, EotOptions options)
    : model_(model), options_(options), samples_(model.is_stochastic() ? options.samples : 1) {
  options_.validate();
}

OracleOutput GradientOracle::evaluate(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& t,
                                      const LossFn& loss, bool with_grad) {
  stop_point();  // every attack's gradients and queries come through here: SIGINT/SIGTERM stop between them
  const int64_t n = x.size(0);
  const int64_t chunk = eot_chunk_size(options_, samples_, model_.internal_samples(), x.is_cuda());
  std::vector<torch::Tensor> losses, grads, log_probs;
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t e = std::min(n, b + chunk);
    auto xb = x.slice(0, b, e).detach();
    if (with_grad) xb.requires_grad_(true);
    const auto yb = y.slice(0, b, e);
    const auto tb = t.defined() ? t.slice(0, b, e) : torch::Tensor();
    torch::Tensor lb, lp;
    {
      torch::AutoGradMode grad_mode(with_grad);
      const auto z = model_.sample_logits(xb, samples_);  // [S, n_b, C]
      const auto lsm = torch::log_softmax(z, -1);
      lp = torch::logsumexp(lsm, 0) - std::log(static_cast<double>(samples_));
      if (options_.reduction == EotReduction::kPredictionRule || samples_ == 1) {
        lb = loss(samples_ == 1 ? z[0] : lp, yb, tb);
      } else {
        const int64_t s = z.size(0), m = z.size(1);
        const auto flat = z.reshape({s * m, z.size(2)});
        lb = loss(flat, yb.repeat({s}), tb.defined() ? tb.repeat({s}) : tb).view({s, m}).mean(0);
      }
    }
    if (with_grad) {
      // Each example's loss depends on its own input only, so the gradient
      // of the sum is the per-example gradient.
      grads.push_back(torch::autograd::grad({lb.sum()}, {xb})[0]);
      gradient_evaluations_ += (e - b) * samples_;
    }
    losses.push_back(lb.detach());
    log_probs.push_back(lp.detach());
  }
  OracleOutput out;
  const auto join = [](std::vector<torch::Tensor>& v) { return v.size() == 1 ? v[0] : torch::cat(v); };
  out.loss = join(losses);
  out.log_probs = join(log_probs);
  if (with_grad) out.grad = join(grads);
  return out;
}

OracleOutput GradientOracle::loss_and_grad(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& t,
                                           const LossFn& loss) {
  return evaluate(x, y, t, loss, true);
}

OracleOutput GradientOracle::loss_only(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& t,
                                       const LossFn& loss) {
  torch::NoGradGuard no_grad;
  return evaluate(x, y, t, loss, false);
}

}  // namespace imbench::attacks
