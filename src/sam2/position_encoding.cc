#include "litseg/sam2/position_encoding.h"

#include <cmath>

#include "litseg/core/error.h"

namespace litseg::sam2 {
namespace {

// One axis of the encoding: [n, feats] with columns sin(p/d0), cos(p/d0), sin(p/d2), ...
// for normalised positions p = (i+1) / (n + 1e-6) * 2pi. Every step is the same float32
// tensor operation as in the reference so that the values agree to the last bit.
torch::Tensor AxisTable(int64_t n, int64_t feats, double temperature) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  constexpr double kEps = 1e-6;
  const double scale = 2.0 * M_PI;
  torch::Tensor embed = torch::arange(1, n + 1, f32);
  embed = embed / (embed.narrow(0, n - 1, 1) + kEps) * scale;
  torch::Tensor dim_t = torch::arange(feats, f32);
  dim_t = torch::pow(temperature, 2 * torch::floor_divide(dim_t, 2) / feats);
  torch::Tensor pos = embed.unsqueeze(1) / dim_t;  // [n, feats]
  torch::Tensor even = pos.slice(1, 0, feats, 2).sin();
  torch::Tensor odd = pos.slice(1, 1, feats, 2).cos();
  return torch::stack({even, odd}, 2).flatten(1);  // interleave
}

}  // namespace

PositionEmbeddingSineImpl::PositionEmbeddingSineImpl(int feats, double temp)
    : num_pos_feats(feats), temperature(temp) {
  if (feats <= 0 || feats % 4 != 0)
    throw Error("PositionEmbeddingSine: num_pos_feats must be a positive multiple of 4, got " +
                std::to_string(feats));
}

torch::Tensor PositionEmbeddingSineImpl::Encode(int64_t h, int64_t w, const torch::Device& device) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = cache_.find({h, w});
  if (it == cache_.end() || it->second.device() != device) {
    torch::NoGradGuard no_grad;
    const int64_t half = num_pos_feats / 2;
    const torch::Tensor y = AxisTable(h, half, temperature);  // [h, half]
    const torch::Tensor x = AxisTable(w, half, temperature);  // [w, half]
    // Channels: the y half first, then the x half.
    torch::Tensor pos = torch::cat({y.t().unsqueeze(2).expand({half, h, w}), x.t().unsqueeze(1).expand({half, h, w})},
                                   0)
                            .unsqueeze(0)
                            .to(device);
    it = cache_.insert_or_assign({h, w}, pos).first;
  }
  return it->second;
}

torch::Tensor PositionEmbeddingSineImpl::forward(const torch::Tensor& x) {
  if (x.dim() != 4) throw Error("PositionEmbeddingSine: expected a [B, C, H, W] tensor");
  torch::Tensor pos = Encode(x.size(2), x.size(3), x.device());
  return x.size(0) == 1 ? pos : pos.expand({x.size(0), -1, -1, -1});
}

}  // namespace litseg::sam2
