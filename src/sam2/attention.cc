#include "litseg/sam2/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <vector>

#include <torch/version.h>

#include "litseg/core/error.h"
#include "litseg/sam2/precision.h"

namespace litseg::sam2 {
namespace {

void CheckShapes(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const bool ok = q.dim() >= 3 && k.dim() == q.dim() && v.dim() == q.dim() &&
                  q.sizes().slice(0, q.dim() - 2) == k.sizes().slice(0, k.dim() - 2) &&
                  k.sizes().slice(0, k.dim() - 2) == v.sizes().slice(0, v.dim() - 2) &&
                  q.size(-1) == k.size(-1) && k.size(-2) == v.size(-2);
  if (!ok) {
    std::ostringstream msg;
    msg << "attention: incompatible shapes q " << q.sizes() << ", k " << k.sizes() << ", v " << v.sizes();
    throw Error(msg.str());
  }
}

bool NeedsGrad(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  return torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
}

// Autograd-friendly blocked math: one softmax per block of queries, concatenated.
torch::Tensor MathWithGrad(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                           int64_t max_scores) {
  const int64_t batch = q.numel() / std::max<int64_t>(1, q.size(-2) * q.size(-1));
  const int64_t lq = q.size(-2), lk = k.size(-2);
  const int64_t rows = std::max<int64_t>(1, max_scores / std::max<int64_t>(1, batch * lk));
  const torch::Tensor kt = k.transpose(-2, -1);
  if (rows >= lq) return torch::matmul(torch::softmax(torch::matmul(q, kt) * scale, -1), v);
  std::vector<torch::Tensor> parts;
  for (int64_t r = 0; r < lq; r += rows) {
    const torch::Tensor qc = q.narrow(-2, r, std::min(rows, lq - r));
    parts.push_back(torch::matmul(torch::softmax(torch::matmul(qc, kt) * scale, -1), v));
  }
  return torch::cat(parts, -2);
}

// bf16 path (PrecisionScope, or reduced-precision inputs). The scores q k^T are computed and
// kept in float32: rounding them to bf16 would move large logits by whole units and change
// the softmax noticeably (fused GPU kernels also keep scores in float32). The softmax is
// float32; the probabilities and values enter the second product as bf16. The result has
// q's dtype. Queries are processed in blocks like the math path.
torch::Tensor MathReducedPrecision(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   double scale, int64_t max_scores) {
  const auto low = q.scalar_type() == at::kFloat ? at::kBFloat16 : q.scalar_type();
  // oneDNN's fast bf16 kernels need plain layouts: strided operands fall back to slow loops.
  const torch::Tensor qf = q.to(at::kFloat), kt = k.to(at::kFloat).transpose(-2, -1), vl = v.to(low).contiguous();
  const int64_t batch = q.numel() / std::max<int64_t>(1, q.size(-2) * q.size(-1));
  const int64_t lq = q.size(-2), lk = k.size(-2);
  const int64_t rows = std::max<int64_t>(1, max_scores / std::max<int64_t>(1, batch * lk));
  auto block = [&](const torch::Tensor& qc) {
    const torch::Tensor probs = torch::softmax(at::matmul(qc, kt).mul_(scale), -1).to(low);
    return at::matmul(probs, vl);
  };
  if (rows >= lq) return block(qf).to(q.scalar_type());
  std::vector<torch::Tensor> parts;
  for (int64_t r = 0; r < lq; r += rows) parts.push_back(block(qf.narrow(-2, r, std::min(rows, lq - r))));
  return torch::cat(parts, -2).to(q.scalar_type());
}

bool UseReducedPrecision(const torch::Tensor& q) {
  return InReducedPrecision() || q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf;
}

// Inference path on 4-D [B, heads, L, D] views: every product writes into a reused score
// buffer or straight into `out`. BLAS takes the strided matrices as they are (leading
// dimension = row stride), so interleaved heads cost no copy. Small problems (Hiera windows)
// run as groups of whole matrices, large ones (global attention) in row blocks.
void MathNoGradInto(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, torch::Tensor& out,
                    double scale, int64_t max_scores) {
  const int64_t batch = q.size(0), heads = q.size(1), lq = q.size(2), lk = k.size(2);
  const auto options = q.options();
  if (lq * lk <= max_scores) {
    const int64_t group = std::min<int64_t>(batch, std::max<int64_t>(1, max_scores / (lq * lk)));
    // zeros, not empty: LibTorch 1.13's small-matrix baddbmm kernel (contraction x rows x cols
    // < 400, e.g. 7 tokens x 7 tokens x 8 channels in the micro decoder) computes
    // beta * out + alpha * acc even for beta = 0, so NaN left in fresh memory would poison the
    // scores. Later heads reuse the buffer with finite contents.
    torch::Tensor scores = torch::zeros({group, lq, lk}, options);
    torch::Tensor probs = torch::empty({group, lq, lk}, options);
    for (int64_t h = 0; h < heads; ++h) {
      const torch::Tensor qh = q.select(1, h), kth = k.select(1, h).transpose(1, 2), vh = v.select(1, h);
      torch::Tensor oh = out.select(1, h);
      for (int64_t b = 0; b < batch; b += group) {
        const int64_t g = std::min(group, batch - b);
        torch::Tensor s = scores.narrow(0, 0, g);
        torch::Tensor p = probs.narrow(0, 0, g);
        at::baddbmm_out(s, s, qh.narrow(0, b, g), kth.narrow(0, b, g), /*beta=*/0, /*alpha=*/scale);
        at::_softmax_out(p, s, -1, false);
        torch::Tensor o = oh.narrow(0, b, g);
        at::bmm_out(o, p, vh.narrow(0, b, g));
      }
    }
    return;
  }
  const int64_t rows = std::min<int64_t>(lq, std::max<int64_t>(1, max_scores / lk));
  torch::Tensor scores = torch::zeros({rows, lk}, options);  // see above (beta = 0 reads it)
  torch::Tensor probs = torch::empty({rows, lk}, options);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const torch::Tensor qbh = q[b][h], ktbh = k[b][h].t(), vbh = v[b][h];
      torch::Tensor obh = out[b][h];
      for (int64_t r = 0; r < lq; r += rows) {
        const int64_t m = std::min(rows, lq - r);
        torch::Tensor s = scores.narrow(0, 0, m);
        torch::Tensor p = probs.narrow(0, 0, m);
        at::addmm_out(s, s, qbh.narrow(0, r, m), ktbh, /*beta=*/0, /*alpha=*/scale);
        at::_softmax_out(p, s, -1, false);
        torch::Tensor o = obh.narrow(0, r, m);
        at::mm_out(o, p, vbh);
      }
    }
  }
}

// Flattens the leading dimensions into [N, 1, L, D] (a view when possible).
torch::Tensor As4d(const torch::Tensor& t) {
  if (t.dim() == 4) return t;
  return t.reshape({-1, 1, t.size(-2), t.size(-1)});
}

}  // namespace

torch::Tensor ScaledDotProductAttentionMath(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                            const AttentionOptions& options) {
  CheckShapes(q, k, v);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const int64_t max_scores = std::max<int64_t>(1, options.max_score_elements);
  if (UseReducedPrecision(q)) return MathReducedPrecision(q, k, v, scale, max_scores);
  if (NeedsGrad(q, k, v)) return MathWithGrad(q, k, v, scale, max_scores);
  std::vector<int64_t> out_shape(q.sizes().begin(), q.sizes().end());
  out_shape.back() = v.size(-1);
  torch::Tensor out = torch::empty(out_shape, q.options());
  torch::Tensor out4 = As4d(out);  // a view: `out` is contiguous
  MathNoGradInto(As4d(q), As4d(k), As4d(v), out4, scale, max_scores);
  return out;
}

void ScaledDotProductAttentionInto(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   torch::Tensor& out, const AttentionOptions& options) {
  CheckShapes(q, k, v);
  if (q.dim() != 4 || out.dim() != 4 || out.size(0) != q.size(0) || out.size(1) != q.size(1) ||
      out.size(2) != q.size(2) || out.size(3) != v.size(3)) {
    std::ostringstream msg;
    msg << "attention: output " << out.sizes() << " does not fit q " << q.sizes() << " and v " << v.sizes();
    throw Error(msg.str());
  }
#if TORCH_VERSION_MAJOR >= 2
  (void)options;
  out.copy_(at::scaled_dot_product_attention(q, k, v));
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const int64_t max_scores = std::max<int64_t>(1, options.max_score_elements);
  if (UseReducedPrecision(q)) {
    out.copy_(MathReducedPrecision(q, k, v, scale, max_scores));
    return;
  }
  if (NeedsGrad(q, k, v)) {
    out.copy_(MathWithGrad(q, k, v, scale, max_scores));
    return;
  }
  MathNoGradInto(q, k, v, out, scale, max_scores);
#endif
}

torch::Tensor ScaledDotProductAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        const AttentionOptions& options) {
#if TORCH_VERSION_MAJOR >= 2
  (void)options;
  CheckShapes(q, k, v);
  return at::scaled_dot_product_attention(q, k, v);
#else
  return ScaledDotProductAttentionMath(q, k, v, options);
#endif
}

}  // namespace litseg::sam2
