// Sine position encoding of a feature map (sam2/modeling/position_encoding.py:
// PositionEmbeddingSine with normalize=True, scale=2*pi), used by the FPN neck and the
// memory encoder.
//
//   litseg::sam2::PositionEmbeddingSine pe(/*num_pos_feats=*/256);
//   torch::Tensor pos = pe->forward(features);  // [B, 256, H, W] for features [B, C, H, W]
//
// The encoding depends only on (H, W); results are cached per size. The returned tensor may
// be shared with the cache (and expanded over the batch): never modify it in place.
//
// Thread-safety: forward() may be called from several threads (the cache is locked).
#pragma once

#include <map>
#include <mutex>
#include <utility>

#include <torch/torch.h>

namespace litseg::sam2 {

struct PositionEmbeddingSineImpl : torch::nn::Module {
  // num_pos_feats = output channels (the official argument; half go to y, half to x).
  explicit PositionEmbeddingSineImpl(int num_pos_feats, double temperature = 10000.0);

  torch::Tensor forward(const torch::Tensor& x);  // -> [B, num_pos_feats, H, W]
  // The [1, num_pos_feats, h, w] float32 encoding (computed on the CPU, then moved).
  torch::Tensor Encode(int64_t h, int64_t w, const torch::Device& device);

  int num_pos_feats;
  double temperature;

 private:
  std::mutex mutex_;
  std::map<std::pair<int64_t, int64_t>, torch::Tensor> cache_;
};
TORCH_MODULE(PositionEmbeddingSine);

}  // namespace litseg::sam2
