#include "litseg/sam2/image_predictor.h"

#include "litseg/core/error.h"
#include "litseg/sam2/preprocess.h"
#include "litseg/sam2/resize.h"

namespace litseg::sam2 {

ImagePredictor::ImagePredictor(Sam2Model model) : model_(std::move(model)) {
  if (!model_) throw Error("ImagePredictor needs a model");
}

void ImagePredictor::SetImage(const torch::Tensor& rgb, const TraceFn& trace) {
  if (rgb.dim() != 3 || rgb.size(2) != 3 || rgb.scalar_type() != torch::kUInt8)
    throw Error("SetImage expects an RGB uint8 image [H, W, 3]");
  torch::NoGradGuard no_grad;
  const Sam2Config& c = model_->config;
  height_ = static_cast<int>(rgb.size(0));
  width_ = static_cast<int>(rgb.size(1));
  const torch::Device device = model_->parameters().front().device();
  torch::Tensor input = PreprocessImage(rgb.to(device), c.image_size);
  if (trace) trace("input.preprocessed", input);
  features_ = model_->ForwardImage(input, trace);
  // SAM2ImagePredictor.set_image: directly_add_no_mem_embed adds the no-memory embedding to
  // the lowest-resolution features ([1, 1, d] broadcast over channels).
  image_embed_ = features_.vision_features;
  if (c.directly_add_no_mem_embed)
    image_embed_ = image_embed_ + model_->no_mem_embed.view({1, -1, 1, 1});
  high_res_.clear();
  if (c.use_high_res_features_in_sam) high_res_ = {features_.backbone_fpn[0], features_.backbone_fpn[1]};
  if (trace) trace("predictor.image_embed", image_embed_);
}

ImagePrediction ImagePredictor::Predict(const ImagePrompt& prompt) { return PredictBatch({prompt}).front(); }

std::vector<ImagePrediction> ImagePredictor::PredictBatch(const std::vector<ImagePrompt>& prompts) {
  if (!has_image()) throw Error("Predict called before SetImage");
  if (prompts.empty()) throw Error("Predict needs at least one prompt");
  torch::NoGradGuard no_grad;
  const Sam2Config& c = model_->config;
  const torch::Device device = image_embed_.device();
  const bool multimask = prompts.front().multimask;

  // Points: box corners first, then clicks, in model-input pixels; the prompt encoder appends
  // the padding point.
  std::vector<PointPrompt> point_prompts;
  torch::Tensor mask_input;
  for (const auto& p : prompts) {
    if (p.multimask != multimask) throw Error("batched prompts must agree on multimask output");
    point_prompts.push_back(MakePointPrompt(p.points, p.box, width_, height_, c.image_size));
    if (p.mask_input.defined()) {
      torch::Tensor m = p.mask_input.to(device, torch::kFloat32);
      if (m.dim() == 3) m = m.unsqueeze(0);
      mask_input = mask_input.defined() ? torch::cat({mask_input, m}) : m;
    }
  }
  if (mask_input.defined() && mask_input.size(0) != static_cast<int64_t>(prompts.size()))
    throw Error("either every batched prompt has a mask input or none has");
  PointPrompt points = point_prompts.size() == 1 ? point_prompts.front() : StackPointPrompts(point_prompts);
  points.coords = points.coords.to(device);
  points.labels = points.labels.to(device);

  const PromptEmbeddings embeddings = model_->sam_prompt_encoder->Encode(points, mask_input);
  const bool batched = prompts.size() > 1;
  MaskDecoderOutput out = model_->sam_mask_decoder->forward(image_embed_, model_->sam_prompt_encoder->GetDensePe(),
                                                            embeddings.sparse, embeddings.dense, multimask,
                                                            /*repeat_image=*/batched, high_res_);
  // The bf16 path returns reduced-precision logits and scores; results are float32.
  for (torch::Tensor* t : {&out.masks, &out.iou_pred, &out.object_score_logits, &out.raw.masks, &out.raw.iou_pred,
                           &out.raw.object_score_logits, &out.raw.mask_tokens_out, &out.sam_tokens_out})
    if (t->defined() && t->scalar_type() != torch::kFloat32) *t = t->to(torch::kFloat32);
  // postprocess_masks: bilinear (align_corners=False) straight to the original size.
  const torch::Tensor full = ResizeBilinear(out.masks, height_, width_);
  torch::Tensor low = out.masks.clamp(-32.0, 32.0);

  std::vector<ImagePrediction> results;
  for (size_t b = 0; b < prompts.size(); ++b) {
    const int64_t i = static_cast<int64_t>(b);
    ImagePrediction r;
    r.masks = full[i];
    r.iou = out.iou_pred[i];
    r.low_res_masks = low[i];
    r.object_score_logits = out.object_score_logits[i];
    r.point_prompt = {points.coords.slice(0, i, i + 1), points.labels.slice(0, i, i + 1)};
    r.embeddings = {embeddings.sparse.slice(0, i, i + 1),
                    embeddings.dense.size(0) > 1 ? embeddings.dense.slice(0, i, i + 1) : embeddings.dense};
    r.decoder = out;
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace litseg::sam2
