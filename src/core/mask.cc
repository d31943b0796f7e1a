#include "litseg/core/mask.h"

#include <algorithm>
#include <array>

namespace litseg {

Mask::Mask(int width, int height, uint8_t fill)
    : width_(width), height_(height),
      pixels_(static_cast<std::size_t>(width) * static_cast<std::size_t>(height), fill) {}

LabelMap::LabelMap(int width, int height, uint8_t fill)
    : width_(width), height_(height),
      labels_(static_cast<std::size_t>(width) * static_cast<std::size_t>(height), fill) {}

Mask LabelMap::ObjectMask(uint8_t id) const {
  Mask mask(width_, height_);
  std::transform(labels_.begin(), labels_.end(), mask.pixels().begin(),
                 [id](uint8_t v) { return static_cast<uint8_t>(v == id); });
  return mask;
}

Mask LabelMap::ForegroundMask() const {
  Mask mask(width_, height_);
  std::transform(labels_.begin(), labels_.end(), mask.pixels().begin(), [](uint8_t v) {
    return static_cast<uint8_t>(v != kBackground && v != kVoid);
  });
  return mask;
}

Mask LabelMap::VoidMask() const { return ObjectMask(kVoid); }

std::vector<uint8_t> LabelMap::ObjectIds() const {
  std::array<bool, 256> seen{};
  for (uint8_t v : labels_) seen[v] = true;
  std::vector<uint8_t> ids;
  for (int id = 1; id < 255; ++id)
    if (seen[id]) ids.push_back(static_cast<uint8_t>(id));
  return ids;
}

void LabelMap::Paint(const Mask& mask, uint8_t id) {
  const std::size_t n = std::min(labels_.size(), mask.pixel_count());
  const uint8_t* m = mask.data();
  for (std::size_t i = 0; i < n; ++i)
    if (m[i]) labels_[i] = id;
}

}  // namespace litseg
