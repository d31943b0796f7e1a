#include "litseg/core/rle.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "litseg/core/error.h"

namespace litseg {
namespace {

std::vector<uint8_t> ColumnMajor(const Mask& mask) {
  std::vector<uint8_t> columns(mask.pixel_count());
  if (!mask.empty()) {
    cv::Mat row_major(mask.height(), mask.width(), CV_8UC1, const_cast<uint8_t*>(mask.data()));
    cv::Mat col_major(mask.width(), mask.height(), CV_8UC1, columns.data());
    cv::transpose(row_major, col_major);
  }
  return columns;
}

void ValidateSize(int height, int width) {
  if (height < 0 || width < 0)
    throw Error("RLE size must not be negative (got " + std::to_string(height) + "x" + std::to_string(width) + ")");
}

uint64_t CheckedTotal(const Rle& rle) {
  ValidateSize(rle.height, rle.width);
  uint64_t total = 0;
  for (uint32_t c : rle.counts) total += c;
  const uint64_t expected = static_cast<uint64_t>(rle.height) * static_cast<uint64_t>(rle.width);
  if (total != expected)
    throw Error("RLE counts sum to " + std::to_string(total) + " pixels, but the mask is " +
                std::to_string(rle.height) + "x" + std::to_string(rle.width) + " = " + std::to_string(expected));
  return total;
}

}  // namespace

Rle EncodeRle(const Mask& mask) {
  Rle rle;
  rle.height = mask.height();
  rle.width = mask.width();
  // Column-major order = row-major order of the transposed mask.
  std::vector<uint8_t> columns = ColumnMajor(mask);
  uint8_t previous = 0;
  uint32_t run = 0;
  for (uint8_t v : columns) {
    const uint8_t value = v ? 1 : 0;
    if (value != previous) {
      rle.counts.push_back(run);
      run = 0;
      previous = value;
    }
    ++run;
  }
  rle.counts.push_back(run);
  return rle;
}

Mask DecodeRle(const Rle& rle) {
  const uint64_t total = CheckedTotal(rle);
  // Counts are cheap to forge; the raster is not. 2^31 pixels is far above any video frame.
  if (total > (uint64_t{1} << 31))
    throw Error("RLE mask of " + std::to_string(rle.height) + "x" + std::to_string(rle.width) + " is too large to decode");
  std::vector<uint8_t> columns(static_cast<size_t>(rle.width) * rle.height, 0);
  size_t position = 0;
  uint8_t value = 0;
  for (uint32_t run : rle.counts) {
    if (value) std::fill_n(columns.begin() + static_cast<std::ptrdiff_t>(position), run, uint8_t{1});
    position += run;
    value ^= 1;
  }
  Mask mask(rle.width, rle.height);
  if (!mask.empty()) {
    cv::Mat col_major(rle.width, rle.height, CV_8UC1, columns.data());
    cv::Mat row_major(rle.height, rle.width, CV_8UC1, mask.data());
    cv::transpose(col_major, row_major);
  }
  return mask;
}

uint64_t RleArea(const Rle& rle) {
  CheckedTotal(rle);
  uint64_t area = 0;
  for (size_t i = 1; i < rle.counts.size(); i += 2) area += rle.counts[i];
  return area;
}

std::string ToCompressedString(const Rle& rle) {
  std::string out;
  const auto& cnts = rle.counts;
  for (size_t i = 0; i < cnts.size(); ++i) {
    int64_t x = static_cast<int64_t>(cnts[i]);
    if (i > 2) x -= static_cast<int64_t>(cnts[i - 2]);
    bool more = true;
    while (more) {
      int64_t c = x & 0x1f;
      x >>= 5;  // arithmetic shift, as in maskApi.c (long)
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      out.push_back(static_cast<char>(c + 48));
    }
  }
  return out;
}

Rle RleFromCompressedString(const std::string& counts, int height, int width) {
  ValidateSize(height, width);
  Rle rle;
  rle.height = height;
  rle.width = width;
  size_t p = 0;
  while (p < counts.size()) {
    int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      if (p >= counts.size())
        throw Error("malformed RLE string: it ends inside a number (at character " + std::to_string(p) + ")");
      const int c = static_cast<unsigned char>(counts[p]) - 48;
      if (c < 0 || c > 63)
        throw Error("malformed RLE string: character '" + std::string(1, counts[p]) + "' at position " +
                    std::to_string(p) + " is outside the encoding alphabet");
      if (k >= 12) throw Error("malformed RLE string: a number at position " + std::to_string(p) + " is too long");
      x |= static_cast<int64_t>(c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= static_cast<int64_t>(-1) * (int64_t{1} << (5 * k));
    }
    const size_t m = rle.counts.size();
    if (m > 2) x += static_cast<int64_t>(rle.counts[m - 2]);
    if (x < 0 || x > static_cast<int64_t>(UINT32_MAX))
      throw Error("malformed RLE string: run " + std::to_string(m) + " decodes to " + std::to_string(x));
    rle.counts.push_back(static_cast<uint32_t>(x));
  }
  CheckedTotal(rle);
  return rle;
}

Rle RleFromJson(const nlohmann::json& object) {
  if (!object.is_object() || !object.contains("size") || !object.contains("counts"))
    throw Error("COCO RLE object needs \"size\" and \"counts\"");
  const auto& size = object["size"];
  if (!size.is_array() || size.size() != 2 || !size[0].is_number_integer() || !size[1].is_number_integer())
    throw Error("COCO RLE \"size\" must be [height, width]");
  const int64_t h64 = size[0].get<int64_t>(), w64 = size[1].get<int64_t>();
  if (h64 < 0 || w64 < 0 || h64 > INT32_MAX || w64 > INT32_MAX)
    throw Error("COCO RLE \"size\" [" + std::to_string(h64) + ", " + std::to_string(w64) + "] is not a valid [height, width]");
  const int h = static_cast<int>(h64), w = static_cast<int>(w64);
  const auto& counts = object["counts"];
  if (counts.is_string()) return RleFromCompressedString(counts.get<std::string>(), h, w);
  if (!counts.is_array()) throw Error("COCO RLE \"counts\" must be a string or an array");
  ValidateSize(h, w);
  Rle rle;
  rle.height = h;
  rle.width = w;
  for (const auto& c : counts) {
    if (!c.is_number_integer() || c.get<int64_t>() < 0 || c.get<int64_t>() > UINT32_MAX)
      throw Error("COCO RLE \"counts\" must hold non-negative integers");
    rle.counts.push_back(static_cast<uint32_t>(c.get<int64_t>()));
  }
  CheckedTotal(rle);
  return rle;
}

nlohmann::json RleToJson(const Rle& rle, bool compressed) {
  nlohmann::json j;
  j["size"] = {rle.height, rle.width};
  if (compressed)
    j["counts"] = ToCompressedString(rle);
  else
    j["counts"] = rle.counts;
  return j;
}

}  // namespace litseg
