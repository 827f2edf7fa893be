#include "models/stochastic.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
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

// Rows [begin, end) of bernoulli_sample_branching: row rm of the [R * M, H]
// output reads row rm / M of p. The index hashed is the element's index in
// the output, as in bernoulli_sample on the expanded p, so both give the
// same samples. Compiled for AVX-512, AVX2 and the baseline.
// One output row of the branching sampler: out[j] = [u(base + j) < p[j]].
inline __attribute__((always_inline)) void sample_row(const float* p, int64_t hidden, uint32_t base, uint32_t lo,
                                                      uint32_t hi, float* out) {
  for (int64_t j = 0; j < hidden; ++j) {
    const uint32_t h = mix32(mix32((base + static_cast<uint32_t>(j)) ^ lo) + hi);
    // 24 random bits -> [0, 1), as in bernoulli_sample.
    const float u = static_cast<float>(static_cast<int32_t>(h >> 8)) * (1.0f / 16777216.0f);
    out[j] = u < p[j] ? 1.0f : 0.0f;
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void sample_branching_rows(
    const float* p, int64_t hidden, int64_t samples, uint64_t seed, int64_t begin, int64_t end, float* out) {
  const auto lo = static_cast<uint32_t>(seed), hi = static_cast<uint32_t>(seed >> 32);
  for (int64_t rm = begin; rm < end; ++rm)
    sample_row(p + (rm / samples) * hidden, hidden, static_cast<uint32_t>(rm * hidden), lo, hi, out + rm * hidden);
}

// The fused output layer of bernoulli_branch_linear (AVX-512 CPU, float32, at most
// kOutLanes outputs). The samples z of a block of kRowBlock rows are drawn
// into a buffer that stays in L1 (never the whole [R * M, H] float tensor)
// and kept as bits (16 units per uint16 word: 1/32 of the floats) for the
// backward pass. Summation orders are fixed (rows in blocks, hidden units in
// order, weight gradients in fixed chunks of rows added in order), so the
// results do not depend on the thread count.
constexpr int64_t kOutLanes = 16;
constexpr int64_t kRowBlock = 8;
constexpr int64_t kGradChunk = 256;  // rows per partial weight gradient

int64_t words_per_row(int64_t hidden) { return (hidden + 15) / 16; }

// out[rm, :] = bias + W z_rm for rows [begin, end); wt is W^T padded to
// [H, kOutLanes], bias padded to kOutLanes; bits[rm, :] = z_rm packed.
// AVX-512 intrinsics (the compiler's own vectorisation of these loops keeps
// the accumulators on the stack): eight rows share each load of W^T, with
// one 16-lane accumulator per row.
__attribute__((target("avx512f"))) void branch_out_forward_avx512(const float* p, const float* wt, const float* bias,
                                                                 int64_t hidden, int64_t outputs, int64_t samples,
                                                                 uint64_t seed, int64_t begin, int64_t end,
                                                                 float* out, uint16_t* bits) {
  const auto lo = static_cast<uint32_t>(seed), hi = static_cast<uint32_t>(seed >> 32);
  const int64_t words = words_per_row(hidden);
  std::vector<float> z(static_cast<std::size_t>(kRowBlock * hidden), 0.0f);
  alignas(64) float acc_out[kRowBlock][kOutLanes];
  const __m512 half = _mm512_set1_ps(0.5f);
  for (int64_t r0 = begin; r0 < end; r0 += kRowBlock) {
    const int64_t n = std::min(kRowBlock, end - r0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t rm = r0 + i;
      float* zi = z.data() + i * hidden;
      sample_row(p + (rm / samples) * hidden, hidden, static_cast<uint32_t>(rm * hidden), lo, hi, zi);
      for (int64_t w = 0; w < words; ++w) {
        const int64_t left = hidden - w * 16;
        const auto m = static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1);
        bits[rm * words + w] = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, zi + w * 16), half, _CMP_GT_OQ);
      }
    }
    const float* z0 = z.data();
    const __m512 b = _mm512_loadu_ps(bias);
    __m512 a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b;
    for (int64_t j = 0; j < hidden; ++j) {
      const __m512 w = _mm512_loadu_ps(wt + j * kOutLanes);
      a0 = _mm512_fmadd_ps(_mm512_set1_ps(z0[j]), w, a0);
      a1 = _mm512_fmadd_ps(_mm512_set1_ps(z0[hidden + j]), w, a1);
      a2 = _mm512_fmadd_ps(_mm512_set1_ps(z0[2 * hidden + j]), w, a2);
      a3 = _mm512_fmadd_ps(_mm512_set1_ps(z0[3 * hidden + j]), w, a3);
      a4 = _mm512_fmadd_ps(_mm512_set1_ps(z0[4 * hidden + j]), w, a4);
      a5 = _mm512_fmadd_ps(_mm512_set1_ps(z0[5 * hidden + j]), w, a5);
      a6 = _mm512_fmadd_ps(_mm512_set1_ps(z0[6 * hidden + j]), w, a6);
      a7 = _mm512_fmadd_ps(_mm512_set1_ps(z0[7 * hidden + j]), w, a7);
    }
    _mm512_store_ps(acc_out[0], a0);
    _mm512_store_ps(acc_out[1], a1);
    _mm512_store_ps(acc_out[2], a2);
    _mm512_store_ps(acc_out[3], a3);
    _mm512_store_ps(acc_out[4], a4);
    _mm512_store_ps(acc_out[5], a5);
    _mm512_store_ps(acc_out[6], a6);
    _mm512_store_ps(acc_out[7], a7);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < outputs; ++c) out[(r0 + i) * outputs + c] = acc_out[i][c];
  }
}

// gw[c, :] += sum over rows rm in [begin, end) of g[rm, c] z_rm, with z_rm
// unpacked from the forward pass's bits.
__attribute__((target("avx512f"))) void branch_out_grad_weight_avx512(const uint16_t* bits, const float* g,
                                                                     int64_t hidden, int64_t outputs, int64_t begin,
                                                                     int64_t end, float* gw) {
  const int64_t words = words_per_row(hidden);
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t r0 = begin; r0 < end; r0 += kRowBlock) {
    const int64_t n = std::min(kRowBlock, end - r0);
    float gb[kOutLanes][kRowBlock] = {};     // rows past n stay 0
    uint16_t none[1] = {0};
    const uint16_t* rb[kRowBlock];
    for (int64_t i = 0; i < kRowBlock; ++i) rb[i] = none;
    for (int64_t i = 0; i < n; ++i) {
      rb[i] = bits + (r0 + i) * words;
      for (int64_t c = 0; c < outputs; ++c) gb[c][i] = g[(r0 + i) * outputs + c];
    }
    for (int64_t w = 0; w < words; ++w) {
      const int64_t j = w * 16, left = hidden - j;
      const auto mask = static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1);
#define IMBENCH_UNIT(i) _mm512_maskz_mov_ps(static_cast<__mmask16>((i) < n ? rb[i][w] : 0), one)
      const __m512 v0 = IMBENCH_UNIT(0), v1 = IMBENCH_UNIT(1), v2 = IMBENCH_UNIT(2), v3 = IMBENCH_UNIT(3),
                   v4 = IMBENCH_UNIT(4), v5 = IMBENCH_UNIT(5), v6 = IMBENCH_UNIT(6), v7 = IMBENCH_UNIT(7);
#undef IMBENCH_UNIT
      for (int64_t c = 0; c < outputs; ++c) {
        float* row = gw + c * hidden + j;
        const float* gc = gb[c];
        __m512 s = _mm512_maskz_loadu_ps(mask, row);
        s = _mm512_fmadd_ps(_mm512_set1_ps(gc[0]), v0, s);
        s = _mm512_fmadd_ps(_mm512_set1_ps(gc[1]), v1, s);
        s = _mm512_fmadd_ps(_mm512_set1_ps(gc[2]), v2, s);
        s = _mm512_fmadd_ps(_mm512_set1_ps(gc[3]), v3, s);
        s = _mm512_fmadd_ps(_mm512_set1_ps(gc[4]), v4, s);
        s = _mm512_fmadd_ps(_mm512_set1_ps(gc[5]), v5, s);
        s = _mm512_fmadd_ps(_mm512_set1_ps(gc[6]), v6, s);
        s = _mm512_fmadd_ps(_mm512_set1_ps(gc[7]), v7, s);
        _mm512_mask_storeu_ps(row, mask, s);
      }
    }
  }
}

// Picked once: the fused output layer needs AVX-512 (portable loops were
// slower than materialising z and calling BLAS, which BranchLinear does).
// IMBENCH_NO_AVX512=1 turns it off (tests run both paths).
bool use_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && std::getenv("IMBENCH_NO_AVX512") == nullptr;
  return yes;
}

bool fused_output_layer(const torch::Tensor& p, const torch::Tensor& weight, const torch::Tensor& bias,
                        int64_t samples) {
  return use_avx512() && p.device().is_cpu() && p.scalar_type() == torch::kFloat && weight.scalar_type() == torch::kFloat &&
         bias.scalar_type() == torch::kFloat && weight.device().is_cpu() && weight.size(0) <= kOutLanes &&
         p.numel() * samples < (int64_t{1} << 32);
}

// A stochastic layer's straight-through samples followed by the next linear
// map, as one autograd node:
//   z = Bernoulli(p) with M draws per row of p   [..., M, H]
//   out = z W^T + b                              [..., M, O]
// Backward with dz/dp = 1 (the straight-through estimator):
//   dL/dp = sum_m dL/dz_m = (sum_m dL/dout_m) W,
// so the product with W runs once per row of p instead of once per sample
// (the per-sample graph computes dL/dz_m for every m and then sums).
struct BranchLinear : public torch::autograd::Function<BranchLinear> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& p,
                               const torch::Tensor& weight, const torch::Tensor& bias, int64_t samples) {
    auto z = bernoulli_sample_branching(p, samples);
    ctx->save_for_backward({z, weight});
    return torch::nn::functional::linear(z, weight, bias);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& z = saved[0];
    const auto& weight = saved[1];
    const auto& g = grads[0];
    const auto rows = g.reshape({-1, g.size(-1)});
    torch::Tensor grad_p, grad_w, grad_b;
    if (ctx->needs_input_grad(0)) grad_p = g.sum(-2).matmul(weight);
    if (ctx->needs_input_grad(1)) grad_w = rows.t().mm(z.reshape({-1, z.size(-1)}));
    if (ctx->needs_input_grad(2)) grad_b = rows.sum(0);
    return {grad_p, grad_w, grad_b, torch::Tensor()};
  }
};

// bernoulli_branch_linear for at most kOutLanes outputs on an AVX-512 CPU: the
// same samples and gradients as BranchLinear, without materialising z.
struct BranchReadout : public torch::autograd::Function<BranchReadout> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& p,
                               const torch::Tensor& weight, const torch::Tensor& bias, int64_t samples) {
    const auto pc = p.contiguous();
    const int64_t hidden = p.size(-1), outputs = weight.size(0), rows = pc.numel() / std::max<int64_t>(1, hidden);
    auto sizes = p.sizes().vec();
    sizes.back() = samples;
    sizes.push_back(outputs);
    auto out = torch::empty(sizes, pc.options());
    auto bits = torch::empty({rows * samples, words_per_row(hidden)}, pc.options().dtype(torch::kInt16));
    const uint64_t seed = seed_from_default_generator();
    auto wt = torch::zeros({hidden, kOutLanes}, pc.options());
    wt.slice(1, 0, outputs).copy_(weight.detach().t());
    auto b = torch::zeros({kOutLanes}, pc.options());
    b.slice(0, 0, outputs).copy_(bias.detach());
    const float* pp = pc.data_ptr<float>();
    const float* wp = wt.data_ptr<float>();
    const float* bp = b.data_ptr<float>();
    float* op = out.data_ptr<float>();
    auto* bitp = reinterpret_cast<uint16_t*>(bits.data_ptr<int16_t>());
    at::parallel_for(0, rows * samples, kRowBlock * 4, [&](int64_t begin, int64_t end) {
      branch_out_forward_avx512(pp, wp, bp, hidden, outputs, samples, seed, begin, end, op, bitp);
    });
    ctx->save_for_backward({bits, weight});
    ctx->saved_data["hidden"] = hidden;
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& bits = saved[0];
    const auto& weight = saved[1];
    const int64_t hidden = ctx->saved_data["hidden"].toInt();
    const auto g = grads[0].contiguous();
    const int64_t outputs = weight.size(0);
    const auto rows = g.view({-1, outputs});
    torch::Tensor grad_p, grad_w, grad_b;
    if (ctx->needs_input_grad(0)) grad_p = g.sum(-2).matmul(weight);
    if (ctx->needs_input_grad(1)) {
      const int64_t total = rows.size(0), chunks = (total + kGradChunk - 1) / kGradChunk;
      auto partial = torch::zeros({chunks, outputs, hidden}, g.options());
      const auto* bp = reinterpret_cast<const uint16_t*>(bits.data_ptr<int16_t>());
      const float* gp = rows.data_ptr<float>();
      float* wp = partial.data_ptr<float>();
      at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c)
          branch_out_grad_weight_avx512(bp, gp, hidden, outputs, c * kGradChunk, std::min(total, (c + 1) * kGradChunk),
                                 wp + c * outputs * hidden);
      });
      grad_w = partial.sum(0);
    }
    if (ctx->needs_input_grad(2)) grad_b = rows.sum(0);
    return {grad_p, grad_w, grad_b, torch::Tensor()};
  }
};

// VCR_0..VCR_L of logits [B, M_1, ..., M_L, C] with labels y [B] as one
// node (CPU, float32 logits): a few passes over B * M_1 ... M_L rows instead
// of a dozen tensor ops and their backward nodes. Returns [L + 1].
//   lp[row] = logits[row, y] - logsumexp(logits[row])
//   VCR_i = -mean over groups g of (logsumexp over the Q_i rows of g of lp - log Q_i)
//   dVCR_i/dlp[row] = -softmax of lp within the row's group / (number of groups)
//   dlp/dlogits[row, c] = [c = y] - softmax(logits[row])[c]
// Sums run in double; rows and groups in parallel, totals in a fixed order.
struct VcrHead : public torch::autograd::Function<VcrHead> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& y) {
    const auto lg = logits.contiguous();
    const auto labels = y.to(torch::kLong).contiguous();
    const int64_t batch = lg.size(0), classes = lg.size(-1), rows = lg.numel() / std::max<int64_t>(1, classes);
    const int64_t paths = rows / std::max<int64_t>(1, batch);
    std::vector<int64_t> m(lg.sizes().begin() + 1, lg.sizes().end() - 1);
    const int64_t levels = static_cast<int64_t>(m.size()) + 1;
    auto soft = torch::empty({rows, classes}, lg.options());
    auto dvcr = torch::empty({levels, rows}, lg.options());
    auto out = torch::empty({levels}, lg.options());
    std::vector<double> lp(static_cast<std::size_t>(rows));
    const float* l = lg.data_ptr<float>();
    const int64_t* yl = labels.data_ptr<int64_t>();
    float* sp = soft.data_ptr<float>();
    // Rows in parallel; each row's softmax in float with a double sum.
    at::parallel_for(0, rows, 256, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* x = l + r * classes;
        float top = x[0];
        for (int64_t c = 1; c < classes; ++c) top = std::max(top, x[c]);
        double sum = 0;
        for (int64_t c = 0; c < classes; ++c) sum += std::exp(x[c] - top);
        const float lse = top + static_cast<float>(std::log(sum));
        for (int64_t c = 0; c < classes; ++c) sp[r * classes + c] = std::exp(x[c] - lse);
        lp[static_cast<std::size_t>(r)] = static_cast<double>(x[yl[r / paths]]) - static_cast<double>(lse);
      }
    });
    float* dv = dvcr.data_ptr<float>();
    float* o = out.data_ptr<float>();
    for (int64_t i = 0; i < levels; ++i) {
      const int64_t q = product(m, static_cast<std::size_t>(i), m.size()), groups = rows / q;
      std::vector<double> group_lse(static_cast<std::size_t>(groups));
      at::parallel_for(0, groups, std::max<int64_t>(1, 1024 / q), [&](int64_t begin, int64_t end) {
        for (int64_t g = begin; g < end; ++g) {
          const double* v = lp.data() + g * q;
          double top = v[0];
          for (int64_t k = 1; k < q; ++k) top = std::max(top, v[k]);
          double sum = 0;
          for (int64_t k = 0; k < q; ++k) sum += std::exp(v[k] - top);
          const double lse = top + std::log(sum);
          group_lse[static_cast<std::size_t>(g)] = lse;
          for (int64_t k = 0; k < q; ++k)
            dv[i * rows + g * q + k] = static_cast<float>(-std::exp(v[k] - lse) / static_cast<double>(groups));
        }
      });
      double total = 0;  // in group order, whatever the thread count
      for (double lse : group_lse) total += lse - std::log(static_cast<double>(q));
      o[i] = static_cast<float>(-total / static_cast<double>(groups));
    }
    ctx->save_for_backward({soft, dvcr, labels});
    ctx->saved_data["paths"] = paths;
    ctx->saved_data["sizes"] = lg.sizes().vec();
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& soft = saved[0];
    const auto& dvcr = saved[1];
    const auto& labels = saved[2];
    const int64_t paths = ctx->saved_data["paths"].toInt();
    const auto g = grads[0].to(torch::kFloat).contiguous();
    const int64_t rows = soft.size(0), classes = soft.size(1), levels = dvcr.size(0);
    auto grad = torch::empty({rows, classes}, soft.options());
    const float* gv = g.data_ptr<float>();
    const float* dv = dvcr.data_ptr<float>();
    const float* sp = soft.data_ptr<float>();
    const int64_t* yl = labels.data_ptr<int64_t>();
    float* out = grad.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r) {
      float dlp = 0;
      for (int64_t i = 0; i < levels; ++i) dlp += gv[i] * dv[i * rows + r];
      const int64_t y = yl[r / paths];
      for (int64_t c = 0; c < classes; ++c)
        out[r * classes + c] = dlp * ((c == y ? 1.0f : 0.0f) - sp[r * classes + c]);
    }
    return {grad.view(ctx->saved_data["sizes"].toIntVector()), torch::Tensor()};
  }
};

// C = mean over the rows of a [..., H] of sum_j KL(Bern(sigmoid(a)) || Bern(sigmoid(rho))),
// written as p (a - rho) - softplus(a) + softplus(rho) with p = sigmoid(a),
// as one node: dC/da = p (1 - p) (a - rho) / rows, dC/drho = sigmoid(rho) - mean_rows p.
struct BernoulliKlMean : public torch::autograd::Function<BernoulliKlMean> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& rho) {
    const auto p = torch::sigmoid(a);
    const auto d = a - rho;
    const int64_t rows = a.numel() / std::max<int64_t>(1, a.size(-1));
    auto c = (p * d - torch::softplus(a)).sum() / static_cast<double>(rows) + torch::softplus(rho).sum();
    ctx->save_for_backward({p, d, rho});
    ctx->saved_data["rows"] = rows;
    return c;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& p = saved[0];
    const auto& d = saved[1];
    const auto& rho = saved[2];
    const auto rows = static_cast<double>(ctx->saved_data["rows"].toInt());
    const auto& g = grads[0];
    torch::Tensor grad_a, grad_rho;
    if (ctx->needs_input_grad(0)) grad_a = p * (1 - p) * d * (g / rows);
    if (ctx->needs_input_grad(1)) grad_rho = (torch::sigmoid(rho) - p.reshape({-1, p.size(-1)}).mean(0)) * g;
    return {grad_a, grad_rho};
  }
};

}  // namespace

torch::Tensor bernoulli_sample_branching(const torch::Tensor& p, int64_t samples) {
  TORCH_CHECK(p.dim() >= 1 && samples >= 1, "bernoulli_sample_branching: p [..., H], samples >= 1");
  auto sizes = p.sizes().vec();
  sizes.insert(sizes.end() - 1, samples);
  if (!p.device().is_cpu() || p.scalar_type() != torch::kFloat || p.numel() * samples >= (int64_t{1} << 32))
    return bernoulli_sample(p.unsqueeze(-2).expand(sizes));
  const uint64_t seed = seed_from_default_generator();
  const auto src = p.contiguous();
  auto out = torch::empty(sizes, src.options());
  const int64_t hidden = p.size(-1);
  if (hidden == 0 || out.numel() == 0) return out;
  const float* pp = src.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t rows = out.numel() / hidden;
  at::parallel_for(0, rows, std::max<int64_t>(1, (int64_t{1} << 14) / hidden), [&](int64_t begin, int64_t end) {
    sample_branching_rows(pp, hidden, samples, seed, begin, end, op);
  });
  return out;
}

torch::Tensor bernoulli_branch_linear(const torch::Tensor& p, const torch::Tensor& weight, const torch::Tensor& bias,
                                      int64_t samples) {
  TORCH_CHECK(p.dim() >= 1 && weight.dim() == 2 && bias.dim() == 1 && weight.size(1) == p.size(-1) &&
                  bias.size(0) == weight.size(0) && samples >= 1,
              "bernoulli_branch_linear: p [..., H], weight [O, H], bias [O], samples >= 1");
  if (fused_output_layer(p, weight, bias, samples)) return BranchReadout::apply(p, weight, bias, samples);
  return BranchLinear::apply(p, weight, bias, samples);
}

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
  if (spec.hidden.empty()) throw UsageError(fmt::format("{}: needs at least one stochastic hidden layer", spec.family));
  hyper_ = SfnnHyper::from_spec(spec);
  net_ = SfnnNet(spec.input_dim(), spec.hidden, spec.num_classes, hyper_.prior_std);
}

SfnnForward SfnnModel::forward_branching(const torch::Tensor& x, const std::vector<int64_t>& samples) {
  const std::size_t depth = spec_.hidden.size();
  SfnnForward out;
  auto h = x.flatten(1);
  if (kernel_ == TrainingKernel::kFused && sampling_ == Sampling::kOn) {
    // Each stochastic layer and the linear map after it are one node
    // (bernoulli_branch_linear); same samples and forward values as below.
    auto a = net_->layers[0]->as<torch::nn::Linear>()->forward(h);
    for (std::size_t l = 0; l < depth; ++l) {
      out.pre_activations.push_back(a);
      const auto& next = net_->layers[l + 1]->as<torch::nn::Linear>();
      a = bernoulli_branch_linear(torch::sigmoid(a), next->weight, next->bias, samples[l]);
    }
    out.logits = a;
    return out;
  }
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
  const int64_t prefix = product(hyper_.test_samples, 0, depth - 1);
  const int64_t width = *std::max_element(spec_.hidden.begin(), spec_.hidden.end());
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(1, prefix * width));
  const auto& out = net_->layers[depth]->as<torch::nn::Linear>();
  std::vector<torch::Tensor> parts;
  for (int64_t b = 0; b < x.size(0); b += chunk) {
    auto h = x.slice(0, b, std::min(x.size(0), b + chunk)).flatten(1);
    const int64_t rows = h.size(0);
    for (std::size_t l = 0; l + 1 < depth; ++l) {
      const auto p = torch::sigmoid(net_->layers[l]->as<torch::nn::Linear>()->forward(h));
      h = bernoulli_sample(p.unsqueeze(-2).expand({p.size(0), hyper_.test_samples[l], p.size(1)})).flatten(0, 1);
    }
    const auto p_last = torch::sigmoid(net_->layers[depth - 1]->as<torch::nn::Linear>()->forward(h));
    const auto proba = bernoulli_readout(p_last, out->weight, out->bias, hyper_.test_samples[depth - 1]);
    parts.push_back(proba.view({rows, prefix, proba.size(-1)}).mean(1));
  }
  return torch::cat(parts, 0);
}

SfnnModel::Terms SfnnModel::objective_terms(const torch::Tensor& x, const torch::Tensor& y,
                                            const std::vector<int64_t>& samples, const std::vector<double>& gamma,
                                            const std::vector<double>& beta) {
  const auto fwd = forward_branching(x, samples);
  const int64_t batch = x.size(0);
  if (kernel_ == TrainingKernel::kFused && sampling_ == Sampling::kOn && fwd.logits.device().is_cpu() &&
      fwd.logits.scalar_type() == torch::kFloat) {
    // The same terms, each as one autograd node (VcrHead, BernoulliKlMean).
    const auto vcr = VcrHead::apply(fwd.logits, y);
    Terms t;
    t.total = torch::zeros({}, x.options());
    for (int64_t i = 0; i < vcr.size(0); ++i) {
      t.vcr.push_back(vcr[i]);
      if (gamma[static_cast<std::size_t>(i)] != 0) t.total = t.total + gamma[static_cast<std::size_t>(i)] * t.vcr.back();
    }
    for (std::size_t l = 0; l < fwd.pre_activations.size(); ++l) {
      if (beta[l] == 0) {
        t.compression.push_back(torch::zeros({}, x.options()));
        continue;
      }
      t.compression.push_back(BernoulliKlMean::apply(fwd.pre_activations[l], net_->prior_logits[l]));
      t.total = t.total + beta[l] * t.compression.back();
    }
    return t;
  }
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
  if (stage_ == 0) return objective_terms(x, y, hyper_.train_samples, hyper_.gamma, hyper_.beta).total;
  // Greedy stage l: gamma_0 VCR_0 + VCR_l + beta_l C_l.
  std::vector<double> gamma(hyper_.gamma.size(), 0.0), beta(hyper_.beta.size(), 0.0);
  gamma[0] = hyper_.gamma[0];
  gamma[static_cast<std::size_t>(stage_)] += 1.0;
  beta[static_cast<std::size_t>(stage_ - 1)] = hyper_.beta[static_cast<std::size_t>(stage_ - 1)];
  return objective_terms(x, y, hyper_.train_samples, gamma, beta).total;
}

int64_t SfnnModel::stages() const { return hyper_.greedy ? static_cast<int64_t>(spec_.hidden.size()) : 1; }

void SfnnModel::set_stage(int64_t stage) {
  if (!hyper_.greedy) return;
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
  return sampling_ == Sampling::kMeanField ? 1 : product(hyper_.test_samples, 0, hyper_.test_samples.size());
}

std::string SfnnModel::description() const {
  const std::string name = spec_.family == "sfnn" ? "SFNN (MLE)" : spec_.family == "imb-greedy" ? "IMB-Greedy" : "IMB-Joint";
  if (sampling_ == Sampling::kMeanField) return fmt::format("{} {} (mean-field)", name, spec_.layer_string());
  return fmt::format("{} {} (Bernoulli units; predicts with {} branching samples)", name, spec_.layer_string(),
                     samples_string(hyper_.test_samples));
}

std::string SfnnModel::objective() const {
  std::vector<std::string> terms;
  for (std::size_t i = 0; i < hyper_.gamma.size(); ++i)
    if (hyper_.gamma[i] != 0) terms.push_back(fmt::format("{:g} VCR_{}", hyper_.gamma[i], i));
  for (std::size_t l = 0; l < hyper_.beta.size(); ++l)
    if (hyper_.beta[l] != 0) terms.push_back(fmt::format("{:g} C_{}", hyper_.beta[l], l + 1));
  std::string s = fmt::format("L = {}; {} training samples per layer", fmt::join(terms, " + "),
                              samples_string(hyper_.train_samples));
  if (hyper_.greedy)
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
  hyper_ = VibHyper::table().from_json(spec.hyper, {"hyper-parameter of family 'vib'", "vib: ", OptionSpelling::kKey});
  net_ = VibNet(spec.input_dim(), spec.hidden, hyper_.k, spec.num_classes, spec.activation == "relu");
}

std::pair<torch::Tensor, torch::Tensor> VibModel::encode(const torch::Tensor& x) {
  const auto h = net_->encoder->forward(x);
  return {h.slice(1, 0, hyper_.k), torch::softplus(h.slice(1, hyper_.k, 2 * hyper_.k))};
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
  const auto eps = torch::randn({hyper_.train_samples, mu.size(0), mu.size(1)}, mu.options());
  const auto logits = net_->decoder->forward(mu.unsqueeze(0) + sigma.unsqueeze(0) * eps);
  const auto ce = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                                       y.repeat({hyper_.train_samples}));
  return ce + hyper_.beta * gaussian_kl(mu, sigma).mean();
}

std::string VibModel::description() const {
  if (sampling_ == Sampling::kMeanField)
    return fmt::format("VIB {}-K{} ({}; mean-field: z = mu)", spec_.layer_string(), hyper_.k, spec_.activation);
  return fmt::format("VIB {} -> Gaussian K={} ({}; predicts with {} samples)", spec_.layer_string(), hyper_.k,
                     spec_.activation, hyper_.test_samples);
}

std::string VibModel::objective() const {
  return fmt::format("L = CE(decoder(z), y) + {:g} KL(N(mu, sigma^2) || N(0, I)), z = mu + sigma eps, {} training "
                     "sample(s)",
                     hyper_.beta, hyper_.train_samples);
}

void VibModel::to(torch::Device device) {
  net_->to(device);
  device_ = device;
}

}  // namespace imbench::models
