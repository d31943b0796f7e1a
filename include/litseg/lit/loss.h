// Training loss and targets of live interactive training (the SAM 2 training losses, without
// the IoU and object-score terms: those heads stay frozen).
//
//   torch::Tensor target = litseg::lit::PrepareTarget(corrected_mask, /*image_size=*/1024);
//   litseg::lit::LossTerms l = litseg::lit::SegmentationLoss(logits_1024, target, {});
//   l.total.backward();   // 20 * focal + 1 * dice (+ 1 * object score BCE), batch mean
//
// Conventions: logits and targets are [B, 1, S, S] float (targets in {0, 1}). The focal
// loss is averaged over the pixels of each sample, the dice loss uses +1 smoothing in
// numerator and denominator, both are averaged over the batch.
// Thread-safety: pure functions.
#pragma once

#include <torch/torch.h>

#include "litseg/core/mask.h"

namespace litseg::lit {

// Defaults: the method's loss (20 x focal(alpha 0.25, gamma 2) + 1 x dice).
struct LossWeights {
  double focal = 20.0;
  double dice = 1.0;
  double focal_alpha = 0.25;  // weight of foreground pixels (background: 1 - alpha); < 0 = none
  double focal_gamma = 2.0;
  // Optional (0 = off, the method's loss: 20 x focal + 1 x dice alone): binary cross-entropy of
  // the object score (target: the corrected mask is not empty), SAM 2 training's loss_class.
  // Why one may want it: under the tracker's hard no-object gating, where the object score is
  // <= 0 the gated logits are a constant and carry no gradient, so without this term an adapter
  // cannot learn from a correction of a frame where the object was lost, and a step that pushes
  // the score below 0 is never undone by the mask terms.
  double object_score = 0.0;
};

struct LossTerms {
  torch::Tensor total;  // scalar: focal_weight * focal + dice_weight * dice
  torch::Tensor focal;  // scalar, batch mean
  torch::Tensor dice;   // scalar, batch mean
  torch::Tensor object_score;  // scalar, batch mean (0 when not computed)
};

// Batch means {focal, dice} [2] of logits [B, 1, H, W] against targets in [0, 1], computed
// in one pass with a hand-written gradient (two passes over the pixels instead of a dozen
// element-wise kernels; the loss at 1024 x 1024 dominated a training step otherwise).
// Equal to the composite functions below (tested); sums are taken over fixed chunks in a
// fixed order, so the result does not depend on the thread count. float32 or float64.
torch::Tensor FusedFocalDiceLoss(const torch::Tensor& logits, const torch::Tensor& target, double alpha, double gamma);

// Per-sample sigmoid focal loss [B] (mean over pixels); the composite reference.
torch::Tensor SigmoidFocalLoss(const torch::Tensor& logits, const torch::Tensor& target, double alpha, double gamma);
// Per-sample dice loss [B]: 1 - (2 sum(p t) + 1) / (sum(p) + sum(t) + 1), p = sigmoid(logits).
torch::Tensor DiceLoss(const torch::Tensor& logits, const torch::Tensor& target);

// Throws litseg::Error when the shapes differ or are not [B, 1, H, W]. object_score_logits
// [B] adds the object-score term (weights.object_score); undefined = not computed.
LossTerms SegmentationLoss(const torch::Tensor& logits, const torch::Tensor& target, const LossWeights& weights,
                           const torch::Tensor& object_score_logits = {});

// The training target of a corrected mask: resized to image_size x image_size with
// antialiased bilinear interpolation (align_corners = false), then >= 0.5.
// Returns float32 [1, 1, S, S] in {0, 1}. Throws litseg::Error on an empty mask raster.
torch::Tensor PrepareTarget(const Mask& mask, int image_size);
// The same from a float or uint8 tensor [H, W] (non-zero = foreground).
torch::Tensor PrepareTarget(const torch::Tensor& mask_hw, int image_size);

// IoU per sample [B] of (logits > 0) against (target > 0.5); 1 when both are empty.
torch::Tensor MaskIoU(const torch::Tensor& logits, const torch::Tensor& target);

// Bilinear (align_corners = false) upsampling of [B, 1, h, w] logits to [B, 1, size, size].
torch::Tensor UpsampleLogits(const torch::Tensor& logits, int size);

// A binary Mask of width x height from low-resolution logits [1, 1, h, w] or [h, w]:
// bilinear upsampling to the video size, then > 0 (the predictors' post-processing).
Mask MaskFromLogits(const torch::Tensor& logits, int width, int height);

}  // namespace litseg::lit
