#include "litseg/sam2/sam2_model.h"

#include <iostream>

#include "litseg/core/error.h"

namespace litseg::sam2 {

Sam2ModelImpl::Sam2ModelImpl(const Sam2Config& c) : config(c) {
  if (!c.use_obj_ptrs_in_encoder || !c.use_mlp_for_obj_ptr_proj || !c.proj_tpos_enc_in_obj_ptrs)
    throw Error("config " + c.name +
                ": only the SAM 2.1 object-pointer layout (MLP projection, projected temporal encoding) is supported");
  const int64_t d = c.d_model(), mem = c.mem_dim();
  // Registration follows SAM2Base.__init__ so the state dict lists keys in the official order.
  image_encoder = register_module("image_encoder", ImageEncoder(c.image_encoder));
  memory_attention = register_module("memory_attention", MemoryAttention(c.memory_attention));
  memory_encoder = register_module("memory_encoder", MemoryEncoder(c.memory_encoder));
  maskmem_tpos_enc = register_parameter("maskmem_tpos_enc", torch::zeros({c.num_maskmem, 1, 1, mem}));
  no_mem_embed = register_parameter("no_mem_embed", torch::zeros({1, 1, d}));
  no_mem_pos_enc = register_parameter("no_mem_pos_enc", torch::zeros({1, 1, d}));
  if (c.pred_obj_scores && c.fixed_no_obj_ptr) no_obj_ptr = register_parameter("no_obj_ptr", torch::zeros({1, d}));
  sam_prompt_encoder = register_module("sam_prompt_encoder", PromptEncoder(c));
  sam_mask_decoder = register_module("sam_mask_decoder", MaskDecoder(c));
  obj_ptr_proj = register_module("obj_ptr_proj", Mlp(d, d, d, 3));
  obj_ptr_tpos_proj = register_module("obj_ptr_tpos_proj", torch::nn::Linear(d, mem));
  mask_downsample = register_module("mask_downsample", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 1, 4).stride(4)));
  if (c.no_obj_embed_spatial) no_obj_embed_spatial = register_parameter("no_obj_embed_spatial", torch::zeros({1, mem}));
}

ImageFeatures Sam2ModelImpl::ForwardImage(const torch::Tensor& image, const TraceFn& trace) {
  ImageEncoderOutput out = image_encoder->forward(image, trace);
  ImageFeatures features;
  features.vision_features = out.vision_features;
  features.vision_pos_enc = std::move(out.vision_pos_enc);
  features.backbone_fpn = std::move(out.backbone_fpn);
  if (config.use_high_res_features_in_sam) {
    // SAM2Base.forward_image: precompute the decoder's projections of levels 0 and 1.
    auto projected = sam_mask_decoder->ProjectHighResFeatures(features.backbone_fpn[0], features.backbone_fpn[1]);
    features.backbone_fpn[0] = projected[0];
    features.backbone_fpn[1] = projected[1];
  }
  // The bf16 path computes products in bf16; features are handed on (and cached) in float32
  // so that every consumer sees one dtype.
  auto to_float = [](torch::Tensor& t) {
    if (t.defined() && t.scalar_type() != torch::kFloat32) t = t.to(torch::kFloat32);
  };
  to_float(features.vision_features);
  for (auto& t : features.backbone_fpn) to_float(t);
  for (auto& t : features.vision_pos_enc) to_float(t);
  return features;
}

int64_t Sam2ModelImpl::ParameterCount() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

torch::Device ResolveDevice(const std::string& device) {
  if (device == "cpu") return torch::kCPU;
  if (device != "auto" && device != "cuda") throw Error("unknown device '" + device + "' (use auto, cpu or cuda)");
  const bool available = torch::cuda::is_available();
  if (device == "cuda" && !available)
    throw Error("--device cuda: this build or this machine has no usable CUDA GPU (use --device cpu or auto)");
  if (available) return torch::Device(torch::kCUDA, 0);
#ifdef LITSEG_WITH_CUDA
  static bool logged = false;
  if (!logged) {
    std::cerr << "litseg: built with CUDA but no GPU is available; running on the CPU\n";
    logged = true;
  }
#endif
  return torch::kCPU;
}

Sam2Model LoadSam2Model(const Sam2Config& config, const std::filesystem::path& checkpoint, const std::string& device,
                        LoadReport* report) {
  Sam2Model model(config);
  if (!checkpoint.empty()) {
    const TensorMap weights = LoadCheckpoint(checkpoint);
    LoadReport r;
    try {
      r = LoadStateDict(*model, weights);
    } catch (const Error& e) {
      throw Error("checkpoint " + checkpoint.string() + " does not fit config " + config.name + ": " + e.what());
    }
    if (report) *report = r;
  }
  model->eval();
  model->to(ResolveDevice(device));
  return model;
}

Sam2Model LoadSam2Model(const ModelLoadOptions& options, LoadReport* report) {
  return LoadSam2Model(LoadNamedConfig(options.config), options.checkpoint, options.device, report);
}

}  // namespace litseg::sam2
