// Conversion of the official hydra model tree (sam2/configs/sam2.1/*.yaml) into Sam2Config.
#include <nlohmann/json.hpp>

#include "litseg/core/error.h"
#include "litseg/sam2/config.h"

namespace litseg::sam2 {
namespace {

using Json = nlohmann::json;

// Reads node[key] into out when present; a present value of the wrong type is an error.
template <typename T>
void Take(const Json& node, const char* key, T& out, const std::string& where) {
  auto it = node.find(key);
  if (it == node.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const Json::exception& e) {
    throw Error(where + ": key '" + key + "' has an unexpected type (" + e.what() + ")");
  }
}

template <typename T, size_t N>
void TakeArray(const Json& node, const char* key, std::array<T, N>& out, const std::string& where) {
  std::vector<T> values;
  Take(node, key, values, where);
  if (values.empty()) return;
  if (values.size() != N) throw Error(where + ": key '" + key + "' needs " + std::to_string(N) + " values");
  for (size_t i = 0; i < N; ++i) out[i] = values[i];
}

const Json& Child(const Json& node, const char* key, const std::string& where) {
  auto it = node.find(key);
  if (it == node.end() || !it->is_object()) throw Error(where + ": missing section '" + key + "'");
  return *it;
}

}  // namespace

Sam2Config ConfigFromOfficialModelJson(const std::string& json_text, const std::string& source_name) {
  Json root;
  try {
    root = Json::parse(json_text);
  } catch (const Json::exception& e) {
    throw Error(source_name + ": not valid JSON (" + e.what() + ")");
  }
  const Json& model = root.contains("model") ? root["model"] : root;
  const std::string where = source_name;
  if (model.value("_target_", std::string()) != "sam2.modeling.sam2_base.SAM2Base" &&
      model.value("_target_", std::string()).find("SAM2") == std::string::npos)
    throw Error(where + ": not a SAM 2 model config (no SAM2Base _target_)");

  Sam2Config c;
  c.name = source_name;
  Take(model, "image_size", c.image_size, where);
  Take(model, "backbone_stride", c.backbone_stride, where);

  const Json& image_encoder = Child(model, "image_encoder", where);
  Take(image_encoder, "scalp", c.image_encoder.scalp, where);
  const Json& trunk = Child(image_encoder, "trunk", where);
  HieraConfig& h = c.image_encoder.trunk;
  Take(trunk, "embed_dim", h.embed_dim, where);
  Take(trunk, "num_heads", h.num_heads, where);
  Take(trunk, "stages", h.stages, where);
  Take(trunk, "global_att_blocks", h.global_att_blocks, where);
  Take(trunk, "window_spec", h.window_spec, where);
  TakeArray(trunk, "window_pos_embed_bkg_spatial_size", h.window_pos_embed_bkg_spatial_size, where);
  Take(trunk, "q_pool", h.q_pool, where);
  TakeArray(trunk, "q_stride", h.q_stride, where);
  Take(trunk, "dim_mul", h.dim_mul, where);
  Take(trunk, "head_mul", h.head_mul, where);
  Take(trunk, "mlp_ratio", h.mlp_ratio, where);

  const Json& neck = Child(image_encoder, "neck", where);
  FpnNeckConfig& n = c.image_encoder.neck;
  Take(neck, "d_model", n.d_model, where);
  Take(neck, "backbone_channel_list", n.backbone_channel_list, where);
  Take(neck, "fpn_top_down_levels", n.fpn_top_down_levels, where);
  Take(neck, "fpn_interp_model", n.fpn_interp_model, where);
  Take(neck, "fuse_type", n.fuse_type, where);
  Take(neck, "kernel_size", n.kernel_size, where);
  Take(neck, "stride", n.stride, where);
  Take(neck, "padding", n.padding, where);
  if (neck.contains("position_encoding")) {
    Take(neck["position_encoding"], "num_pos_feats", n.position_encoding_num_pos_feats, where);
    Take(neck["position_encoding"], "temperature", n.position_encoding_temperature, where);
  }

  if (model.contains("memory_attention")) {
    const Json& ma = model["memory_attention"];
    MemoryAttentionConfig& m = c.memory_attention;
    Take(ma, "d_model", m.d_model, where);
    Take(ma, "num_layers", m.num_layers, where);
    Take(ma, "pos_enc_at_input", m.pos_enc_at_input, where);
    if (ma.contains("layer")) {
      const Json& layer = ma["layer"];
      Take(layer, "dim_feedforward", m.dim_feedforward, where);
      Take(layer, "pos_enc_at_attn", m.pos_enc_at_attn, where);
      Take(layer, "pos_enc_at_cross_attn_keys", m.pos_enc_at_cross_attn_keys, where);
      Take(layer, "pos_enc_at_cross_attn_queries", m.pos_enc_at_cross_attn_queries, where);
      if (layer.contains("self_attention")) {
        const Json& sa = layer["self_attention"];
        Take(sa, "rope_theta", m.rope_theta, where);
        TakeArray(sa, "feat_sizes", m.feat_sizes, where);
        Take(sa, "num_heads", m.num_heads, where);
        Take(sa, "downsample_rate", m.downsample_rate, where);
      }
      if (layer.contains("cross_attention")) {
        const Json& ca = layer["cross_attention"];
        Take(ca, "rope_k_repeat", m.rope_k_repeat, where);
        Take(ca, "kv_in_dim", m.kv_in_dim, where);
      }
    }
  }

  if (model.contains("memory_encoder")) {
    const Json& me = model["memory_encoder"];
    MemoryEncoderConfig& m = c.memory_encoder;
    Take(me, "out_dim", m.out_dim, where);
    Take(me, "in_dim", m.in_dim, where);
    if (me.contains("position_encoding"))
      Take(me["position_encoding"], "num_pos_feats", m.position_encoding_num_pos_feats, where);
    if (me.contains("mask_downsampler")) {
      const Json& md = me["mask_downsampler"];
      Take(md, "kernel_size", m.mask_downsampler_kernel_size, where);
      Take(md, "stride", m.mask_downsampler_stride, where);
      Take(md, "padding", m.mask_downsampler_padding, where);
      Take(md, "embed_dim", m.mask_downsampler_embed_dim, where);
      Take(md, "total_stride", m.mask_downsampler_total_stride, where);
    }
    if (me.contains("fuser")) {
      const Json& fu = me["fuser"];
      Take(fu, "num_layers", m.fuser_num_layers, where);
      if (fu.contains("layer")) {
        Take(fu["layer"], "kernel_size", m.fuser_kernel_size, where);
        Take(fu["layer"], "padding", m.fuser_padding, where);
        Take(fu["layer"], "layer_scale_init_value", m.fuser_layer_scale_init_value, where);
        Take(fu["layer"], "use_dwconv", m.fuser_use_dwconv, where);
      }
    }
  }

  Take(model, "num_maskmem", c.num_maskmem, where);
  Take(model, "sigmoid_scale_for_mem_enc", c.sigmoid_scale_for_mem_enc, where);
  Take(model, "sigmoid_bias_for_mem_enc", c.sigmoid_bias_for_mem_enc, where);
  Take(model, "use_mask_input_as_output_without_sam", c.use_mask_input_as_output_without_sam, where);
  Take(model, "directly_add_no_mem_embed", c.directly_add_no_mem_embed, where);
  Take(model, "no_obj_embed_spatial", c.no_obj_embed_spatial, where);
  Take(model, "use_high_res_features_in_sam", c.use_high_res_features_in_sam, where);
  Take(model, "multimask_output_in_sam", c.multimask_output_in_sam, where);
  Take(model, "iou_prediction_use_sigmoid", c.mask_decoder.iou_prediction_use_sigmoid, where);
  Take(model, "use_obj_ptrs_in_encoder", c.use_obj_ptrs_in_encoder, where);
  Take(model, "add_tpos_enc_to_obj_ptrs", c.add_tpos_enc_to_obj_ptrs, where);
  Take(model, "proj_tpos_enc_in_obj_ptrs", c.proj_tpos_enc_in_obj_ptrs, where);
  Take(model, "use_signed_tpos_enc_to_obj_ptrs", c.use_signed_tpos_enc_to_obj_ptrs, where);
  Take(model, "only_obj_ptrs_in_the_past_for_eval", c.only_obj_ptrs_in_the_past_for_eval, where);
  Take(model, "pred_obj_scores", c.pred_obj_scores, where);
  Take(model, "pred_obj_scores_mlp", c.pred_obj_scores_mlp, where);
  Take(model, "fixed_no_obj_ptr", c.fixed_no_obj_ptr, where);
  Take(model, "soft_no_obj_ptr", c.soft_no_obj_ptr, where);
  Take(model, "multimask_output_for_tracking", c.multimask_output_for_tracking, where);
  Take(model, "use_multimask_token_for_obj_ptr", c.use_multimask_token_for_obj_ptr, where);
  Take(model, "multimask_min_pt_num", c.multimask_min_pt_num, where);
  Take(model, "multimask_max_pt_num", c.multimask_max_pt_num, where);
  Take(model, "use_mlp_for_obj_ptr_proj", c.use_mlp_for_obj_ptr_proj, where);
  Take(model, "max_cond_frames_in_attn", c.max_cond_frames_in_attn, where);
  Take(model, "max_obj_ptrs_in_encoder", c.max_obj_ptrs_in_encoder, where);
  Take(model, "memory_temporal_stride_for_eval", c.memory_temporal_stride_for_eval, where);
  Take(model, "non_overlap_masks_for_mem_enc", c.non_overlap_masks_for_mem_enc, where);
  Take(model, "add_all_frames_to_correct_as_cond", c.add_all_frames_to_correct_as_cond, where);

  // The decoder mirrors the SAM2Base switches it receives in SAM2Base._build_sam_heads.
  c.mask_decoder.use_high_res_features = c.use_high_res_features_in_sam;
  c.mask_decoder.pred_obj_scores = c.pred_obj_scores;
  c.mask_decoder.pred_obj_scores_mlp = c.pred_obj_scores_mlp;
  c.mask_decoder.use_multimask_token_for_obj_ptr = c.use_multimask_token_for_obj_ptr;
  c.memory_attention.feat_sizes = {c.image_embedding_size(), c.image_embedding_size()};
  // Round-trip through our own parser so the same consistency checks apply.
  return ParseConfigJson(ConfigToJson(c), source_name);
}

}  // namespace litseg::sam2
