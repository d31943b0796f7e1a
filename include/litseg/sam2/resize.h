// Bilinear resizing of mask logits, the way SAM 2 post-processes them.
//
//   torch::Tensor full = litseg::sam2::ResizeBilinear(low_res_logits, 1024, 1024);  // [B, C, 1024, 1024]
//
// Same result as torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear",
// align_corners=False) (no antialias), differentiable in x. Why our own: LibTorch 1.13's CPU
// kernel runs on one thread at ~8 ms forward and ~7 ms backward for 256x256 -> 1024x1024, the
// largest single cost of a live-training step and of every evaluation at image size. This one
// is separable (a row pass, then a column pass), multithreaded, and deterministic for any thread
// count. float32/float64 CPU tensors take it; other devices and types go to interpolate.
//
// Thread-safety: pure function.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace litseg::sam2 {

// x: [B, C, h, w] (or [C, h, w], [h, w]). Returns [..., height, width] of x's type and device.
torch::Tensor ResizeBilinear(const torch::Tensor& x, int64_t height, int64_t width);

}  // namespace litseg::sam2
