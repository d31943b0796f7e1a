// SAM 2.1 memory encoder (sam2/modeling/memory_encoder.py) and the step that turns a frame's
// prediction into a memory entry (SAM2Base._encode_new_memory).
//
//   litseg::sam2::MemoryEncoder encoder(config.memory_encoder);
//   // ... load the "memory_encoder.*" weights (names below that prefix) ...
//   torch::NoGradGuard no_grad;
//   litseg::sam2::NewMemory memory = litseg::sam2::EncodeNewMemory(
//       *encoder, level2_features, high_res_mask_logits, object_score_logits,
//       /*is_mask_from_pts=*/true, no_obj_embed_spatial, litseg::sam2::NewMemoryOptionsFrom(config));
//   // memory.features: [B, mem_dim, S/16, S/16] bfloat16, as the video predictor stores it.
//
// MemoryEncoder::forward(pix_feat, masks): masks [B, 1, S, S] -> (sigmoid unless skipped) ->
// MaskDownSampler (conv k3 s2 + LayerNorm2d + GELU per x2 step down to S/16, then a 1x1 conv
// to in_dim) -> + pix_feat_proj(pix_feat) -> Fuser (CXBlocks) -> out_proj -> mem_dim channels,
// plus the sine position encoding of the result.
//
// Parameter names equal the official keys below "memory_encoder.":
// mask_downsampler.encoder.N (Sequential indices: conv, norm, GELU per step, final conv),
// pix_feat_proj, fuser.layers.N.{dwconv,norm,pwconv1,pwconv2,gamma}, out_proj (only when
// out_dim != in_dim, as in the reference).
//
// Thread-safety: forward() only reads the parameters (and locks the position-encoding cache).
#pragma once

#include <torch/torch.h>

#include "litseg/sam2/config.h"
#include "litseg/sam2/mlp.h"  // LayerNorm2d
#include "litseg/sam2/position_encoding.h"

namespace litseg::sam2 {

struct MaskDownSamplerImpl : torch::nn::Module {
  explicit MaskDownSamplerImpl(const MemoryEncoderConfig& config);
  torch::Tensor forward(const torch::Tensor& masks);  // [B, 1, S, S] -> [B, embed_dim, S/ts, S/ts]

  torch::nn::Sequential encoder{nullptr};
};
TORCH_MODULE(MaskDownSampler);

// ConvNeXt block: depthwise conv, LayerNorm2d, Linear x4, GELU, Linear, layer scale, residual.
struct CXBlockImpl : torch::nn::Module {
  CXBlockImpl(const MemoryEncoderConfig& config, int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d dwconv{nullptr};
  LayerNorm2d norm{nullptr};
  torch::nn::Linear pwconv1{nullptr}, pwconv2{nullptr};
  torch::Tensor gamma;  // undefined when layer_scale_init_value <= 0
};
TORCH_MODULE(CXBlock);

struct FuserImpl : torch::nn::Module {
  FuserImpl(const MemoryEncoderConfig& config, int64_t dim);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::ModuleList layers;
};
TORCH_MODULE(Fuser);

struct MemoryEncoderOutput {
  torch::Tensor vision_features;  // [B, out_dim, H, W]
  torch::Tensor vision_pos_enc;   // [B, out_dim, H, W], shared cache: read only
};

struct MemoryEncoderImpl : torch::nn::Module {
  explicit MemoryEncoderImpl(const MemoryEncoderConfig& config);

  // pix_feat [B, in_dim, H, W] (raw level-2 image features), masks [B, 1, H*ts, W*ts].
  // Throws litseg::Error on inconsistent shapes.
  MemoryEncoderOutput forward(const torch::Tensor& pix_feat, const torch::Tensor& masks,
                              bool skip_mask_sigmoid = false);

  MemoryEncoderConfig config;
  MaskDownSampler mask_downsampler{nullptr};
  torch::nn::Conv2d pix_feat_proj{nullptr};
  Fuser fuser{nullptr};
  PositionEmbeddingSine position_encoding{nullptr};
  torch::nn::Conv2d out_proj{nullptr};  // null when out_dim == in_dim (identity)
};
TORCH_MODULE(MemoryEncoder);

// The SAM2Base switches of _encode_new_memory.
struct NewMemoryOptions {
  double sigmoid_scale = 20.0;  // sigmoid_scale_for_mem_enc
  double sigmoid_bias = -10.0;  // sigmoid_bias_for_mem_enc
  // Masks from user interaction are binarised (logit > 0) instead of squashed by a sigmoid
  // (binarize_mask_from_pts_for_mem_enc; video predictor builds only; ignored in training).
  bool binarize_mask_from_pts = true;
  // Keep only the highest-scoring object per pixel across the batch first (eval only).
  bool non_overlap_masks = false;
  // Round the features to bfloat16 (nearest-even), as the video predictor stores them.
  bool round_to_bf16 = true;
};
NewMemoryOptions NewMemoryOptionsFrom(const Sam2Config& config);

struct NewMemory {
  torch::Tensor features;  // [B, mem_dim, H, W]: bfloat16 when round_to_bf16, else float32
  torch::Tensor pos_enc;   // [B, mem_dim, H, W] float32 (the same for every frame; read only)
};

// SAM2Base._encode_new_memory: pix_feat [B, C, H, W] are the frame's raw level-2 features
// (not the memory-conditioned ones), pred_masks_high_res [B, 1, S, S] mask logits at the model
// input size, object_score_logits [B, 1]. The mask becomes (logit > 0) when is_mask_from_pts
// (frames the user clicked or drew on) else sigmoid(logit); then x scale + bias; the encoder
// runs with skip_mask_sigmoid; no_obj_embed_spatial [1, mem_dim] (may be undefined = off) is
// added where the object score is <= 0.
NewMemory EncodeNewMemory(MemoryEncoderImpl& encoder, const torch::Tensor& pix_feat,
                          const torch::Tensor& pred_masks_high_res, const torch::Tensor& object_score_logits,
                          bool is_mask_from_pts, const torch::Tensor& no_obj_embed_spatial,
                          const NewMemoryOptions& options = {});

}  // namespace litseg::sam2
