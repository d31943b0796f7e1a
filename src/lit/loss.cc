#include "litseg/lit/loss.h"

#include <cmath>
#include <cstring>
#include <sstream>
#include <vector>

#include <ATen/Parallel.h>

#include "litseg/core/error.h"
#include "litseg/sam2/resize.h"

namespace litseg::lit {
namespace F = torch::nn::functional;

namespace {

void CheckPair(const torch::Tensor& logits, const torch::Tensor& target) {
  if (!logits.defined() || !target.defined() || logits.dim() != 4 || logits.size(1) != 1 ||
      logits.sizes() != target.sizes()) {
    std::ostringstream msg;
    msg << "loss: logits and target must both be [B, 1, H, W]; got ";
    if (logits.defined()) msg << logits.sizes(); else msg << "nothing";
    msg << " and ";
    if (target.defined()) msg << target.sizes(); else msg << "nothing";
    throw Error(msg.str());
  }
}

// ---------------------------------------------------------------------------------------------
// Fused focal + dice. Per pixel, with p = sigmoid(x), target t:
//   ce = max(x, 0) - x t + log(1 + exp(-|x|)),  m = 1 - (p t + (1 - p)(1 - t)),
//   focal = a_t ce m^g (a_t = alpha t + (1 - alpha)(1 - t)),
//   d focal / dx = a_t ((p - t) m^g + ce g m^(g-1) dm/dx),  dm/dx = -p (1 - p)(2t - 1);
// per sample: dice = 1 - (2 S_pt + 1) / (S_p + S_t + 1),
//   d dice / dx_i = -(2 t_i D - N) / D^2 * p_i (1 - p_i).
constexpr int64_t kLossChunk = 1 << 15;  // fixed chunking: thread-count independent sums

template <typename T>
struct PixelTerms {
  T p, ce, m, alpha_t;
};

// e = exp(-|x|) and lg = log(1 + e) come precomputed from torch's vectorised kernels (the
// scalar libm calls were most of the loss's time).
template <typename T>
inline PixelTerms<T> Pixel(T x, T t, T e, T lg, double alpha) {
  PixelTerms<T> r;
  r.p = x >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
  r.ce = std::max(x, T(0)) - x * t + lg;
  r.m = T(1) - (r.p * t + (T(1) - r.p) * (T(1) - t));
  r.alpha_t = alpha >= 0 ? T(alpha) * t + T(1 - alpha) * (T(1) - t) : T(1);
  return r;
}

template <typename T>
inline T PowGamma(T m, double gamma) {
  return gamma == 2.0 ? m * m : std::pow(m, T(gamma));
}

// Per sample: {focal sum, sum p t, sum p, sum t}.
template <typename T>
std::vector<double> ForwardSums(const T* x, const T* t, const T* e, const T* lg, int64_t batch, int64_t n, double alpha,
                                double gamma) {
  const int64_t chunks_per_sample = (n + kLossChunk - 1) / kLossChunk;
  std::vector<double> partial(static_cast<size_t>(batch * chunks_per_sample * 4), 0.0);
  at::parallel_for(0, batch * chunks_per_sample, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t b = c / chunks_per_sample, lo = (c % chunks_per_sample) * kLossChunk;
      const int64_t hi = std::min(n, lo + kLossChunk);
      double focal = 0, pt = 0, ps = 0, ts = 0;
      for (int64_t i = b * n + lo; i < b * n + hi; ++i) {
        const PixelTerms<T> r = Pixel(x[i], t[i], e[i], lg[i], alpha);
        focal += r.alpha_t * r.ce * PowGamma(r.m, gamma);
        pt += r.p * t[i];
        ps += r.p;
        ts += t[i];
      }
      double* out = &partial[static_cast<size_t>(c * 4)];
      out[0] = focal, out[1] = pt, out[2] = ps, out[3] = ts;
    }
  });
  std::vector<double> sums(static_cast<size_t>(batch * 4), 0.0);
  for (int64_t c = 0; c < batch * chunks_per_sample; ++c)
    for (int k = 0; k < 4; ++k) sums[(c / chunks_per_sample) * 4 + k] += partial[c * 4 + k];
  return sums;
}

template <typename T>
void Backward(const T* x, const T* t, const T* e, const T* lg, T* grad, int64_t batch, int64_t n, double alpha,
              double gamma, const std::vector<double>& sums, double g_focal, double g_dice) {
  // Per sample: d dice / dx_i = (slope t_i + offset) * p_i (1 - p_i), scaled by the output gradient.
  std::vector<T> slope(batch), offset(batch);
  for (int64_t b = 0; b < batch; ++b) {
    const double numerator = 2 * sums[b * 4 + 1] + 1, denominator = sums[b * 4 + 2] + sums[b * 4 + 3] + 1;
    const double scale = g_dice / batch / (denominator * denominator);
    slope[b] = T(-2 * denominator * scale);
    offset[b] = T(numerator * scale);
  }
  const T focal_scale = T(g_focal / (batch * n));
  at::parallel_for(0, batch * n, kLossChunk, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / n;
      const PixelTerms<T> r = Pixel(x[i], t[i], e[i], lg[i], alpha);
      const T dp = r.p * (T(1) - r.p);
      const T dm = -dp * (T(2) * t[i] - T(1));
      const T mg = PowGamma(r.m, gamma);
      const T mg1 = gamma == 2.0 ? r.m : (gamma == 1.0 ? T(1) : std::pow(r.m, T(gamma - 1)));
      const T d_focal = r.alpha_t * ((r.p - t[i]) * mg + r.ce * T(gamma) * mg1 * dm);
      grad[i] = focal_scale * d_focal + (slope[b] * t[i] + offset[b]) * dp;
    }
  });
}

struct FocalDiceFunction : public torch::autograd::Function<FocalDiceFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& target, double alpha, double gamma) {
    const torch::Tensor x = logits.contiguous();
    const torch::Tensor t = target.to(x.scalar_type()).contiguous();
    const int64_t batch = x.size(0), n = x.numel() / std::max<int64_t>(1, batch);
    const torch::Tensor e = torch::exp(-x.abs());
    const torch::Tensor lg = torch::log1p(e);
    std::vector<double> sums;
    if (x.scalar_type() == torch::kFloat64)
      sums = ForwardSums(x.data_ptr<double>(), t.data_ptr<double>(), e.data_ptr<double>(), lg.data_ptr<double>(), batch,
                         n, alpha, gamma);
    else
      sums = ForwardSums(x.data_ptr<float>(), t.data_ptr<float>(), e.data_ptr<float>(), lg.data_ptr<float>(), batch, n,
                         alpha, gamma);
    double focal = 0, dice = 0;
    for (int64_t b = 0; b < batch; ++b) {
      focal += sums[b * 4] / n;
      dice += 1 - (2 * sums[b * 4 + 1] + 1) / (sums[b * 4 + 2] + sums[b * 4 + 3] + 1);
    }
    ctx->save_for_backward({x, t, e, lg});
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["gamma"] = gamma;
    ctx->saved_data["sums"] = torch::tensor(sums, torch::kFloat64);
    return torch::tensor({focal / batch, dice / batch}, x.options());
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& t = saved[1];
    const torch::Tensor& e = saved[2];
    const torch::Tensor& lg = saved[3];
    const double alpha = ctx->saved_data["alpha"].toDouble();
    const double gamma = ctx->saved_data["gamma"].toDouble();
    const torch::Tensor sums_t = ctx->saved_data["sums"].toTensor();
    const std::vector<double> sums(sums_t.data_ptr<double>(), sums_t.data_ptr<double>() + sums_t.numel());
    const torch::Tensor g = grad_outputs[0].to(torch::kCPU, torch::kFloat64);
    const double g_focal = g[0].item<double>(), g_dice = g[1].item<double>();
    const int64_t batch = x.size(0), n = x.numel() / std::max<int64_t>(1, batch);
    torch::Tensor grad = torch::empty_like(x);
    if (x.scalar_type() == torch::kFloat64)
      Backward(x.data_ptr<double>(), t.data_ptr<double>(), e.data_ptr<double>(), lg.data_ptr<double>(),
               grad.data_ptr<double>(), batch, n, alpha, gamma, sums, g_focal, g_dice);
    else
      Backward(x.data_ptr<float>(), t.data_ptr<float>(), e.data_ptr<float>(), lg.data_ptr<float>(),
               grad.data_ptr<float>(), batch, n, alpha, gamma, sums, g_focal, g_dice);
    return {grad, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor FusedFocalDiceLoss(const torch::Tensor& logits, const torch::Tensor& target, double alpha, double gamma) {
  CheckPair(logits, target);
  if (gamma < 1.0) throw Error("the fused focal loss needs gamma >= 1");
  if (!logits.device().is_cpu()) {
    // Accelerators: the composite form (their element-wise kernels are fast).
    return torch::stack({SigmoidFocalLoss(logits, target, alpha, gamma).mean(), DiceLoss(logits, target).mean()});
  }
  if (logits.scalar_type() != torch::kFloat32 && logits.scalar_type() != torch::kFloat64)
    return FusedFocalDiceLoss(logits.to(torch::kFloat32), target, alpha, gamma);
  return FocalDiceFunction::apply(logits, target, alpha, gamma);
}

torch::Tensor SigmoidFocalLoss(const torch::Tensor& logits, const torch::Tensor& target, double alpha, double gamma) {
  const torch::Tensor x = logits.flatten(1);
  const torch::Tensor t = target.flatten(1);
  const torch::Tensor p = torch::sigmoid(x);
  const torch::Tensor ce = F::binary_cross_entropy_with_logits(
      x, t, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  // p_t: the probability given to the true class.
  const torch::Tensor p_t = p * t + (1 - p) * (1 - t);
  torch::Tensor loss = ce * torch::pow(1 - p_t, gamma);
  if (alpha >= 0) loss = (alpha * t + (1 - alpha) * (1 - t)) * loss;
  return loss.mean(1);
}

torch::Tensor DiceLoss(const torch::Tensor& logits, const torch::Tensor& target) {
  const torch::Tensor p = torch::sigmoid(logits.flatten(1));
  const torch::Tensor t = target.flatten(1);
  const torch::Tensor numerator = 2 * (p * t).sum(1);
  const torch::Tensor denominator = p.sum(1) + t.sum(1);
  return 1 - (numerator + 1) / (denominator + 1);
}

LossTerms SegmentationLoss(const torch::Tensor& logits, const torch::Tensor& target, const LossWeights& w,
                           const torch::Tensor& object_score_logits) {
  CheckPair(logits, target);
  LossTerms out;
  const torch::Tensor terms = FusedFocalDiceLoss(logits, target, w.focal_alpha, w.focal_gamma);
  out.focal = terms[0];
  out.dice = terms[1];
  out.total = w.focal * out.focal + w.dice * out.dice;
  if (object_score_logits.defined() && w.object_score != 0.0) {
    const torch::Tensor scores = object_score_logits.reshape({-1});
    if (scores.size(0) != logits.size(0)) throw Error("loss: one object score per sample expected");
    const torch::Tensor present = target.flatten(1).amax(1).gt(0.5).to(scores.scalar_type());
    out.object_score = F::binary_cross_entropy_with_logits(scores, present);
    out.total = out.total + w.object_score * out.object_score;
  } else {
    out.object_score = torch::zeros({}, out.total.options());
  }
  return out;
}

torch::Tensor PrepareTarget(const torch::Tensor& mask_hw, int image_size) {
  if (!mask_hw.defined() || mask_hw.dim() != 2 || mask_hw.numel() == 0)
    throw Error("a corrected mask must be a non-empty [H, W] raster");
  if (image_size < 1) throw Error("image size must be positive");
  torch::NoGradGuard no_grad;
  const torch::Tensor m = mask_hw.ne(0).to(torch::kFloat32).unsqueeze(0).unsqueeze(0);
  const torch::Tensor resized = F::interpolate(m, F::InterpolateFuncOptions()
                                                      .size(std::vector<int64_t>{image_size, image_size})
                                                      .mode(torch::kBilinear)
                                                      .align_corners(false)
                                                      .antialias(true));
  return resized.ge(0.5).to(torch::kFloat32);
}

torch::Tensor PrepareTarget(const Mask& mask, int image_size) {
  if (mask.empty()) throw Error("a corrected mask must be a non-empty raster");
  const torch::Tensor view = torch::from_blob(const_cast<uint8_t*>(mask.data()), {mask.height(), mask.width()},
                                              torch::dtype(torch::kUInt8));
  return PrepareTarget(view, image_size);
}

torch::Tensor MaskIoU(const torch::Tensor& logits, const torch::Tensor& target) {
  CheckPair(logits, target);
  torch::NoGradGuard no_grad;
  const torch::Tensor a = logits.flatten(1).gt(0);
  const torch::Tensor b = target.flatten(1).gt(0.5);
  const torch::Tensor inter = (a & b).sum(1).to(torch::kFloat64);
  const torch::Tensor uni = (a | b).sum(1).to(torch::kFloat64);
  return torch::where(uni.gt(0), inter / uni.clamp_min(1), torch::ones_like(uni));
}

torch::Tensor UpsampleLogits(const torch::Tensor& logits, int size) { return sam2::ResizeBilinear(logits, size, size); }

Mask MaskFromLogits(const torch::Tensor& logits, int width, int height) {
  if (width < 1 || height < 1) throw Error("mask size must be positive");
  if (!logits.defined() || logits.numel() == 0) throw Error("no logits to turn into a mask");
  torch::NoGradGuard no_grad;
  torch::Tensor l = logits.detach().to(torch::kCPU, torch::kFloat32);
  while (l.dim() < 4) l = l.unsqueeze(0);
  if (l.size(0) != 1 || l.size(1) != 1) throw Error("MaskFromLogits expects the logits of one mask");
  const torch::Tensor up = sam2::ResizeBilinear(l, height, width);
  const torch::Tensor binary = up.gt(0).to(torch::kUInt8).contiguous();
  Mask mask(width, height);
  std::memcpy(mask.data(), binary.data_ptr<uint8_t>(), mask.pixel_count());
  return mask;
}

}  // namespace litseg::lit
