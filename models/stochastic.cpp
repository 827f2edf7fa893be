#include "models/stochastic.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>

#include "core/errors.h"

namespace imbench::models {
namespace {

// 32-bit integer hash with good avalanche (Wellons' "lowbias32"); 32-bit
// multiplies keep the sampling loop vectorisable.
inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// One 64-bit seed from LibTorch's default CPU generator, so torch::manual_seed
// fixes the counter-based samplers below.
uint64_t seed_from_default_generator() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

// Forward: a hard Bernoulli(p) sample; backward: dz/dp = 1 (Raiko et al.).
// A custom function rather than p + (b - p).detach(), whose forward value
// is not exactly 0/1 in floating point.
struct BernoulliST : public torch::autograd::Function<BernoulliST> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& p) {
    return bernoulli_sample(p);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*,
                                               torch::autograd::tensor_list grad_out) {
    return {grad_out[0]};
  }
};

int64_t product(const std::vector<int64_t>& v, std::size_t begin, std::size_t end) {
  int64_t p = 1;
  for (std::size_t i = begin; i < end; ++i) p *= v[i];
  return p;
}

template <typename T>
std::vector<T> hyper_vector(const nlohmann::json& hyper, const char* key, std::vector<T> fallback,
                            std::size_t expected, const std::string& family) {
  std::vector<T> v = hyper.contains(key) ? hyper.at(key).get<std::vector<T>>() : std::move(fallback);
  if (v.size() != expected)
    throw UsageError(fmt::format("{}: '{}' needs {} values, got {}", family, key, expected, v.size()));
  return v;
}

torch::nn::Linear glorot_linear(int64_t in, int64_t out) {
  torch::nn::Linear lin(in, out);
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(lin->weight);
  torch::nn::init::zeros_(lin->bias);
  return lin;
}

std::string samples_string(const std::vector<int64_t>& m) { return fmt::format("{}", fmt::join(m, "x")); }

}  // namespace

torch::Tensor bernoulli_sample(const torch::Tensor& p) {
  if (!p.device().is_cpu() || p.scalar_type() != torch::kFloat || p.numel() >= (int64_t{1} << 32))
    return torch::bernoulli(p);
  // LibTorch's CPU bernoulli draws every element from one mt19937 (13 ns per
  // element here, more than the matrix products of a training step). This
  // counter-based sampler takes one 64-bit seed from the default generator,
  // so torch::manual_seed still fixes the result, and hashes (seed, index).
  const uint64_t seed = seed_from_default_generator();
  const auto src = p.contiguous();
  auto out = torch::empty_like(src);
  const float* pp = src.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const auto lo = static_cast<uint32_t>(seed), hi = static_cast<uint32_t>(seed >> 32);
  at::parallel_for(0, src.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint32_t h = mix32(mix32(static_cast<uint32_t>(i) ^ lo) + hi);
      // 24 random bits -> u in [0, 1); P(u < p) = p up to 2^-24.
      const float u = static_cast<float>(h >> 8) * (1.0f / 16777216.0f);
      op[i] = u < pp[i] ? 1.0f : 0.0f;
    }
  });
  return out;
}

torch::Tensor bernoulli_straight_through(const torch::Tensor& p) { return BernoulliST::apply(p); }

namespace {

// Rows [begin, end) of bernoulli_readout. Compiled for AVX-512, AVX2 and the
// baseline, picked at load time; the hash loop vectorises as it stands, the
// dot products keep 16 independent partial sums so the compiler vectorises
// them without reassociating floating-point additions.
__attribute__((target_clones("avx512f", "avx2", "default"))) void readout_rows(
    const float* p, const float* weight, const float* bias, int64_t hidden, int64_t classes, int64_t samples,
    uint64_t seed, int64_t begin, int64_t end, float* out) {
  constexpr int64_t kLanes = 16;
  std::vector<float> h(static_cast<std::size_t>(hidden)), logits(static_cast<std::size_t>(classes));
  const auto lo = static_cast<uint32_t>(seed), hi = static_cast<uint32_t>(seed >> 32);
  const int64_t blocks = hidden / kLanes * kLanes;
  for (int64_t r = begin; r < end; ++r) {
    const float* pr = p + r * hidden;
    float* o = out + r * classes;
    for (int64_t c = 0; c < classes; ++c) o[c] = 0.0f;
    for (int64_t s = 0; s < samples; ++s) {
      const uint32_t key = mix32(mix32(static_cast<uint32_t>(r * samples + s) ^ lo) + hi);
      for (int64_t j = 0; j < hidden; ++j) {
        const uint32_t u = mix32(key + static_cast<uint32_t>(j) * 0x9e3779b9U);
        // 24 random bits -> [0, 1); P(u < p) = p up to 2^-24, as in bernoulli_sample.
        h[j] = static_cast<float>(u >> 8) * (1.0f / 16777216.0f) < pr[j] ? 1.0f : 0.0f;
      }
      // logits = bias + weight h: 16 independent partial sums per class (one
      // AVX-512 accumulator).
      float top = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < classes; ++c) {
        const float* w = weight + c * hidden;
        float acc[kLanes] = {};
        for (int64_t j = 0; j < blocks; j += kLanes)
          for (int64_t k = 0; k < kLanes; ++k) acc[k] += w[j + k] * h[j + k];
        float sum = bias[c];
        for (int64_t k = 0; k < kLanes; ++k) sum += acc[k];
        for (int64_t j = blocks; j < hidden; ++j) sum += w[j] * h[j];
        logits[c] = sum;
        top = std::max(top, sum);
      }
      float total = 0.0f;
      for (int64_t c = 0; c < classes; ++c) total += (logits[c] = std::exp(logits[c] - top));
      const float scale = 1.0f / (total * static_cast<float>(samples));
      for (int64_t c = 0; c < classes; ++c) o[c] += logits[c] * scale;
    }
  }
}

}  // namespace

torch::Tensor bernoulli_readout_reference(const torch::Tensor& p, const torch::Tensor& weight,
                                          const torch::Tensor& bias, int64_t samples) {
  const auto h = bernoulli_sample(p.unsqueeze(1).expand({p.size(0), samples, p.size(1)}));
  return torch::softmax(torch::nn::functional::linear(h, weight, bias), -1).mean(1);
}

torch::Tensor bernoulli_readout(const torch::Tensor& p, const torch::Tensor& weight, const torch::Tensor& bias,
                                int64_t samples) {
  TORCH_CHECK(p.dim() == 2 && weight.dim() == 2 && bias.dim() == 1 && weight.size(1) == p.size(1) &&
                  bias.size(0) == weight.size(0) && samples >= 1,
              "bernoulli_readout: p [R, H], weight [C, H], bias [C], samples >= 1");
  const bool fused = p.device().is_cpu() && p.scalar_type() == torch::kFloat &&
                     weight.scalar_type() == torch::kFloat && bias.scalar_type() == torch::kFloat &&
                     p.size(0) * samples < (int64_t{1} << 32);
  if (!fused) return bernoulli_readout_reference(p, weight, bias, samples);
  torch::NoGradGuard no_grad;
  const auto pc = p.contiguous();
  const auto wc = weight.contiguous();
  const auto bc = bias.contiguous();
  auto out = torch::empty({p.size(0), weight.size(0)}, p.options());
  const uint64_t seed = seed_from_default_generator();
  const float* pp = pc.data_ptr<float>();
  const float* wp = wc.data_ptr<float>();
  const float* bp = bc.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t hidden = p.size(1), classes = weight.size(0);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, samples * hidden));
  at::parallel_for(0, p.size(0), grain, [&](int64_t begin, int64_t end) {
    readout_rows(pp, wp, bp, hidden, classes, samples, seed, begin, end, op);
  });
  return out;
}

torch::Tensor bernoulli_kl_from_logits(const torch::Tensor& a, const torch::Tensor& rho) {
  const auto p = torch::sigmoid(a);
  const auto kl = p * (torch::log_sigmoid(a) - torch::log_sigmoid(rho)) +
                  (1 - p) * (torch::log_sigmoid(-a) - torch::log_sigmoid(-rho));
  return kl.sum(-1);
}

std::vector<torch::Tensor> variational_conditional_relevance(const torch::Tensor& lp) {
  const int64_t batch = lp.size(0);
  std::vector<int64_t> m(lp.sizes().begin() + 1, lp.sizes().end());
  const auto flat = lp.reshape({batch, -1});
  std::vector<torch::Tensor> vcr;
  for (std::size_t i = 0; i <= m.size(); ++i) {
    const int64_t p_i = product(m, 0, i), q_i = product(m, i, m.size());
    const auto v = flat.view({batch, p_i, q_i});
    const auto log_q = torch::logsumexp(v, 2) - std::log(static_cast<double>(q_i));
    vcr.push_back(-log_q.mean());
  }
  return vcr;
}

SfnnNetImpl::SfnnNetImpl(int64_t input_dim, const std::vector<int64_t>& hidden, int64_t outputs, double prior_std) {
  layers = register_module("layers", torch::nn::ModuleList());
  int64_t in = input_dim;
  for (std::size_t l = 0; l < hidden.size(); ++l) {
    layers->push_back(glorot_linear(in, hidden[l]));
    // rho ~ N(0, prior_std) truncated at two standard deviations.
    auto rho = torch::randn({hidden[l]});
    for (auto out = rho.abs() > 2; out.any().item<bool>(); out = rho.abs() > 2)
      rho = torch::where(out, torch::randn({hidden[l]}), rho);
    prior_logits.push_back(register_parameter(fmt::format("prior_{}", l + 1), rho * prior_std));
    in = hidden[l];
  }
  layers->push_back(glorot_linear(in, outputs));
}

SfnnModel::SfnnModel(const ModelSpec& spec) : spec_(spec) {
  const std::size_t depth = spec.hidden.size();
  if (depth == 0) throw UsageError(fmt::format("{}: needs at least one stochastic hidden layer", spec.family));
  const auto& h = spec.hyper;
  train_samples_ = hyper_vector<int64_t>(h, "train_samples", std::vector<int64_t>(depth, 16), depth, spec.family);
  test_samples_ = hyper_vector<int64_t>(h, "test_samples", std::vector<int64_t>(depth, 32), depth, spec.family);
  gamma_ = hyper_vector<double>(h, "gamma", std::vector<double>(depth + 1, 1.0), depth + 1, spec.family);
  beta_ = hyper_vector<double>(h, "beta", std::vector<double>(depth, 1e-4), depth, spec.family);
  greedy_ = h.value("greedy", false);
  for (auto m : train_samples_)
    if (m < 1) throw UsageError(fmt::format("{}: train_samples must be >= 1", spec.family));
  for (auto m : test_samples_)
    if (m < 1) throw UsageError(fmt::format("{}: test_samples must be >= 1", spec.family));
  for (double g : gamma_)
    if (!(g >= 0) || !std::isfinite(g)) throw UsageError(fmt::format("{}: gamma values must be finite and >= 0", spec.family));
  for (double b : beta_)
    if (!(b >= 0) || !std::isfinite(b)) throw UsageError(fmt::format("{}: beta values must be finite and >= 0", spec.family));
  if (std::accumulate(gamma_.begin(), gamma_.end(), 0.0) <= 0)
    throw UsageError(fmt::format("{}: at least one gamma must be positive", spec.family));
  net_ = SfnnNet(spec.input_dim(), spec.hidden, spec.num_classes, h.value("prior_std", 0.5));
}

SfnnForward SfnnModel::forward_branching(const torch::Tensor& x, const std::vector<int64_t>& samples) {
  const std::size_t depth = spec_.hidden.size();
  SfnnForward out;
  auto h = x.flatten(1);
  for (std::size_t l = 0; l < depth; ++l) {
    const auto a = net_->layers[l]->as<torch::nn::Linear>()->forward(h);
    out.pre_activations.push_back(a);
    const auto p = torch::sigmoid(a);
    if (sampling_ == Sampling::kMeanField) {
      h = p;
      continue;
    }
    auto sizes = p.sizes().vec();
    sizes.insert(sizes.end() - 1, samples[l]);
    h = bernoulli_straight_through(p.unsqueeze(-2).expand(sizes));
  }
  out.logits = net_->layers[depth]->as<torch::nn::Linear>()->forward(h);
  return out;
}

torch::Tensor SfnnModel::sample_logits(const torch::Tensor& x, int64_t samples) {
  if (samples < 1) throw UsageError(fmt::format("sample count must be >= 1, got {}", samples));
  const std::size_t depth = spec_.hidden.size();
  auto a = net_->layers[0]->as<torch::nn::Linear>()->forward(x.flatten(1));  // shared by all paths
  if (sampling_ == Sampling::kMeanField) {
    auto h = torch::sigmoid(a);
    for (std::size_t l = 1; l < depth; ++l) h = torch::sigmoid(net_->layers[l]->as<torch::nn::Linear>()->forward(h));
    auto logits = net_->layers[depth]->as<torch::nn::Linear>()->forward(h);
    return logits.unsqueeze(0).expand({samples, logits.size(0), logits.size(1)});
  }
  auto h = bernoulli_straight_through(torch::sigmoid(a).unsqueeze(0).expand({samples, a.size(0), a.size(1)}));
  for (std::size_t l = 1; l < depth; ++l)
    h = bernoulli_straight_through(torch::sigmoid(net_->layers[l]->as<torch::nn::Linear>()->forward(h)));
  return net_->layers[depth]->as<torch::nn::Linear>()->forward(h);
}

torch::Tensor SfnnModel::logits(const torch::Tensor& x) { return sample_logits(x, 1)[0]; }

torch::Tensor SfnnModel::predict_proba(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  if (sampling_ == Sampling::kMeanField) return torch::softmax(logits(x), -1);
  // Layers 1..L-1 branch as tensors; the last stochastic layer and the output
  // layer go through bernoulli_readout, which on the CPU never materialises
  // the widest activation [B, M_1, ..., M_L, H_L]. Chunk so the widest
  // tensor left, [b, M_1, ..., M_{L-1}, H], stays near 2^22 floats.
  const std::size_t depth = spec_.hidden.size();
  const int64_t prefix = product(test_samples_, 0, depth - 1);
  const int64_t width = *std::max_element(spec_.hidden.begin(), spec_.hidden.end());
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(1, prefix * width));
  const auto& out = net_->layers[depth]->as<torch::nn::Linear>();
  std::vector<torch::Tensor> parts;
  for (int64_t b = 0; b < x.size(0); b += chunk) {
    auto h = x.slice(0, b, std::min(x.size(0), b + chunk)).flatten(1);
    const int64_t rows = h.size(0);
    for (std::size_t l = 0; l + 1 < depth; ++l) {
      const auto p = torch::sigmoid(net_->layers[l]->as<torch::nn::Linear>()->forward(h));
      h = bernoulli_sample(p.unsqueeze(-2).expand({p.size(0), test_samples_[l], p.size(1)})).flatten(0, 1);
    }
    const auto p_last = torch::sigmoid(net_->layers[depth - 1]->as<torch::nn::Linear>()->forward(h));
    const auto proba = bernoulli_readout(p_last, out->weight, out->bias, test_samples_[depth - 1]);
    parts.push_back(proba.view({rows, prefix, proba.size(-1)}).mean(1));
  }
  return torch::cat(parts, 0);
}

SfnnModel::Terms SfnnModel::objective_terms(const torch::Tensor& x, const torch::Tensor& y,
                                            const std::vector<int64_t>& samples, const std::vector<double>& gamma,
                                            const std::vector<double>& beta) {
  const auto fwd = forward_branching(x, samples);
  const int64_t batch = x.size(0);
  // lp[b, m_1, ..., m_L] = log p(y_b | path)
  auto log_probs = torch::log_softmax(fwd.logits, -1);
  auto index_shape = fwd.logits.sizes().vec();
  index_shape.back() = 1;
  std::vector<int64_t> y_shape(index_shape.size(), 1);
  y_shape[0] = batch;
  const auto lp = log_probs.gather(-1, y.view(y_shape).expand(index_shape)).squeeze(-1);
  Terms t;
  t.vcr = variational_conditional_relevance(lp);
  t.total = torch::zeros({}, x.options());
  for (std::size_t i = 0; i < t.vcr.size(); ++i)
    if (gamma[i] != 0) t.total = t.total + gamma[i] * t.vcr[i];
  for (std::size_t l = 0; l < fwd.pre_activations.size(); ++l) {
    if (beta[l] == 0) {
      t.compression.push_back(torch::zeros({}, x.options()));
      continue;
    }
    auto c = bernoulli_kl_from_logits(fwd.pre_activations[l], net_->prior_logits[l]).mean();
    t.compression.push_back(c);
    t.total = t.total + beta[l] * c;
  }
  return t;
}

torch::Tensor SfnnModel::loss(const torch::Tensor& x, const torch::Tensor& y) {
  if (stage_ == 0) return objective_terms(x, y, train_samples_, gamma_, beta_).total;
  // Greedy stage l: gamma_0 VCR_0 + VCR_l + beta_l C_l.
  std::vector<double> gamma(gamma_.size(), 0.0), beta(beta_.size(), 0.0);
  gamma[0] = gamma_[0];
  gamma[static_cast<std::size_t>(stage_)] += 1.0;
  beta[static_cast<std::size_t>(stage_ - 1)] = beta_[static_cast<std::size_t>(stage_ - 1)];
  return objective_terms(x, y, train_samples_, gamma, beta).total;
}

int64_t SfnnModel::stages() const { return greedy_ ? static_cast<int64_t>(spec_.hidden.size()) : 1; }

void SfnnModel::set_stage(int64_t stage) {
  if (!greedy_) return;
  if (stage < 1 || stage > stages()) throw UsageError(fmt::format("stage {} out of range 1-{}", stage, stages()));
  stage_ = stage;
  // Layers (and priors) below `stage` are frozen.
  for (std::size_t l = 0; l < spec_.hidden.size(); ++l) {
    const bool train = static_cast<int64_t>(l) + 1 >= stage;
    for (auto& p : net_->layers[l]->parameters()) p.requires_grad_(train);
    net_->prior_logits[l].requires_grad_(train);
  }
}

int64_t SfnnModel::prediction_samples() const {
  return sampling_ == Sampling::kMeanField ? 1 : product(test_samples_, 0, test_samples_.size());
}

std::string SfnnModel::description() const {
  const std::string name = spec_.family == "sfnn" ? "SFNN (MLE)" : spec_.family == "imb-greedy" ? "IMB-Greedy" : "IMB-Joint";
  if (sampling_ == Sampling::kMeanField) return fmt::format("{} {} (mean-field)", name, spec_.layer_string());
  return fmt::format("{} {} (Bernoulli units; predicts with {} branching samples)", name, spec_.layer_string(),
                     samples_string(test_samples_));
}

std::string SfnnModel::objective() const {
  std::vector<std::string> terms;
  for (std::size_t i = 0; i < gamma_.size(); ++i)
    if (gamma_[i] != 0) terms.push_back(fmt::format("{:g} VCR_{}", gamma_[i], i));
  for (std::size_t l = 0; l < beta_.size(); ++l)
    if (beta_[l] != 0) terms.push_back(fmt::format("{:g} C_{}", beta_[l], l + 1));
  std::string s = fmt::format("L = {}; {} training samples per layer", fmt::join(terms, " + "),
                              samples_string(train_samples_));
  if (greedy_)
    s += "; greedy: stage l minimises gamma_0 VCR_0 + VCR_l + beta_l C_l with layers below l frozen "
         "(our interpretation)";
  return s;
}

void SfnnModel::to(torch::Device device) {
  net_->to(device);
  device_ = device;
}

VibNetImpl::VibNetImpl(int64_t input_dim, const std::vector<int64_t>& hidden, int64_t k, int64_t outputs,
                       bool relu) {
  encoder = register_module("encoder", Mlp(input_dim, hidden, 2 * k, relu));
  decoder = register_module("decoder", glorot_linear(k, outputs));
}

VibModel::VibModel(const ModelSpec& spec) : spec_(spec) {
  const auto& h = spec.hyper;
  k_ = h.value("k", int64_t{256});
  beta_ = h.value("beta", 1e-3);
  train_samples_ = h.value("train_samples", int64_t{1});
  test_samples_ = h.value("test_samples", int64_t{12});
  if (k_ < 1 || train_samples_ < 1 || test_samples_ < 1 || !(beta_ >= 0))
    throw UsageError("vib: k, train_samples and test_samples must be >= 1 and beta >= 0");
  net_ = VibNet(spec.input_dim(), spec.hidden, k_, spec.num_classes, spec.activation == "relu");
}

std::pair<torch::Tensor, torch::Tensor> VibModel::encode(const torch::Tensor& x) {
  const auto h = net_->encoder->forward(x);
  return {h.slice(1, 0, k_), torch::softplus(h.slice(1, k_, 2 * k_))};
}

torch::Tensor VibModel::gaussian_kl(const torch::Tensor& mu, const torch::Tensor& sigma) {
  return 0.5 * (mu.pow(2) + sigma.pow(2) - 1).sum(-1) - sigma.log().sum(-1);
}

torch::Tensor VibModel::sample_logits(const torch::Tensor& x, int64_t samples) {
  if (samples < 1) throw UsageError(fmt::format("sample count must be >= 1, got {}", samples));
  auto [mu, sigma] = encode(x);
  if (sampling_ == Sampling::kMeanField) {
    auto l = net_->decoder->forward(mu);
    return l.unsqueeze(0).expand({samples, l.size(0), l.size(1)});
  }
  const auto eps = torch::randn({samples, mu.size(0), mu.size(1)}, mu.options());
  return net_->decoder->forward(mu.unsqueeze(0) + sigma.unsqueeze(0) * eps);
}

torch::Tensor VibModel::logits(const torch::Tensor& x) { return sample_logits(x, 1)[0]; }

torch::Tensor VibModel::loss(const torch::Tensor& x, const torch::Tensor& y) {
  auto [mu, sigma] = encode(x);
  const auto eps = torch::randn({train_samples_, mu.size(0), mu.size(1)}, mu.options());
  const auto logits = net_->decoder->forward(mu.unsqueeze(0) + sigma.unsqueeze(0) * eps);
  const auto ce = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                                       y.repeat({train_samples_}));
  return ce + beta_ * gaussian_kl(mu, sigma).mean();
}

std::string VibModel::description() const {
  if (sampling_ == Sampling::kMeanField)
    return fmt::format("VIB {}-K{} ({}; mean-field: z = mu)", spec_.layer_string(), k_, spec_.activation);
  return fmt::format("VIB {} -> Gaussian K={} ({}; predicts with {} samples)", spec_.layer_string(), k_,
                     spec_.activation, test_samples_);
}

std::string VibModel::objective() const {
  return fmt::format("L = CE(decoder(z), y) + {:g} KL(N(mu, sigma^2) || N(0, I)), z = mu + sigma eps, {} training "
                     "sample(s)",
                     beta_, train_samples_);
}

void VibModel::to(torch::Device device) {
  net_->to(device);
  device_ = device;
}

}  // namespace imbench::models
