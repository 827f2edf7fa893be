#pragma once
/// Stochastic binary layers and the information multi-bottleneck (IMB)
/// objectives of Nguyen-Tang and Choi (arXiv 1712.01272), and the deep VIB
/// of Alemi et al. (2017).
///
/// SFNN (stochastic feed-forward network): hidden units are Bernoulli,
///   p_l = sigmoid(W_l z_{l-1} + b_l),  z_l ~ Bernoulli(p_l),  z_0 = x,
/// with the Raiko / straight-through estimator
///   z = p + (bernoulli(p) - p).detach()     (forward: hard 0/1; backward: dz/dp = 1).
/// Branching Monte Carlo: layer l draws M_l samples for each sample of layer
/// l-1, so logits have shape [B, M_1, ..., M_L, C] and there are
/// P = M_1 ... M_L paths per input, computed as batched tensor ops.
///
/// Objectives (P_i = M_1...M_i, Q_i = M_{i+1}...M_L, lp = log softmax(logits)[y]):
///   log q(y | z_i) = logsumexp over the Q_i continuations of lp - log Q_i
///   VCR_i = - mean over the batch and the P_i samples of z_i of log q(y | z_i)
///   C_l   = mean over the batch and the samples of z_{l-1} of
///           sum_j KL( Bern(p_lj) || Bern(r_lj) ),  r_l = sigmoid(rho_l) learned
///   L_IMB = sum_{i=0..L} gamma_i VCR_i + sum_{l=1..L} beta_l C_l
/// VCR_0 = -log E[p(y|x)] is the SFNN (MLE) loss: SFNN is IMB with
/// gamma = (1, 0, ..., 0) and beta = 0 on the same code path.
#include "models/det.h"

namespace imbench::models {

/// Hard Bernoulli(p) samples (0/1 floats) of the same shape as p. On the CPU
/// a fast counter-based sampler seeded from LibTorch's default generator;
/// elsewhere torch::bernoulli.
torch::Tensor bernoulli_sample(const torch::Tensor& p);

/// For every row r of p [R, H]: the mean over `samples` draws h ~ Bernoulli(p_r)
/// of softmax(weight h + bias), weight [C, H], bias [C] -> [R, C]. This is the
/// last stochastic layer and the output layer of an SFNN's prediction rule.
/// On the CPU (float32) a fused kernel draws h with the counter-based sampler
/// of bernoulli_sample and never materialises the R x samples x H tensor of
/// samples (SFNN prediction with 32x32 paths: 1024 x 512 draws per image);
/// elsewhere the same computation with torch ops (bernoulli_readout_reference).
torch::Tensor bernoulli_readout(const torch::Tensor& p, const torch::Tensor& weight, const torch::Tensor& bias,
                                int64_t samples);
/// bernoulli_readout with torch ops on any device (the reference for tests).
torch::Tensor bernoulli_readout_reference(const torch::Tensor& p, const torch::Tensor& weight,
                                          const torch::Tensor& bias, int64_t samples);

/// Straight-through Bernoulli sample: forward hard 0/1 values, backward the identity on p.
torch::Tensor bernoulli_straight_through(const torch::Tensor& p);

/// Bernoulli(p) samples with `samples` draws per row of p [..., H]: [..., samples, H].
/// For the same generator state, equal to bernoulli_sample(p.unsqueeze(-2).expand(...)),
/// without materialising the expanded p (CPU float32: a vectorised kernel).
torch::Tensor bernoulli_sample_branching(const torch::Tensor& p, int64_t samples);

/// A stochastic layer and the linear map after it, as one autograd node:
/// z = straight-through Bernoulli samples of p [..., H] with `samples` draws
/// per row ([..., samples, H], as bernoulli_sample_branching), returns
/// z weight^T + bias [..., samples, O]. The gradient is the straight-through
/// one, dL/dp = sum over the samples of dL/dz, computed as
/// (sum over the samples of dL/dout) weight: one product per row of p, not
/// one per sample. Same forward values as bernoulli_straight_through on the
/// expanded p followed by torch::nn::functional::linear.
torch::Tensor bernoulli_branch_linear(const torch::Tensor& p, const torch::Tensor& weight, const torch::Tensor& bias,
                                      int64_t samples);

/// KL(Bern(sigmoid(a)) || Bern(sigmoid(rho))) summed over the last dimension,
/// computed from logits with log-sigmoids (stable for large |a|).
torch::Tensor bernoulli_kl_from_logits(const torch::Tensor& a, const torch::Tensor& rho);

/// VCR_i for i = 0..L from lp = log p(y | path) of shape [B, M_1, ..., M_L].
std::vector<torch::Tensor> variational_conditional_relevance(const torch::Tensor& lp);

/// The weights of an SFNN: hidden Linear layers, the output layer, and the
/// learned prior logits rho_l of every hidden layer.
class SfnnNetImpl : public torch::nn::Module {
 public:
  SfnnNetImpl(int64_t input_dim, const std::vector<int64_t>& hidden, int64_t outputs, double prior_std);
  torch::nn::ModuleList layers{nullptr};  ///< L hidden layers, then the output layer
  std::vector<torch::Tensor> prior_logits;  ///< rho_l, one [H_l] vector per hidden layer
};
TORCH_MODULE(SfnnNet);

/// The forward pass of one batch with branching samples.
struct SfnnForward {
  torch::Tensor logits;                   ///< [B, M_1, ..., M_L, C]
  std::vector<torch::Tensor> pre_activations;  ///< a_l: [B, M_1, ..., M_{l-1}, H_l]
};

/// Hyper-parameters of SFNN, IMB-Joint and IMB-Greedy (ModelSpec::hyper), one
/// row each in table(); their defaults, which depend on the family and the
/// depth L, live in defaults() only.
struct SfnnHyper {
  std::vector<int64_t> train_samples;  ///< [M_1..M_L] branching samples per layer for training (paper: 16 each)
  std::vector<int64_t> test_samples;   ///< [M_1..M_L] for the prediction rule (paper: 32 each)
  std::vector<double> gamma;           ///< [gamma_0..gamma_L] VCR weights (sfnn: 1, 0, ...; imb: all 1)
  std::vector<double> beta;            ///< [beta_1..beta_L] compression weights (sfnn: 0; imb: 1e-4)
  double prior_std = 0.5;              ///< std of the truncated normal init of rho (paper: 0.5)
  /// Not an option (the family imb-greedy sets it): L stages, stage l trains
  /// gamma_0 VCR_0 + VCR_l + beta_l C_l with the layers below l frozen (our
  /// interpretation of GreedyPIB).
  bool greedy = false;

  static const OptionTable<SfnnHyper>& table();
  /// The family's reference values for `depth` hidden layers.
  static SfnnHyper defaults(const std::string& family, std::size_t depth);
  /// `j` over `base`; a number for a per-layer key applies to every layer;
  /// lengths and values checked for `depth` layers.
  static SfnnHyper read(const nlohmann::json& j, SfnnHyper base, std::size_t depth, const OptionContext& context);
  /// A spec's hyper over defaults(family, depth), errors prefixed "family: ".
  static SfnnHyper from_spec(const ModelSpec& spec);
  nlohmann::json to_json() const;
};

/// Hyper-parameters of VIB (ModelSpec::hyper); the member initialisers are the defaults.
struct VibHyper {
  int64_t k = 256;             ///< bottleneck size K
  double beta = 1e-3;          ///< weight of the KL term
  int64_t train_samples = 1;   ///< draws of z per training example
  int64_t test_samples = 12;   ///< draws averaged by the prediction rule

  static const OptionTable<VibHyper>& table();
  nlohmann::json to_json() const { return table().to_json(*this); }
};

/// SFNN, IMB-Joint and IMB-Greedy (they differ only in gamma, beta and
/// staging); hyper-parameters in SfnnHyper.
class SfnnModel : public TrainableModel {
 public:
  /// How forward_branching (training) builds its graph: kFused (default)
  /// makes each stochastic layer and the next linear map one node
  /// (bernoulli_branch_linear); kReference is the plain per-sample graph
  /// (straight-through samples of the expanded probabilities, then
  /// nn::Linear), kept for tests and for benchmarks that compare the two.
  enum class TrainingKernel { kFused, kReference };

  explicit SfnnModel(const ModelSpec& spec);

  /// One path per input (one sample per layer): [N, C].
  torch::Tensor logits(const torch::Tensor& x) override;
  /// S independent paths [S, N, C]; the first layer's pre-activation is
  /// computed once and shared by all paths.
  torch::Tensor sample_logits(const torch::Tensor& x, int64_t samples) override;
  torch::Tensor predict_proba(const torch::Tensor& x) override;
  torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& y) override;
  bool is_stochastic() const override { return sampling_ == Sampling::kOn; }
  int64_t num_classes() const override { return spec_.num_classes; }
  std::vector<int64_t> input_shape() const override { return spec_.input_shape; }
  int64_t prediction_samples() const override;
  std::string description() const override;
  std::string objective() const override;
  torch::Device device() const override { return device_; }
  void to(torch::Device device) override;
  void set_training(bool training) override { net_->train(training); }
  void set_sampling(Sampling s) override { sampling_ = s; }
  Sampling sampling() const override { return sampling_; }
  std::vector<torch::Tensor> parameters() override { return net_->parameters(); }
  torch::nn::Module& module() override { return *net_; }
  const ModelSpec& spec() const override { return spec_; }
  int64_t stages() const override;
  void set_stage(int64_t stage) override;

  /// Branching forward with the given samples per layer.
  SfnnForward forward_branching(const torch::Tensor& x, const std::vector<int64_t>& samples);
  /// The IMB objective and its terms for a batch, with the given samples per layer.
  struct Terms {
    torch::Tensor total;
    std::vector<torch::Tensor> vcr;          ///< VCR_0..VCR_L
    std::vector<torch::Tensor> compression;  ///< C_1..C_L
  };
  Terms objective_terms(const torch::Tensor& x, const torch::Tensor& y, const std::vector<int64_t>& samples,
                        const std::vector<double>& gamma, const std::vector<double>& beta);
  void set_training_kernel(TrainingKernel kernel) { kernel_ = kernel; }
  TrainingKernel training_kernel() const { return kernel_; }
  std::vector<int64_t> train_samples() const { return hyper_.train_samples; }
  std::vector<int64_t> test_samples() const { return hyper_.test_samples; }

 private:
  ModelSpec spec_;
  SfnnNet net_{nullptr};
  SfnnHyper hyper_;
  int64_t stage_ = 0;  ///< 0: joint; 1..L: greedy stage
  Sampling sampling_ = Sampling::kOn;
  TrainingKernel kernel_ = TrainingKernel::kFused;
  torch::Device device_{torch::kCPU};
};

/// Deep variational information bottleneck (Alemi et al. 2017):
///   encoder h = MLP(x) -> (mu, s) in R^K each, sigma = softplus(s),
///   z = mu + sigma * eps (eps ~ N(0, I)), logits = W_d z + b_d,
///   L = CE(logits, y) averaged over train_samples draws + beta KL(N(mu, sigma^2) || N(0, I)).
/// Prediction: mean softmax over test_samples draws (12). Hyper-parameters in VibHyper.
class VibNetImpl : public torch::nn::Module {
 public:
  VibNetImpl(int64_t input_dim, const std::vector<int64_t>& hidden, int64_t k, int64_t outputs, bool relu);
  Mlp encoder{nullptr};           ///< input -> hidden -> 2K (mu, pre-softplus sigma)
  torch::nn::Linear decoder{nullptr};  ///< K -> classes
};
TORCH_MODULE(VibNet);

class VibModel : public TrainableModel {
 public:
  explicit VibModel(const ModelSpec& spec);
  torch::Tensor logits(const torch::Tensor& x) override;
  /// Encoder once, S draws of z, decoder on [S*N, K]: [S, N, C].
  torch::Tensor sample_logits(const torch::Tensor& x, int64_t samples) override;
  torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& y) override;
  bool is_stochastic() const override { return sampling_ == Sampling::kOn; }
  int64_t num_classes() const override { return spec_.num_classes; }
  std::vector<int64_t> input_shape() const override { return spec_.input_shape; }
  int64_t prediction_samples() const override { return hyper_.test_samples; }
  std::string description() const override;
  std::string objective() const override;
  torch::Device device() const override { return device_; }
  void to(torch::Device device) override;
  void set_training(bool training) override { net_->train(training); }
  void set_sampling(Sampling s) override { sampling_ = s; }
  Sampling sampling() const override { return sampling_; }
  std::vector<torch::Tensor> parameters() override { return net_->parameters(); }
  torch::nn::Module& module() override { return *net_; }
  const ModelSpec& spec() const override { return spec_; }

  /// Encoder outputs (mu, sigma), each [N, K].
  std::pair<torch::Tensor, torch::Tensor> encode(const torch::Tensor& x);
  /// KL(N(mu, sigma^2) || N(0, I)) summed over K, [N].
  static torch::Tensor gaussian_kl(const torch::Tensor& mu, const torch::Tensor& sigma);

 private:
  ModelSpec spec_;
  VibNet net_{nullptr};
  VibHyper hyper_;
  Sampling sampling_ = Sampling::kOn;
  torch::Device device_{torch::kCPU};
};

}  // namespace imbench::models
