#include "attacks/square.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "attacks/fgsm.h"
#include "core/errors.h"

namespace imbench::attacks {
namespace {

LossKind parse_square_loss(const std::string& name) {
  const auto kind = parse_loss(name);
  if (kind == LossKind::kDlr) throw UsageError("the square attack takes the margin or ce loss, not dlr");
  return kind;
}

// An input [N, ...] seen as images [N, C, H, W]: the last two dimensions are
// the pixels, the others the channels; a vector [D] is one row (H = 1).
struct Geometry {
  int64_t c = 1, h = 1, w = 1;
};

Geometry geometry_of(const torch::Tensor& x) {
  const int64_t d = x.dim() - 1;
  Geometry g;
  if (d == 1) g.w = x.size(1);
  if (d >= 2) {
    g.h = x.size(d - 1);
    g.w = x.size(d);
    for (int64_t k = 1; k < d - 1; ++k) g.c *= x.size(k);
  }
  return g;
}

struct Side {
  int64_t h = 1, w = 1;
};

// The window covering a share p of a channel's pixels: a square of side
// round(sqrt(p H W)) (at most min(H, W)), or for one row an interval of
// round(p W); at least min_side, odd when asked (L2).
Side window_side(double p, const Geometry& g, int64_t min_side, bool odd) {
  const auto fit = [&](int64_t s, int64_t limit) {
    s = std::max(s, min_side);
    if (odd && s % 2 == 0) ++s;
    return std::max<int64_t>(1, std::min(s, limit));
  };
  if (g.h == 1) return {1, fit(std::llround(p * static_cast<double>(g.w)), g.w)};
  const int64_t s = fit(std::llround(std::sqrt(p * static_cast<double>(g.h * g.w))), std::min(g.h, g.w));
  return {s, s};
}

torch::TensorOptions float_options(const torch::Tensor& like) { return like.options().dtype(torch::kFloat); }

// +1 or -1 with equal probability.
torch::Tensor random_signs(at::IntArrayRef shape, const torch::TensorOptions& o) {
  return torch::rand(shape, o).lt(0.5).to(o.dtype()) * 2 - 1;
}

// A window of `side` at a random position per example: the flat pixel
// indices (h * W + w) of its pixels, [n, side.h * side.w], and (with_mask)
// its mask [n, 1, H, W].
struct Window {
  torch::Tensor index, mask;
};

Window random_window(int64_t n, const Geometry& g, Side side, const torch::TensorOptions& o, bool with_mask) {
  const auto lo = o.dtype(torch::kLong);
  const auto corner = [&](int64_t size, int64_t s) {
    return (torch::rand({n}, o.dtype(torch::kFloat)) * static_cast<double>(size - s + 1))
        .floor()
        .to(torch::kLong)
        .clamp_max(size - s);
  };
  const auto vh = corner(g.h, side.h), vw = corner(g.w, side.w);
  const auto inside = [&](const torch::Tensor& v, int64_t size, int64_t s) {
    const auto k = torch::arange(size, lo).unsqueeze(0);
    return k.ge(v.unsqueeze(1)) & k.lt((v + s).unsqueeze(1));
  };
  Window win;
  if (with_mask) win.mask = inside(vh, g.h, side.h).view({n, 1, g.h, 1}) & inside(vw, g.w, side.w).view({n, 1, 1, g.w});
  win.index = ((vh.view({n, 1, 1}) + torch::arange(side.h, lo).view({1, side.h, 1})) * g.w + vw.view({n, 1, 1}) +
               torch::arange(side.w, lo).view({1, 1, side.w}))
                  .view({n, side.h * side.w});
  return win;
}

// Concentric rectangles around the centre (a/2, b/2) of an a x b window, unit
// L2 norm: a pixel at Chebyshev distance d from the centre weighs
// sum_{k=d}^{K-1} 1/(k+1)^2, K = max(a/2, b/2) + 1 (the paper's L2 shape).
torch::Tensor rectangles(int64_t a, int64_t b) {
  auto r = torch::zeros({a, b}, torch::kFloat);
  if (a == 0 || b == 0) return r;
  const int64_t k_max = std::max(a / 2, b / 2) + 1;
  std::vector<double> tail(static_cast<std::size_t>(k_max) + 1, 0.0);
  for (int64_t k = k_max - 1; k >= 0; --k)
    tail[static_cast<std::size_t>(k)] =
        tail[static_cast<std::size_t>(k) + 1] + 1.0 / static_cast<double>((k + 1) * (k + 1));
  auto acc = r.accessor<float, 2>();
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j) {
      const int64_t d = std::max(std::abs(i - a / 2), std::abs(j - b / 2));
      acc[i][j] = static_cast<float>(tail[static_cast<std::size_t>(d)]);
    }
  return r / r.norm();
}

// The two-lobed profile of a window: +rectangles on one half, -rectangles on
// the other, the halves split between rows or between columns; unit L2 norm.
torch::Tensor profile(Side s, bool split_rows) {
  const auto p = split_rows ? torch::cat({rectangles(s.h / 2, s.w), -rectangles(s.h - s.h / 2, s.w)}, 0)
                            : torch::cat({rectangles(s.h, s.w / 2), -rectangles(s.h, s.w - s.w / 2)}, 1);
  return p / p.norm();
}

// Per example the profile split by rows or by columns at random (one-row
// windows split by columns, one-column windows by rows): [n, 1, s.h * s.w].
torch::Tensor random_profiles(int64_t n, Side s, const torch::TensorOptions& o) {
  const auto flat = [&](bool rows) { return profile(s, rows).to(o.device()).view({1, 1, s.h * s.w}); };
  if (s.h == 1 || s.w == 1) return flat(s.w == 1).expand({n, 1, s.h * s.w});
  return torch::where(torch::rand({n, 1, 1}, o).lt(0.5), flat(true), flat(false));
}

torch::Tensor per_example_l2(const torch::Tensor& d) { return d.flatten(1).norm(2, 1).view(per_example_shape(d)); }

struct Step {
  const ThreatModel& threat;
  Geometry g;
  float eps() const { return static_cast<float>(threat.eps); }
  torch::Tensor clip(const torch::Tensor& v) const { return v.clamp(threat.lower, threat.upper); }

  // Vertical stripes: each column of each channel at x + eps or x - eps.
  torch::Tensor linf_start(const torch::Tensor& x4) const {
    const int64_t n = x4.size(0);
    return clip(x4 + eps() * random_signs({n, g.c, 1, g.w}, float_options(x4)));
  }

  // A grid of tiles (side H/5, W/5; for one row, 5 intervals), each a signed
  // profile per channel, scaled to norm eps.
  torch::Tensor l2_start(const torch::Tensor& x4) const {
    const int64_t n = x4.size(0);
    const auto o = float_options(x4);
    const Side t{std::max<int64_t>(g.h / 5, 1), std::max<int64_t>(g.w / 5, 1)};
    const int64_t nh = g.h / t.h, nw = g.w / t.w;
    const int64_t oh = (g.h - nh * t.h) / 2, ow = (g.w - nw * t.w) / 2;
    auto delta = torch::zeros_like(x4);
    for (int64_t a = 0; a < nh; ++a)
      for (int64_t b = 0; b < nw; ++b) {
        const auto tile = random_profiles(n, t, o).view({n, 1, t.h, t.w}) * random_signs({n, g.c, 1, 1}, o);
        delta.slice(2, oh + a * t.h, oh + (a + 1) * t.h).slice(3, ow + b * t.w, ow + (b + 1) * t.w).add_(tile);
      }
    return clip(x4 + eps() * delta / (per_example_l2(delta) + 1e-12));
  }

  // The window of each channel set to x + eps or x - eps. A colour that
  // would leave the window as it is (it already holds that colour) is
  // replaced by one of the 2^C - 1 others, uniformly: the paper's redraw
  // until the window changes, without a loop.
  torch::Tensor linf_candidate(const torch::Tensor& x4, const torch::Tensor& best4, double p) const {
    const int64_t n = x4.size(0), pixels = g.h * g.w;
    const auto o = float_options(x4);
    const Side side = window_side(p, g, 1, false);
    const auto index = random_window(n, g, side, o, false).index.unsqueeze(1).expand({n, g.c, side.h * side.w});
    const auto x_w = x4.reshape({n, g.c, pixels}).gather(2, index);
    const auto best = best4.reshape({n, g.c, pixels});
    const auto best_w = best.gather(2, index);
    auto colour = random_signs({n, g.c, 1}, o);
    auto window = clip(x_w + eps() * colour);
    const auto same = window.eq(best_w).flatten(1).all(1).view({n, 1, 1});
    colour = torch::where(same, colour * other_colour(n, o), colour);
    window = clip(x_w + eps() * colour);
    return best.scatter(2, index, window).view_as(x4);
  }

  // Per example the channels to flip to reach another colour, as factors
  // +-1 [n, C, 1]: the bits of a uniform integer in [1, 2^C) (C <= 62); with
  // more channels, random flips and channel 0 always flipped.
  torch::Tensor other_colour(int64_t n, const torch::TensorOptions& o) const {
    const auto lo = o.dtype(torch::kLong);
    torch::Tensor bits;
    if (g.c <= 62) {
      const auto m = torch::randint(1, int64_t{1} << g.c, {n, 1}, lo);
      bits = m.bitwise_right_shift(torch::arange(g.c, lo).unsqueeze(0)).bitwise_and(1).to(torch::kBool);
    } else {
      bits = torch::rand({n, g.c}, o).lt(0.5);
      bits.select(1, 0).fill_(true);
    }
    return (1 - 2 * bits.to(o.dtype())).unsqueeze(2);
  }

  // The paper's L2 step: the mass of the perturbation in windows W1 and W2
  // (per channel), plus the unused share of the budget, goes to W1 as its old
  // content (normalised) plus a fresh signed profile; W2 is zeroed outside
  // W1; the whole perturbation is scaled back to norm eps.
  torch::Tensor l2_candidate(const torch::Tensor& x4, const torch::Tensor& best4, double p) const {
    const int64_t n = x4.size(0), pixels = g.h * g.w;
    const auto o = float_options(x4);
    const Side side = window_side(p, g, 3, true);
    const int64_t k = side.h * side.w;
    const auto w1 = random_window(n, g, side, o, true), w2 = random_window(n, g, side, o, true);
    auto delta = (best4 - x4).reshape({n, g.c, pixels});
    const auto index = w1.index.unsqueeze(1).expand({n, g.c, k});
    const auto in_w1 = delta.gather(2, index);
    const auto norm_w1 = in_w1.norm(2, {2}, true);
    const auto norm_all = delta.flatten(1).norm(2, 1).view({n, 1, 1});
    const auto both = (w1.mask | w2.mask).view({n, 1, pixels});
    const auto norm_both = (delta * both).pow(2).sum(2, true).sqrt();
    const double eps2 = threat.eps * threat.eps;
    const auto budget = ((eps2 - norm_all.pow(2)).clamp_min(0) / static_cast<double>(g.c) + norm_both.pow(2)).sqrt();
    auto fresh = random_profiles(n, side, o) * random_signs({n, g.c, 1}, o) + in_w1 / (norm_w1 + 1e-12);
    fresh = fresh / (fresh.norm(2, {2}, true) + 1e-12) * budget;
    delta = delta.masked_fill(w2.mask.view({n, 1, pixels}), 0).scatter(2, index, fresh).view_as(x4);
    return clip(x4 + eps() * delta / (per_example_l2(delta) + 1e-12));
  }
};

struct Best {
  torch::Tensor x, adv, loss;  // x [n, ...] as the input, adversarial [n], loss [n]
};

// Per example: adversarial beats not adversarial, then the higher loss.
torch::Tensor better_than(const torch::Tensor& adv, const torch::Tensor& loss, const torch::Tensor& adv_old,
                          const torch::Tensor& loss_old) {
  return (adv & adv_old.logical_not()) | (adv.eq(adv_old) & loss.gt(loss_old));
}

}  // namespace

const OptionTable<SquareOptions>& SquareOptions::table() {
  using O = SquareOptions;
  static const auto table =
      OptionTable<O>()
          .integer("queries", &O::queries,
                   "loss evaluations per example and restart, the initial point included; AutoAttack: 5000",
                   budget(1, kMaxQueries))
          .number("p_init", &O::p_init,
                  "initial share of a channel's pixels a square covers, halved on the paper's schedule rescaled to "
                  "the queries; AutoAttack: 0.8",
                  above_and_at_most(0, 1))
          .integer("restarts", &O::restarts, "runs from fresh starts on the examples not yet fooled; the best is kept",
                   budget(1, kMaxRestarts))
          .boolean("early_stop", &O::early_stop, "stop querying an example once it is adversarial")
          .choice("loss", &O::loss, "score to maximise: margin (the paper) or ce (cross-entropy)",
                  std::vector<LossKind>{LossKind::kMargin, LossKind::kCrossEntropy}, to_string, parse_square_loss);
  return table;
}

SquareOptions SquareOptions::from_json(const nlohmann::json& j, OptionSpelling spelling) {
  return table().from_json(j, attack_option_context("square", spelling));
}

nlohmann::json SquareOptions::to_json() const { return table().to_json(*this); }

double Square::p_at(double p_init, int64_t i, int64_t queries) {
  static constexpr int64_t kHalvings[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
  const int64_t it = i * 10000 / std::max<int64_t>(queries, 1);
  double p = p_init;
  for (int64_t h : kHalvings)
    if (it > h) p /= 2;
  return p;
}

torch::Tensor Square::perturb(AttackContext& ctx) {
  torch::NoGradGuard no_grad;
  if (ctx.threat.eps == 0) return ctx.x.clone();
  const auto loss = make_loss(o_.loss);
  const Step step{ctx.threat, geometry_of(ctx.x)};
  const auto& g = step.g;
  const bool linf = ctx.threat.norm == Norm::kLinf;

  // One run from a fresh start on the examples x0 (labels y, targets t).
  const auto one_run = [&](const torch::Tensor& x0, const torch::Tensor& y, const torch::Tensor& t) {
    const int64_t n = x0.size(0);
    const auto as_input = [&](const torch::Tensor& v) {
      auto shape = x0.sizes().vec();
      shape[0] = v.size(0);
      return v.reshape(shape);
    };
    const auto x4 = x0.reshape({n, g.c, g.h, g.w});
    auto best4 = linf ? step.linf_start(x4) : step.l2_start(x4);
    auto out = ctx.oracle.loss_only(as_input(best4), y, t, loss);
    auto best_loss = out.loss;
    auto best_adv = is_adversarial(out.log_probs, y, t);
    for (int64_t i = 0; i + 1 < o_.queries; ++i) {
      // Only the examples not yet adversarial are queried (one host sync per query).
      torch::Tensor active;  // undefined: all
      if (o_.early_stop) {
        active = best_adv.logical_not().nonzero().squeeze(1);
        if (active.numel() == 0) break;
        if (active.numel() == n) active = torch::Tensor();
      }
      const auto pick = [&](const torch::Tensor& v) { return active.defined() ? v.index_select(0, active) : v; };
      const auto xs = pick(x4), bs = pick(best4), ys = pick(y);
      const auto ts = t.defined() ? pick(t) : t;
      const double p = p_at(o_.p_init, i, o_.queries);
      const auto cand = linf ? step.linf_candidate(xs, bs, p) : step.l2_candidate(xs, bs, p);
      out = ctx.oracle.loss_only(as_input(cand), ys, ts, loss);
      const auto adv = is_adversarial(out.log_probs, ys, ts);
      const auto adv_old = pick(best_adv), loss_old = pick(best_loss);
      const auto better = better_than(adv, out.loss, adv_old, loss_old);
      auto new_best = torch::where(better.view({-1, 1, 1, 1}), cand, bs);
      auto new_loss = torch::where(better, out.loss, loss_old);
      auto new_adv = adv_old | adv;
      if (active.defined()) {
        best4.index_copy_(0, active, new_best);
        best_loss.index_copy_(0, active, new_loss);
        best_adv.index_copy_(0, active, new_adv);
      } else {
        best4 = new_best, best_loss = new_loss, best_adv = new_adv;
      }
    }
    return Best{as_input(best4), best_adv, best_loss};
  };

  Best best = one_run(ctx.x, ctx.y, ctx.targets);
  const auto shape = per_example_shape(ctx.x);
  for (int64_t r = 1; r < o_.restarts; ++r) {
    const auto todo =
        o_.early_stop ? best.adv.logical_not().nonzero().squeeze(1)
                      : torch::arange(ctx.x.size(0), torch::TensorOptions().dtype(torch::kLong).device(ctx.x.device()));
    if (todo.numel() == 0) break;
    const auto t = ctx.targeted() ? ctx.targets.index_select(0, todo) : torch::Tensor();
    const auto run = one_run(ctx.x.index_select(0, todo), ctx.y.index_select(0, todo), t);
    const auto adv_old = best.adv.index_select(0, todo), loss_old = best.loss.index_select(0, todo);
    const auto better = better_than(run.adv, run.loss, adv_old, loss_old);
    std::vector<int64_t> sub_shape = shape;
    sub_shape[0] = todo.numel();
    best.x.index_copy_(0, todo, torch::where(better.view(sub_shape), run.x, best.x.index_select(0, todo)));
    best.loss.index_copy_(0, todo, torch::where(better, run.loss, loss_old));
    best.adv.index_copy_(0, todo, adv_old | run.adv);
  }
  return best.x;
}

}  // namespace imbench::attacks
