#include "litseg/sam2/resize.h"

#include <cmath>
#include <vector>

#include <ATen/Parallel.h>

#include "litseg/core/error.h"

namespace litseg::sam2 {
namespace F = torch::nn::functional;

namespace {

// Source taps of one axis, computed as LibTorch's upsample_bilinear2d computes them
// (area_pixel_compute_source_index and compute_source_index_and_lambda, align_corners=False),
// in the kernel's arithmetic type, so that the weights are the same numbers.
template <typename T>
struct AxisTaps {
  std::vector<int64_t> i0, i1;
  std::vector<T> w0, w1;
};

template <typename T>
AxisTaps<T> ComputeTaps(int64_t in, int64_t out) {
  AxisTaps<T> taps;
  taps.i0.resize(out), taps.i1.resize(out), taps.w0.resize(out), taps.w1.resize(out);
  const T scale = static_cast<T>(in) / static_cast<T>(out);
  for (int64_t d = 0; d < out; ++d) {
    if (in == out) {
      taps.i0[d] = taps.i1[d] = d;
      taps.w0[d] = T(1), taps.w1[d] = T(0);
      continue;
    }
    // compute_source_index_and_lambda: the source position in the accumulation type (double
    // on the CPU, also for float), the weights rounded from it.
    double src = static_cast<double>(scale) * (static_cast<double>(d) + 0.5) - 0.5;
    if (src < 0.0) src = 0.0;
    const int64_t i0 = static_cast<int64_t>(src);
    taps.i0[d] = i0;
    taps.i1[d] = i0 + (i0 < in - 1 ? 1 : 0);
    const T lambda = static_cast<T>(src - static_cast<double>(i0));
    taps.w1[d] = lambda;
    taps.w0[d] = T(1) - lambda;
  }
  return taps;
}

// For each input index, the output indices that read it and with which weight, in increasing
// output order (the backward pass gathers instead of scattering: no races, fixed sums).
template <typename T>
std::vector<std::vector<std::pair<int64_t, T>>> InverseTaps(const AxisTaps<T>& taps, int64_t in) {
  std::vector<std::vector<std::pair<int64_t, T>>> users(in);
  for (size_t d = 0; d < taps.i0.size(); ++d) {
    users[taps.i0[d]].emplace_back(static_cast<int64_t>(d), taps.w0[d]);
    users[taps.i1[d]].emplace_back(static_cast<int64_t>(d), taps.w1[d]);
  }
  return users;
}

// x: contiguous [planes, h, w] -> [planes, height, width]. Columns first, then rows: per output
// pixel h0 * (w0 a + w1 b) + h1 * (w0 c + w1 d), the grouping of LibTorch's kernel.
template <typename T>
void Forward(const T* x, T* y, int64_t planes, int64_t h, int64_t w, int64_t height, int64_t width) {
  const AxisTaps<T> rows = ComputeTaps<T>(h, height), cols = ComputeTaps<T>(w, width);
  // The column pass of every input row: [planes, h, width].
  std::vector<T> across(static_cast<size_t>(planes * h * width));
  at::parallel_for(0, planes * h, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* in = x + r * w;
      T* out = across.data() + r * width;
      for (int64_t c = 0; c < width; ++c) out[c] = cols.w0[c] * in[cols.i0[c]] + cols.w1[c] * in[cols.i1[c]];
    }
  });
  at::parallel_for(0, planes * height, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t p = r / height, o = r % height;
      const T* a = across.data() + (p * h + rows.i0[o]) * width;
      const T* b = across.data() + (p * h + rows.i1[o]) * width;
      const T w0 = rows.w0[o], w1 = rows.w1[o];
      T* out = y + r * width;
      for (int64_t c = 0; c < width; ++c) out[c] = w0 * a[c] + w1 * b[c];
    }
  });
}

// The adjoint of Forward: g [planes, height, width] -> grad [planes, h, w].
template <typename T>
void Backward(const T* g, T* grad, int64_t planes, int64_t h, int64_t w, int64_t height, int64_t width) {
  const AxisTaps<T> rows = ComputeTaps<T>(h, height), cols = ComputeTaps<T>(w, width);
  const auto row_users = InverseTaps(rows, h);
  at::parallel_for(0, planes * h, 4, [&](int64_t begin, int64_t end) {
    std::vector<T> across(static_cast<size_t>(width));
    for (int64_t r = begin; r < end; ++r) {
      const int64_t p = r / h, i = r % h;
      std::fill(across.begin(), across.end(), T(0));
      for (const auto& [o, weight] : row_users[i]) {
        const T* src = g + (p * height + o) * width;
        for (int64_t c = 0; c < width; ++c) across[c] += weight * src[c];
      }
      T* out = grad + r * w;
      std::fill(out, out + w, T(0));
      for (int64_t c = 0; c < width; ++c) {
        out[cols.i0[c]] += cols.w0[c] * across[c];
        out[cols.i1[c]] += cols.w1[c] * across[c];
      }
    }
  });
}

struct ResizeBilinearFunction : public torch::autograd::Function<ResizeBilinearFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, int64_t height,
                               int64_t width) {
    const torch::Tensor in = x.contiguous();
    const int64_t h = in.size(-2), w = in.size(-1), planes = in.numel() / (h * w);
    std::vector<int64_t> shape(in.sizes().begin(), in.sizes().end());
    shape[shape.size() - 2] = height, shape[shape.size() - 1] = width;
    torch::Tensor out = torch::empty(shape, in.options());
    if (in.scalar_type() == torch::kFloat64)
      Forward(in.data_ptr<double>(), out.data_ptr<double>(), planes, h, w, height, width);
    else
      Forward(in.data_ptr<float>(), out.data_ptr<float>(), planes, h, w, height, width);
    ctx->saved_data["input_shape"] = in.sizes().vec();
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const std::vector<int64_t> shape = ctx->saved_data["input_shape"].toIntVector();
    const torch::Tensor g = grad_outputs[0].contiguous();
    const int64_t h = shape[shape.size() - 2], w = shape[shape.size() - 1];
    const int64_t height = g.size(-2), width = g.size(-1), planes = g.numel() / (height * width);
    torch::Tensor grad = torch::empty(shape, g.options());
    if (g.scalar_type() == torch::kFloat64)
      Backward(g.data_ptr<double>(), grad.data_ptr<double>(), planes, h, w, height, width);
    else
      Backward(g.data_ptr<float>(), grad.data_ptr<float>(), planes, h, w, height, width);
    return {grad, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor ResizeBilinear(const torch::Tensor& x, int64_t height, int64_t width) {
  if (!x.defined() || x.dim() < 2 || x.size(-1) < 1 || x.size(-2) < 1)
    throw Error("ResizeBilinear needs a tensor of at least two non-empty dimensions");
  if (height < 1 || width < 1) throw Error("ResizeBilinear: the output size must be positive");
  const bool fast = x.device().is_cpu() && (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64);
  if (!fast) {
    torch::Tensor in = x;
    const int64_t dims = x.dim();
    while (in.dim() < 4) in = in.unsqueeze(0);
    const torch::Tensor flat = in.flatten(0, in.dim() - 3).unsqueeze(1);  // [planes, 1, h, w]
    torch::Tensor out = F::interpolate(flat, F::InterpolateFuncOptions()
                                                 .size(std::vector<int64_t>{height, width})
                                                 .mode(torch::kBilinear)
                                                 .align_corners(false));
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape[dims - 2] = height, shape[dims - 1] = width;
    return out.reshape(shape);
  }
  return ResizeBilinearFunction::apply(x, height, width);
}

}  // namespace litseg::sam2
