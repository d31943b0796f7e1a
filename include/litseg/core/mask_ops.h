// Operations on binary masks (mask.h): overlap, geometry, and clean-up with OpenCV.
//
//   double iou = litseg::IoU(prediction, truth);
//   litseg::Box box = litseg::BoundingBox(mask);        // empty() when nothing is set
//   litseg::Mask clean = litseg::RemoveSmallIslands(litseg::FillHoles(mask, 64), 16);
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>

#include "litseg/core/mask.h"

namespace litseg {

// Inclusive pixel bounds; empty() when the mask has no foreground.
struct Box {
  int x0 = 0, y0 = 0, x1 = -1, y1 = -1;
  bool empty() const { return x1 < x0 || y1 < y0; }
  int width() const { return empty() ? 0 : x1 - x0 + 1; }
  int height() const { return empty() ? 0 : y1 - y0 + 1; }
  bool operator==(const Box& o) const { return x0 == o.x0 && y0 == o.y0 && x1 == o.x1 && y1 == o.y1; }
};

uint64_t Area(const Mask& mask);
// Intersection over union; two empty masks have IoU 1. Sizes must match (litseg::Error).
double IoU(const Mask& a, const Mask& b);
Box BoundingBox(const Mask& mask);

// A cv::Mat header over the mask's pixels (CV_8UC1, values 0/1); no copy.
cv::Mat AsMat(Mask& mask);
cv::Mat AsMat(const Mask& mask);  // the returned header must not be written to
// Any single-channel 8-bit image; non-zero pixels become foreground.
Mask MaskFromMat(const cv::Mat& image);

struct Component {
  Box box;
  uint64_t area = 0;
};
// Connected foreground components (connectivity 4 or 8). labels (optional) receives a
// CV_32S image: 0 = background, i + 1 = components[i].
std::vector<Component> ConnectedComponents(const Mask& mask, int connectivity = 8, cv::Mat* labels = nullptr);

// Sets background regions enclosed by foreground (not touching the image border) whose area
// is at most max_hole_area (0 = any size). Holes use 4-connectivity.
Mask FillHoles(const Mask& mask, uint64_t max_hole_area = 0);
// Clears foreground components smaller than min_area pixels (8-connectivity).
Mask RemoveSmallIslands(const Mask& mask, uint64_t min_area);

// Nearest-neighbour resize (labels stay binary).
Mask ResizeNearest(const Mask& mask, int width, int height);

}  // namespace litseg
