// SAM2Base.track_step and its helpers for one object on one frame (see track_step.h).
#include "litseg/sam2/track_step.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <sstream>

#include "litseg/core/error.h"

namespace litseg::sam2 {
namespace F = torch::nn::functional;

// ---------------------------------------------------------------------------------------
// ObjectOutputs

const FrameOutput* ObjectOutputs::FindCond(int frame) const {
  auto it = cond_.find(frame);
  return it == cond_.end() ? nullptr : &it->second;
}

const FrameOutput* ObjectOutputs::FindNonCond(int frame) const {
  auto it = non_cond_.find(frame);
  return it == non_cond_.end() ? nullptr : &it->second;
}

FrameOutput* ObjectOutputs::MutableCond(int frame) {
  auto it = cond_.find(frame);
  return it == cond_.end() ? nullptr : &it->second;
}

FrameOutput* ObjectOutputs::MutableNonCond(int frame) {
  auto it = non_cond_.find(frame);
  return it == non_cond_.end() ? nullptr : &it->second;
}

void ObjectOutputs::PutCond(int frame, FrameOutput output) {
  // Like a Python dict: assigning an existing key keeps its position.
  if (cond_.find(frame) == cond_.end()) cond_order_.push_back(frame);
  cond_[frame] = std::move(output);
}

bool ObjectOutputs::EraseCond(int frame) {
  if (cond_.erase(frame) == 0) return false;
  cond_order_.erase(std::find(cond_order_.begin(), cond_order_.end(), frame));
  return true;
}

void ObjectOutputs::Clear() {
  cond_order_.clear();
  cond_.clear();
  non_cond_.clear();
}

// ---------------------------------------------------------------------------------------

TrackFrameFeatures TrackFeaturesFrom(const ImageFeatures& features, const Sam2Config& config) {
  if (features.backbone_fpn.empty() || features.vision_pos_enc.size() != features.backbone_fpn.size())
    throw Error("tracker: image features without FPN levels");
  TrackFrameFeatures f;
  f.vision = features.backbone_fpn.back();
  f.vision_pos = features.vision_pos_enc.back();
  if (config.use_high_res_features_in_sam) {
    if (features.backbone_fpn.size() < 3) throw Error("tracker: the high-resolution features are missing");
    f.high_res = {features.backbone_fpn[0], features.backbone_fpn[1]};
  }
  return f;
}

torch::Tensor MaskmemPosEnc(Sam2ModelImpl& model, const TrackFrameFeatures& features) {
  return model.memory_encoder->position_encoding->Encode(features.vision.size(2), features.vision.size(3),
                                                         features.vision.device());
}

torch::Tensor Get1dSinePe(const torch::Tensor& positions, int64_t dim, double temperature) {
  const int64_t pe_dim = dim / 2;
  torch::Tensor dim_t = torch::arange(pe_dim, torch::TensorOptions().dtype(torch::kFloat32).device(positions.device()));
  dim_t = torch::pow(temperature, 2 * torch::floor_divide(dim_t, 2) / pe_dim);
  const torch::Tensor pos_embed = positions.unsqueeze(-1) / dim_t;
  return torch::cat({pos_embed.sin(), pos_embed.cos()}, -1);
}

namespace {

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// select_closest_cond_frames: (selected, unselected) frames in the reference's dict order.
void SelectClosestCondFrames(int frame, const std::vector<int>& cond_order, int max_cond_frames,
                             std::vector<int>& selected, std::vector<int>& unselected) {
  selected.clear();
  unselected.clear();
  if (max_cond_frames == -1 || static_cast<int>(cond_order.size()) <= max_cond_frames) {
    selected = cond_order;
    return;
  }
  if (max_cond_frames < 2) throw Error("tracker: max_cond_frames_in_attn must be -1 or at least 2");
  std::optional<int> before, after;
  for (int t : cond_order) {
    if (t < frame && (!before || t > *before)) before = t;
    if (t >= frame && (!after || t < *after)) after = t;
  }
  if (before) selected.push_back(*before);
  if (after) selected.push_back(*after);
  std::vector<int> rest;
  for (int t : cond_order)
    if (std::find(selected.begin(), selected.end(), t) == selected.end()) rest.push_back(t);
  std::stable_sort(rest.begin(), rest.end(), [&](int a, int b) { return std::abs(a - frame) < std::abs(b - frame); });
  const int remain = max_cond_frames - static_cast<int>(selected.size());
  for (int i = 0; i < remain && i < static_cast<int>(rest.size()); ++i) selected.push_back(rest[i]);
  for (int t : cond_order)
    if (std::find(selected.begin(), selected.end(), t) == selected.end()) unselected.push_back(t);
}

// [1, C, H, W] -> [HW, 1, C]
torch::Tensor Flatten(const torch::Tensor& x) { return x.flatten(2).permute({2, 0, 1}); }

}  // namespace

MemoryConditioning PrepareMemoryConditionedFeatures(Sam2ModelImpl& model, int frame, bool is_init_cond_frame,
                                                    const TrackFrameFeatures& features, const ObjectOutputs& outputs,
                                                    const torch::Tensor& maskmem_pos_enc, int num_frames,
                                                    bool track_in_reverse) {
  const Sam2Config& c = model.config;
  MemoryConditioning result;
  const torch::Tensor& vision = features.vision;
  const int64_t B = vision.size(0), C = vision.size(1), H = vision.size(2), W = vision.size(3);
  const int64_t mem_dim = c.mem_dim();
  if (c.num_maskmem == 0) {
    result.pix_feat_with_mem = vision;
    return result;
  }
  std::vector<torch::Tensor> to_cat_memory, to_cat_memory_pos;
  if (!is_init_cond_frame) {
    if (outputs.cond_frames().empty())
      throw Error("tracker: frame " + std::to_string(frame) + " has no conditioning frame to track from");
    std::vector<int> selected, unselected;
    SelectClosestCondFrames(frame, outputs.cond_frames(), c.max_cond_frames_in_attn, selected, unselected);
    auto find_unselected = [&](int t) -> const FrameOutput* {
      return std::find(unselected.begin(), unselected.end(), t) != unselected.end() ? outputs.FindCond(t) : nullptr;
    };

    // Spatial memories: conditioning frames (t_pos 0), then the previous frames in tracking order.
    std::vector<std::pair<int, int>> tpos_frames;  // (t_pos, frame)
    for (int t : selected) tpos_frames.emplace_back(0, t);
    const int stride = c.memory_temporal_stride_for_eval;
    for (int t_pos = 1; t_pos < c.num_maskmem; ++t_pos) {
      const int t_rel = c.num_maskmem - t_pos;
      int64_t prev;
      if (t_rel == 1) {
        prev = track_in_reverse ? frame + 1 : frame - 1;
      } else if (!track_in_reverse) {
        prev = FloorDiv(frame - 2, stride) * stride - static_cast<int64_t>(t_rel - 2) * stride;
      } else {
        prev = -FloorDiv(-(frame + 2), stride) * stride + static_cast<int64_t>(t_rel - 2) * stride;
      }
      const FrameOutput* out = outputs.FindNonCond(static_cast<int>(prev));
      if (!out) out = find_unselected(static_cast<int>(prev));
      if (out) tpos_frames.emplace_back(t_pos, static_cast<int>(prev));
    }
    for (const auto& [t_pos, t] : tpos_frames) {
      const FrameOutput* out = t_pos == 0 ? outputs.FindCond(t) : outputs.FindNonCond(t);
      if (!out) out = find_unselected(t);
      // A memory dropped by the bounded store counts as absent.
      if (!out || !out->maskmem_features.defined()) continue;
      to_cat_memory.push_back(Flatten(out->maskmem_features.to(vision.device(), torch::kFloat32)));
      torch::Tensor pos = Flatten(maskmem_pos_enc.to(vision.device()));
      pos = pos + model.maskmem_tpos_enc[c.num_maskmem - t_pos - 1];
      to_cat_memory_pos.push_back(pos.expand({-1, B, -1}));
      result.memory_frames.push_back(t);
      result.memory_tpos.push_back(t_pos);
    }

    // Object pointers.
    if (c.use_obj_ptrs_in_encoder) {
      const int max_ptrs = std::min(num_frames, c.max_obj_ptrs_in_encoder);
      std::vector<int64_t> positions;
      std::vector<torch::Tensor> ptrs;
      const int sign = track_in_reverse ? -1 : 1;
      for (int t : selected) {
        if (c.only_obj_ptrs_in_the_past_for_eval && (track_in_reverse ? t < frame : t > frame)) continue;
        const FrameOutput* out = outputs.FindCond(t);
        if (!out || !out->obj_ptr.defined()) continue;
        positions.push_back(c.use_signed_tpos_enc_to_obj_ptrs ? static_cast<int64_t>(frame - t) * sign
                                                              : std::abs(frame - t));
        ptrs.push_back(out->obj_ptr);
        result.pointer_frames.push_back(t);
      }
      for (int t_diff = 1; t_diff < max_ptrs; ++t_diff) {
        const int t = track_in_reverse ? frame + t_diff : frame - t_diff;
        if (t < 0 || t >= num_frames) break;
        const FrameOutput* out = outputs.FindNonCond(t);
        if (!out) out = find_unselected(t);
        if (!out || !out->obj_ptr.defined()) continue;
        positions.push_back(t_diff);
        ptrs.push_back(out->obj_ptr);
        result.pointer_frames.push_back(t);
      }
      if (!ptrs.empty()) {
        torch::Tensor obj_ptrs = torch::stack(ptrs, 0).to(vision.device(), torch::kFloat32);  // [P, B, C]
        torch::Tensor obj_pos;
        const int64_t P = obj_ptrs.size(0);
        if (c.add_tpos_enc_to_obj_ptrs) {
          // A one-frame video has no temporal range: avoid 0 / 0 (the reference divides by zero).
          const int64_t t_diff_max = std::max(max_ptrs - 1, 1);
          const int64_t tpos_dim = c.proj_tpos_enc_in_obj_ptrs ? C : mem_dim;
          torch::Tensor pos = torch::tensor(positions, torch::kInt64).to(vision.device()).div(t_diff_max);
          obj_pos = model.obj_ptr_tpos_proj(Get1dSinePe(pos, tpos_dim));
          obj_pos = obj_pos.unsqueeze(1).expand({-1, B, mem_dim});
        } else {
          obj_pos = torch::zeros({P, B, mem_dim}, obj_ptrs.options());
        }
        if (mem_dim < C) {
          obj_ptrs = obj_ptrs.reshape({-1, B, C / mem_dim, mem_dim}).permute({0, 2, 1, 3}).flatten(0, 1);
          obj_pos = obj_pos.repeat_interleave(C / mem_dim, 0);
        }
        to_cat_memory.push_back(obj_ptrs);
        to_cat_memory_pos.push_back(obj_pos);
        result.num_obj_ptr_tokens = obj_ptrs.size(0);
      }
    }
  } else {
    if (c.directly_add_no_mem_embed) {
      // [HW, B, C] + no_mem_embed, back to [B, C, H, W]: one addition, as in the reference.
      torch::Tensor x = Flatten(vision) + model.no_mem_embed;
      result.pix_feat_with_mem = x.permute({1, 2, 0}).reshape({B, C, H, W});
      return result;
    }
    to_cat_memory.push_back(model.no_mem_embed.expand({1, B, mem_dim}));
    to_cat_memory_pos.push_back(model.no_mem_pos_enc.expand({1, B, mem_dim}));
  }
  if (to_cat_memory.empty())
    throw Error("tracker: no memory available for frame " + std::to_string(frame) + " (all memories were dropped)");

  result.curr = Flatten(vision);
  result.curr_pos = Flatten(features.vision_pos);
  result.memory = torch::cat(to_cat_memory, 0);
  result.memory_pos = torch::cat(to_cat_memory_pos, 0);
  const torch::Tensor fused = model.memory_attention->forward(result.curr, result.memory, result.curr_pos,
                                                              result.memory_pos, result.num_obj_ptr_tokens);
  result.pix_feat_with_mem = fused.permute({1, 2, 0}).reshape({B, C, H, W});
  result.used_memory_attention = true;
  return result;
}

SamHeadOutput ForwardSamHeads(Sam2ModelImpl& model, const torch::Tensor& backbone_features, const PointPrompt& points,
                              const torch::Tensor& mask_inputs, const std::vector<torch::Tensor>& high_res,
                              bool multimask_output) {
  const Sam2Config& c = model.config;
  const int64_t B = backbone_features.size(0);
  const torch::Device device = backbone_features.device();
  SamHeadOutput r;
  r.multimask = multimask_output;

  torch::Tensor coords = points.coords, labels = points.labels;
  if (!coords.defined()) {
    // No clicks: a single padding point (the prompt encoder appends another one).
    coords = torch::zeros({B, 1, 2}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
    labels = -torch::ones({B, 1}, torch::TensorOptions().dtype(torch::kInt32).device(device));
  } else {
    coords = coords.to(device);
    labels = labels.to(device);
  }
  torch::Tensor mask_prompt;
  if (mask_inputs.defined()) {
    PromptEncoderImpl& pe = *model.sam_prompt_encoder;
    if (mask_inputs.dim() != 4 || mask_inputs.size(0) != B || mask_inputs.size(1) != 1)
      throw Error("tracker: mask prompt must be [B, 1, H, W]");
    if (mask_inputs.size(2) != pe.mask_input_h || mask_inputs.size(3) != pe.mask_input_w) {
      mask_prompt = F::interpolate(mask_inputs.to(torch::kFloat32), F::InterpolateFuncOptions()
                                                                        .size(std::vector<int64_t>{pe.mask_input_h,
                                                                                                   pe.mask_input_w})
                                                                        .mode(torch::kBilinear)
                                                                        .align_corners(false)
                                                                        .antialias(true));
    } else {
      mask_prompt = mask_inputs;
    }
  }
  r.embeddings = model.sam_prompt_encoder->forward(coords, labels, {}, mask_prompt);
  r.decoder = model.sam_mask_decoder->forward(backbone_features, model.sam_prompt_encoder->GetDensePe(),
                                              r.embeddings.sparse, r.embeddings.dense, multimask_output,
                                              /*repeat_image=*/false, high_res);
  torch::Tensor low_res_multimasks = r.decoder.masks;
  r.ious = r.decoder.iou_pred;
  const torch::Tensor& tokens = r.decoder.sam_tokens_out;
  r.object_score_logits = r.decoder.object_score_logits;
  torch::Tensor appearing;
  if (c.pred_obj_scores) {
    // Absent objects: every mask token becomes NO_OBJ_SCORE before the selection.
    appearing = r.object_score_logits > 0;  // [B, 1]
    low_res_multimasks = torch::where(appearing.view({B, 1, 1, 1}), low_res_multimasks,
                                      torch::scalar_tensor(kNoObjectScore, low_res_multimasks.options()));
  }
  r.low_res_multimasks = low_res_multimasks.to(torch::kFloat32);
  r.high_res_multimasks = F::interpolate(r.low_res_multimasks, F::InterpolateFuncOptions()
                                                                   .size(std::vector<int64_t>{c.image_size, c.image_size})
                                                                   .mode(torch::kBilinear)
                                                                   .align_corners(false));
  torch::Tensor token = tokens.select(1, 0);
  if (multimask_output) {
    const torch::Tensor best = torch::argmax(r.ious, -1);
    const torch::Tensor rows = torch::arange(B, best.options());
    r.low_res_masks = r.low_res_multimasks.index({rows, best}).unsqueeze(1);
    r.high_res_masks = r.high_res_multimasks.index({rows, best}).unsqueeze(1);
    if (tokens.size(1) > 1) token = tokens.index({rows, best});
    r.best_multimask_index = best[0].item<int64_t>();
  } else {
    r.low_res_masks = r.low_res_multimasks;
    r.high_res_masks = r.high_res_multimasks;
  }
  torch::Tensor obj_ptr = model.obj_ptr_proj->forward(token);
  if (c.pred_obj_scores) {
    const torch::Tensor lambda = c.soft_no_obj_ptr ? r.object_score_logits.sigmoid() : appearing.to(torch::kFloat32);
    if (c.fixed_no_obj_ptr) obj_ptr = lambda * obj_ptr;
    if (model.no_obj_ptr.defined()) obj_ptr = obj_ptr + (1 - lambda) * model.no_obj_ptr;
  }
  r.obj_ptr = obj_ptr;
  return r;
}

SamHeadOutput UseMaskAsOutput(Sam2ModelImpl& model, const TrackFrameFeatures& features,
                              const torch::Tensor& mask_inputs) {
  const Sam2Config& c = model.config;
  constexpr double kOutScale = 20.0, kOutBias = -10.0;
  const torch::Tensor mask_float = mask_inputs.to(torch::kFloat32);
  const torch::Tensor high_res = mask_float * kOutScale + kOutBias;
  const torch::Tensor low_res =
      F::interpolate(high_res, F::InterpolateFuncOptions()
                                   .size(std::vector<int64_t>{high_res.size(-2) / 4, high_res.size(-1) / 4})
                                   .mode(torch::kBilinear)
                                   .align_corners(false)
                                   .antialias(true));
  SamHeadOutput r;
  torch::Tensor obj_ptr;
  if (c.use_obj_ptrs_in_encoder) {
    // The pointer comes from a SAM-head call on the raw features with the learned 4x4
    // downsampling of the mask as mask prompt (no clicks).
    r = ForwardSamHeads(model, features.vision, PointPrompt{}, model.mask_downsample(mask_float), features.high_res,
                        /*multimask_output=*/false);
    obj_ptr = r.obj_ptr;
  } else {
    obj_ptr = torch::zeros({mask_inputs.size(0), c.d_model()}, mask_float.options());
  }
  // The mask, not the decoder's score, decides whether the object is present.
  const torch::Tensor appearing = (mask_float.flatten(1) > 0.0).any(1).unsqueeze(-1);
  const torch::Tensor lambda = appearing.to(torch::kFloat32);
  r.object_score_logits = kOutScale * lambda + kOutBias;
  if (c.pred_obj_scores) {
    if (c.fixed_no_obj_ptr) obj_ptr = lambda * obj_ptr;
    if (model.no_obj_ptr.defined()) obj_ptr = obj_ptr + (1 - lambda) * model.no_obj_ptr;
  }
  r.obj_ptr = obj_ptr;
  r.ious = torch::ones({mask_inputs.size(0), 1}, mask_float.options());
  r.low_res_multimasks = r.low_res_masks = low_res;
  r.high_res_multimasks = r.high_res_masks = high_res;
  r.multimask = false;
  r.best_multimask_index = -1;
  return r;
}

torch::Tensor EncodeFrameMemory(Sam2ModelImpl& model, const TrackFrameFeatures& features,
                                const torch::Tensor& high_res_masks, const torch::Tensor& object_score_logits,
                                bool is_mask_from_pts) {
  NewMemoryOptions options = NewMemoryOptionsFrom(model.config);
  options.round_to_bf16 = true;
  return EncodeNewMemory(*model.memory_encoder, features.vision, high_res_masks, object_score_logits,
                         is_mask_from_pts, model.no_obj_embed_spatial, options)
      .features;
}

TrackStepResult TrackStep(Sam2ModelImpl& model, const TrackFrameFeatures& features, const ObjectOutputs& outputs,
                          const torch::Tensor& maskmem_pos_enc, const TrackStepInput& input) {
  const Sam2Config& c = model.config;
  if (input.points.coords.defined() && input.mask_inputs.defined())
    throw Error("tracker: clicks and a mask cannot be given together on one frame");
  TrackStepResult r;
  r.points = input.points;
  r.mask_inputs = input.mask_inputs;
  if (input.mask_inputs.defined() && c.use_mask_input_as_output_without_sam) {
    r.sam = UseMaskAsOutput(model, features, input.mask_inputs);
    r.memory.pix_feat_with_mem = features.vision;
    r.mask_as_output = true;
  } else {
    const auto t0 = std::chrono::steady_clock::now();
    r.memory = PrepareMemoryConditionedFeatures(model, input.frame, input.is_init_cond_frame, features, outputs,
                                                maskmem_pos_enc, input.num_frames, input.track_in_reverse);
    r.memory_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    torch::Tensor mask_inputs = input.mask_inputs;
    if (input.prev_sam_mask_logits.defined()) {
      if (!input.points.coords.defined() || input.mask_inputs.defined())
        throw Error("tracker: previous mask logits are only fed together with clicks");
      mask_inputs = input.prev_sam_mask_logits;
    }
    const int64_t num_points = input.points.labels.defined() ? input.points.labels.size(1) : 0;
    const bool multimask = c.multimask_output_in_sam &&
                           (input.is_init_cond_frame || c.multimask_output_for_tracking) &&
                           c.multimask_min_pt_num <= num_points && num_points <= c.multimask_max_pt_num;
    const auto t1 = std::chrono::steady_clock::now();
    r.sam = ForwardSamHeads(model, r.memory.pix_feat_with_mem, input.points, mask_inputs, features.high_res, multimask);
    r.heads_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  }
  r.output.pred_masks = r.sam.low_res_masks;
  r.high_res_masks = r.sam.high_res_masks;
  r.output.obj_ptr = r.sam.obj_ptr;
  r.output.object_score_logits = r.sam.object_score_logits;
  const auto t2 = std::chrono::steady_clock::now();
  if (input.run_mem_encoder && c.num_maskmem > 0)
    r.output.maskmem_features = EncodeFrameMemory(model, features, r.high_res_masks, r.output.object_score_logits,
                                                  /*is_mask_from_pts=*/input.points.coords.defined());
  r.encode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t2).count();
  return r;
}

}  // namespace litseg::sam2
