// Binary masks and per-pixel label maps: the value types every module shares.
//
// A Mask is a row-major W x H raster with one byte per pixel, 0 = background and
// 1 = foreground. A LabelMap holds object ids per pixel (0 = background, 1..254 objects,
// 255 = void in DAVIS annotations). Both are plain values: cheap to move, deep-copied on
// copy, compared pixel by pixel. Not thread-safe to mutate concurrently.
//
//   litseg::Mask m(640, 480);
//   m(10, 20) = 1;                       // x = 10, y = 20
//   double iou = litseg::IoU(m, other);  // see mask_ops.h
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace litseg {

class Mask {
 public:
  Mask() = default;
  Mask(int width, int height, uint8_t fill = 0);

  int width() const { return width_; }
  int height() const { return height_; }
  bool empty() const { return width_ == 0 || height_ == 0; }
  std::size_t pixel_count() const { return pixels_.size(); }

  uint8_t* data() { return pixels_.data(); }
  const uint8_t* data() const { return pixels_.data(); }
  std::vector<uint8_t>& pixels() { return pixels_; }
  const std::vector<uint8_t>& pixels() const { return pixels_; }

  uint8_t& operator()(int x, int y) { return pixels_[static_cast<std::size_t>(y) * width_ + x]; }
  uint8_t operator()(int x, int y) const { return pixels_[static_cast<std::size_t>(y) * width_ + x]; }

  bool operator==(const Mask& other) const {
    return width_ == other.width_ && height_ == other.height_ && pixels_ == other.pixels_;
  }
  bool operator!=(const Mask& other) const { return !(*this == other); }

 private:
  int width_ = 0;
  int height_ = 0;
  std::vector<uint8_t> pixels_;
};

class LabelMap {
 public:
  static constexpr uint8_t kBackground = 0;
  static constexpr uint8_t kVoid = 255;

  LabelMap() = default;
  LabelMap(int width, int height, uint8_t fill = kBackground);

  int width() const { return width_; }
  int height() const { return height_; }
  bool empty() const { return width_ == 0 || height_ == 0; }
  uint8_t* data() { return labels_.data(); }
  const uint8_t* data() const { return labels_.data(); }
  std::vector<uint8_t>& labels() { return labels_; }
  const std::vector<uint8_t>& labels() const { return labels_; }

  uint8_t& operator()(int x, int y) { return labels_[static_cast<std::size_t>(y) * width_ + x]; }
  uint8_t operator()(int x, int y) const { return labels_[static_cast<std::size_t>(y) * width_ + x]; }

  // Foreground of one object (pixels equal to id), and of any object (1..254).
  Mask ObjectMask(uint8_t id) const;
  Mask ForegroundMask() const;
  // Void pixels (255), excluded from evaluation.
  Mask VoidMask() const;
  // Sorted object ids present (excluding background and void).
  std::vector<uint8_t> ObjectIds() const;
  // Writes id where mask is set (later calls paint over earlier ones).
  void Paint(const Mask& mask, uint8_t id);

  bool operator==(const LabelMap& other) const {
    return width_ == other.width_ && height_ == other.height_ && labels_ == other.labels_;
  }

 private:
  int width_ = 0;
  int height_ = 0;
  std::vector<uint8_t> labels_;
};

}  // namespace litseg
