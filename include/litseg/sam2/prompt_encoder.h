// SAM 2 prompt encoder (sam2/modeling/sam/prompt_encoder.py): points and boxes become sparse
// tokens, a low-resolution mask becomes a dense embedding added to the image embedding.
//
//   litseg::sam2::PromptEncoder encoder(config);   // sizes from the Sam2Config
//   // ... load the "sam_prompt_encoder.*" weights (names below that prefix) ...
//   // Clicks and an optional box in original-image pixels -> the official point prompt:
//   litseg::sam2::PointPrompt prompt = litseg::sam2::MakePointPrompt(
//       {{200.f, 100.f, 1}}, std::nullopt, /*image_width=*/320, /*image_height=*/180, config.image_size);
//   litseg::sam2::PromptEmbeddings e = encoder->Encode(prompt);  // = forward(coords, labels, {}, {})
//   // e.sparse [1, N + 1, d] (a padding token is appended), e.dense [1, d, S/16, S/16]
//   torch::Tensor image_pe = encoder->GetDensePe();  // [1, d, S/16, S/16]
//
// Conventions (identical to both official predictors): a box is given to the encoder as two
// points with labels 2 (x0, y0) and 3 (x1, y1) placed BEFORE the clicks, and the encoder is
// called without `boxes`, so a padding point (label -1) is always appended. Labels: 1
// positive click, 0 negative click, 2/3 box corners, -1 padding (no position encoding, the
// learned not_a_point_embed instead).
//
// Thread-safety: forward() only reads parameters and GetDensePe() guards its cache; concurrent
// calls are safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include <torch/torch.h>

#include "litseg/sam2/config.h"

namespace litseg::sam2 {

// Random Fourier features of 2-D coordinates (position_encoding.py: PositionEmbeddingRandom):
// c in [0, 1]^2 -> 2c - 1 -> @ G [2, F] -> * 2 pi -> [sin, cos] (2F channels).
struct PositionEmbeddingRandomImpl : torch::nn::Module {
  explicit PositionEmbeddingRandomImpl(int64_t num_pos_feats, double scale = 1.0);

  // coords [..., 2] (x, y) normalised to [0, 1] -> [..., 2 * num_pos_feats]
  torch::Tensor EncodeNormalized(const torch::Tensor& coords) const;
  // Encoding of the pixel centres of an h x w grid -> [2 * num_pos_feats, h, w].
  torch::Tensor forward(int64_t h, int64_t w) const;
  // coords [B, N, 2] in pixels of an image of image_h x image_w -> [B, N, 2 * num_pos_feats]
  torch::Tensor ForwardWithCoords(const torch::Tensor& coords, int64_t image_h, int64_t image_w) const;

  torch::Tensor positional_encoding_gaussian_matrix;  // buffer [2, num_pos_feats]
};
TORCH_MODULE(PositionEmbeddingRandom);

struct PromptEmbeddings {
  torch::Tensor sparse;  // [B, N, d]
  torch::Tensor dense;   // [B, d, S/16, S/16]
};

// Point prompt tensors as the official predictors feed them to the prompt encoder.
struct PointPrompt {
  torch::Tensor coords;  // [B, N, 2] float32, (x, y) in model input pixels (S x S)
  torch::Tensor labels;  // [B, N] int32
};

// One click or box corner in original-image pixels.
struct PromptPoint {
  float x = 0.f;
  float y = 0.f;
  int label = 1;  // 1 positive, 0 negative
};

// xyxy in original-image pixels.
struct PromptBox {
  float x0 = 0.f, y0 = 0.f, x1 = 0.f, y1 = 0.f;
};

// Builds the [1, N, 2] / [1, N] point prompt of one object: the box corners (labels 2, 3)
// first, then the clicks, each mapped (x, y) -> (x / image_width * S, y / image_height * S)
// in float32 exactly like SAM2Transforms.transform_coords. No padding point (the encoder
// appends it). Throws litseg::Error on click labels other than 0/1, a non-positive image
// size or an empty prompt.
PointPrompt MakePointPrompt(const std::vector<PromptPoint>& clicks, const std::optional<PromptBox>& box,
                            int image_width, int image_height, int model_image_size);

// Concatenates per-object prompts with the same number of points into one batch
// (e.g. several boxes predicted together). Throws litseg::Error when the counts differ.
PointPrompt StackPointPrompts(const std::vector<PointPrompt>& prompts);

struct PromptEncoderImpl : torch::nn::Module {
  // embed_dim = d_model, image embedding size = image_size / backbone_stride, mask input
  // size = 4x that, input image size = image_size.
  explicit PromptEncoderImpl(const Sam2Config& config);

  // The official forward. points [B, N, 2] (model input pixels) with labels [B, N] (int32 or
  // int64), boxes [B, 4] xyxy, masks [B, 1, 4h, 4w] logits; undefined tensors mean "absent".
  // Without boxes a padding point is appended to the points. The batch size is taken from
  // points, else boxes, else masks, else 1. Throws litseg::Error on inconsistent shapes or
  // labels outside -1..3.
  PromptEmbeddings forward(const torch::Tensor& points, const torch::Tensor& labels, const torch::Tensor& boxes,
                           const torch::Tensor& masks);
  // forward(points.coords, points.labels, no boxes, masks): the predictors' call.
  PromptEmbeddings Encode(const PointPrompt& points, const torch::Tensor& masks = {}) {
    return forward(points.coords, points.labels, {}, masks);
  }

  // Position encoding of the image embedding grid [1, d, h, w] (the decoder's image_pe).
  // Computed once and reused until the Gaussian matrix changes (a checkpoint load, a move to
  // another device); the returned tensor is shared, so callers must not modify it in place.
  torch::Tensor GetDensePe() const;

  int64_t embed_dim;
  int64_t embedding_h, embedding_w;  // image embedding size
  int64_t input_h, input_w;          // model input size
  int64_t mask_input_h, mask_input_w;

  PositionEmbeddingRandom pe_layer{nullptr};
  torch::nn::ModuleList point_embeddings{nullptr};  // 4 x Embedding(1, d): labels 0, 1, 2, 3
  torch::nn::Embedding not_a_point_embed{nullptr};
  torch::nn::Sequential mask_downscaling{nullptr};
  torch::nn::Embedding no_mask_embed{nullptr};

 private:
  mutable std::mutex dense_pe_mutex_;
  mutable torch::Tensor dense_pe_;
  mutable const void* dense_pe_source_ = nullptr;  // Gaussian matrix storage it came from
  mutable int64_t dense_pe_version_ = -1;           // and that tensor's version counter

  torch::Tensor EmbedPoints(const torch::Tensor& points, const torch::Tensor& labels, bool pad) const;
  torch::Tensor EmbedBoxes(const torch::Tensor& boxes) const;
  const torch::Tensor& PointEmbedding(int label) const;
};
TORCH_MODULE(PromptEncoder);

}  // namespace litseg::sam2
