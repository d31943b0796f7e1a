// Sam2Config <-> JSON. One field list per struct (the Visit* functions below) drives both
// reading and writing, so the two directions cannot drift apart.
#include "litseg/sam2/config.h"


#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "litseg/core/error.h"

namespace litseg::sam2 {
namespace {

using nlohmann::json;

// ---- Reading -----------------------------------------------------------------------------

// Reads the members of one JSON object, remembering which keys were consumed so that any
// key left over (a typo, a field that does not exist) is reported instead of ignored.
class JsonReader {
 public:
  JsonReader(const json& object, std::string path, const std::string& source)
      : object_(object), path_(std::move(path)), source_(source) {
    if (!object_.is_object()) Fail(path_.empty() ? "the top level" : path_, "must be a JSON object");
  }

  void operator()(const char* key, int& value) {
    if (const json* v = Find(key)) {
      if (!v->is_number_integer()) Fail(Path(key), "must be an integer");
      value = v->get<int>();
    }
  }
  void operator()(const char* key, double& value) {
    if (const json* v = Find(key)) {
      if (!v->is_number()) Fail(Path(key), "must be a number");
      value = v->get<double>();
    }
  }
  void operator()(const char* key, bool& value) {
    if (const json* v = Find(key)) {
      if (!v->is_boolean()) Fail(Path(key), "must be true or false");
      value = v->get<bool>();
    }
  }
  void operator()(const char* key, std::string& value) {
    if (const json* v = Find(key)) {
      if (!v->is_string()) Fail(Path(key), "must be a string");
      value = v->get<std::string>();
    }
  }
  void operator()(const char* key, std::vector<int>& value) {
    if (const json* v = Find(key)) value = IntList(*v, Path(key));
  }
  void operator()(const char* key, std::array<int, 2>& value) {
    if (const json* v = Find(key)) {
      std::vector<int> list = IntList(*v, Path(key));
      if (list.size() != 2) Fail(Path(key), "must be a list of exactly 2 integers");
      value = {list[0], list[1]};
    }
  }
  // A nested struct: `visit` is called with a reader for the sub-object.
  void Object(const char* key, const std::function<void(JsonReader&)>& visit) {
    if (const json* v = Find(key)) {
      JsonReader child(*v, Path(key), source_);
      visit(child);
      child.RejectUnknownKeys();
    }
  }

  void RejectUnknownKeys() const {
    for (const auto& item : object_.items()) {
      if (!consumed_.count(item.key()))
        Fail(Path(item.key().c_str()), "is not a known configuration key");
    }
  }

 private:
  const json* Find(const char* key) {
    auto it = object_.find(key);
    if (it == object_.end()) return nullptr;
    consumed_.insert(key);
    return &*it;
  }
  std::string Path(const char* key) const { return path_.empty() ? key : path_ + "." + key; }
  std::vector<int> IntList(const json& v, const std::string& path) const {
    if (!v.is_array()) Fail(path, "must be a list of integers");
    std::vector<int> out;
    for (const auto& e : v) {
      if (!e.is_number_integer()) Fail(path, "must be a list of integers");
      out.push_back(e.get<int>());
    }
    return out;
  }
  [[noreturn]] void Fail(const std::string& path, const std::string& what) const {
    throw Error("SAM 2 config " + source_ + ": key \"" + path + "\" " + what);
  }

  const json& object_;
  std::string path_;
  const std::string& source_;
  std::set<std::string> consumed_;
};

// ---- Writing -----------------------------------------------------------------------------

class JsonWriter {
 public:
  explicit JsonWriter(json& object) : object_(object) { object_ = json::object(); }
  template <typename T>
  void operator()(const char* key, const T& value) {
    object_[key] = value;
  }
  void Object(const char* key, const std::function<void(JsonWriter&)>& visit) {
    json child;
    JsonWriter writer(child);
    visit(writer);
    object_[key] = std::move(child);
  }

 private:
  json& object_;
};

// ---- The field lists ---------------------------------------------------------------------
// Templates over the visitor; `Cfg` is const for writing and mutable for reading.

template <typename V, typename Cfg>
void VisitHiera(V& v, Cfg& c) {
  v("embed_dim", c.embed_dim);
  v("num_heads", c.num_heads);
  v("stages", c.stages);
  v("global_att_blocks", c.global_att_blocks);
  v("window_spec", c.window_spec);
  v("window_pos_embed_bkg_spatial_size", c.window_pos_embed_bkg_spatial_size);
  v("q_pool", c.q_pool);
  v("q_stride", c.q_stride);
  v("dim_mul", c.dim_mul);
  v("head_mul", c.head_mul);
  v("mlp_ratio", c.mlp_ratio);
  v("layer_norm_eps", c.layer_norm_eps);
  v("patch_kernel_size", c.patch_kernel_size);
  v("patch_stride", c.patch_stride);
  v("patch_padding", c.patch_padding);
}

template <typename V, typename Cfg>
void VisitNeck(V& v, Cfg& c) {
  v("d_model", c.d_model);
  v("backbone_channel_list", c.backbone_channel_list);
  v("fpn_top_down_levels", c.fpn_top_down_levels);
  v("fpn_interp_model", c.fpn_interp_model);
  v("fuse_type", c.fuse_type);
  v("kernel_size", c.kernel_size);
  v("stride", c.stride);
  v("padding", c.padding);
  v("position_encoding_num_pos_feats", c.position_encoding_num_pos_feats);
  v("position_encoding_temperature", c.position_encoding_temperature);
}

template <typename V, typename Cfg>
void VisitImageEncoder(V& v, Cfg& c) {
  v.Object("trunk", [&](V& sub) { VisitHiera(sub, c.trunk); });
  v.Object("neck", [&](V& sub) { VisitNeck(sub, c.neck); });
  v("scalp", c.scalp);
}

template <typename V, typename Cfg>
void VisitPromptEncoder(V& v, Cfg& c) {
  v("mask_in_chans", c.mask_in_chans);
  v("layer_norm_eps", c.layer_norm_eps);
}

template <typename V, typename Cfg>
void VisitMaskDecoder(V& v, Cfg& c) {
  v("num_multimask_outputs", c.num_multimask_outputs);
  v("transformer_depth", c.transformer_depth);
  v("transformer_mlp_dim", c.transformer_mlp_dim);
  v("transformer_num_heads", c.transformer_num_heads);
  v("attention_downsample_rate", c.attention_downsample_rate);
  v("iou_head_depth", c.iou_head_depth);
  v("iou_head_hidden_dim", c.iou_head_hidden_dim);
  v("use_high_res_features", c.use_high_res_features);
  v("iou_prediction_use_sigmoid", c.iou_prediction_use_sigmoid);
  v("pred_obj_scores", c.pred_obj_scores);
  v("pred_obj_scores_mlp", c.pred_obj_scores_mlp);
  v("use_multimask_token_for_obj_ptr", c.use_multimask_token_for_obj_ptr);
  v("dynamic_multimask_via_stability", c.dynamic_multimask_via_stability);
  v("dynamic_multimask_stability_delta", c.dynamic_multimask_stability_delta);
  v("dynamic_multimask_stability_thresh", c.dynamic_multimask_stability_thresh);
  v("transformer_layer_norm_eps", c.transformer_layer_norm_eps);
  v("layer_norm_eps", c.layer_norm_eps);
}

template <typename V, typename Cfg>
void VisitMemoryAttention(V& v, Cfg& c) {
  v("d_model", c.d_model);
  v("num_layers", c.num_layers);
  v("pos_enc_at_input", c.pos_enc_at_input);
  v("dim_feedforward", c.dim_feedforward);
  v("pos_enc_at_attn", c.pos_enc_at_attn);
  v("pos_enc_at_cross_attn_keys", c.pos_enc_at_cross_attn_keys);
  v("pos_enc_at_cross_attn_queries", c.pos_enc_at_cross_attn_queries);
  v("rope_theta", c.rope_theta);
  v("feat_sizes", c.feat_sizes);
  v("rope_k_repeat", c.rope_k_repeat);
  v("num_heads", c.num_heads);
  v("downsample_rate", c.downsample_rate);
  v("kv_in_dim", c.kv_in_dim);
  v("layer_norm_eps", c.layer_norm_eps);
}

template <typename V, typename Cfg>
void VisitMemoryEncoder(V& v, Cfg& c) {
  v("out_dim", c.out_dim);
  v("in_dim", c.in_dim);
  v("position_encoding_num_pos_feats", c.position_encoding_num_pos_feats);
  v("mask_downsampler_kernel_size", c.mask_downsampler_kernel_size);
  v("mask_downsampler_stride", c.mask_downsampler_stride);
  v("mask_downsampler_padding", c.mask_downsampler_padding);
  v("mask_downsampler_embed_dim", c.mask_downsampler_embed_dim);
  v("mask_downsampler_total_stride", c.mask_downsampler_total_stride);
  v("fuser_num_layers", c.fuser_num_layers);
  v("fuser_kernel_size", c.fuser_kernel_size);
  v("fuser_padding", c.fuser_padding);
  v("fuser_layer_scale_init_value", c.fuser_layer_scale_init_value);
  v("fuser_use_dwconv", c.fuser_use_dwconv);
  v("layer_norm_eps", c.layer_norm_eps);
}

template <typename V, typename Cfg>
void VisitSam2(V& v, Cfg& c) {
  v("name", c.name);
  v("image_size", c.image_size);
  v("backbone_stride", c.backbone_stride);
  v.Object("image_encoder", [&](V& sub) { VisitImageEncoder(sub, c.image_encoder); });
  v.Object("prompt_encoder", [&](V& sub) { VisitPromptEncoder(sub, c.prompt_encoder); });
  v.Object("mask_decoder", [&](V& sub) { VisitMaskDecoder(sub, c.mask_decoder); });
  v.Object("memory_attention", [&](V& sub) { VisitMemoryAttention(sub, c.memory_attention); });
  v.Object("memory_encoder", [&](V& sub) { VisitMemoryEncoder(sub, c.memory_encoder); });
  v("num_maskmem", c.num_maskmem);
  v("sigmoid_scale_for_mem_enc", c.sigmoid_scale_for_mem_enc);
  v("sigmoid_bias_for_mem_enc", c.sigmoid_bias_for_mem_enc);
  v("use_mask_input_as_output_without_sam", c.use_mask_input_as_output_without_sam);
  v("directly_add_no_mem_embed", c.directly_add_no_mem_embed);
  v("no_obj_embed_spatial", c.no_obj_embed_spatial);
  v("use_high_res_features_in_sam", c.use_high_res_features_in_sam);
  v("multimask_output_in_sam", c.multimask_output_in_sam);
  v("use_obj_ptrs_in_encoder", c.use_obj_ptrs_in_encoder);
  v("add_tpos_enc_to_obj_ptrs", c.add_tpos_enc_to_obj_ptrs);
  v("proj_tpos_enc_in_obj_ptrs", c.proj_tpos_enc_in_obj_ptrs);
  v("use_signed_tpos_enc_to_obj_ptrs", c.use_signed_tpos_enc_to_obj_ptrs);
  v("only_obj_ptrs_in_the_past_for_eval", c.only_obj_ptrs_in_the_past_for_eval);
  v("pred_obj_scores", c.pred_obj_scores);
  v("pred_obj_scores_mlp", c.pred_obj_scores_mlp);
  v("fixed_no_obj_ptr", c.fixed_no_obj_ptr);
  v("soft_no_obj_ptr", c.soft_no_obj_ptr);
  v("multimask_output_for_tracking", c.multimask_output_for_tracking);
  v("use_multimask_token_for_obj_ptr", c.use_multimask_token_for_obj_ptr);
  v("multimask_min_pt_num", c.multimask_min_pt_num);
  v("multimask_max_pt_num", c.multimask_max_pt_num);
  v("use_mlp_for_obj_ptr_proj", c.use_mlp_for_obj_ptr_proj);
  v("max_cond_frames_in_attn", c.max_cond_frames_in_attn);
  v("max_obj_ptrs_in_encoder", c.max_obj_ptrs_in_encoder);
  v("memory_temporal_stride_for_eval", c.memory_temporal_stride_for_eval);
  v("non_overlap_masks_for_mem_enc", c.non_overlap_masks_for_mem_enc);
  v("binarize_mask_from_pts_for_mem_enc", c.binarize_mask_from_pts_for_mem_enc);
  v("fill_hole_area", c.fill_hole_area);
  v("non_overlap_masks", c.non_overlap_masks);
  v("clear_non_cond_mem_around_input", c.clear_non_cond_mem_around_input);
  v("add_all_frames_to_correct_as_cond", c.add_all_frames_to_correct_as_cond);
}

// ---- Consistency -------------------------------------------------------------------------

std::string ListText(const std::vector<int>& list) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < list.size(); ++i) out << (i ? ", " : "") << list[i];
  out << "]";
  return out.str();
}

// Sizes that would otherwise only fail deep inside a forward pass (or silently build a
// model that cannot load the official checkpoint).
void Validate(const Sam2Config& c, const std::string& source) {
  auto fail = [&](const std::string& what) {
    throw Error("SAM 2 config " + source + ": " + what);
  };
  const HieraConfig& t = c.image_encoder.trunk;
  const FpnNeckConfig& n = c.image_encoder.neck;
  const int num_stages = static_cast<int>(t.stages.size());

  if (c.image_size <= 0) fail("image_size must be positive");
  if (t.embed_dim <= 0 || t.num_heads <= 0) fail("image_encoder.trunk embed_dim and num_heads must be positive");
  if (num_stages == 0) fail("image_encoder.trunk.stages must not be empty");
  for (int s : t.stages)
    if (s <= 0) fail("image_encoder.trunk.stages " + ListText(t.stages) + " must all be positive");
  if (t.window_spec.size() != t.stages.size())
    fail("image_encoder.trunk.window_spec " + ListText(t.window_spec) + " must have one entry per stage " +
         ListText(t.stages));
  for (int w : t.window_spec)
    if (w < 0) fail("image_encoder.trunk.window_spec entries must be >= 0");
  if (t.q_pool < 0 || t.q_pool > num_stages - 1)
    fail("image_encoder.trunk.q_pool must be between 0 and " + std::to_string(num_stages - 1));
  if (t.q_stride[0] <= 0 || t.q_stride[1] <= 0) fail("image_encoder.trunk.q_stride must be positive");
  if (t.patch_stride <= 0 || t.patch_kernel_size <= 0 || t.patch_padding < 0)
    fail("image_encoder.trunk patch embedding sizes must be positive");
  int depth = 0;
  for (int s : t.stages) depth += s;
  for (int b : t.global_att_blocks)
    if (b < 0 || b >= depth)
      fail("image_encoder.trunk.global_att_blocks entry " + std::to_string(b) + " is outside the " +
           std::to_string(depth) + " blocks");

  // Channel and head counts per stage, computed as Hiera does (int() after each multiply).
  std::vector<int> dims(1, t.embed_dim), heads(1, t.num_heads);
  for (int s = 1; s < num_stages; ++s) {
    dims.push_back(static_cast<int>(dims.back() * t.dim_mul));
    heads.push_back(static_cast<int>(heads.back() * t.head_mul));
  }
  for (int s = 0; s < num_stages; ++s) {
    if (heads[s] <= 0 || dims[s] % heads[s] != 0)
      fail("image_encoder.trunk stage " + std::to_string(s) + " has " + std::to_string(dims[s]) +
           " channels, not divisible by its " + std::to_string(heads[s]) + " heads");
  }
  std::vector<int> deepest_first(dims.rbegin(), dims.rend());
  if (n.backbone_channel_list != deepest_first)
    fail("image_encoder.neck.backbone_channel_list " + ListText(n.backbone_channel_list) +
         " must equal the trunk's stage channels (deepest first) " + ListText(deepest_first));

  if (n.d_model <= 0 || n.d_model % 2 != 0) fail("image_encoder.neck.d_model must be positive and even");
  if (n.position_encoding_num_pos_feats != n.d_model)
    fail("image_encoder.neck.position_encoding_num_pos_feats must equal neck.d_model");
  for (int level : n.fpn_top_down_levels)
    if (level < 0 || level >= num_stages)
      fail("image_encoder.neck.fpn_top_down_levels entry " + std::to_string(level) + " is not a level");
  if (n.fpn_interp_model != "nearest" && n.fpn_interp_model != "bilinear" && n.fpn_interp_model != "bicubic")
    fail("image_encoder.neck.fpn_interp_model must be \"nearest\", \"bilinear\" or \"bicubic\"");
  if (n.fuse_type != "sum" && n.fuse_type != "avg") fail("image_encoder.neck.fuse_type must be \"sum\" or \"avg\"");
  if (c.image_encoder.scalp < 0 || c.image_encoder.scalp >= num_stages)
    fail("image_encoder.scalp must be between 0 and " + std::to_string(num_stages - 1));

  // Every stage-to-stage step must halve the map exactly (the FPN doubles it back).
  int total_stride = t.patch_stride;
  for (int s = 0; s < t.q_pool; ++s) total_stride *= t.q_stride[0];
  if (c.image_size % total_stride != 0)
    fail("image_size " + std::to_string(c.image_size) + " must be a multiple of the trunk's total stride " +
         std::to_string(total_stride));
  // The SAM head works on the last level kept after the scalp.
  const int last_kept = num_stages - 1 - c.image_encoder.scalp;
  int last_kept_stride = t.patch_stride;
  for (int s = 0; s < std::min(last_kept, t.q_pool); ++s) last_kept_stride *= t.q_stride[0];
  if (c.backbone_stride != last_kept_stride)
    fail("backbone_stride " + std::to_string(c.backbone_stride) + " does not match the stride " +
         std::to_string(last_kept_stride) + " of the image encoder's lowest kept level");

  if (c.memory_attention.d_model != n.d_model)
    fail("memory_attention.d_model must equal image_encoder.neck.d_model");
  if (c.memory_attention.kv_in_dim != c.memory_encoder.out_dim)
    fail("memory_attention.kv_in_dim must equal memory_encoder.out_dim");
  const int feat = c.image_size / c.backbone_stride;
  if (c.memory_attention.feat_sizes[0] != feat || c.memory_attention.feat_sizes[1] != feat)
    fail("memory_attention.feat_sizes must be image_size / backbone_stride = " + std::to_string(feat));
  if (c.memory_attention.num_heads <= 0 || c.memory_attention.d_model % c.memory_attention.num_heads != 0)
    fail("memory_attention.num_heads must divide memory_attention.d_model");
  if (c.memory_encoder.in_dim != n.d_model) fail("memory_encoder.in_dim must equal image_encoder.neck.d_model");
  if (c.mask_decoder.transformer_num_heads <= 0 || n.d_model % c.mask_decoder.transformer_num_heads != 0)
    fail("mask_decoder.transformer_num_heads must divide image_encoder.neck.d_model");
  if (c.num_maskmem <= 0) fail("num_maskmem must be positive");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open SAM 2 config file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::filesystem::path ExecutableDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return exe.parent_path();
}

}  // namespace

Sam2Config ParseConfigJson(const std::string& json_text, const std::string& source_name) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw Error("SAM 2 config " + source_name + " is not valid JSON: " + e.what());
  }
  Sam2Config config;
  JsonReader reader(root, "", source_name);
  VisitSam2(reader, config);
  reader.RejectUnknownKeys();
  Validate(config, source_name);
  return config;
}

Sam2Config LoadConfig(const std::string& path) { return ParseConfigJson(ReadFile(path), path); }

std::string ConfigToJson(const Sam2Config& config) {
  json root;
  JsonWriter writer(root);
  VisitSam2(writer, config);
  return root.dump(2) + "\n";
}

Sam2Config LoadNamedConfig(const std::string& name_or_path) {
  namespace fs = std::filesystem;
  const bool looks_like_path =
      name_or_path.find('/') != std::string::npos || fs::path(name_or_path).extension() == ".json";
  if (looks_like_path) return LoadConfig(name_or_path);

  std::vector<fs::path> dirs;
  dirs.push_back(fs::path(LITSEG_SOURCE_DIR) / "models" / "configs");
  const fs::path exe_dir = ExecutableDir();
  if (!exe_dir.empty()) {
    dirs.push_back(exe_dir / ".." / "share" / "litseg" / "configs");
    dirs.push_back(exe_dir / ".." / ".." / "models" / "configs");
  }
  std::string searched;
  for (const auto& dir : dirs) {
    const fs::path file = dir / (name_or_path + ".json");
    std::error_code ec;
    if (fs::is_regular_file(file, ec)) return LoadConfig(file.string());
    searched += "\n  " + dir.lexically_normal().string();
  }
  throw Error("unknown SAM 2 model configuration \"" + name_or_path +
              "\" (expected sam2.1_hiera_t, sam2.1_hiera_s, sam2.1_hiera_b+, sam2.1_hiera_l, micro, or a "
              "path to a .json file); searched:" + searched);
}

}  // namespace litseg::sam2
