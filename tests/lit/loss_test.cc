// The fused focal + dice loss against the composite reference, targets and IoU helpers.
#include <gtest/gtest.h>

#include "litseg/core/error.h"
#include "litseg/lit/loss.h"

namespace litseg::lit {
namespace {

void CompareWithReference(torch::ScalarType dtype, double alpha, double gamma, double tol) {
  torch::manual_seed(11);
  const torch::Tensor base = (torch::randn({2, 1, 64, 48}) * 6).to(dtype);
  torch::Tensor target = torch::rand({2, 1, 64, 48}).gt(0.7).to(dtype);
  target[1].zero_();  // an empty target too

  torch::Tensor x1 = base.clone().set_requires_grad(true);
  const torch::Tensor fused = FusedFocalDiceLoss(x1, target, alpha, gamma);
  (20 * fused[0] + fused[1]).backward();

  torch::Tensor x2 = base.clone().set_requires_grad(true);
  const torch::Tensor focal = SigmoidFocalLoss(x2, target, alpha, gamma).mean();
  const torch::Tensor dice = DiceLoss(x2, target).mean();
  (20 * focal + dice).backward();

  EXPECT_NEAR(fused[0].item<double>(), focal.item<double>(), tol * std::abs(focal.item<double>()));
  EXPECT_NEAR(fused[1].item<double>(), dice.item<double>(), tol * std::abs(dice.item<double>()));
  const double scale = x2.grad().abs().max().item<double>();
  EXPECT_LT((x1.grad() - x2.grad()).abs().max().item<double>(), tol * scale);
}

TEST(LitLoss, FusedEqualsCompositeInFloat64) {
  CompareWithReference(torch::kFloat64, 0.25, 2.0, 1e-10);
  CompareWithReference(torch::kFloat64, -1.0, 3.0, 1e-10);  // no alpha, another gamma
}

TEST(LitLoss, FusedEqualsCompositeInFloat32) { CompareWithReference(torch::kFloat32, 0.25, 2.0, 1e-4); }

TEST(LitLoss, SegmentationLossTermsAndErrors) {
  const torch::Tensor logits = torch::full({1, 1, 8, 8}, -30.0);
  torch::Tensor target = torch::zeros({1, 1, 8, 8});
  LossTerms l = SegmentationLoss(logits, target, {}, torch::full({1}, -5.0));
  EXPECT_LT(l.total.item<double>(), 0.01);  // all background: nearly free
  target[0][0][2][2] = 1;
  // The default is the method's loss: 20 focal + 1 dice, the object score plays no part.
  l = SegmentationLoss(logits, target, {}, torch::full({1}, -5.0));
  EXPECT_EQ(l.object_score.item<double>(), 0.0);
  EXPECT_NEAR(l.total.item<double>(), 20 * l.focal.item<double>() + l.dice.item<double>(), 1e-6);
  EXPECT_NEAR(l.dice.item<double>(), 0.5, 1e-6);  // smoothed dice, one missed pixel: 1 - (0 + 1) / (1 + 1)
  // Optional object-score term: BCE(-5, present) ~ 5.
  LossWeights with_class;
  with_class.object_score = 1;
  l = SegmentationLoss(logits, target, with_class, torch::full({1}, -5.0));
  EXPECT_GT(l.object_score.item<double>(), 4.9);
  EXPECT_NEAR(l.total.item<double>(),
              20 * l.focal.item<double>() + l.dice.item<double>() + l.object_score.item<double>(), 1e-6);
  EXPECT_THROW(SegmentationLoss(logits, torch::zeros({1, 1, 4, 4}), {}), Error);
  EXPECT_THROW(SegmentationLoss(torch::zeros({8, 8}), torch::zeros({8, 8}), {}), Error);
}

TEST(LitLoss, TargetIsAntialiasedBilinearThenHalf) {
  Mask m(100, 50);
  for (int y = 10; y < 40; ++y)
    for (int x = 20; x < 80; ++x) m(x, y) = 1;
  const torch::Tensor t = PrepareTarget(m, 64);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
  // Squash-resized: x 20..80 of 100 -> ~12.8..51.2; y 10..40 of 50 -> ~12.8..51.2.
  EXPECT_EQ(t[0][0][32][32].item<float>(), 1.f);
  EXPECT_EQ(t[0][0][5][5].item<float>(), 0.f);
  const double area = t.sum().item<double>();
  EXPECT_NEAR(area, 38.4 * 38.4, 80);
  EXPECT_THROW(PrepareTarget(Mask(), 64), Error);
  // IoU helper and the mask at video size.
  EXPECT_DOUBLE_EQ(MaskIoU(t * 20 - 10, t).item<double>(), 1.0);
  const Mask back = MaskFromLogits(t * 20 - 10, 100, 50);
  EXPECT_EQ(back.width(), 100);
  EXPECT_EQ(back(50, 25), 1);
  EXPECT_EQ(back(2, 2), 0);
}

}  // namespace
}  // namespace litseg::lit
