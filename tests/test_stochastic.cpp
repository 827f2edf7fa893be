// Tests of the stochastic families: the straight-through Bernoulli
// estimator, branching Monte Carlo, the VCR and KL terms, VIB, staging,
// and checkpoints of every family.
#include <gmock/gmock.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "core/remove_tree.h"
#include "core/errors.h"
#include "data/synthetic.h"
#include "models/checkpoint.h"
#include "models/evaluate.h"
#include "models/stochastic.h"
#include "models/train.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace imbench;
using namespace imbench::models;
using imbench::testing_support::toy;

namespace {

ModelSpec spec_for(const std::string& family, std::vector<int64_t> hidden = {24, 24}) {
  ModelSpec s;
  s.family = family;
  s.input_shape = {1, 28, 28};
  s.hidden = std::move(hidden);
  s.num_classes = 10;
  s.hyper = find_family(family).default_hyper(s.hidden.size());
  if (s.hyper.contains("train_samples") && s.hyper["train_samples"].is_array()) {
    s.hyper["train_samples"] = std::vector<int64_t>(s.hidden.size(), 4);
    s.hyper["test_samples"] = std::vector<int64_t>(s.hidden.size(), 8);
  }
  return s;
}

// Central finite differences of a scalar function of one double tensor
// against autograd, on up to `checks` elements; returns the largest
// relative error.
double max_fd_error(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& at,
                    int64_t checks = 40, double h = 1e-6) {
  auto x = at.detach().clone().requires_grad_();
  const auto g = torch::autograd::grad({f(x)}, {x})[0].flatten();
  auto flat = x.detach().flatten();
  double worst = 0;
  const int64_t n = flat.numel(), stride = std::max<int64_t>(1, n / checks);
  for (int64_t i = 0; i < n; i += stride) {
    auto plus = flat.clone(), minus = flat.clone();
    plus[i] += h;
    minus[i] -= h;
    const double fd = (f(plus.view_as(x)).item<double>() - f(minus.view_as(x)).item<double>()) / (2 * h);
    const double ad = g[i].item<double>();
    worst = std::max(worst, std::abs(fd - ad) / std::max(1e-3, std::abs(fd) + std::abs(ad)));
  }
  return worst;
}

SfnnModel& as_sfnn(TrainableModel& m) { return dynamic_cast<SfnnModel&>(m); }

}  // namespace

TEST(BernoulliEstimator, ForwardIsExactlyBinaryAndGradientIsSigmoidPrime) {
  torch::manual_seed(0);
  auto a = torch::randn({1000}, torch::requires_grad());
  auto p = torch::sigmoid(a);
  auto z = bernoulli_straight_through(p);
  EXPECT_TRUE(((z == 0) | (z == 1)).all().item<bool>());
  EXPECT_GT(z.sum().item<double>(), 0);
  EXPECT_LT(z.sum().item<double>(), 1000);
  auto w = torch::randn({1000});
  auto g = torch::autograd::grad({(z * w).sum()}, {a})[0];
  const auto s = torch::sigmoid(a.detach());
  EXPECT_TRUE(torch::allclose(g, w * s * (1 - s), 1e-6, 1e-7));
}

TEST(BernoulliEstimator, FrequenciesMatchPWithinFiveSigma) {
  // n = 200000 draws per probability; 5 standard errors of a binomial mean.
  torch::manual_seed(42);
  const int64_t n = 200000;
  for (float p : {0.01f, 0.1f, 0.5f, 0.9f, 0.999f}) {
    auto z = bernoulli_sample(torch::full({n}, p));
    const double freq = z.mean().item<double>();
    const double bound = 5 * std::sqrt(p * (1 - p) / static_cast<double>(n));
    EXPECT_NEAR(freq, p, bound) << "p = " << p;
  }
  EXPECT_EQ(bernoulli_sample(torch::zeros({1000})).sum().item<double>(), 0);
  EXPECT_EQ(bernoulli_sample(torch::ones({1000})).sum().item<double>(), 1000);
}

TEST(BernoulliEstimator, NeighbouringSamplesAreUncorrelatedAndSeedsReproduce) {
  torch::manual_seed(7);
  const int64_t n = 400000;
  auto z = bernoulli_sample(torch::full({n}, 0.5f));
  auto c = z - 0.5;
  const double corr = (c.slice(0, 0, n - 1) * c.slice(0, 1, n)).mean().item<double>() / 0.25;
  EXPECT_LT(std::abs(corr), 5.0 / std::sqrt(static_cast<double>(n)));
  // Two draws in a row differ; the same seed gives the same draws.
  auto second = bernoulli_sample(torch::full({n}, 0.5f));
  EXPECT_FALSE(torch::equal(z, second));
  torch::manual_seed(7);
  EXPECT_TRUE(torch::equal(z, bernoulli_sample(torch::full({n}, 0.5f))));
}

TEST(BernoulliReadout, OneUnitMatchesItsClosedFormAndSaturatedUnitsAreExact) {
  // One hidden unit with P(h = 1) = 0.3: E[softmax] = 0.7 softmax(b) + 0.3 softmax(w + b).
  torch::manual_seed(3);
  const int64_t n = 200000;
  const auto w = torch::tensor({{1.5f}, {-0.5f}});
  const auto b = torch::tensor({0.2f, 0.1f});
  const auto expected = 0.7 * torch::softmax(b, 0) + 0.3 * torch::softmax(w.squeeze(1) + b, 0);
  const auto got = bernoulli_readout(torch::full({1, 1}, 0.3f), w, b, n)[0];
  // The mean of n draws of a two-valued softmax: 5 standard errors.
  const double spread = (torch::softmax(b, 0) - torch::softmax(w.squeeze(1) + b, 0)).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(got, expected, 0, 5 * spread * std::sqrt(0.21 / n))) << got << expected;
  // p in {0, 1} (37 units: two 16-lane blocks and a tail): no randomness left.
  const auto p = (torch::rand({3, 37}) > 0.5).to(torch::kFloat);
  const auto w2 = torch::randn({5, 37}), b2 = torch::randn({5});
  EXPECT_TRUE(torch::allclose(bernoulli_readout(p, w2, b2, 7), torch::softmax(torch::matmul(p, w2.t()) + b2, -1), 1e-5,
                              1e-6));
}

TEST(BernoulliReadout, FusedKernelMatchesTorchOpsInDistributionAndSeedsReproduce) {
  torch::manual_seed(11);
  const int64_t n = 40000;
  const auto p = torch::rand({4, 45});
  const auto w = torch::randn({6, 45}) * 0.5, b = torch::randn({6});
  const auto fused = bernoulli_readout(p, w, b, n);
  const auto reference = bernoulli_readout_reference(p, w, b, n);
  EXPECT_EQ(fused.sizes(), (std::vector<int64_t>{4, 6}));
  EXPECT_TRUE(torch::allclose(fused.sum(1), torch::ones({4}), 1e-5));
  // Probabilities in [0, 1]: a mean of n draws has standard error <= 0.5 / sqrt(n); 5 sigma on a difference.
  EXPECT_TRUE(torch::allclose(fused, reference, 0, 5 * std::sqrt(2.0) * 0.5 / std::sqrt(static_cast<double>(n))))
      << (fused - reference).abs().max();
  EXPECT_FALSE(torch::equal(fused, bernoulli_readout(p, w, b, n)));
  torch::manual_seed(11);
  const auto p2 = torch::rand({4, 45});
  const auto w2 = torch::randn({6, 45}) * 0.5, b2 = torch::randn({6});
  EXPECT_TRUE(torch::equal(bernoulli_readout(p2, w2, b2, n), fused));
}

TEST(BernoulliReadout, SfnnPredictionMatchesTheBranchingForwardForEveryDepth) {
  torch::manual_seed(5);
  auto x = torch::rand({3, 1, 28, 28});
  torch::NoGradGuard no_grad;
  for (std::vector<int64_t> hidden : {std::vector<int64_t>{20}, {20, 18}, {12, 10, 9}}) {
    ModelSpec s = spec_for("sfnn", hidden);
    const int64_t per_layer = hidden.size() == 1 ? 20000 : hidden.size() == 2 ? 150 : 30;
    s.hyper["test_samples"] = std::vector<int64_t>(hidden.size(), per_layer);
    auto m = create_model(s);
    m->set_training(false);
    const auto fused = m->predict_proba(x);
    const auto branch = as_sfnn(*m).forward_branching(x, s.hyper["test_samples"].get<std::vector<int64_t>>()).logits;
    const auto reference = torch::softmax(branch, -1).reshape({3, -1, 10}).mean(1);
    EXPECT_TRUE(torch::allclose(fused, reference, 0, 0.01))
        << hidden.size() << " layers: " << (fused - reference).abs().max();
  }
}

TEST(Vcr, MatchesTheDefinitionOnAGivenLogLikelihoodTensor) {
  // B = 1, M = (2, 2): path probabilities 0.5, 0.25 | 0.125, 1.0.
  const auto probs = torch::tensor({0.5, 0.25, 0.125, 1.0}, torch::kDouble).view({1, 2, 2});
  const auto vcr = variational_conditional_relevance(probs.log());
  ASSERT_EQ(vcr.size(), 3u);
  EXPECT_NEAR(vcr[0].item<double>(), -std::log((0.5 + 0.25 + 0.125 + 1.0) / 4), 1e-12);
  EXPECT_NEAR(vcr[1].item<double>(), -0.5 * (std::log((0.5 + 0.25) / 2) + std::log((0.125 + 1.0) / 2)), 1e-12);
  EXPECT_NEAR(vcr[2].item<double>(),
              -0.25 * (std::log(0.5) + std::log(0.25) + std::log(0.125) + std::log(1.0)), 1e-12);
}

TEST(Vcr, OneUnitNetworkMatchesItsClosedForm) {
  // One hidden unit with P(z = 1) = 0.3 (zero weights, bias logit(0.3)) and
  // an output layer whose logits depend on z only: p(y|z) is known exactly.
  // With M = 40000 samples, VCR_0 -> -log E[p(y|z)] and VCR_1 -> -E[log p(y|z)].
  ModelSpec s = spec_for("sfnn", {1});
  s.num_classes = 2;
  s.hyper["train_samples"] = std::vector<int64_t>{40000};
  auto model = create_model(s);
  auto& net = dynamic_cast<SfnnNetImpl&>(model->module());
  {
    torch::NoGradGuard g;
    for (auto& p : net.parameters()) p.zero_();
    auto hidden = net.layers[0]->as<torch::nn::Linear>();
    hidden->bias.fill_(std::log(0.3 / 0.7));
    auto out = net.layers[1]->as<torch::nn::Linear>();
    out->weight.copy_(torch::tensor({{0.0f}, {3.0f}}));  // z = 1 raises class 1 by 3
    out->bias.copy_(torch::tensor({0.5f, -1.0f}));
  }
  auto x = torch::rand({1, 1, 28, 28});
  auto y = torch::tensor({1}, torch::kLong);
  auto p_y_given = [](double z) {  // softmax of (0.5, -1 + 3z)[1]
    const double l0 = 0.5, l1 = -1.0 + 3.0 * z;
    return std::exp(l1) / (std::exp(l0) + std::exp(l1));
  };
  const double expected_vcr0 = -std::log(0.7 * p_y_given(0) + 0.3 * p_y_given(1));
  const double expected_vcr1 = -(0.7 * std::log(p_y_given(0)) + 0.3 * std::log(p_y_given(1)));
  torch::manual_seed(0);
  auto terms = as_sfnn(*model).objective_terms(x, y, {40000}, {1, 1}, {0});
  // Standard error of the sample frequency of z: sqrt(0.21 / 40000) ~ 0.0023.
  const double dp = 5 * std::sqrt(0.21 / 40000.0);
  EXPECT_NEAR(terms.vcr[0].item<double>(), expected_vcr0, dp * std::abs(p_y_given(1) - p_y_given(0)) / 0.3);
  EXPECT_NEAR(terms.vcr[1].item<double>(), expected_vcr1, dp * std::abs(std::log(p_y_given(1) / p_y_given(0))));
}

TEST(Vcr, LastTermIsTheMeanPathNllAndFirstTheNetworkNll) {
  torch::manual_seed(1);
  auto model = create_model(spec_for("imb-joint"));
  auto& sfnn = as_sfnn(*model);
  auto x = torch::rand({5, 1, 28, 28});
  auto y = torch::randint(10, {5}, torch::kLong);
  torch::manual_seed(9);
  const auto fwd = sfnn.forward_branching(x, {3, 4});
  ASSERT_EQ(fwd.logits.sizes(), (std::vector<int64_t>{5, 3, 4, 10}));
  torch::manual_seed(9);
  const auto terms = sfnn.objective_terms(x, y, {3, 4}, {1, 1, 1}, {0, 0});
  // Plain loops over the paths.
  const auto lsm = torch::log_softmax(fwd.logits, -1).to(torch::kDouble);
  double nll_paths = 0, vcr0 = 0, vcr1 = 0;
  for (int64_t b = 0; b < 5; ++b) {
    double mean_p = 0;
    for (int64_t i = 0; i < 3; ++i) {
      double mean_p_i = 0;
      for (int64_t j = 0; j < 4; ++j) {
        const double lp = lsm[b][i][j][y[b].item<int64_t>()].item<double>();
        nll_paths -= lp;
        mean_p += std::exp(lp) / 12;
        mean_p_i += std::exp(lp) / 4;
      }
      vcr1 -= std::log(mean_p_i);
    }
    vcr0 -= std::log(mean_p);
  }
  EXPECT_NEAR(terms.vcr[2].item<double>(), nll_paths / 60, 1e-5);
  EXPECT_NEAR(terms.vcr[1].item<double>(), vcr1 / 15, 1e-5);
  EXPECT_NEAR(terms.vcr[0].item<double>(), vcr0 / 5, 1e-5);
  EXPECT_LE(terms.vcr[0].item<double>(), terms.vcr[1].item<double>() + 1e-6);  // Jensen
  EXPECT_LE(terms.vcr[1].item<double>(), terms.vcr[2].item<double>() + 1e-6);
}

TEST(Imb, GammaOneZeroZeroAndBetaZeroIsExactlySfnn) {
  auto sfnn_spec = spec_for("sfnn");
  auto imb_spec = spec_for("imb-joint");
  imb_spec.hyper["gamma"] = std::vector<double>{1, 0, 0};
  imb_spec.hyper["beta"] = std::vector<double>{0, 0};
  torch::manual_seed(3);
  auto a = create_model(sfnn_spec);
  torch::manual_seed(3);
  auto b = create_model(imb_spec);
  auto x = torch::rand({8, 1, 28, 28});
  auto y = torch::randint(10, {8}, torch::kLong);
  torch::manual_seed(11);
  auto la = a->loss(x, y);
  torch::manual_seed(11);
  auto lb = b->loss(x, y);
  EXPECT_EQ(la.item<float>(), lb.item<float>());
  const auto ga = torch::autograd::grad({la}, a->parameters(), {}, false, false, true);
  const auto gb = torch::autograd::grad({lb}, b->parameters(), {}, false, false, true);
  ASSERT_EQ(ga.size(), gb.size());
  for (std::size_t i = 0; i < ga.size(); ++i) {
    ASSERT_EQ(ga[i].defined(), gb[i].defined());
    if (ga[i].defined()) {
      EXPECT_TRUE(torch::equal(ga[i], gb[i])) << i;
    }
  }
  // And the full IMB objective differs.
  torch::manual_seed(3);
  auto c = create_model(spec_for("imb-joint"));
  torch::manual_seed(11);
  EXPECT_GT(std::abs(c->loss(x, y).item<float>() - la.item<float>()), 1e-4);
}

TEST(Kl, BernoulliKlMatchesClosedFormAndFiniteDifferences) {
  const double a = 0.7, rho = -0.4;
  const double p = 1 / (1 + std::exp(-a)), r = 1 / (1 + std::exp(-rho));
  const double closed = p * std::log(p / r) + (1 - p) * std::log((1 - p) / (1 - r));
  auto ta = torch::tensor({a}, torch::kDouble), tr = torch::tensor({rho}, torch::kDouble);
  EXPECT_NEAR(bernoulli_kl_from_logits(ta, tr).item<double>(), closed, 1e-12);
  // Stable where sigmoid saturates.
  EXPECT_TRUE(std::isfinite(bernoulli_kl_from_logits(torch::tensor({80.0}), torch::tensor({-30.0})).item<float>()));
  torch::manual_seed(0);
  const auto av = torch::randn({3, 5}, torch::kDouble) * 3, rv = torch::randn({5}, torch::kDouble);
  EXPECT_LT(max_fd_error([&](const torch::Tensor& t) { return bernoulli_kl_from_logits(t, rv).sum(); }, av), 1e-6);
  EXPECT_LT(max_fd_error([&](const torch::Tensor& t) { return bernoulli_kl_from_logits(av, t).sum(); }, rv), 1e-6);
}

TEST(Vib, GaussianKlClosedFormAndLossFiniteDifferences) {
  auto mu = torch::tensor({{0.5, -1.0}}, torch::kDouble), sigma = torch::tensor({{2.0, 0.5}}, torch::kDouble);
  const double expected = 0.5 * (0.25 + 4 - 1 - 2 * std::log(2.0)) + 0.5 * (1 + 0.25 - 1 - 2 * std::log(0.5));
  EXPECT_NEAR(VibModel::gaussian_kl(mu, sigma).item<double>(), expected, 1e-12);
  // The loss as a function of the input, with the noise fixed by reseeding.
  auto spec = spec_for("vib", {6});
  spec.hyper["k"] = 3;
  spec.hyper["train_samples"] = 2;
  spec.hyper["beta"] = 0.1;
  auto model = create_model(spec);
  model->module().to(torch::kDouble);
  auto y = torch::tensor({1, 4}, torch::kLong);
  const auto x = torch::rand({2, 1, 28, 28}, torch::kDouble) * 0.5 + 0.25;
  const auto loss_at = [&](const torch::Tensor& t) {
    torch::manual_seed(5);
    return model->loss(t, y);
  };
  EXPECT_LT(max_fd_error(loss_at, x), 1e-5);
  // The check can fail: a different noise draw per evaluation breaks it.
  torch::manual_seed(6);
  EXPECT_GT(max_fd_error([&](const torch::Tensor& t) { return model->loss(t, y); }, x), 1e-3);
}

TEST(Stochastic, SampleLogitsShapesAndMeanField) {
  torch::manual_seed(0);
  auto x = torch::rand({6, 1, 28, 28});
  for (const char* family : {"sfnn", "imb-joint", "imb-greedy", "vib"}) {
    auto m = create_model(spec_for(family));
    EXPECT_TRUE(m->is_stochastic()) << family;
    EXPECT_EQ(m->prediction_rule(), PredictionRule::kMeanSoftmax) << family;
    auto s = m->sample_logits(x, 16);
    EXPECT_EQ(s.sizes(), (std::vector<int64_t>{16, 6, 10})) << family;
    EXPECT_FALSE(torch::allclose(s[0], s[1])) << family;
    EXPECT_TRUE(torch::allclose(m->predict_proba(x).sum(1), torch::ones({6}), 1e-5)) << family;
    SamplingGuard guard(*m, Sampling::kMeanField);
    EXPECT_FALSE(m->is_stochastic()) << family;
    EXPECT_TRUE(torch::equal(m->logits(x), m->logits(x))) << family;
    EXPECT_THAT(m->description(), testing::HasSubstr("mean-field")) << family;
  }
}

TEST(Stochastic, PathSamplesMatchBranchingSamplesInDistribution) {
  // sample_logits draws one sample per layer per path; the mean softmax over
  // many paths must agree with the branching estimate.
  torch::manual_seed(0);
  auto m = create_model(spec_for("sfnn", {16, 16}));
  auto x = torch::rand({4, 1, 28, 28});
  torch::NoGradGuard no_grad;
  auto path_mean = torch::softmax(m->sample_logits(x, 20000), -1).mean(0);
  auto branch = as_sfnn(*m).forward_branching(x, {150, 150}).logits;
  auto branch_mean = torch::softmax(branch, -1).reshape({4, -1, 10}).mean(1);
  EXPECT_TRUE(torch::allclose(path_mean, branch_mean, 0, 0.01)) << (path_mean - branch_mean).abs().max();
}

TEST(Greedy, StagesFreezeTheLayersBelow) {
  torch::manual_seed(0);
  auto m = create_model(spec_for("imb-greedy"));
  ASSERT_EQ(m->stages(), 2);
  auto& net = dynamic_cast<SfnnNetImpl&>(m->module());
  m->set_stage(2);
  for (auto& p : net.layers[0]->parameters()) EXPECT_FALSE(p.requires_grad());
  EXPECT_FALSE(net.prior_logits[0].requires_grad());
  for (auto& p : net.layers[1]->parameters()) EXPECT_TRUE(p.requires_grad());
  for (auto& p : net.layers[2]->parameters()) EXPECT_TRUE(p.requires_grad());
  m->set_stage(1);
  for (auto& p : net.parameters()) EXPECT_TRUE(p.requires_grad());
  EXPECT_THROW(m->set_stage(3), UsageError);
  EXPECT_EQ(create_model(spec_for("imb-joint"))->stages(), 1);
}

TEST(Greedy, TrainingRunsEveryStageAndKeepsFrozenWeightsInStageTwo) {
  torch::manual_seed(0);
  auto m = create_model(spec_for("imb-greedy"));
  auto& net = dynamic_cast<SfnnNetImpl&>(m->module());
  TrainOptions o;
  o.epochs = 4;
  o.validation_size = 0;
  const auto ds = toy(300, "train");
  const auto r = train(*m, ds, nullptr, o);
  ASSERT_EQ(r.history.size(), 4u);
  EXPECT_EQ(r.history[1].stage, 1);
  EXPECT_EQ(r.history[2].stage, 2);
  for (auto& p : net.parameters()) EXPECT_TRUE(p.requires_grad());  // unfrozen afterwards
  // Stage 2 alone must not move layer 1.
  const auto before = net.layers[0]->as<torch::nn::Linear>()->weight.clone();
  m->set_stage(2);
  std::vector<torch::Tensor> trainable;
  for (auto& p : net.parameters())
    if (p.requires_grad()) trainable.push_back(p);
  auto loss = m->loss(ds.images.slice(0, 0, 50), ds.labels.slice(0, 0, 50));
  loss.backward();
  EXPECT_FALSE(net.layers[0]->as<torch::nn::Linear>()->weight.grad().defined());
  EXPECT_TRUE(torch::equal(before, net.layers[0]->as<torch::nn::Linear>()->weight));
}

class EveryFamily : public testing::TestWithParam<std::string> {};

TEST_P(EveryFamily, ReachesHighAccuracyOnSeparableData) {
  torch::manual_seed(0);
  auto m = create_model(spec_for(GetParam()));
  TrainOptions o;
  o.epochs = 6;
  o.validation_size = 0;
  o.learning_rate = 3e-3;
  train(*m, toy(2000, "train"), nullptr, o);
  EXPECT_GE(evaluate(*m, toy(400, "test")).mean_accuracy, 0.95) << GetParam();
}

TEST_P(EveryFamily, CheckpointRoundTripGivesTheSamePredictionsForTheSameSeed) {
  const auto dir = fs::temp_directory_path() / fmt::format("imbench-ckpt-{}-{}", ::getpid(), GetParam());
  torch::manual_seed(0);
  auto m = create_model(spec_for(GetParam()));
  TrainOptions o;
  o.epochs = 2;
  o.validation_size = 0;
  train(*m, toy(200, "train"), nullptr, o);
  save_checkpoint((dir / "m.ckpt").string(), *m, {});
  auto loaded = load_checkpoint((dir / "m.ckpt").string());
  EXPECT_EQ(loaded.model->description(), m->description());
  EXPECT_EQ(loaded.meta.spec.hyper, m->spec().hyper);
  auto x = torch::rand({10, 1, 28, 28});
  torch::manual_seed(21);
  auto a = m->predict_proba(x);
  torch::manual_seed(21);
  auto b = loaded.model->predict_proba(x);
  EXPECT_TRUE(torch::equal(a, b));
  remove_tree(dir.string());
}

INSTANTIATE_TEST_SUITE_P(Families, EveryFamily, testing::Values("det", "sfnn", "imb-joint", "imb-greedy", "vib"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(Stochastic, BadHyperParametersAreUsageErrors) {
  auto s = spec_for("imb-joint");
  s.hyper["gamma"] = std::vector<double>{1, 1};
  EXPECT_THROW(create_model(s), UsageError);
  s = spec_for("sfnn");
  s.hyper["train_samples"] = std::vector<int64_t>{0, 4};
  EXPECT_THROW(create_model(s), UsageError);
  s = spec_for("sfnn", {});
  EXPECT_THROW(create_model(s), UsageError);
  s = spec_for("vib");
  s.hyper["k"] = 0;
  EXPECT_THROW(create_model(s), UsageError);
}

// The fused training graph (bernoulli_branch_linear, the VCR head and the KL
// node) against the plain per-sample graph. Both draw the same samples for
// the same seed (checked bit for bit); they add the same products in another
// order, so values and gradients agree to float rounding, not bit for bit.
// Bounds: forward values 1e-5 relative, gradients 1e-4 relative + 1e-6
// absolute. ctest also runs these with IMBENCH_NO_AVX512=1 (the BLAS path of
// bernoulli_branch_linear instead of the AVX-512 output-layer kernel).
TEST(FusedTraining, BranchingSamplerDrawsExactlyTheSamplesOfTheExpandedProbabilities) {
  torch::manual_seed(5);
  const auto p = torch::rand({5, 3, 37});
  torch::manual_seed(9);
  const auto fused = bernoulli_sample_branching(p, 6);
  torch::manual_seed(9);
  const auto plain = bernoulli_sample(p.unsqueeze(-2).expand({5, 3, 6, 37}));
  ASSERT_EQ(fused.sizes(), plain.sizes());
  EXPECT_TRUE(torch::equal(fused, plain));
  EXPECT_GT(fused.sum().item<double>(), 0);
}

TEST(FusedTraining, BranchLinearMatchesStraightThroughSamplesThenLinear) {
  // 10 outputs: the fused output-layer kernel where the CPU has AVX-512; 40:
  // materialised samples and BLAS. 37 units and 19 x 6 rows exercise the
  // tails of 16-unit words and 8-row blocks.
  for (int64_t outputs : {10, 40}) {
    torch::manual_seed(1);
    const auto a = torch::randn({19, 37});
    const auto w0 = torch::randn({outputs, 37}) * 0.3, b0 = torch::randn({outputs});
    const auto g = torch::randn({19, 6, outputs});
    auto run = [&](bool fused) {
      auto aa = a.clone().requires_grad_();
      auto w = w0.clone().requires_grad_(), b = b0.clone().requires_grad_();
      torch::manual_seed(21);
      const auto p = torch::sigmoid(aa);
      torch::Tensor out;
      if (fused) {
        out = bernoulli_branch_linear(p, w, b, 6);
      } else {
        out = torch::nn::functional::linear(bernoulli_straight_through(p.unsqueeze(-2).expand({19, 6, 37})), w, b);
      }
      (out * g).sum().backward();
      return std::vector<torch::Tensor>{out.detach(), aa.grad(), w.grad(), b.grad()};
    };
    const auto f = run(true), r = run(false);
    const char* names[] = {"output", "grad a", "grad weight", "grad bias"};
    EXPECT_TRUE(torch::allclose(f[0], r[0], 1e-5, 1e-5)) << outputs << " outputs: " << names[0];
    for (int i = 1; i < 4; ++i)
      EXPECT_TRUE(torch::allclose(f[i], r[i], 1e-4, 1e-6))
          << outputs << " outputs: " << names[i] << " max diff " << (f[i] - r[i]).abs().max().item<double>();
  }
}

TEST(FusedTraining, EveryStochasticFamilyGetsTheReferenceLossTermsAndGradients) {
  for (const std::string family : {"sfnn", "imb-joint", "imb-greedy"}) {
    for (const std::vector<int64_t>& hidden : {std::vector<int64_t>{24, 24}, std::vector<int64_t>{40}, std::vector<int64_t>{20, 18, 17}}) {
      auto spec = spec_for(family, hidden);
      torch::manual_seed(3);
      auto model = create_model(spec);
      auto& sfnn = as_sfnn(*model);
      if (family == "imb-greedy") sfnn.set_stage(2 <= static_cast<int64_t>(hidden.size()) ? 2 : 1);
      const auto x = torch::rand({8, 1, 28, 28});
      const auto y = torch::randint(10, {8}, torch::kLong);
      const std::vector<double> gamma(hidden.size() + 1, 1.0), beta(hidden.size(), 0.01);
      auto run = [&](SfnnModel::TrainingKernel kernel) {
        sfnn.set_training_kernel(kernel);
        torch::manual_seed(17);
        const auto terms = sfnn.objective_terms(x, y, sfnn.train_samples(), gamma, beta);
        torch::manual_seed(17);
        const auto loss = model->loss(x, y);
        std::vector<torch::Tensor> out{loss.detach()};
        for (const auto& v : terms.vcr) out.push_back(v.detach());
        for (const auto& c : terms.compression) out.push_back(c.detach());
        std::vector<torch::Tensor> trainable;
        for (auto& p : model->parameters())
          if (p.requires_grad()) trainable.push_back(p);
        for (auto& g : torch::autograd::grad({loss}, trainable, {}, false, false, true))
          out.push_back(g.defined() ? g : torch::Tensor());
        return out;
      };
      const auto f = run(SfnnModel::TrainingKernel::kFused);
      const auto r = run(SfnnModel::TrainingKernel::kReference);
      ASSERT_EQ(f.size(), r.size());
      const std::size_t values = 1 + 2 * hidden.size() + 1;
      for (std::size_t i = 0; i < f.size(); ++i) {
        const auto where = fmt::format("{} {}: item {}", family, fmt::join(hidden, "-"), i);
        ASSERT_EQ(f[i].defined(), r[i].defined()) << where;
        if (!f[i].defined()) continue;
        if (i < values)
          EXPECT_TRUE(torch::allclose(f[i], r[i], 1e-5, 1e-6))
              << where << ": " << f[i].item<double>() << " vs " << r[i].item<double>();
        else
          EXPECT_TRUE(torch::allclose(f[i], r[i], 1e-4, 1e-6))
              << where << " (gradient): max diff " << (f[i] - r[i]).abs().max().item<double>();
      }
    }
  }
}
