#include "litseg/sam2/mask_decoder.h"

#include <sstream>

#include "litseg/core/error.h"

namespace litseg::sam2 {
namespace {

std::string ShapeText(const torch::Tensor& t) {
  if (!t.defined()) return "nothing";
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

// True when t is [b, channels, h, w] with b == 1 or b == batch.
bool IsFeatureMap(const torch::Tensor& t, int64_t batch, int64_t channels, int64_t h, int64_t w) {
  return t.defined() && t.dim() == 4 && (t.size(0) == 1 || t.size(0) == batch) && t.size(1) == channels &&
         t.size(2) == h && t.size(3) == w;
}

}  // namespace

MaskDecoderImpl::MaskDecoderImpl(const Sam2Config& model_config)
    : config(model_config.mask_decoder),
      transformer_dim(model_config.d_model()),
      num_mask_tokens(model_config.mask_decoder.num_multimask_outputs + 1) {
  const int64_t d = transformer_dim;
  if (d < 8 || d % 8 != 0) throw Error("mask decoder: d_model must be a positive multiple of 8");
  if (config.num_multimask_outputs < 1) throw Error("mask decoder: num_multimask_outputs must be at least 1");

  // Registration order = the official state-dict order.
  transformer = register_module("transformer", TwoWayTransformer(config, d));
  iou_token = register_module("iou_token", torch::nn::Embedding(1, d));
  mask_tokens = register_module("mask_tokens", torch::nn::Embedding(num_mask_tokens, d));
  if (config.pred_obj_scores) obj_score_token = register_module("obj_score_token", torch::nn::Embedding(1, d));

  output_upscaling = register_module(
      "output_upscaling",
      torch::nn::Sequential(torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(d, d / 4, 2).stride(2)),
                            LayerNorm2d(d / 4, config.layer_norm_eps), torch::nn::GELU(),
                            torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(d / 4, d / 8, 2).stride(2)),
                            torch::nn::GELU()));
  if (config.use_high_res_features) {
    conv_s0 = register_module("conv_s0", torch::nn::Conv2d(torch::nn::Conv2dOptions(d, d / 8, 1)));
    conv_s1 = register_module("conv_s1", torch::nn::Conv2d(torch::nn::Conv2dOptions(d, d / 4, 1)));
  }

  output_hypernetworks_mlps = register_module("output_hypernetworks_mlps", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_mask_tokens; ++i) {
    Mlp mlp(d, d, d / 8, 3);
    output_hypernetworks_mlps->push_back(mlp);
    hypernetwork_mlps.push_back(mlp);
  }
  iou_prediction_head = register_module(
      "iou_prediction_head", Mlp(d, config.iou_head_hidden_dim, num_mask_tokens, config.iou_head_depth,
                                 MlpActivation::kReLU, config.iou_prediction_use_sigmoid));
  if (config.pred_obj_scores) {
    if (config.pred_obj_scores_mlp)
      pred_obj_score_mlp = register_module("pred_obj_score_head", Mlp(d, d, 1, 3));
    else
      pred_obj_score_linear = register_module("pred_obj_score_head", torch::nn::Linear(d, 1));
  }
}

namespace {

// ConvTranspose2d with kernel 2 and stride 2, plus a skip connection, as one matrix product.
// The 2x2 output cells do not overlap, so every output pixel is a plain sum over the input
// channels: out[b, o, 2i+u, 2j+v] = bias[o] + sum_c x[b, c, i, j] * weight[c, o, u, v] +
// skip[b, o, 2i+u, 2j+v]. LibTorch 1.13 runs this layer through slow_conv_transpose2d
// (im2col + col2im), about 25 ms of a 70 ms click-to-mask at 64x64x256; as a product it is a
// few ms. x: [B, Cin, h, w]; weight: [Cin, Cout, 2, 2]; skip: [B, Cout, 2h, 2w] or undefined.
torch::Tensor ConvTranspose2x2(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& skip) {
  const int64_t batch = x.size(0), in_channels = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t out_channels = weight.size(1);
  // [B*h*w, Cin]: a view for batch 1 (the transformer hands over pixel rows), else a copy.
  const torch::Tensor rows = x.flatten(2).transpose(1, 2).reshape({batch * h * w, in_channels});
  const torch::Tensor weights = weight.reshape({in_channels, out_channels * 4});
  const torch::Tensor cells =
      bias.defined() ? torch::addmm(bias.view({out_channels, 1}).expand({out_channels, 4}).reshape({out_channels * 4}),
                                    rows, weights)
                     : torch::mm(rows, weights);
  const torch::Tensor grid = cells.view({batch, h, w, out_channels, 2, 2}).permute({0, 3, 1, 4, 2, 5});
  if (!skip.defined()) return grid.reshape({batch, out_channels, 2 * h, 2 * w});
  // The skip features may be shared by all prompt sets (batch 1). Skip first: the sum then
  // takes the skip's NCHW layout, so the reshape below is a view, not a second pass.
  const torch::Tensor skip_cells = skip.view({skip.size(0), out_channels, h, 2, w, 2});
  return (skip_cells + grid).reshape({batch, out_channels, 2 * h, 2 * w});
}

}  // namespace

std::vector<torch::Tensor> MaskDecoderImpl::ProjectHighResFeatures(const torch::Tensor& fpn0, const torch::Tensor& fpn1) {
  if (!config.use_high_res_features) throw Error("mask decoder: this model does not use high-resolution features");
  if (!fpn0.defined() || fpn0.dim() != 4 || fpn0.size(1) != transformer_dim || !fpn1.defined() || fpn1.dim() != 4 ||
      fpn1.size(1) != transformer_dim)
    throw Error("mask decoder: high-resolution FPN levels must be [B, " + std::to_string(transformer_dim) +
                ", H, W], got " + ShapeText(fpn0) + " and " + ShapeText(fpn1));
  return {conv_s0->forward(fpn0), conv_s1->forward(fpn1)};
}

MaskDecoderRawOutput MaskDecoderImpl::PredictMasks(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                                                   const torch::Tensor& sparse, const torch::Tensor& dense,
                                                   bool repeat_image, const std::vector<torch::Tensor>& high_res) {
  const int64_t d = transformer_dim;
  if (!sparse.defined() || sparse.dim() != 3 || sparse.size(2) != d)
    throw Error("mask decoder: sparse prompt embeddings must be [B, N, " + std::to_string(d) + "], got " +
                ShapeText(sparse));
  const int64_t batch = sparse.size(0);
  if (!image_embeddings.defined() || image_embeddings.dim() != 4 || image_embeddings.size(1) != d)
    throw Error("mask decoder: image embeddings must be [B, " + std::to_string(d) + ", h, w], got " +
                ShapeText(image_embeddings));
  const int64_t h = image_embeddings.size(2), w = image_embeddings.size(3);
  const int64_t image_batch = image_embeddings.size(0);
  if (repeat_image ? image_batch != 1 : image_batch != batch)
    throw Error("mask decoder: " + std::to_string(image_batch) + " image embeddings for " + std::to_string(batch) +
                " prompt sets" + (repeat_image ? " (a repeated image must be a single one)" : ""));
  if (!IsFeatureMap(dense, batch, d, h, w))
    throw Error("mask decoder: dense prompt embeddings must be [B or 1, " + std::to_string(d) + ", " +
                std::to_string(h) + ", " + std::to_string(w) + "], got " + ShapeText(dense));
  if (!IsFeatureMap(image_pe, 1, d, h, w) || image_pe.size(0) != 1)
    throw Error("mask decoder: image_pe must be [1, " + std::to_string(d) + ", " + std::to_string(h) + ", " +
                std::to_string(w) + "], got " + ShapeText(image_pe));
  if (config.use_high_res_features) {
    if (high_res.size() != 2 || !IsFeatureMap(high_res[0], batch, d / 8, 4 * h, 4 * w) ||
        !IsFeatureMap(high_res[1], batch, d / 4, 2 * h, 2 * w))
      throw Error("mask decoder: expected high-resolution features [B, " + std::to_string(d / 8) + ", " +
                  std::to_string(4 * h) + ", " + std::to_string(4 * w) + "] and [B, " + std::to_string(d / 4) + ", " +
                  std::to_string(2 * h) + ", " + std::to_string(2 * w) + "] (after conv_s0/conv_s1), got " +
                  (high_res.size() == 2 ? ShapeText(high_res[0]) + " and " + ShapeText(high_res[1])
                                        : std::to_string(high_res.size()) + " tensors"));
  }

  // Output tokens: [object score], IoU, mask tokens; then the prompt tokens.
  std::vector<torch::Tensor> token_parts;
  if (config.pred_obj_scores) token_parts.push_back(obj_score_token->weight);
  token_parts.push_back(iou_token->weight);
  token_parts.push_back(mask_tokens->weight);
  const int64_t first = config.pred_obj_scores ? 1 : 0;  // index of the IoU token
  const torch::Tensor output_tokens = torch::cat(token_parts, 0).unsqueeze(0).expand({batch, -1, -1});
  const torch::Tensor tokens = torch::cat({output_tokens, sparse}, 1);

  // With one prompt set there is nothing to repeat (repeat_interleave would copy anyway).
  torch::Tensor src = repeat_image && batch > 1 ? image_embeddings.repeat_interleave(batch, 0) : image_embeddings;
  src = src + dense;
  const torch::Tensor pos_src = batch > 1 ? image_pe.repeat_interleave(batch, 0) : image_pe;

  auto [hs, image_tokens] = transformer->forward(src, pos_src, tokens);
  const torch::Tensor iou_token_out = hs.select(1, first);
  MaskDecoderRawOutput out;
  out.mask_tokens_out = hs.narrow(1, first + 1, num_mask_tokens);

  // Upscale the image tokens 4x, fusing the high-resolution features.
  torch::Tensor upscaled = image_tokens.transpose(1, 2).reshape({batch, d, h, w});
  if (!config.use_high_res_features) {
    upscaled = output_upscaling->forward(upscaled);
  } else {
    auto dc1 = output_upscaling->ptr<torch::nn::ConvTranspose2dImpl>(0);
    auto ln1 = output_upscaling->ptr<LayerNorm2dImpl>(1);
    auto dc2 = output_upscaling->ptr<torch::nn::ConvTranspose2dImpl>(3);
    upscaled = torch::gelu(ln1->forward(ConvTranspose2x2(upscaled, dc1->weight, dc1->bias, high_res[1])));
    upscaled = torch::gelu(ConvTranspose2x2(upscaled, dc2->weight, dc2->bias, high_res[0]));
  }

  std::vector<torch::Tensor> hyper_in;
  for (int64_t i = 0; i < num_mask_tokens; ++i)
    hyper_in.push_back(hypernetwork_mlps[i]->forward(out.mask_tokens_out.select(1, i)));
  const int64_t c = upscaled.size(1), uh = upscaled.size(2), uw = upscaled.size(3);
  out.masks = torch::matmul(torch::stack(hyper_in, 1), upscaled.reshape({batch, c, uh * uw}))
                  .view({batch, -1, uh, uw});

  out.iou_pred = iou_prediction_head->forward(iou_token_out);
  if (!config.pred_obj_scores) {
    out.object_score_logits = torch::full({batch, 1}, 10.0, out.iou_pred.options());
  } else if (pred_obj_score_mlp) {
    out.object_score_logits = pred_obj_score_mlp->forward(hs.select(1, 0));
  } else {
    out.object_score_logits = pred_obj_score_linear->forward(hs.select(1, 0));
  }
  return out;
}

torch::Tensor MaskDecoderImpl::StabilityScores(const torch::Tensor& mask_logits) const {
  const torch::Tensor flat = mask_logits.flatten(-2);
  const double delta = config.dynamic_multimask_stability_delta;
  const torch::Tensor area_i = flat.gt(delta).sum(-1).to(torch::kFloat32);
  const torch::Tensor area_u = flat.gt(-delta).sum(-1).to(torch::kFloat32);
  return torch::where(area_u.gt(0), area_i / area_u, torch::ones_like(area_i));
}

MaskDecoderOutput MaskDecoderImpl::SelectOutputs(MaskDecoderRawOutput raw, bool multimask_output) const {
  MaskDecoderOutput out;
  const int64_t batch = raw.masks.size(0);
  const int64_t multi = num_mask_tokens - 1;
  const torch::Tensor multimask_logits = raw.masks.narrow(1, 1, multi);
  const torch::Tensor multimask_ious = raw.iou_pred.narrow(1, 1, multi);
  out.best_multimask_index = multimask_ious.argmax(-1);

  if (multimask_output) {
    out.masks = multimask_logits;
    out.iou_pred = multimask_ious;
  } else if (config.dynamic_multimask_via_stability && !is_training()) {
    const torch::Tensor rows = torch::arange(batch, out.best_multimask_index.options());
    const torch::Tensor best_logits =
        multimask_logits.index({rows, out.best_multimask_index}).unsqueeze(1);  // [B, 1, H, W]
    const torch::Tensor best_ious = multimask_ious.index({rows, out.best_multimask_index}).unsqueeze(1);
    const torch::Tensor single_logits = raw.masks.narrow(1, 0, 1);
    const torch::Tensor single_ious = raw.iou_pred.narrow(1, 0, 1);
    out.stability_scores = StabilityScores(single_logits).view({batch});
    const torch::Tensor stable = out.stability_scores.ge(config.dynamic_multimask_stability_thresh);
    out.used_multimask_fallback = stable.logical_not();
    out.masks = torch::where(stable.view({batch, 1, 1, 1}), single_logits, best_logits);
    out.iou_pred = torch::where(stable.view({batch, 1}), single_ious, best_ious);
  } else {
    out.masks = raw.masks.narrow(1, 0, 1);
    out.iou_pred = raw.iou_pred.narrow(1, 0, 1);
  }

  // The token later turned into the object pointer.
  out.sam_tokens_out = multimask_output && config.use_multimask_token_for_obj_ptr
                           ? raw.mask_tokens_out.narrow(1, 1, multi)
                           : raw.mask_tokens_out.narrow(1, 0, 1);
  out.object_score_logits = raw.object_score_logits;
  out.raw = std::move(raw);
  return out;
}

MaskDecoderOutput MaskDecoderImpl::forward(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                                           const torch::Tensor& sparse, const torch::Tensor& dense,
                                           bool multimask_output, bool repeat_image,
                                           const std::vector<torch::Tensor>& high_res) {
  return SelectOutputs(PredictMasks(image_embeddings, image_pe, sparse, dense, repeat_image, high_res),
                       multimask_output);
}

std::vector<std::pair<std::string, Attention>> MaskDecoderImpl::NamedAttentions() const {
  std::vector<std::pair<std::string, Attention>> out = transformer->NamedAttentions();
  for (auto& entry : out) entry.first = "transformer." + entry.first;
  return out;
}

}  // namespace litseg::sam2
