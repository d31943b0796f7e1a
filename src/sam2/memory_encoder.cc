#include "litseg/sam2/memory_encoder.h"

#include <sstream>
#include <string>

#include "litseg/core/error.h"

namespace litseg::sam2 {
namespace {

std::string ShapeText(const torch::Tensor& t) {
  if (!t.defined()) return "(none)";
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

// Number of stride-s steps that make up total_stride (MaskDownSampler: s^n == total_stride).
int DownsampleSteps(int stride, int total_stride) {
  if (stride < 2 || total_stride < 1)
    throw Error("memory encoder: mask downsampler stride must be >= 2 and total stride >= 1");
  int steps = 0;
  int64_t reached = 1;
  while (reached < total_stride) {
    reached *= stride;
    ++steps;
  }
  if (reached != total_stride)
    throw Error("memory encoder: mask downsampler total stride " + std::to_string(total_stride) +
                " is not a power of its stride " + std::to_string(stride));
  return steps;
}

// SAM2Base._apply_non_overlapping_constraints: outside its winning pixels an object's logits
// are capped at -10.
torch::Tensor ApplyNonOverlappingConstraints(const torch::Tensor& masks) {
  const int64_t batch = masks.size(0);
  if (batch == 1) return masks;
  const torch::Tensor winner = torch::argmax(masks, 0, /*keepdim=*/true);
  const torch::Tensor object = torch::arange(batch, winner.options()).view({batch, 1, 1, 1});
  return torch::where(winner == object, masks, torch::clamp_max(masks, -10.0));
}

}  // namespace

MaskDownSamplerImpl::MaskDownSamplerImpl(const MemoryEncoderConfig& config) {
  const int steps = DownsampleSteps(config.mask_downsampler_stride, config.mask_downsampler_total_stride);
  encoder = register_module("encoder", torch::nn::Sequential());
  int64_t in_chans = 1, out_chans = 1;
  const int64_t growth = static_cast<int64_t>(config.mask_downsampler_stride) * config.mask_downsampler_stride;
  for (int i = 0; i < steps; ++i) {
    out_chans = in_chans * growth;
    encoder->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans, out_chans, config.mask_downsampler_kernel_size)
                                             .stride(config.mask_downsampler_stride)
                                             .padding(config.mask_downsampler_padding)));
    encoder->push_back(LayerNorm2d(out_chans, config.layer_norm_eps));
    encoder->push_back(torch::nn::GELU());
    in_chans = out_chans;
  }
  encoder->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(out_chans, config.mask_downsampler_embed_dim, 1)));
}

torch::Tensor MaskDownSamplerImpl::forward(const torch::Tensor& masks) { return encoder->forward(masks); }

CXBlockImpl::CXBlockImpl(const MemoryEncoderConfig& config, int64_t dim) {
  dwconv = register_module(
      "dwconv", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, config.fuser_kernel_size)
                                      .padding(config.fuser_padding)
                                      .groups(config.fuser_use_dwconv ? dim : 1)));
  norm = register_module("norm", LayerNorm2d(dim, config.layer_norm_eps));
  pwconv1 = register_module("pwconv1", torch::nn::Linear(dim, 4 * dim));
  pwconv2 = register_module("pwconv2", torch::nn::Linear(4 * dim, dim));
  if (config.fuser_layer_scale_init_value > 0)
    gamma = register_parameter("gamma", torch::full({dim}, config.fuser_layer_scale_init_value));
}

torch::Tensor CXBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = norm(dwconv(x));
  y = y.permute({0, 2, 3, 1});  // channels last for the pointwise Linear layers
  y = pwconv2(torch::gelu(pwconv1(y)));
  if (gamma.defined()) y = gamma * y;
  return x + y.permute({0, 3, 1, 2});
}

FuserImpl::FuserImpl(const MemoryEncoderConfig& config, int64_t dim) {
  if (config.fuser_num_layers < 0) throw Error("memory encoder: negative number of fuser layers");
  layers = register_module("layers", torch::nn::ModuleList());
  for (int i = 0; i < config.fuser_num_layers; ++i) layers->push_back(CXBlock(config, dim));
}

torch::Tensor FuserImpl::forward(torch::Tensor x) {
  for (const auto& layer : *layers) x = layer->as<CXBlockImpl>()->forward(x);
  return x;
}

MemoryEncoderImpl::MemoryEncoderImpl(const MemoryEncoderConfig& cfg) : config(cfg) {
  if (config.in_dim <= 0 || config.out_dim <= 0)
    throw Error("memory encoder: in_dim and out_dim must be positive");
  if (config.mask_downsampler_embed_dim != config.in_dim)
    throw Error("memory encoder: the mask downsampler's embed_dim (" + std::to_string(config.mask_downsampler_embed_dim) +
                ") must equal in_dim (" + std::to_string(config.in_dim) + ") to be added to the image features");
  mask_downsampler = register_module("mask_downsampler", MaskDownSampler(config));
  pix_feat_proj = register_module("pix_feat_proj",
                                  torch::nn::Conv2d(torch::nn::Conv2dOptions(config.in_dim, config.in_dim, 1)));
  fuser = register_module("fuser", Fuser(config, config.in_dim));
  position_encoding = register_module("position_encoding", PositionEmbeddingSine(config.position_encoding_num_pos_feats));
  if (config.out_dim != config.in_dim)
    out_proj = register_module("out_proj",
                               torch::nn::Conv2d(torch::nn::Conv2dOptions(config.in_dim, config.out_dim, 1)));
}

MemoryEncoderOutput MemoryEncoderImpl::forward(const torch::Tensor& pix_feat, const torch::Tensor& masks,
                                               bool skip_mask_sigmoid) {
  const int64_t ts = config.mask_downsampler_total_stride;
  const bool ok = pix_feat.defined() && masks.defined() && pix_feat.dim() == 4 && masks.dim() == 4 &&
                  pix_feat.size(1) == config.in_dim && masks.size(1) == 1 && masks.size(0) == pix_feat.size(0) &&
                  masks.size(2) == pix_feat.size(2) * ts && masks.size(3) == pix_feat.size(3) * ts;
  if (!ok)
    throw Error("memory encoder: expected features [B, " + std::to_string(config.in_dim) + ", H, W] and masks [B, 1, " +
                std::to_string(ts) + "*H, " + std::to_string(ts) + "*W], got features " + ShapeText(pix_feat) +
                " and masks " + ShapeText(masks));
  const torch::Tensor mask_in = skip_mask_sigmoid ? masks : torch::sigmoid(masks);
  const torch::Tensor mask_features = mask_downsampler(mask_in);
  torch::Tensor x = pix_feat_proj(pix_feat.to(mask_features.device())) + mask_features;
  x = fuser(x);
  if (out_proj) x = out_proj(x);
  const torch::Tensor pos = position_encoding(x).to(x.scalar_type());
  return MemoryEncoderOutput{x, pos};
}

NewMemoryOptions NewMemoryOptionsFrom(const Sam2Config& config) {
  NewMemoryOptions o;
  o.sigmoid_scale = config.sigmoid_scale_for_mem_enc;
  o.sigmoid_bias = config.sigmoid_bias_for_mem_enc;
  o.binarize_mask_from_pts = config.binarize_mask_from_pts_for_mem_enc;
  o.non_overlap_masks = config.non_overlap_masks_for_mem_enc;
  return o;
}

NewMemory EncodeNewMemory(MemoryEncoderImpl& encoder, const torch::Tensor& pix_feat,
                          const torch::Tensor& pred_masks_high_res, const torch::Tensor& object_score_logits,
                          bool is_mask_from_pts, const torch::Tensor& no_obj_embed_spatial,
                          const NewMemoryOptions& options) {
  if (!pred_masks_high_res.defined() || pred_masks_high_res.dim() != 4 || !pix_feat.defined() ||
      pred_masks_high_res.size(0) != pix_feat.size(0))
    throw Error("memory encoding: expected mask logits [B, 1, S, S] for features [B, C, H, W], got " +
                ShapeText(pred_masks_high_res) + " and " + ShapeText(pix_feat));
  const int64_t batch = pix_feat.size(0);
  if (!object_score_logits.defined() || object_score_logits.numel() != batch)
    throw Error("memory encoding: expected one object score per object, got " + ShapeText(object_score_logits));

  torch::Tensor masks = pred_masks_high_res;
  const bool training = encoder.is_training();
  if (options.non_overlap_masks && !training) masks = ApplyNonOverlappingConstraints(masks);
  // Interacted frames: the hard mask; others: the sigmoid probabilities. Then scale + bias,
  // as separate operations like the reference.
  torch::Tensor mask_for_mem = options.binarize_mask_from_pts && is_mask_from_pts && !training
                                   ? (masks > 0).to(masks.scalar_type())
                                   : torch::sigmoid(masks);
  if (options.sigmoid_scale != 1.0) mask_for_mem = mask_for_mem * options.sigmoid_scale;
  if (options.sigmoid_bias != 0.0) mask_for_mem = mask_for_mem + options.sigmoid_bias;

  MemoryEncoderOutput out = encoder.forward(pix_feat, mask_for_mem, /*skip_mask_sigmoid=*/true);
  torch::Tensor features = out.vision_features;
  if (no_obj_embed_spatial.defined()) {
    const int64_t channels = features.size(1);
    if (no_obj_embed_spatial.numel() != channels)
      throw Error("memory encoding: no_obj_embed_spatial has " + std::to_string(no_obj_embed_spatial.numel()) +
                  " values for " + std::to_string(channels) + " memory channels");
    // Frames where the object is predicted absent get the learned "no object" embedding.
    const torch::Tensor appearing =
        (object_score_logits.reshape({batch, 1, 1, 1}) > 0).to(features.scalar_type()).to(features.device());
    features = features + (1 - appearing) * no_obj_embed_spatial.reshape({1, channels, 1, 1})
                                               .to(features.device())
                                               .expand(features.sizes());
  }
  if (options.round_to_bf16) features = features.to(torch::kBFloat16);  // round to nearest even
  return NewMemory{features, out.vision_pos_enc};
}

}  // namespace litseg::sam2
