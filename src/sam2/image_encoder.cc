#include "litseg/sam2/image_encoder.h"

#include <algorithm>
#include <sstream>

#include "litseg/core/error.h"
#include "litseg/sam2/precision.h"

namespace litseg::sam2 {
namespace {

namespace F = torch::nn::functional;

std::string ListText(const std::vector<int>& list) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < list.size(); ++i) out << (i ? ", " : "") << list[i];
  out << "]";
  return out.str();
}

}  // namespace

FpnNeckImpl::FpnNeckImpl(const FpnNeckConfig& c) : config(c) {
  position_encoding = register_module(
      "position_encoding", PositionEmbeddingSine(c.position_encoding_num_pos_feats, c.position_encoding_temperature));
  convs = register_module("convs", torch::nn::ModuleList());
  for (int dim : c.backbone_channel_list) {
    torch::nn::Sequential level;
    level->push_back("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, c.d_model, c.kernel_size)
                                                   .stride(c.stride)
                                                   .padding(c.padding)));
    convs->push_back(level);
  }
}

// The lateral projection. The trunk hands over NCHW views of channels-last (BHWC) memory;
// for the usual 1x1 convolution the output is computed per image as one matrix product
// W [d, C] x X^T [C, HW] straight into contiguous NCHW, without unfolding or copying X.
torch::Tensor FpnNeckImpl::Lateral(const torch::Tensor& x, const torch::nn::Conv2dImpl& conv) const {
  const bool pointwise = config.kernel_size == 1 && config.stride == 1 && config.padding == 0;
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  if (!pointwise || torch::GradMode::is_enabled() || InReducedPrecision() || x.stride(1) != 1 || x.stride(3) != c || x.stride(2) != w * c) {
    return F::conv2d(x, conv.weight, F::Conv2dFuncOptions().bias(conv.bias).stride(config.stride).padding(config.padding));
  }
  const int64_t d = conv.weight.size(0);
  const torch::Tensor weight = conv.weight.view({d, c});
  const torch::Tensor bias = conv.bias.view({d, 1});
  torch::Tensor out = torch::empty({b, d, h, w}, x.options());
  for (int64_t i = 0; i < b; ++i) {
    torch::Tensor out_i = out[i].view({d, h * w});
    const torch::Tensor tokens = x[i].permute({1, 2, 0}).reshape({h * w, c});  // a view: BHWC memory
    at::addmm_out(out_i, bias, weight, tokens.t());
  }
  return out;
}

std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> FpnNeckImpl::forward(
    const std::vector<torch::Tensor>& xs) {
  const int64_t levels = static_cast<int64_t>(convs->size());
  if (static_cast<int64_t>(xs.size()) != levels)
    throw Error("FpnNeck: expected " + std::to_string(levels) + " trunk levels, got " + std::to_string(xs.size()));
  std::vector<torch::Tensor> out(levels), pos(levels);
  torch::Tensor prev;
  const int64_t n = levels - 1;
  // Top-down: from the lowest resolution (deepest) level to the highest.
  for (int64_t i = n; i >= 0; --i) {
    // convs are ordered deepest first, like backbone_channel_list.
    const torch::Tensor lateral = Lateral(xs[i], *convs[n - i]->as<torch::nn::Sequential>()->ptr(0)->as<torch::nn::Conv2d>());
    const bool top_down = std::find(config.fpn_top_down_levels.begin(), config.fpn_top_down_levels.end(), i) !=
                          config.fpn_top_down_levels.end();
    if (top_down && prev.defined()) {
      auto options = F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0});
      if (config.fpn_interp_model == "nearest") {
        options.mode(torch::kNearest);
      } else if (config.fpn_interp_model == "bilinear") {
        options.mode(torch::kBilinear).align_corners(false);
      } else {
        options.mode(torch::kBicubic).align_corners(false);
      }
      torch::Tensor top = F::interpolate(prev, options);
      prev = lateral + top;
      if (config.fuse_type == "avg") prev = prev / 2;
    } else {
      prev = lateral;
    }
    // The conv of a channels-last trunk output is channels-last; callers get plain NCHW.
    out[i] = prev.contiguous();
    prev = out[i];
    pos[i] = position_encoding->forward(out[i]);
  }
  return {out, pos};
}

ImageEncoderImpl::ImageEncoderImpl(const ImageEncoderConfig& c) : config(c) {
  trunk = register_module("trunk", Hiera(c.trunk));
  neck = register_module("neck", FpnNeck(c.neck));
  if (trunk->layout.channel_list != c.neck.backbone_channel_list)
    throw Error("image encoder: trunk channels " + ListText(trunk->layout.channel_list) +
                " do not match neck.backbone_channel_list " + ListText(c.neck.backbone_channel_list));
  if (c.scalp < 0 || c.scalp >= static_cast<int>(c.neck.backbone_channel_list.size()))
    throw Error("image encoder: scalp " + std::to_string(c.scalp) + " would drop every level");
}

ImageEncoderOutput ImageEncoderImpl::forward(const torch::Tensor& image, const TraceFn& trace) {
  auto [features, pos] = neck->forward(trunk->forward(image, trace));
  if (trace) {
    for (size_t i = 0; i < features.size(); ++i) {
      trace("neck.fpn" + std::to_string(i), features[i]);
      trace("neck.pos" + std::to_string(i), pos[i]);
    }
  }
  features.resize(features.size() - config.scalp);
  pos.resize(pos.size() - config.scalp);
  ImageEncoderOutput out;
  out.vision_features = features.back();
  out.backbone_fpn = std::move(features);
  out.vision_pos_enc = std::move(pos);
  return out;
}

}  // namespace litseg::sam2
