// The SAM 2.1 model (SAM2Base of facebookresearch/sam2): every module and parameter of the
// official checkpoints, under the official state-dict names, built from a Sam2Config.
//
// The model holds weights only (immutable after loading, like whisper.cpp's model); per-image
// and per-video state lives in the predictors.
//
//   auto model = litseg::sam2::LoadSam2Model({.config = "sam2.1_hiera_l",
//                                              .checkpoint = "sam2.1_hiera_large.pt"});
//   litseg::sam2::ImageFeatures f = model->ForwardImage(PreprocessImage(rgb, 1024));
//
// Thread safety: forward methods only read the parameters; several threads may share a model
// (each with its own predictor state).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "litseg/sam2/checkpoint.h"
#include "litseg/sam2/config.h"
#include "litseg/sam2/hiera.h"
#include "litseg/sam2/image_encoder.h"
#include "litseg/sam2/mask_decoder.h"
#include "litseg/sam2/memory_attention.h"
#include "litseg/sam2/memory_encoder.h"
#include "litseg/sam2/mlp.h"
#include "litseg/sam2/prompt_encoder.h"

namespace litseg::sam2 {

// SAM2Base.forward_image: backbone_fpn[0] / [1] are already projected by the decoder's
// conv_s0 / conv_s1 (the high-resolution features), backbone_fpn[2] = vision_features.
struct ImageFeatures {
  torch::Tensor vision_features;              // [B, d, S/16, S/16]
  std::vector<torch::Tensor> backbone_fpn;    // highest resolution first
  std::vector<torch::Tensor> vision_pos_enc;  // matching sine position encodings
};

struct Sam2ModelImpl : torch::nn::Module {
  explicit Sam2ModelImpl(const Sam2Config& config);

  ImageFeatures ForwardImage(const torch::Tensor& image, const TraceFn& trace = nullptr);
  // Parameters only (the one buffer, the prompt encoder's Gaussian matrix, excluded).
  int64_t ParameterCount() const;

  Sam2Config config;
  ImageEncoder image_encoder{nullptr};
  MemoryAttention memory_attention{nullptr};
  MemoryEncoder memory_encoder{nullptr};
  PromptEncoder sam_prompt_encoder{nullptr};
  MaskDecoder sam_mask_decoder{nullptr};
  torch::Tensor maskmem_tpos_enc;      // [num_maskmem, 1, 1, mem_dim]
  torch::Tensor no_mem_embed;          // [1, 1, d]
  torch::Tensor no_mem_pos_enc;        // [1, 1, d]
  torch::Tensor no_obj_ptr;            // [1, d] (pred_obj_scores && fixed_no_obj_ptr)
  torch::Tensor no_obj_embed_spatial;  // [1, mem_dim] (no_obj_embed_spatial)
  Mlp obj_ptr_proj{nullptr};           // MLP(d, d, d, 3) (use_mlp_for_obj_ptr_proj)
  torch::nn::Linear obj_ptr_tpos_proj{nullptr};  // Linear(d, mem_dim) (proj_tpos_enc_in_obj_ptrs)
  torch::nn::Conv2d mask_downsample{nullptr};    // Conv2d(1, 1, 4, 4)
};
TORCH_MODULE(Sam2Model);

struct ModelLoadOptions {
  std::string config = "sam2.1_hiera_l";  // a name from models/configs or a JSON path
  std::filesystem::path checkpoint;       // .pt (official) or .safetensors; empty = no weights
  std::string device = "auto";            // "auto", "cpu", "cuda"
};

// The device to run on: "cuda" needs a CUDA build and a GPU; "auto" picks CUDA when both are
// there. A CUDA build on a machine without a GPU falls back to the CPU and logs why.
torch::Device ResolveDevice(const std::string& device);

// Builds the model from the config and loads the checkpoint strictly (every key, every
// shape). Throws litseg::Error naming the problem; never returns a partly loaded model.
Sam2Model LoadSam2Model(const ModelLoadOptions& options, LoadReport* report = nullptr);
Sam2Model LoadSam2Model(const Sam2Config& config, const std::filesystem::path& checkpoint,
                        const std::string& device = "auto", LoadReport* report = nullptr);

}  // namespace litseg::sam2
