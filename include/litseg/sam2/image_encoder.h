// SAM 2.1 image encoder = Hiera trunk + FPN neck (sam2/modeling/backbones/image_encoder.py).
//
//   litseg::sam2::Sam2Config config = litseg::sam2::LoadNamedConfig("sam2.1_hiera_t");
//   litseg::sam2::ImageEncoder encoder(config.image_encoder);
//   // ... load "image_encoder.*" weights (names below that prefix) ...
//   torch::NoGradGuard no_grad;
//   litseg::sam2::ImageEncoderOutput out = encoder->forward(PreprocessImage(rgb, config.image_size));
//   // out.backbone_fpn: 3 levels [1, d_model, S/4], [.., S/8], [.., S/16] (after the scalp),
//   // out.vision_features = backbone_fpn.back(), out.vision_pos_enc: matching sine encodings.
//
// SAM2Base.forward_image additionally projects backbone_fpn[0] / [1] with the mask
// decoder's conv_s0 / conv_s1; that belongs to the model that owns the decoder.
//
// Thread-safety: forward() only reads parameters (and locks the position-encoding cache).
#pragma once

#include <vector>

#include <torch/torch.h>

#include "litseg/sam2/config.h"
#include "litseg/sam2/hiera.h"
#include "litseg/sam2/position_encoding.h"

namespace litseg::sam2 {

// FPN neck: 1x1 lateral convs (ModuleList "convs" of Sequential{"conv"}) and top-down
// nearest upsampling on fpn_top_down_levels.
struct FpnNeckImpl : torch::nn::Module {
  explicit FpnNeckImpl(const FpnNeckConfig& config);
  // trunk outputs, highest resolution first -> (features, position encodings), same order.
  std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> forward(const std::vector<torch::Tensor>& xs);

  torch::Tensor Lateral(const torch::Tensor& x, const torch::nn::Conv2dImpl& conv) const;

  FpnNeckConfig config;
  torch::nn::ModuleList convs;
  PositionEmbeddingSine position_encoding{nullptr};
};
TORCH_MODULE(FpnNeck);

struct ImageEncoderOutput {
  torch::Tensor vision_features;              // = backbone_fpn.back()
  std::vector<torch::Tensor> vision_pos_enc;  // [B, d_model, H_i, W_i], shared cache: read only
  std::vector<torch::Tensor> backbone_fpn;    // contiguous NCHW, highest resolution first
};

struct ImageEncoderImpl : torch::nn::Module {
  explicit ImageEncoderImpl(const ImageEncoderConfig& config);
  // image: [B, 3, S, S] normalised float32. `trace` also receives "neck.fpn<i>" and
  // "neck.pos<i>" for every level, including those dropped by the scalp.
  ImageEncoderOutput forward(const torch::Tensor& image, const TraceFn& trace = nullptr);

  ImageEncoderConfig config;
  Hiera trunk{nullptr};
  FpnNeck neck{nullptr};
};
TORCH_MODULE(ImageEncoder);

}  // namespace litseg::sam2
