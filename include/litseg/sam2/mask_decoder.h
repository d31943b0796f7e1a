// SAM 2 mask decoder (sam2/modeling/sam/mask_decoder.py) as the sam2.1 configs build it:
// object-score, IoU and 4 mask tokens run through the two-way transformer with the prompt
// tokens; the image tokens are upscaled 4x (fused with the stride-4/8 high-resolution
// features) and each mask token's hypernetwork MLP turns them into mask logits.
//
//   litseg::sam2::MaskDecoder decoder(config);
//   // ... load the "sam_mask_decoder.*" weights (names below that prefix) ...
//   // High-resolution features: SAM2Base.forward_image projects FPN levels 0 and 1 with the
//   // decoder's conv_s0 / conv_s1 once per image.
//   std::vector<torch::Tensor> high_res = decoder->ProjectHighResFeatures(fpn[0], fpn[1]);
//   litseg::sam2::MaskDecoderOutput out = decoder->forward(
//       image_embed /*[1,d,h,w], level 2 (+ no_mem_embed)*/, prompt_encoder->GetDensePe(),
//       prompts.sparse, prompts.dense, /*multimask_output=*/true, /*repeat_image=*/false, high_res);
//   // out.masks [B, 3, 4h, 4w] logits, out.iou_pred [B, 3], out.raw: all 4 tokens.
//
// Output selection (MaskDecoder.forward): multimask -> tokens 1..3; single mask -> token 0,
// except that in eval mode with dynamic_multimask_via_stability a token-0 mask whose
// stability score #(logit > delta) / #(logit > -delta) is below the threshold is replaced
// (mask AND IoU) by the multimask token with the highest predicted IoU. The SAM output token
// (for object pointers) is tokens 1..3 for multimask output when
// use_multimask_token_for_obj_ptr, else always token 0.
//
// Autograd: nothing here disables gradients; inference callers add torch::NoGradGuard.
// Low-rank adapters attach to the transformer's attentions (NamedAttentions(), see
// two_way_transformer.h).
//
// Thread-safety: forward() only reads parameters; concurrent forwards are safe (not while
// adapters are being changed).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "litseg/sam2/config.h"
#include "litseg/sam2/mlp.h"
#include "litseg/sam2/two_way_transformer.h"

namespace litseg::sam2 {

// MaskDecoder.predict_masks: every mask token, before selection.
struct MaskDecoderRawOutput {
  torch::Tensor masks;                // [B, T, 4h, 4w] logits, T = num_multimask_outputs + 1
  torch::Tensor iou_pred;             // [B, T] (sigmoid applied when iou_prediction_use_sigmoid)
  torch::Tensor mask_tokens_out;      // [B, T, d] mask tokens after the transformer
  torch::Tensor object_score_logits;  // [B, 1] (10 when the model predicts no object scores)
};

struct MaskDecoderOutput {
  torch::Tensor masks;                // [B, 3, 4h, 4w] (multimask) or [B, 1, 4h, 4w] logits
  torch::Tensor iou_pred;             // [B, 3] or [B, 1]
  torch::Tensor sam_tokens_out;       // [B, 3, d] or [B, 1, d]
  torch::Tensor object_score_logits;  // [B, 1]

  // The discrete decisions behind the selection.
  torch::Tensor best_multimask_index;  // [B] int64: argmax of the IoUs of tokens 1..3 (0-based among them)
  // Single-mask output with the stability test only (undefined otherwise):
  torch::Tensor stability_scores;      // [B] float32 stability of token 0
  torch::Tensor used_multimask_fallback;  // [B] bool: token 0 replaced by the best multimask token

  MaskDecoderRawOutput raw;
};

struct MaskDecoderImpl : torch::nn::Module {
  // transformer_dim = d_model; everything else from config.mask_decoder.
  explicit MaskDecoderImpl(const Sam2Config& config);

  // image_embeddings [Bi, d, h, w]; image_pe [1, d, h, w]; sparse [B, N, d]; dense [B, d, h, w]
  // (or batch 1); high_res_features {feat_s0 [Bi, d/8, 4h, 4w], feat_s1 [Bi, d/4, 2h, 2w]}
  // (already projected by conv_s0/conv_s1; required iff use_high_res_features, batch 1 or B).
  // repeat_image: one image for B prompt sets (Bi = 1, repeated per prompt); otherwise Bi = B.
  // Throws litseg::Error on inconsistent shapes.
  MaskDecoderRawOutput PredictMasks(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                                    const torch::Tensor& sparse_prompt_embeddings,
                                    const torch::Tensor& dense_prompt_embeddings, bool repeat_image,
                                    const std::vector<torch::Tensor>& high_res_features = {});

  // PredictMasks followed by SelectOutputs.
  MaskDecoderOutput forward(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                            const torch::Tensor& sparse_prompt_embeddings, const torch::Tensor& dense_prompt_embeddings,
                            bool multimask_output, bool repeat_image,
                            const std::vector<torch::Tensor>& high_res_features = {});

  // The output selection of MaskDecoder.forward (uses is_training() like the reference).
  MaskDecoderOutput SelectOutputs(MaskDecoderRawOutput raw, bool multimask_output) const;

  // #(logit > delta) / #(logit > -delta) over the last two dimensions, 1 where nothing is
  // above -delta. mask_logits [..., H, W] -> [...].
  torch::Tensor StabilityScores(const torch::Tensor& mask_logits) const;

  // {conv_s0(fpn0), conv_s1(fpn1)}: the high-resolution features as SAM2Base.forward_image
  // stores them. Throws litseg::Error when the model has no high-resolution path.
  std::vector<torch::Tensor> ProjectHighResFeatures(const torch::Tensor& fpn0, const torch::Tensor& fpn1);

  // The transformer's attentions with their state-dict paths relative to the decoder
  // ("transformer.layers.0.self_attn", ..., "transformer.final_attn_token_to_image").
  std::vector<std::pair<std::string, Attention>> NamedAttentions() const;

  MaskDecoderConfig config;
  int64_t transformer_dim;
  int64_t num_mask_tokens;

  TwoWayTransformer transformer{nullptr};
  torch::nn::Embedding iou_token{nullptr};
  torch::nn::Embedding mask_tokens{nullptr};
  torch::nn::Embedding obj_score_token{nullptr};        // pred_obj_scores only
  torch::nn::Sequential output_upscaling{nullptr};      // dc1, ln1, act1, dc2, act2
  torch::nn::Conv2d conv_s0{nullptr}, conv_s1{nullptr};  // use_high_res_features only
  torch::nn::ModuleList output_hypernetworks_mlps{nullptr};
  std::vector<Mlp> hypernetwork_mlps;                    // the same modules, typed
  Mlp iou_prediction_head{nullptr};
  // "pred_obj_score_head": an MLP(d, d, 1, 3) with pred_obj_scores_mlp, else a Linear(d, 1).
  Mlp pred_obj_score_mlp{nullptr};
  torch::nn::Linear pred_obj_score_linear{nullptr};
};
TORCH_MODULE(MaskDecoder);

}  // namespace litseg::sam2
