#include <random>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

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

Mask RandomBlobs(std::mt19937& rng, int w, int h) {
  Mask m(w, h);
  cv::Mat view = AsMat(m);
  for (int i = 0, n = 1 + int(rng() % 8); i < n; ++i) {
    const cv::Point c(int(rng() % w), int(rng() % h));
    const int r = 1 + int(rng() % 12);
    if (rng() % 2)
      cv::circle(view, c, r, cv::Scalar(1), rng() % 3 ? 1 : -1);  // rings make holes
    else
      view.at<uint8_t>(c) = 1;  // single-pixel islands
  }
  return m;
}

TEST(MaskOps, AreaAndBoxAgreeWithOpenCvOnRandomMasks) {
  std::mt19937 rng(21);
  for (int i = 0; i < 100; ++i) {
    const Mask m = RandomBlobs(rng, 1 + int(rng() % 80), 1 + int(rng() % 60));
    EXPECT_EQ(Area(m), uint64_t(cv::countNonZero(AsMat(m))));
    std::vector<cv::Point> points;
    cv::findNonZero(AsMat(m), points);
    const Box box = BoundingBox(m);
    if (points.empty()) {
      EXPECT_TRUE(box.empty());
      continue;
    }
    const cv::Rect r = cv::boundingRect(points);
    EXPECT_EQ(box, (Box{r.x, r.y, r.x + r.width - 1, r.y + r.height - 1}));
    EXPECT_EQ(box.width(), r.width);
    // Components partition the foreground, and their boxes lie inside the mask's box.
    cv::Mat labels;
    uint64_t total = 0;
    const auto components = ConnectedComponents(m, 8, &labels);
    for (size_t c = 0; c < components.size(); ++c) {
      total += components[c].area;
      EXPECT_EQ(uint64_t(cv::countNonZero(labels == int(c + 1))), components[c].area);
      EXPECT_GE(components[c].box.x0, box.x0);
      EXPECT_LE(components[c].box.y1, box.y1);
    }
    EXPECT_EQ(total, Area(m));
  }
}

TEST(MaskOps, FillHolesAndIslandPropertiesOnRandomMasks) {
  std::mt19937 rng(8);
  for (int i = 0; i < 100; ++i) {
    const Mask m = RandomBlobs(rng, 8 + int(rng() % 60), 8 + int(rng() % 50));
    const Mask filled = FillHoles(m);
    // A superset of the mask in which every background region reaches the border.
    EXPECT_EQ(IoU(filled, m), Area(m) == 0 && Area(filled) == 0 ? 1.0 : double(Area(m)) / double(Area(filled)));
    Mask background(m.width(), m.height());
    for (size_t p = 0; p < m.pixel_count(); ++p) background.data()[p] = !filled.data()[p];
    for (const Component& c : ConnectedComponents(background, 4)) {
      const Box& b = c.box;
      EXPECT_TRUE(b.x0 == 0 || b.y0 == 0 || b.x1 == m.width() - 1 || b.y1 == m.height() - 1);
    }
    EXPECT_EQ(FillHoles(filled), filled);
    // With a size limit only small holes close: never more than without a limit.
    const Mask small_filled = FillHoles(m, 5);
    EXPECT_LE(Area(small_filled), Area(filled));
    EXPECT_GE(Area(small_filled), Area(m));

    const uint64_t min_area = 1 + rng() % 30;
    const Mask kept = RemoveSmallIslands(m, min_area);
    for (const Component& c : ConnectedComponents(kept, 8)) EXPECT_GE(c.area, min_area);
    uint64_t large = 0;
    for (const Component& c : ConnectedComponents(m, 8))
      if (c.area >= min_area) large += c.area;
    EXPECT_EQ(Area(kept), large);
  }
}

TEST(MaskOps, MatConversionsAndResizeEdgeCases) {
  // A non-contiguous view (ROI) of an 8-bit image, with values other than 1.
  cv::Mat big(10, 10, CV_8UC1, cv::Scalar(0));
  big.at<uint8_t>(3, 4) = 200;
  const Mask roi = MaskFromMat(big(cv::Rect(2, 2, 5, 4)));
  EXPECT_EQ(roi.width(), 5);
  EXPECT_EQ(roi.height(), 4);
  EXPECT_EQ(roi(2, 1), 1);
  EXPECT_EQ(Area(roi), 1u);
  EXPECT_THROW(MaskFromMat(cv::Mat(3, 3, CV_32F)), Error);
  EXPECT_THROW(MaskFromMat(cv::Mat(3, 3, CV_8UC3)), Error);
  // AsMat is a view: writes go to the mask.
  Mask m(4, 3);
  AsMat(m).at<uint8_t>(2, 1) = 1;
  EXPECT_EQ(m(1, 2), 1);
  // Downscaling by 2 keeps the top-left pixel of each 2x2 block (OpenCV INTER_NEAREST).
  Mask checker(4, 4);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) checker(x, y) = (x + y) % 2 == 0;
  EXPECT_EQ(ResizeNearest(checker, 2, 2), Mask(2, 2, 1));
  EXPECT_EQ(ResizeNearest(Mask(), 3, 2), Mask(3, 2));
  EXPECT_THROW(ResizeNearest(checker, 0, 2), Error);
  EXPECT_DOUBLE_EQ(IoU(Mask(), Mask()), 1.0);
  EXPECT_TRUE(ConnectedComponents(Mask(), 4).empty());
  EXPECT_THROW(ConnectedComponents(checker, 6), Error);
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
