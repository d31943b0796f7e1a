#include "litseg/sam2/prompt_encoder.h"
#include "litseg/sam2/precision.h"

#include <cmath>
#include <sstream>

#include "litseg/core/error.h"
#include "litseg/sam2/mlp.h"

namespace litseg::sam2 {
namespace {

constexpr double kTwoPi = 2.0 * M_PI;
constexpr int kNumPointEmbeddings = 4;  // negative, positive, box top-left, box bottom-right

std::string ShapeText(const torch::Tensor& t) {
  if (!t.defined()) return "nothing";
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

}  // namespace

// ---------------------------------------------------------------- PositionEmbeddingRandom

PositionEmbeddingRandomImpl::PositionEmbeddingRandomImpl(int64_t num_pos_feats, double scale) {
  if (num_pos_feats < 1) throw Error("random position embedding: num_pos_feats must be positive");
  // Overwritten by the checkpoint; random like the reference so an unloaded model still works.
  positional_encoding_gaussian_matrix =
      register_buffer("positional_encoding_gaussian_matrix", scale * torch::randn({2, num_pos_feats}));
}

torch::Tensor PositionEmbeddingRandomImpl::EncodeNormalized(const torch::Tensor& coords) const {
  // Same operation order as the reference (2c - 1, matmul, then the 2 pi scale).
  torch::Tensor c = coords * 2 - 1;
  c = torch::matmul(c, positional_encoding_gaussian_matrix);
  c = c * kTwoPi;
  return torch::cat({torch::sin(c), torch::cos(c)}, -1);
}

torch::Tensor PositionEmbeddingRandomImpl::forward(int64_t h, int64_t w) const {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(positional_encoding_gaussian_matrix.device());
  // Pixel centres: (i + 0.5) / size, computed as (cumsum(ones) - 0.5) / size like the reference.
  const torch::Tensor y = (torch::arange(1, h + 1, options) - 0.5) / static_cast<double>(h);
  const torch::Tensor x = (torch::arange(1, w + 1, options) - 0.5) / static_cast<double>(w);
  const torch::Tensor grid = torch::stack({x.view({1, w}).expand({h, w}), y.view({h, 1}).expand({h, w})}, -1);
  return EncodeNormalized(grid).permute({2, 0, 1});
}

torch::Tensor PositionEmbeddingRandomImpl::ForwardWithCoords(const torch::Tensor& coords, int64_t image_h,
                                                             int64_t image_w) const {
  const torch::Tensor x = coords.select(-1, 0) / static_cast<double>(image_w);
  const torch::Tensor y = coords.select(-1, 1) / static_cast<double>(image_h);
  return EncodeNormalized(torch::stack({x, y}, -1).to(torch::kFloat32));
}

// ---------------------------------------------------------------- point prompt helpers

PointPrompt MakePointPrompt(const std::vector<PromptPoint>& clicks, const std::optional<PromptBox>& box,
                            int image_width, int image_height, int model_image_size) {
  if (image_width <= 0 || image_height <= 0 || model_image_size <= 0)
    throw Error("point prompt: invalid image size " + std::to_string(image_width) + "x" +
                std::to_string(image_height) + " (model input " + std::to_string(model_image_size) + ")");
  if (clicks.empty() && !box) throw Error("point prompt: no clicks and no box");
  std::vector<float> coords;
  std::vector<int32_t> labels;
  // float32 arithmetic in the reference's order: x / W * S.
  const float w = static_cast<float>(image_width), h = static_cast<float>(image_height);
  const float s = static_cast<float>(model_image_size);
  auto add = [&](float x, float y, int label) {
    if (!std::isfinite(x) || !std::isfinite(y))
      throw Error("point prompt: coordinates must be finite numbers");
    coords.push_back(x / w * s);
    coords.push_back(y / h * s);
    labels.push_back(label);
  };
  if (box) {
    add(box->x0, box->y0, 2);
    add(box->x1, box->y1, 3);
  }
  for (const PromptPoint& click : clicks) {
    if (click.label != 0 && click.label != 1)
      throw Error("point prompt: click label " + std::to_string(click.label) +
                  " is neither 1 (positive) nor 0 (negative)");
    add(click.x, click.y, click.label);
  }
  const int64_t n = static_cast<int64_t>(labels.size());
  PointPrompt prompt;
  prompt.coords = torch::from_blob(coords.data(), {1, n, 2}, torch::kFloat32).clone();
  prompt.labels = torch::from_blob(labels.data(), {1, n}, torch::kInt32).clone();
  return prompt;
}

PointPrompt StackPointPrompts(const std::vector<PointPrompt>& prompts) {
  if (prompts.empty()) throw Error("point prompts: nothing to stack");
  std::vector<torch::Tensor> coords, labels;
  for (const PointPrompt& p : prompts) {
    if (!p.coords.defined() || p.coords.dim() != 3 || p.coords.size(2) != 2 || !p.labels.defined() ||
        p.labels.dim() != 2 || p.labels.size(1) != p.coords.size(1) || p.labels.size(0) != p.coords.size(0))
      throw Error("point prompts: malformed prompt (coords " + ShapeText(p.coords) + ", labels " +
                  ShapeText(p.labels) + ")");
    if (p.coords.size(1) != prompts.front().coords.size(1))
      throw Error("point prompts: objects predicted together need the same number of points (" +
                  std::to_string(prompts.front().coords.size(1)) + " vs " + std::to_string(p.coords.size(1)) + ")");
    coords.push_back(p.coords);
    labels.push_back(p.labels);
  }
  return {torch::cat(coords, 0), torch::cat(labels, 0)};
}

// ---------------------------------------------------------------- PromptEncoder

PromptEncoderImpl::PromptEncoderImpl(const Sam2Config& config)
    : embed_dim(config.d_model()),
      embedding_h(config.image_embedding_size()),
      embedding_w(config.image_embedding_size()),
      input_h(config.image_size),
      input_w(config.image_size),
      mask_input_h(4 * embedding_h),
      mask_input_w(4 * embedding_w) {
  const int64_t mask_in_chans = config.prompt_encoder.mask_in_chans;
  if (embed_dim < 2 || embed_dim % 2 != 0) throw Error("prompt encoder: d_model must be even");
  if (embedding_h < 1 || config.image_size % config.backbone_stride != 0)
    throw Error("prompt encoder: image_size " + std::to_string(config.image_size) +
                " is not a multiple of backbone_stride " + std::to_string(config.backbone_stride));
  if (mask_in_chans < 4 || mask_in_chans % 4 != 0)
    throw Error("prompt encoder: mask_in_chans must be a positive multiple of 4");

  pe_layer = register_module("pe_layer", PositionEmbeddingRandom(embed_dim / 2));
  point_embeddings = register_module("point_embeddings", torch::nn::ModuleList());
  for (int i = 0; i < kNumPointEmbeddings; ++i) point_embeddings->push_back(torch::nn::Embedding(1, embed_dim));
  not_a_point_embed = register_module("not_a_point_embed", torch::nn::Embedding(1, embed_dim));

  const double eps = config.prompt_encoder.layer_norm_eps;
  mask_downscaling = register_module(
      "mask_downscaling",
      torch::nn::Sequential(
          torch::nn::Conv2d(torch::nn::Conv2dOptions(1, mask_in_chans / 4, 2).stride(2)),
          LayerNorm2d(mask_in_chans / 4, eps), torch::nn::GELU(),
          torch::nn::Conv2d(torch::nn::Conv2dOptions(mask_in_chans / 4, mask_in_chans, 2).stride(2)),
          LayerNorm2d(mask_in_chans, eps), torch::nn::GELU(),
          torch::nn::Conv2d(torch::nn::Conv2dOptions(mask_in_chans, embed_dim, 1))));
  no_mask_embed = register_module("no_mask_embed", torch::nn::Embedding(1, embed_dim));
}

const torch::Tensor& PromptEncoderImpl::PointEmbedding(int label) const {
  return point_embeddings->ptr<torch::nn::EmbeddingImpl>(label)->weight;
}

torch::Tensor PromptEncoderImpl::EmbedPoints(const torch::Tensor& points_in, const torch::Tensor& labels_in,
                                             bool pad) const {
  torch::Tensor points = points_in.to(torch::kFloat32) + 0.5;  // centre of the pixel
  torch::Tensor labels = labels_in;
  if (pad) {
    points = torch::cat({points, torch::zeros({points.size(0), 1, 2}, points.options())}, 1);
    labels = torch::cat({labels, torch::full({labels.size(0), 1}, -1, labels.options())}, 1);
  }
  torch::Tensor embedding = pe_layer->ForwardWithCoords(points, input_h, input_w);
  // Padding points carry no position, only the learned not-a-point embedding.
  embedding = torch::where(labels.eq(-1).unsqueeze(-1), torch::zeros_like(embedding) + not_a_point_embed->weight,
                           embedding);
  for (int label = 0; label < kNumPointEmbeddings; ++label)
    embedding = torch::where(labels.eq(label).unsqueeze(-1), embedding + PointEmbedding(label), embedding);
  return embedding;
}

torch::Tensor PromptEncoderImpl::EmbedBoxes(const torch::Tensor& boxes) const {
  const torch::Tensor corners = (boxes.to(torch::kFloat32) + 0.5).reshape({-1, 2, 2});
  const torch::Tensor embedding = pe_layer->ForwardWithCoords(corners, input_h, input_w);
  return torch::stack({embedding.select(1, 0) + PointEmbedding(2).squeeze(0),
                       embedding.select(1, 1) + PointEmbedding(3).squeeze(0)},
                      1);
}

PromptEmbeddings PromptEncoderImpl::forward(const torch::Tensor& points, const torch::Tensor& labels,
                                            const torch::Tensor& boxes, const torch::Tensor& masks) {
  const bool has_points = points.defined();
  if (has_points != labels.defined()) throw Error("prompt encoder: points and labels must be given together");
  if (has_points) {
    if (points.dim() != 3 || points.size(2) != 2 || labels.dim() != 2 || labels.size(0) != points.size(0) ||
        labels.size(1) != points.size(1))
      throw Error("prompt encoder: expected points [B, N, 2] and labels [B, N], got " + ShapeText(points) + " and " +
                  ShapeText(labels));
    if (!torch::isIntegralType(labels.scalar_type(), /*includeBool=*/false))
      throw Error("prompt encoder: point labels must be integers");
    if (labels.numel() > 0 && (labels.lt(-1).any().item<bool>() || labels.gt(3).any().item<bool>()))
      throw Error("prompt encoder: point labels must be -1 (padding), 0, 1 (clicks), 2 or 3 (box corners)");
  }
  if (boxes.defined() && (boxes.dim() != 2 || boxes.size(1) != 4))
    throw Error("prompt encoder: expected boxes [B, 4], got " + ShapeText(boxes));
  if (masks.defined() && (masks.dim() != 4 || masks.size(1) != 1 || masks.size(2) != mask_input_h ||
                          masks.size(3) != mask_input_w))
    throw Error("prompt encoder: expected a mask input [B, 1, " + std::to_string(mask_input_h) + ", " +
                std::to_string(mask_input_w) + "], got " + ShapeText(masks));

  const int64_t batch = has_points ? points.size(0) : boxes.defined() ? boxes.size(0) : masks.defined() ? masks.size(0) : 1;
  if (boxes.defined() && boxes.size(0) != batch)
    throw Error("prompt encoder: " + std::to_string(boxes.size(0)) + " boxes for " + std::to_string(batch) +
                " point sets");
  if (masks.defined() && masks.size(0) != batch)
    throw Error("prompt encoder: " + std::to_string(masks.size(0)) + " mask inputs for " + std::to_string(batch) +
                " prompts");

  const torch::Tensor& device_ref = no_mask_embed->weight;
  std::vector<torch::Tensor> sparse_parts;
  if (has_points) sparse_parts.push_back(EmbedPoints(points, labels, /*pad=*/!boxes.defined()));
  if (boxes.defined()) sparse_parts.push_back(EmbedBoxes(boxes));

  PromptEmbeddings out;
  out.sparse = sparse_parts.empty() ? torch::empty({batch, 0, embed_dim}, device_ref.options())
               : sparse_parts.size() == 1 ? sparse_parts.front()
                                          : torch::cat(sparse_parts, 1);
  if (masks.defined()) {
    out.dense = mask_downscaling->forward(masks.to(torch::kFloat32));
  } else {
    out.dense = no_mask_embed->weight.reshape({1, -1, 1, 1}).expand({batch, -1, embedding_h, embedding_w});
  }
  return out;
}

torch::Tensor PromptEncoderImpl::GetDensePe() const {
  // Every decoder call needs it (each click, each object on each tracked frame), and the
  // sin/cos grid costs about 1 ms at 64x64x256.
  // Under CUDA autocast the grid comes out in reduced precision: not cached.
  if (InReducedPrecision()) return pe_layer->forward(embedding_h, embedding_w).unsqueeze(0);
  const torch::Tensor& gaussian = pe_layer->positional_encoding_gaussian_matrix;
  std::lock_guard<std::mutex> lock(dense_pe_mutex_);
  if (!dense_pe_.defined() || dense_pe_source_ != gaussian.data_ptr() || dense_pe_version_ != gaussian._version()) {
    torch::NoGradGuard no_grad;
    dense_pe_ = pe_layer->forward(embedding_h, embedding_w).unsqueeze(0);
    dense_pe_source_ = gaussian.data_ptr();
    dense_pe_version_ = gaussian._version();
  }
  return dense_pe_;
}

}  // namespace litseg::sam2
