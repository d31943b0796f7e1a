// One tracking step of SAM 2.1 for one object on one frame: the parts of SAM2Base
// (sam2/modeling/sam2_base.py) that the video tracker drives. Free functions over a
// Sam2Model, so that the tracker (video_tracker.h), the parity runner and tests share them.
//
//   litseg::sam2::TrackFrameFeatures f = litseg::sam2::TrackFeaturesFrom(model->ForwardImage(x));
//   litseg::sam2::TrackStepInput in;
//   in.frame = 5;  in.num_frames = 100;  in.run_mem_encoder = true;
//   litseg::sam2::TrackStepResult r = litseg::sam2::TrackStep(*model, f, object_outputs, in);
//   // r.output: low-res logits, bf16 memory, object pointer, object score of this frame
//
// Steps (names of the reference): _prepare_memory_conditioned_features (memory selection:
// all conditioning frames with t_pos 0, then the num_maskmem - 1 previous frames in tracking
// order; object pointers of conditioning frames not in the future and of up to
// min(num_frames, max_obj_ptrs_in_encoder) - 1 previous frames, signed temporal encoding),
// _forward_sam_heads (masks of absent objects set to -1024 before selection, object pointer
// from the selected token or the fixed no-object pointer), _use_mask_as_output (mask
// prompts taken as the output) and _encode_new_memory (memory features rounded to bfloat16
// with round-to-nearest-even, exactly as the video predictor stores them).
//
// Thread safety: the functions only read the model; ObjectOutputs is a plain value (guard
// it like any container when several threads touch it).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "litseg/sam2/mask_decoder.h"
#include "litseg/sam2/prompt_encoder.h"
#include "litseg/sam2/sam2_model.h"

namespace litseg::sam2 {

// Mask logit of objects predicted absent (NO_OBJ_SCORE of the reference).
inline constexpr float kNoObjectScore = -1024.0f;

// One frame's image features as the tracker uses them (batch 1).
struct TrackFrameFeatures {
  torch::Tensor vision;                 // level-2 features [1, d, h, w] (no no_mem_embed)
  torch::Tensor vision_pos;             // their sine position encoding [1, d, h, w]
  std::vector<torch::Tensor> high_res;  // {conv_s0(fpn0), conv_s1(fpn1)}; empty when unused
};
TrackFrameFeatures TrackFeaturesFrom(const ImageFeatures& features, const Sam2Config& config);

// What the tracker keeps of one object on one frame (the "compact" output of the
// reference). Any tensor may be undefined: not computed yet or dropped by the bounded store.
struct FrameOutput {
  torch::Tensor pred_masks;           // [1, 1, S/4, S/4] low-res logits (-1024 when absent)
  torch::Tensor maskmem_features;     // [1, mem_dim, h, w] bfloat16
  torch::Tensor obj_ptr;              // [1, d]
  torch::Tensor object_score_logits;  // [1, 1]
};

// output_dict of one object: conditioning outputs in insertion order (the reference's dict
// order decides the order of memories) and non-conditioning outputs by frame.
class ObjectOutputs {
 public:
  const FrameOutput* FindCond(int frame) const;
  const FrameOutput* FindNonCond(int frame) const;
  FrameOutput* MutableCond(int frame);
  FrameOutput* MutableNonCond(int frame);
  // Insert or replace; a replaced conditioning frame keeps its position.
  void PutCond(int frame, FrameOutput output);
  void PutNonCond(int frame, FrameOutput output) { non_cond_[frame] = std::move(output); }
  bool EraseCond(int frame);
  bool EraseNonCond(int frame) { return non_cond_.erase(frame) > 0; }
  void Clear();

  const std::vector<int>& cond_frames() const { return cond_order_; }  // insertion order
  const std::map<int, FrameOutput>& cond() const { return cond_; }
  std::map<int, FrameOutput>& non_cond() { return non_cond_; }
  const std::map<int, FrameOutput>& non_cond() const { return non_cond_; }

 private:
  std::vector<int> cond_order_;
  std::map<int, FrameOutput> cond_;
  std::map<int, FrameOutput> non_cond_;
};

// Memory-attention conditioning of one frame, with the inputs it used (for parity checks
// and observers).
struct MemoryConditioning {
  torch::Tensor pix_feat_with_mem;  // [1, d, h, w]
  bool used_memory_attention = false;
  // Inputs of memory attention (defined when used_memory_attention).
  torch::Tensor curr, curr_pos;      // [HW, 1, d]
  torch::Tensor memory, memory_pos;  // [M, 1, mem_dim], memory upcast to float32
  int64_t num_obj_ptr_tokens = 0;
  // The frames chosen: spatial memories (t_pos order) and object pointers (token order).
  std::vector<int> memory_frames;
  std::vector<int> memory_tpos;
  std::vector<int> pointer_frames;
};

// _prepare_memory_conditioned_features. Initial conditioning frames get the level-2
// features + no_mem_embed. maskmem_pos_enc: [1, mem_dim, h, w] (MaskmemPosEnc).
// Throws litseg::Error when a non-initial frame has no conditioning output.
MemoryConditioning PrepareMemoryConditionedFeatures(Sam2ModelImpl& model, int frame, bool is_init_cond_frame,
                                                    const TrackFrameFeatures& features, const ObjectOutputs& outputs,
                                                    const torch::Tensor& maskmem_pos_enc, int num_frames,
                                                    bool track_in_reverse);

// The memory encoder's position encoding of a [1, mem_dim, h, w] memory (same for all frames).
torch::Tensor MaskmemPosEnc(Sam2ModelImpl& model, const TrackFrameFeatures& features);

// get_1d_sine_pe: positions [N] -> [N, dim] (sin half, then cos half).
torch::Tensor Get1dSinePe(const torch::Tensor& positions, int64_t dim, double temperature = 10000.0);

struct SamHeadOutput {
  torch::Tensor low_res_multimasks;   // [1, M, S/4, S/4] (gated by the object score)
  torch::Tensor high_res_multimasks;  // [1, M, S, S]
  torch::Tensor ious;                 // [1, M]
  torch::Tensor low_res_masks;        // [1, 1, S/4, S/4] the selected mask
  torch::Tensor high_res_masks;       // [1, 1, S, S]
  torch::Tensor obj_ptr;              // [1, d]
  torch::Tensor object_score_logits;  // [1, 1]
  bool multimask = false;
  int64_t best_multimask_index = -1;  // multimask output: argmax IoU
  PromptEmbeddings embeddings;        // sparse/dense prompt embeddings used
  MaskDecoderOutput decoder;          // selection decisions and raw tokens
};

// _forward_sam_heads. points: [1, N, 2] model-input pixels with labels [1, N] (undefined =
// only the padding point); mask_inputs: [1, 1, *, *] logits or mask (resized to the mask
// input size with antialiased bilinear when needed; undefined = none).
SamHeadOutput ForwardSamHeads(Sam2ModelImpl& model, const torch::Tensor& backbone_features, const PointPrompt& points,
                              const torch::Tensor& mask_inputs, const std::vector<torch::Tensor>& high_res,
                              bool multimask_output);

// _use_mask_as_output: mask_inputs [1, 1, S, S] (0/1) -> logits +-10, object pointer from a
// SAM-head call on the raw level-2 features with the downsampled mask as mask prompt.
SamHeadOutput UseMaskAsOutput(Sam2ModelImpl& model, const TrackFrameFeatures& features, const torch::Tensor& mask_inputs);

struct TrackStepInput {
  int frame = 0;
  int num_frames = 1;
  bool is_init_cond_frame = false;
  PointPrompt points;           // undefined coords = no clicks
  torch::Tensor mask_inputs;    // [1, 1, S, S] float 0/1; undefined = none
  bool track_in_reverse = false;
  bool run_mem_encoder = true;
  torch::Tensor prev_sam_mask_logits;  // [1, 1, S/4, S/4] (clamped by the caller), with points only
};

struct TrackStepResult {
  FrameOutput output;           // pred_masks, obj_ptr, object score, memory (bf16) when encoded
  torch::Tensor high_res_masks; // [1, 1, S, S]
  SamHeadOutput sam;
  MemoryConditioning memory;    // pix_feat_with_mem and the memory inputs
  bool mask_as_output = false;
  PointPrompt points;           // the clicks used (model-input pixels), if any
  torch::Tensor mask_inputs;    // the mask input used ([1, 1, S, S]), if any
  // Wall seconds of the three parts (memory conditioning, SAM heads, memory encoder).
  double memory_seconds = 0.0, heads_seconds = 0.0, encode_seconds = 0.0;
};

// Everything the SAM head saw and produced on one (frame, object), for observers (e.g. the
// live-training module caches the decoder inputs of every tracked frame). The tensors may be
// kept (they are not modified later); the pointers are valid during the observer call only.
struct SamHeadObservation {
  int frame = 0;
  int object_id = 0;
  bool interaction = false;     // an add-clicks / add-mask call (false: propagation)
  bool conditioning = false;    // the output is stored as a conditioning frame
  bool mask_as_output = false;  // add-mask path: SAM ran on the raw features for the pointer only
  torch::Tensor pix_feat_with_mem;                // [1, d, h, w] image embedding given to the decoder
  const std::vector<torch::Tensor>* high_res = nullptr;  // {s0 [1, d/8, 4h, 4w], s1 [1, d/4, 2h, 2w]}
  torch::Tensor image_pe;                         // [1, d, h, w]
  torch::Tensor sparse_embeddings;                // [1, N, d]
  torch::Tensor dense_embeddings;                 // [1, d, h, w]
  torch::Tensor low_res_multimasks;               // [1, M, S/4, S/4] after no-object gating
  torch::Tensor ious;                             // [1, M]
  torch::Tensor object_score_logits;              // [1, 1]
  torch::Tensor low_res_masks;                    // [1, 1, S/4, S/4] the selected mask
  const TrackStepResult* step = nullptr;          // everything else (memory inputs, decisions)
};

// SAM2Base.track_step (plus the predictor's bf16 rounding of the memory).
TrackStepResult TrackStep(Sam2ModelImpl& model, const TrackFrameFeatures& features, const ObjectOutputs& outputs,
                          const torch::Tensor& maskmem_pos_enc, const TrackStepInput& input);

// _encode_new_memory of a frame's (high-res) mask logits -> [1, mem_dim, h, w] bfloat16.
torch::Tensor EncodeFrameMemory(Sam2ModelImpl& model, const TrackFrameFeatures& features,
                                const torch::Tensor& high_res_masks, const torch::Tensor& object_score_logits,
                                bool is_mask_from_pts);

}  // namespace litseg::sam2
