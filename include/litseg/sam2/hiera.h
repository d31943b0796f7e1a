// Hiera trunk of the SAM 2.1 image encoder (sam2/modeling/backbones/hieradet.py).
//
//   litseg::sam2::Hiera trunk(config.image_encoder.trunk);
//   torch::NoGradGuard no_grad;
//   std::vector<torch::Tensor> stages = trunk->forward(image);  // image [B,3,S,S] normalised
//   // stages[i]: [B, C_i, S/4/2^i, S/4/2^i] (NCHW shape, channels-last memory)
//
// Parameter names equal the official state-dict keys below "image_encoder.trunk."
// (patch_embed.proj.*, pos_embed, pos_embed_window, blocks.N.{norm1,attn.qkv,attn.proj,
// norm2,mlp.layers.0,mlp.layers.1,proj}.*).
//
// Internally the blocks keep activations as contiguous BHWC and fold window partitioning
// and the split into heads into one copy of the qkv projection.
//
// Thread-safety: forward() only reads the parameters; one module may serve several threads
// under NoGradGuard.
#pragma once

#include <array>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "litseg/sam2/config.h"

namespace litseg::sam2 {

// Receives named intermediates ("trunk.patch_embed", "trunk.pos_embed", "trunk.block<i>"
// in BHWC, "trunk.out<i>" in NCHW) for parity tests and debugging.
using TraceFn = std::function<void(const std::string& name, const torch::Tensor& value)>;

// What each block of a Hiera configuration looks like, derived exactly as Hiera.__init__ does
// (including the one-block lag of the window size at stage transitions).
struct HieraBlockSpec {
  int dim = 0;
  int dim_out = 0;
  int num_heads = 0;
  int window_size = 0;  // 0 = global attention
  bool q_pool = false;  // max-pools the queries (and the shortcut) by q_stride
  int mlp_hidden = 0;
};

struct HieraLayout {
  std::vector<HieraBlockSpec> blocks;
  std::vector<int> stage_ends;     // index of the last block of each stage
  std::vector<int> q_pool_blocks;  // first block of each pooled stage
  std::vector<int> channel_list;   // stage output channels, deepest first (FpnNeck order)
};

HieraLayout ComputeHieraLayout(const HieraConfig& config);

struct PatchEmbedImpl : torch::nn::Module {
  explicit PatchEmbedImpl(const HieraConfig& config);
  torch::Tensor forward(const torch::Tensor& image);  // -> [B, C, H/4, W/4] (NCHW)
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

// Holds the attention weights; the windowed forward lives in MultiScaleBlock.
struct MultiScaleAttentionImpl : torch::nn::Module {
  MultiScaleAttentionImpl(int dim, int dim_out, int num_heads);
  torch::nn::Linear qkv{nullptr};
  torch::nn::Linear proj{nullptr};
  int num_heads;
};
TORCH_MODULE(MultiScaleAttention);

// The official two-layer MLP with GELU (sam2_utils.MLP, a ModuleList named "layers").
struct HieraMlpImpl : torch::nn::Module {
  HieraMlpImpl(int dim, int hidden, int dim_out);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::ModuleList layers;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(HieraMlp);

// Tokens of a [B, H, W, C] map stored window by window: `data` is [B*nH*nW, wh*ww, C] for
// windows of wh x ww tiling the map padded (at the bottom/right) to nH*wh x nW*ww. Padding
// tokens are kept at zero. wh = H, ww = W is the plain contiguous BHWC layout. Hiera blocks
// consume and produce this form, so consecutive blocks with the same window skip the
// partition/unpartition copies.
struct WindowedTokens {
  torch::Tensor data;
  int64_t batch = 0, height = 0, width = 0, window_h = 0, window_w = 0;

  int64_t windows_h() const { return (height + window_h - 1) / window_h; }
  int64_t windows_w() const { return (width + window_w - 1) / window_w; }
  bool padded() const { return windows_h() * window_h != height || windows_w() * window_w != width; }

  static WindowedTokens FromSpatial(const torch::Tensor& bhwc, int64_t wh, int64_t ww);
  WindowedTokens Rewindow(int64_t wh, int64_t ww) const;
  torch::Tensor ToSpatial() const;  // contiguous [B, H, W, C]
  void ZeroPadding();               // in place
};

struct MultiScaleBlockImpl : torch::nn::Module {
  MultiScaleBlockImpl(const HieraBlockSpec& spec, const HieraConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // [B, H, W, dim] -> [B, H', W', dim_out]
  // Input in any window layout (re-windowed as needed); the output is windowed by the
  // block's (pooled) window size.
  WindowedTokens Forward(const WindowedTokens& x);

  HieraBlockSpec spec;
  std::array<int, 2> q_stride;
  double eps;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  MultiScaleAttention attn{nullptr};
  HieraMlp mlp{nullptr};
  torch::nn::Linear proj{nullptr};  // only when dim != dim_out
};
TORCH_MODULE(MultiScaleBlock);

struct HieraImpl : torch::nn::Module {
  explicit HieraImpl(const HieraConfig& config);
  std::vector<torch::Tensor> forward(const torch::Tensor& image, const TraceFn& trace = nullptr);
  // interpolate(pos_embed, (h, w), bicubic) + tiled pos_embed_window, [1, h, w, C] (BHWC).
  torch::Tensor PositionEmbedding(int64_t h, int64_t w);

  HieraConfig config;
  HieraLayout layout;
  PatchEmbed patch_embed{nullptr};
  torch::Tensor pos_embed;         // [1, C, bkg_h, bkg_w]
  torch::Tensor pos_embed_window;  // [1, C, window_spec[0], window_spec[0]]
  torch::nn::ModuleList blocks;

 private:
  // PositionEmbedding() result for the last size, valid while the parameters' storage and
  // version counters (bumped by every in-place write, e.g. loading weights) are unchanged.
  std::mutex pos_cache_mutex_;
  torch::Tensor pos_cache_;
  std::array<int64_t, 6> pos_cache_key_{};
};
TORCH_MODULE(Hiera);

}  // namespace litseg::sam2
