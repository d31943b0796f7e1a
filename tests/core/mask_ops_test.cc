#include <gtest/gtest.h>

#include "litseg/core/error.h"
#include "litseg/core/mask_ops.h"

namespace litseg {
namespace {

Mask Rect(int w, int h, int x0, int y0, int x1, int y1) {
  Mask m(w, h);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) m(x, y) = 1;
  return m;
}

TEST(MaskOps, AreaIoUAndBox) {
  Mask a = Rect(10, 8, 0, 0, 3, 3);  // 16 px
  Mask b = Rect(10, 8, 2, 2, 5, 5);  // 16 px, 4 shared
  EXPECT_EQ(Area(a), 16u);
  EXPECT_DOUBLE_EQ(IoU(a, b), 4.0 / 28.0);
  EXPECT_DOUBLE_EQ(IoU(a, a), 1.0);
  EXPECT_DOUBLE_EQ(IoU(Mask(10, 8), Mask(10, 8)), 1.0);
  EXPECT_DOUBLE_EQ(IoU(a, Mask(10, 8)), 0.0);
  EXPECT_THROW(IoU(a, Mask(8, 10)), Error);
  EXPECT_EQ(BoundingBox(b), (Box{2, 2, 5, 5}));
  EXPECT_TRUE(BoundingBox(Mask(4, 4)).empty());
}

TEST(MaskOps, ConnectedComponentsRespectConnectivity) {
  Mask m(6, 6);
  m(1, 1) = m(2, 2) = 1;  // diagonal neighbours
  m(5, 5) = 1;
  EXPECT_EQ(ConnectedComponents(m, 8).size(), 2u);
  EXPECT_EQ(ConnectedComponents(m, 4).size(), 3u);
  auto comps = ConnectedComponents(m, 8);
  uint64_t total = 0;
  for (auto& c : comps) total += c.area;
  EXPECT_EQ(total, 3u);
}

TEST(MaskOps, FillHolesOnlyFillsEnclosedBackground) {
  Mask ring = Rect(9, 9, 1, 1, 7, 7);
  for (int y = 3; y <= 5; ++y)
    for (int x = 3; x <= 5; ++x) ring(x, y) = 0;  // 9-pixel hole
  EXPECT_EQ(FillHoles(ring), Rect(9, 9, 1, 1, 7, 7));
  EXPECT_EQ(FillHoles(ring, 8), ring);  // hole larger than the limit stays
  // A notch open to the border is not a hole.
  Mask notch = Rect(5, 5, 0, 0, 4, 4);
  notch(0, 2) = 0;
  EXPECT_EQ(FillHoles(notch), notch);
}

TEST(MaskOps, RemoveSmallIslands) {
  Mask m = Rect(10, 10, 0, 0, 4, 4);
  m(8, 8) = 1;
  Mask cleaned = RemoveSmallIslands(m, 2);
  EXPECT_EQ(cleaned(8, 8), 0);
  EXPECT_EQ(Area(cleaned), 25u);
  EXPECT_EQ(RemoveSmallIslands(m, 0), m);
}

TEST(MaskOps, ResizeNearestAndMatViews) {
  Mask m = Rect(4, 4, 0, 0, 1, 1);
  Mask big = ResizeNearest(m, 8, 8);
  EXPECT_EQ(Area(big), 16u);
  EXPECT_EQ(big(3, 3), 1);
  EXPECT_EQ(big(4, 4), 0);
  cv::Mat view = AsMat(m);
  EXPECT_EQ(view.at<uint8_t>(1, 1), 1);
  EXPECT_EQ(MaskFromMat(view * 255), m);
}

TEST(LabelMap, ObjectsForegroundAndVoid) {
  LabelMap labels(4, 2);
  labels(0, 0) = 1;
  labels(1, 0) = 2;
  labels(2, 0) = 255;
  EXPECT_EQ(labels.ObjectIds(), (std::vector<uint8_t>{1, 2}));
  EXPECT_EQ(Area(labels.ForegroundMask()), 2u);
  EXPECT_EQ(Area(labels.VoidMask()), 1u);
  labels.Paint(labels.ObjectMask(1), 7);
  EXPECT_EQ(labels(0, 0), 7);
}

}  // namespace
}  // namespace litseg
