#include "litseg/sam2/preprocess.h"

#include <sstream>

#include "litseg/core/error.h"

namespace litseg::sam2 {
namespace {

namespace F = torch::nn::functional;

void CheckRgb(const torch::Tensor& rgb, const char* what) {
  if (rgb.dim() != 3 || rgb.size(2) != 3 || rgb.scalar_type() != torch::kUInt8 || rgb.size(0) < 1 ||
      rgb.size(1) < 1) {
    std::ostringstream msg;
    msg << what << ": expected an RGB image as uint8 [H, W, 3], got " << rgb.scalar_type() << " " << rgb.sizes();
    throw Error(msg.str());
  }
}

// (x - mean) / std per channel of a float32 [1, 3, H, W] tensor, in place, in float32
// (a division, like torchvision's Normalize, not a multiplication by 1/std).
torch::Tensor Normalize(torch::Tensor x) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
  const torch::Tensor mean = torch::tensor({0.485f, 0.456f, 0.406f}, options).view({1, 3, 1, 1});
  const torch::Tensor std = torch::tensor({0.229f, 0.224f, 0.225f}, options).view({1, 3, 1, 1});
  return x.sub_(mean).div_(std);
}

// uint8 HWC -> float32 [1, 3, H, W] / 255.
torch::Tensor ToUnitFloat(const torch::Tensor& rgb) {
  return rgb.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32).div_(255.0).contiguous();
}

}  // namespace

torch::Tensor PreprocessImage(const torch::Tensor& rgb, int image_size) {
  CheckRgb(rgb, "PreprocessImage");
  if (image_size <= 0) throw Error("PreprocessImage: image size must be positive");
  torch::NoGradGuard no_grad;
  torch::Tensor x = ToUnitFloat(rgb);
  x = F::interpolate(x, F::InterpolateFuncOptions()
                            .size(std::vector<int64_t>{image_size, image_size})
                            .mode(torch::kBilinear)
                            .align_corners(false)
                            .antialias(true));
  return Normalize(x);
}

torch::Tensor PreprocessImage(const uint8_t* rgb, int height, int width, int64_t row_stride_bytes, int image_size) {
  if (!rgb || height <= 0 || width <= 0 || row_stride_bytes < 3 * static_cast<int64_t>(width))
    throw Error("PreprocessImage: invalid pixel buffer");
  // from_blob does not copy; the first operation of PreprocessImage does.
  const torch::Tensor view = torch::from_blob(const_cast<uint8_t*>(rgb), {height, width, 3},
                                              {row_stride_bytes, 3, 1}, torch::kUInt8);
  return PreprocessImage(view, image_size);
}

torch::Tensor NormalizeResizedFrame(const torch::Tensor& rgb) {
  CheckRgb(rgb, "NormalizeResizedFrame");
  if (rgb.size(0) != rgb.size(1))
    throw Error("NormalizeResizedFrame: the frame must already be resized to a square S x S image");
  torch::NoGradGuard no_grad;
  return Normalize(ToUnitFloat(rgb));
}

}  // namespace litseg::sam2
