#include "litseg/core/mask_ops.h"

#include <algorithm>
#include <numeric>
#include <string>

#include <opencv2/imgproc.hpp>

#include "litseg/core/error.h"

namespace litseg {

uint64_t Area(const Mask& mask) {
  return static_cast<uint64_t>(std::count_if(mask.pixels().begin(), mask.pixels().end(), [](uint8_t v) { return v != 0; }));
}

double IoU(const Mask& a, const Mask& b) {
  if (a.width() != b.width() || a.height() != b.height())
    throw Error("IoU of masks of different sizes: " + std::to_string(a.width()) + "x" + std::to_string(a.height()) +
                " vs " + std::to_string(b.width()) + "x" + std::to_string(b.height()));
  uint64_t inter = 0, uni = 0;
  const uint8_t* pa = a.data();
  const uint8_t* pb = b.data();
  for (size_t i = 0, n = a.pixel_count(); i < n; ++i) {
    const bool fa = pa[i] != 0, fb = pb[i] != 0;
    inter += fa && fb;
    uni += fa || fb;
  }
  return uni == 0 ? 1.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

Box BoundingBox(const Mask& mask) {
  Box box{mask.width(), mask.height(), -1, -1};
  for (int y = 0; y < mask.height(); ++y) {
    const uint8_t* row = mask.data() + static_cast<size_t>(y) * mask.width();
    for (int x = 0; x < mask.width(); ++x) {
      if (!row[x]) continue;
      box.x0 = std::min(box.x0, x);
      box.x1 = std::max(box.x1, x);
      box.y0 = std::min(box.y0, y);
      box.y1 = std::max(box.y1, y);
    }
  }
  return box.x1 < 0 ? Box{} : box;
}

cv::Mat AsMat(Mask& mask) { return cv::Mat(mask.height(), mask.width(), CV_8UC1, mask.data()); }

cv::Mat AsMat(const Mask& mask) {
  return cv::Mat(mask.height(), mask.width(), CV_8UC1, const_cast<uint8_t*>(mask.data()));
}

Mask MaskFromMat(const cv::Mat& image) {
  if (image.type() != CV_8UC1) throw Error("MaskFromMat needs a single-channel 8-bit image");
  Mask mask(image.cols, image.rows);
  for (int y = 0; y < image.rows; ++y) {
    const uint8_t* src = image.ptr<uint8_t>(y);
    uint8_t* dst = mask.data() + static_cast<size_t>(y) * mask.width();
    for (int x = 0; x < image.cols; ++x) dst[x] = src[x] ? 1 : 0;
  }
  return mask;
}

std::vector<Component> ConnectedComponents(const Mask& mask, int connectivity, cv::Mat* labels_out) {
  if (connectivity != 4 && connectivity != 8) throw Error("connectivity must be 4 or 8");
  std::vector<Component> components;
  if (mask.empty()) {
    if (labels_out) labels_out->create(mask.height(), mask.width(), CV_32S);
    return components;
  }
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(AsMat(mask), labels, stats, centroids, connectivity, CV_32S);
  for (int i = 1; i < n; ++i) {
    Component c;
    c.box.x0 = stats.at<int>(i, cv::CC_STAT_LEFT);
    c.box.y0 = stats.at<int>(i, cv::CC_STAT_TOP);
    c.box.x1 = c.box.x0 + stats.at<int>(i, cv::CC_STAT_WIDTH) - 1;
    c.box.y1 = c.box.y0 + stats.at<int>(i, cv::CC_STAT_HEIGHT) - 1;
    c.area = static_cast<uint64_t>(stats.at<int>(i, cv::CC_STAT_AREA));
    components.push_back(c);
  }
  if (labels_out) *labels_out = labels;
  return components;
}

Mask FillHoles(const Mask& mask, uint64_t max_hole_area) {
  Mask out = mask;
  if (mask.empty()) return out;
  Mask background(mask.width(), mask.height());
  for (size_t i = 0; i < mask.pixel_count(); ++i) background.data()[i] = mask.data()[i] ? 0 : 1;
  cv::Mat labels;
  const auto holes = ConnectedComponents(background, 4, &labels);
  std::vector<bool> fill(holes.size() + 1, false);
  for (size_t i = 0; i < holes.size(); ++i) {
    const Box& b = holes[i].box;
    const bool touches_border = b.x0 == 0 || b.y0 == 0 || b.x1 == mask.width() - 1 || b.y1 == mask.height() - 1;
    fill[i + 1] = !touches_border && (max_hole_area == 0 || holes[i].area <= max_hole_area);
  }
  for (int y = 0; y < mask.height(); ++y) {
    const int* row = labels.ptr<int>(y);
    for (int x = 0; x < mask.width(); ++x)
      if (row[x] > 0 && fill[row[x]]) out(x, y) = 1;
  }
  return out;
}

Mask RemoveSmallIslands(const Mask& mask, uint64_t min_area) {
  Mask out = mask;
  if (mask.empty() || min_area == 0) return out;
  cv::Mat labels;
  const auto islands = ConnectedComponents(mask, 8, &labels);
  std::vector<bool> clear(islands.size() + 1, false);
  for (size_t i = 0; i < islands.size(); ++i) clear[i + 1] = islands[i].area < min_area;
  for (int y = 0; y < mask.height(); ++y) {
    const int* row = labels.ptr<int>(y);
    for (int x = 0; x < mask.width(); ++x)
      if (row[x] > 0 && clear[row[x]]) out(x, y) = 0;
  }
  return out;
}

Mask ResizeNearest(const Mask& mask, int width, int height) {
  if (width <= 0 || height <= 0) throw Error("resize target must be positive");
  Mask out(width, height);
  if (mask.empty()) return out;
  cv::Mat dst = AsMat(out);
  cv::resize(AsMat(mask), dst, cv::Size(width, height), 0, 0, cv::INTER_NEAREST);
  return out;
}

}  // namespace litseg
