#include "models/optimizer.h"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "core/errors.h"

namespace imbench::models {

Optimizer::Optimizer(std::vector<torch::Tensor> params, OptimizerKind kind, double learning_rate, double momentum,
                     double beta1, double beta2, double eps)
    : params_(std::move(params)), kind_(kind), lr_(learning_rate), momentum_(momentum), beta1_(beta1),
      beta2_(beta2), eps_(eps) {
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p));
    v_.push_back(kind == OptimizerKind::kSgd ? torch::Tensor() : torch::zeros_like(p));
  }
}

std::vector<torch::Tensor> Optimizer::state() const {
  std::vector<torch::Tensor> out(m_.begin(), m_.end());
  if (kind_ != OptimizerKind::kSgd) out.insert(out.end(), v_.begin(), v_.end());
  return out;
}

void Optimizer::load_state(const std::vector<torch::Tensor>& moments, int64_t steps) {
  const std::size_t n = params_.size(), want = kind_ == OptimizerKind::kSgd ? n : 2 * n;
  if (moments.size() != want || steps < 0)
    throw Error(fmt::format("optimiser state has {} moment tensors, this optimiser needs {}", moments.size(), want));
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < want; ++i) {
    auto& dst = i < n ? m_[i] : v_[i - n];
    if (moments[i].sizes() != dst.sizes())
      throw Error(fmt::format("optimiser state tensor {} has shape [{}], the parameter needs [{}]", i,
                              fmt::join(moments[i].sizes(), ", "), fmt::join(dst.sizes(), ", ")));
    dst.copy_(moments[i]);
  }
  t_ = steps;
}

namespace {

// The fused update loops, as functions of restrict pointers so that GCC
// vectorises them (inside the parallel_for lambda, compiled with OpenMP, it
// did not: scalar sqrt and division, the step 2x slower).
void adam_rows(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t begin,
               int64_t end, float b1, float c1, float b2, float c2, float ss, float inv_sqrt_bias2, float eps) {
  for (int64_t j = begin; j < end; ++j) {
    const float gj = g[j];
    m[j] = b1 * m[j] + c1 * gj;
    v[j] = b2 * v[j] + c2 * gj * gj;
    p[j] -= ss * m[j] / (std::sqrt(v[j]) * inv_sqrt_bias2 + eps);
  }
}

void adamax_rows(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t begin,
                 int64_t end, float b1, float c1, float b2, float ss, float eps) {
  for (int64_t j = begin; j < end; ++j) {
    const float gj = g[j];
    m[j] = b1 * m[j] + c1 * gj;
    v[j] = std::max(b2 * v[j], std::abs(gj) + eps);
    p[j] -= ss * m[j] / v[j];
  }
}

void sgd_rows(float* __restrict p, const float* __restrict g, float* __restrict m, int64_t begin, int64_t end, float mom,
              float lr) {
  for (int64_t j = begin; j < end; ++j) {
    m[j] = mom * m[j] + g[j];
    p[j] -= lr * m[j];
  }
}

}  // namespace

void Optimizer::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

void Optimizer::step_tensor(std::size_t i, const torch::Tensor& g, double step_size, double bias2) {
  auto& p = params_[i];
  auto& m = m_[i];
  switch (kind_) {
    case OptimizerKind::kAdam: {
      m.mul_(beta1_).add_(g, 1.0 - beta1_);
      v_[i].mul_(beta2_).addcmul_(g, g, 1.0 - beta2_);
      p.addcdiv_(m, v_[i].sqrt().div_(std::sqrt(bias2)).add_(eps_), -step_size);
      break;
    }
    case OptimizerKind::kAdamax:
      m.mul_(beta1_).add_(g, 1.0 - beta1_);
      v_[i] = torch::maximum(v_[i].mul_(beta2_), g.abs().add_(eps_));
      p.addcdiv_(m, v_[i], -step_size);
      break;
    case OptimizerKind::kSgd:
      m.mul_(momentum_).add_(g);
      p.add_(m, -lr_);
      break;
  }
}

void Optimizer::step() {
  torch::NoGradGuard no_grad;
  ++t_;
  const double bias1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
  const double bias2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
  const double step_size = lr_ / bias1;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    auto g = p.grad();
    if (!g.defined()) continue;
    const bool fused = fused_ && p.device().is_cpu() && p.scalar_type() == torch::kFloat && p.is_contiguous() &&
                       g.is_contiguous() && g.scalar_type() == torch::kFloat;
    if (!fused) {
      step_tensor(i, g, step_size, bias2);
      continue;
    }
    float* pp = p.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* mp = m_[i].data_ptr<float>();
    float* vp = v_[i].defined() ? v_[i].data_ptr<float>() : nullptr;
    const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_), eps = static_cast<float>(eps_);
    const float c1 = 1.0f - b1, c2 = 1.0f - b2, ss = static_cast<float>(step_size);
    const float inv_sqrt_bias2 = static_cast<float>(1.0 / std::sqrt(bias2));
    const float mom = static_cast<float>(momentum_), lr = static_cast<float>(lr_);
    const OptimizerKind kind = kind_;
    at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
      switch (kind) {
        case OptimizerKind::kAdam: adam_rows(pp, gp, mp, vp, begin, end, b1, c1, b2, c2, ss, inv_sqrt_bias2, eps); break;
        case OptimizerKind::kAdamax: adamax_rows(pp, gp, mp, vp, begin, end, b1, c1, b2, ss, eps); break;
        case OptimizerKind::kSgd: sgd_rows(pp, gp, mp, begin, end, mom, lr); break;
      }
    });
  }
}

}  // namespace imbench::models
