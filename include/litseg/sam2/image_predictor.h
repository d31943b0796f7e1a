// Single-image prediction (the equivalent of SAM2ImagePredictor): compute an image's features
// once, then turn prompts (clicks, a box, previous mask logits) into masks interactively.
//
//   litseg::sam2::ImagePredictor predictor(model);
//   predictor.SetImage(rgb_u8_hwc);                        // torch uint8 [H, W, 3] RGB
//   litseg::sam2::ImagePrompt prompt;
//   prompt.points = {{200.f, 100.f, 1}};                   // (x, y) in image pixels, positive
//   litseg::sam2::ImagePrediction p = predictor.Predict(prompt);
//   torch::Tensor best = p.masks[p.iou.argmax()] > 0;      // [H, W] at the image's resolution
//
// Preprocessing and output post-processing follow the official code exactly (see
// ../shared/sam2/README.md): squash-resize with antialiased bilinear, ImageNet normalisation,
// logits upsampled bilinearly to (H, W); low-res logits clamped to [-32, 32].
// Thread safety: one predictor per thread; the model may be shared.
#pragma once

#include <optional>
#include <vector>

#include <torch/torch.h>

#include "litseg/sam2/hiera.h"
#include "litseg/sam2/mask_decoder.h"
#include "litseg/sam2/prompt_encoder.h"
#include "litseg/sam2/sam2_model.h"

namespace litseg::sam2 {

struct ImagePrompt {
  std::vector<PromptPoint> points;  // clicks, image pixels
  std::optional<PromptBox> box;     // xyxy, image pixels
  torch::Tensor mask_input;         // [1, 1, S/4, S/4] (or [1, S/4, S/4]) logits; undefined = none
  bool multimask = true;
};

struct ImagePrediction {
  torch::Tensor masks;                // [C, H, W] logits at the image resolution (C = 3 or 1)
  torch::Tensor iou;                  // [C]
  torch::Tensor low_res_masks;        // [C, S/4, S/4], clamped to [-32, 32]
  torch::Tensor object_score_logits;  // [1] (computed; SAM2ImagePredictor does not use it)
  // Intermediates for inspection and parity checks.
  PointPrompt point_prompt;           // what the prompt encoder received
  PromptEmbeddings embeddings;
  MaskDecoderOutput decoder;          // raw outputs of all tokens and the selection decisions
};

class ImagePredictor {
 public:
  explicit ImagePredictor(Sam2Model model);

  // rgb: uint8 [H, W, 3] RGB, any size. `trace` receives the encoder's intermediates.
  void SetImage(const torch::Tensor& rgb, const TraceFn& trace = nullptr);
  bool has_image() const { return image_embed_.defined(); }
  int image_width() const { return width_; }
  int image_height() const { return height_; }

  ImagePrediction Predict(const ImagePrompt& prompt);
  // Several prompts on the same image in one decoder call (the official batched mode, e.g.
  // several boxes): returns one prediction per prompt, each with a leading batch dimension
  // removed. All prompts must have the same number of points and the same multimask flag.
  std::vector<ImagePrediction> PredictBatch(const std::vector<ImagePrompt>& prompts);

  // _features: image_embed = vision_features + no_mem_embed; high_res = conv_s0/s1 levels.
  const torch::Tensor& image_embed() const { return image_embed_; }
  const std::vector<torch::Tensor>& high_res_features() const { return high_res_; }
  const ImageFeatures& features() const { return features_; }
  Sam2Model model() const { return model_; }

 private:
  Sam2Model model_;
  ImageFeatures features_;
  torch::Tensor image_embed_;
  std::vector<torch::Tensor> high_res_;
  int width_ = 0, height_ = 0;
};

}  // namespace litseg::sam2
