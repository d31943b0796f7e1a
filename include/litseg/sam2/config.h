// Every hyper-parameter of a SAM 2.1 model, in small structs with the sam2.1_hiera_l
// values as defaults (facebookresearch/sam2, sam2/configs/sam2.1/sam2.1_hiera_l.yaml plus
// the build_sam2 / build_sam2_video_predictor overrides and the constants hard-coded in
// SAM2Base, PromptEncoder and MaskDecoder). The engine is always built from a Sam2Config,
// normally read from models/configs/<name>.json, never from sizes written in code.
//
// JSON layout: one object per struct, keys spelled exactly as the member names below,
// e.g. {"image_size": 1024, "image_encoder": {"trunk": {"embed_dim": 144, ...}, ...}, ...}.
// Missing keys keep their defaults; unknown keys are an error (a typo must not silently
// fall back to a default).
#pragma once

#include <array>
#include <string>
#include <vector>

namespace litseg::sam2 {

// Hiera trunk (sam2/modeling/backbones/hieradet.py).
struct HieraConfig {
  int embed_dim = 144;
  int num_heads = 2;
  std::vector<int> stages = {2, 6, 36, 4};
  std::vector<int> global_att_blocks = {23, 33, 43};
  std::vector<int> window_spec = {8, 4, 16, 8};
  std::array<int, 2> window_pos_embed_bkg_spatial_size = {7, 7};
  int q_pool = 3;                      // number of q-pool stage transitions
  std::array<int, 2> q_stride = {2, 2};
  double dim_mul = 2.0;
  double head_mul = 2.0;
  double mlp_ratio = 4.0;
  double layer_norm_eps = 1e-6;
  // Patch embedding: Conv2d(3, embed_dim, kernel 7, stride 4, padding 3).
  int patch_kernel_size = 7;
  int patch_stride = 4;
  int patch_padding = 3;
};

// FPN neck (sam2/modeling/backbones/image_encoder.py: FpnNeck) and its sine position encoding.
struct FpnNeckConfig {
  int d_model = 256;
  std::vector<int> backbone_channel_list = {1152, 576, 288, 144};  // deepest first
  std::vector<int> fpn_top_down_levels = {2, 3};
  std::string fpn_interp_model = "nearest";
  std::string fuse_type = "sum";
  int kernel_size = 1;
  int stride = 1;
  int padding = 0;
  int position_encoding_num_pos_feats = 256;  // PositionEmbeddingSine(num_pos_feats)
  double position_encoding_temperature = 10000.0;
};

struct ImageEncoderConfig {
  HieraConfig trunk;
  FpnNeckConfig neck;
  int scalp = 1;  // number of lowest-resolution FPN levels dropped
};

// Prompt encoder (sam2/modeling/sam/prompt_encoder.py). embed_dim = neck.d_model,
// image_embedding_size = image_size / backbone_stride, input size = image_size.
struct PromptEncoderConfig {
  int mask_in_chans = 16;
  double layer_norm_eps = 1e-6;  // LayerNorm2d in mask_downscaling
};

// Mask decoder and its two-way transformer (sam2/modeling/sam/mask_decoder.py,
// transformer.py). transformer_dim = neck.d_model.
struct MaskDecoderConfig {
  int num_multimask_outputs = 3;
  int transformer_depth = 2;
  int transformer_mlp_dim = 2048;
  int transformer_num_heads = 8;
  int attention_downsample_rate = 2;
  int iou_head_depth = 3;
  int iou_head_hidden_dim = 256;
  bool use_high_res_features = true;
  bool iou_prediction_use_sigmoid = true;
  bool pred_obj_scores = true;
  bool pred_obj_scores_mlp = true;
  bool use_multimask_token_for_obj_ptr = true;
  bool dynamic_multimask_via_stability = true;
  double dynamic_multimask_stability_delta = 0.05;
  double dynamic_multimask_stability_thresh = 0.98;
  double transformer_layer_norm_eps = 1e-5;  // nn.LayerNorm in TwoWayTransformer
  double layer_norm_eps = 1e-6;              // LayerNorm2d in output upscaling
};

// Memory attention (sam2/modeling/memory_attention.py, RoPEAttention in sam/transformer.py).
struct MemoryAttentionConfig {
  int d_model = 256;
  int num_layers = 4;
  bool pos_enc_at_input = true;
  int dim_feedforward = 2048;
  bool pos_enc_at_attn = false;
  bool pos_enc_at_cross_attn_keys = true;
  bool pos_enc_at_cross_attn_queries = false;
  double rope_theta = 10000.0;
  std::array<int, 2> feat_sizes = {64, 64};  // image_size / backbone_stride
  bool rope_k_repeat = true;                 // cross-attention only
  int num_heads = 1;
  int downsample_rate = 1;
  int kv_in_dim = 64;                        // = memory_encoder.out_dim
  double layer_norm_eps = 1e-5;
};

// Memory encoder (sam2/modeling/memory_encoder.py).
struct MemoryEncoderConfig {
  int out_dim = 64;  // mem_dim
  int in_dim = 256;
  int position_encoding_num_pos_feats = 64;
  // MaskDownSampler
  int mask_downsampler_kernel_size = 3;
  int mask_downsampler_stride = 2;
  int mask_downsampler_padding = 1;
  int mask_downsampler_embed_dim = 256;
  int mask_downsampler_total_stride = 16;
  // Fuser of CXBlocks
  int fuser_num_layers = 2;
  int fuser_kernel_size = 7;
  int fuser_padding = 3;
  double fuser_layer_scale_init_value = 1e-6;
  bool fuser_use_dwconv = true;
  double layer_norm_eps = 1e-6;
};

// SAM2Base switches plus the video-predictor settings.
struct Sam2Config {
  std::string name = "sam2.1_hiera_l";
  int image_size = 1024;
  int backbone_stride = 16;

  ImageEncoderConfig image_encoder;
  PromptEncoderConfig prompt_encoder;
  MaskDecoderConfig mask_decoder;
  MemoryAttentionConfig memory_attention;
  MemoryEncoderConfig memory_encoder;

  int num_maskmem = 7;
  double sigmoid_scale_for_mem_enc = 20.0;
  double sigmoid_bias_for_mem_enc = -10.0;
  bool use_mask_input_as_output_without_sam = true;
  bool directly_add_no_mem_embed = true;
  bool no_obj_embed_spatial = true;
  bool use_high_res_features_in_sam = true;
  bool multimask_output_in_sam = true;
  bool use_obj_ptrs_in_encoder = true;
  bool add_tpos_enc_to_obj_ptrs = true;
  bool proj_tpos_enc_in_obj_ptrs = true;
  bool use_signed_tpos_enc_to_obj_ptrs = true;
  bool only_obj_ptrs_in_the_past_for_eval = true;
  bool pred_obj_scores = true;
  bool pred_obj_scores_mlp = true;
  bool fixed_no_obj_ptr = true;
  bool soft_no_obj_ptr = false;
  bool multimask_output_for_tracking = true;
  bool use_multimask_token_for_obj_ptr = true;
  int multimask_min_pt_num = 0;
  int multimask_max_pt_num = 1;
  bool use_mlp_for_obj_ptr_proj = true;
  int max_cond_frames_in_attn = -1;
  int max_obj_ptrs_in_encoder = 16;
  int memory_temporal_stride_for_eval = 1;
  bool non_overlap_masks_for_mem_enc = false;

  // Video predictor (build_sam2_video_predictor overrides, SAM2VideoPredictor arguments).
  bool binarize_mask_from_pts_for_mem_enc = true;
  int fill_hole_area = 8;
  bool non_overlap_masks = false;
  bool clear_non_cond_mem_around_input = false;
  bool add_all_frames_to_correct_as_cond = false;

  int image_embedding_size() const { return image_size / backbone_stride; }
  int d_model() const { return image_encoder.neck.d_model; }
  int mem_dim() const { return memory_encoder.out_dim; }
};

// Reads a config JSON file (layout above). Throws litseg::Error naming the file and key on
// malformed JSON, unknown keys or inconsistent sizes.
Sam2Config LoadConfig(const std::string& path);
Sam2Config ParseConfigJson(const std::string& json_text, const std::string& source_name);
// The config JSON of a Sam2Config (round-trips through ParseConfigJson).
std::string ConfigToJson(const Sam2Config& config);
// Built-in names: "sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l",
// "micro"; looked up in models/configs/ (source tree or next to the binary).
Sam2Config LoadNamedConfig(const std::string& name_or_path);

// Builds a config from the official hydra model tree (the `model:` node of
// sam2/configs/sam2.1/*.yaml, given as JSON text, e.g. the "hydra_config" of a golden set's
// config.json). Values the yaml leaves to code defaults keep the sam2.1 defaults above; the
// build_sam2 overrides (dynamic multimask via stability, hole filling, ...) are the defaults.
// Throws litseg::Error on a tree that is not a SAM2Base model.
Sam2Config ConfigFromOfficialModelJson(const std::string& json_text, const std::string& source_name);

}  // namespace litseg::sam2
