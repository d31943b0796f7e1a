// Input preprocessing of the official SAM 2 predictors.
//
//   // SAM2ImagePredictor.set_image: any size -> [1, 3, S, S]
//   torch::Tensor x = litseg::sam2::PreprocessImage(rgb_u8_hwc, config.image_size);
//   // SAM2VideoPredictor frames: the frame was already resized to S x S (PIL bicubic in the
//   // official loader); only normalise.
//   torch::Tensor f = litseg::sam2::NormalizeResizedFrame(resized_u8_hwc);
//
// Image path (sam2/utils/transforms.py): uint8 HWC RGB -> float32 / 255 -> bilinear resize to
// S x S (align_corners=False, antialias=True, aspect ratio NOT kept) -> (x - mean) / std with
// the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
// Video path (sam2/utils/misc.py): float32(u8 / 255) -> (x - mean) / std.
// Inputs are uint8 tensors [H, W, 3] (RGB, any strides) or raw pixel rows; a cv::Mat can be
// wrapped with torch::from_blob(mat.data, {rows, cols, 3}, {mat.step, 3, 1}, torch::kUInt8).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace litseg::sam2 {

// rgb: uint8 [H, W, 3]. Returns float32 [1, 3, image_size, image_size] on rgb's device.
torch::Tensor PreprocessImage(const torch::Tensor& rgb, int image_size);
// Raw interleaved RGB rows (row_stride_bytes >= 3 * width); the data is only read.
torch::Tensor PreprocessImage(const uint8_t* rgb, int height, int width, int64_t row_stride_bytes, int image_size);

// rgb: uint8 [S, S, 3] already resized. Returns float32 [1, 3, S, S].
torch::Tensor NormalizeResizedFrame(const torch::Tensor& rgb);

}  // namespace litseg::sam2
