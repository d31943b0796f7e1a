// The two-way transformer of the SAM 2 mask decoder (sam2/modeling/sam/transformer.py):
// prompt tokens and image tokens attend to each other in `depth` TwoWayAttentionBlocks, then
// the tokens attend to the image once more.
//
//   litseg::sam2::TwoWayTransformer transformer(config.mask_decoder, config.d_model());
//   auto [tokens, image] = transformer->forward(image_embedding /*[B,C,H,W]*/,
//                                               image_pe /*[B,C,H,W]*/, tokens /*[B,N,C]*/);
//   // tokens [B, N, C], image [B, H*W, C]
//
// Low-rank adaptation: every Attention accepts adapters that add a delta to its q, k or v
// projection (q = q_proj(x) + adapter->Delta(x)) without touching the base weights.
// Adapters are held by shared_ptr and are NOT submodules: they never appear in
// parameters() or the state dict; their owner trains and saves them.
//
//   struct Lora : litseg::sam2::ProjectionAdapter {
//     torch::Tensor a, b;  // [r, in], [out, r]
//     torch::Tensor Delta(const torch::Tensor& x) override { return x.matmul(a.t()).matmul(b.t()); }
//   };
//   for (auto& [name, attention] : transformer->NamedAttentions())
//     attention->SetAdapter(litseg::sam2::Projection::kQ, std::make_shared<Lora>(...));
//
// Thread-safety: forward() only reads parameters and adapters, so concurrent forwards are
// safe; SetAdapter/ClearAdapters must not run concurrently with a forward.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "litseg/sam2/config.h"
#include "litseg/sam2/mlp.h"

namespace litseg::sam2 {

// A trainable correction added to one input projection of an Attention.
struct ProjectionAdapter {
  virtual ~ProjectionAdapter();
  // x: the projection's input [..., in_dim]; returns [..., out_dim] (the projection's output
  // shape), added to the base projection.
  virtual torch::Tensor Delta(const torch::Tensor& x) = 0;
};

enum class Projection { kQ = 0, kK = 1, kV = 2 };

// Multi-head attention with an optional reduction of the internal dimension
// (internal_dim = embedding_dim / downsample_rate) and keys/values of another width.
struct AttentionImpl : torch::nn::Module {
  // kv_in_dim <= 0 means embedding_dim. Throws litseg::Error when num_heads does not divide
  // the internal dimension.
  AttentionImpl(int64_t embedding_dim, int64_t num_heads, int64_t downsample_rate = 1, int64_t kv_in_dim = 0);

  // q [B, Nq, embedding_dim], k [B, Nk, kv_in_dim], v [B, Nk, kv_in_dim] -> [B, Nq, embedding_dim]
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

  // nullptr removes the adapter of that projection.
  void SetAdapter(Projection which, std::shared_ptr<ProjectionAdapter> adapter);
  void ClearAdapters();
  const std::shared_ptr<ProjectionAdapter>& adapter(Projection which) const {
    return adapters_[static_cast<int>(which)];
  }
  // The base projection of q, k or v (e.g. for an adapter's sizes).
  torch::nn::Linear& projection(Projection which);

  int64_t embedding_dim;
  int64_t kv_in_dim;
  int64_t internal_dim;
  int64_t num_heads;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  torch::Tensor Project(Projection which, const torch::Tensor& x);
  std::array<std::shared_ptr<ProjectionAdapter>, 3> adapters_;
};
TORCH_MODULE(Attention);

// Self-attention of the tokens, cross-attention tokens -> image, MLP on the tokens and
// cross-attention image -> tokens, each followed by a LayerNorm.
struct TwoWayAttentionBlockImpl : torch::nn::Module {
  TwoWayAttentionBlockImpl(int64_t embedding_dim, int64_t num_heads, int64_t mlp_dim, int64_t attention_downsample_rate,
                           bool skip_first_layer_pe, double layer_norm_eps);

  // -> (queries, keys)
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& queries, const torch::Tensor& keys,
                                                  const torch::Tensor& query_pe, const torch::Tensor& key_pe);

  Attention self_attn{nullptr};
  torch::nn::LayerNorm norm1{nullptr};
  Attention cross_attn_token_to_image{nullptr};
  torch::nn::LayerNorm norm2{nullptr};
  Mlp mlp{nullptr};
  torch::nn::LayerNorm norm3{nullptr};
  torch::nn::LayerNorm norm4{nullptr};
  Attention cross_attn_image_to_token{nullptr};
  bool skip_first_layer_pe;
};
TORCH_MODULE(TwoWayAttentionBlock);

struct TwoWayTransformerImpl : torch::nn::Module {
  // embedding_dim = the model's d_model; the other sizes come from the decoder config.
  TwoWayTransformerImpl(const MaskDecoderConfig& config, int64_t embedding_dim);

  // image_embedding [B, C, H, W], image_pe [B, C, H, W], point_embedding [B, N, C]
  // -> (tokens [B, N, C], image tokens [B, H*W, C])
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& image_embedding, const torch::Tensor& image_pe,
                                                  const torch::Tensor& point_embedding);

  // Every Attention with its state-dict path relative to this module, in forward order per
  // block: "layers.<i>.self_attn", "layers.<i>.cross_attn_token_to_image",
  // "layers.<i>.cross_attn_image_to_token", ..., "final_attn_token_to_image".
  std::vector<std::pair<std::string, Attention>> NamedAttentions() const;

  int64_t embedding_dim;
  torch::nn::ModuleList layers{nullptr};
  std::vector<TwoWayAttentionBlock> blocks;  // the same modules as `layers`, typed
  Attention final_attn_token_to_image{nullptr};
  torch::nn::LayerNorm norm_final_attn{nullptr};
};
TORCH_MODULE(TwoWayTransformer);

}  // namespace litseg::sam2
