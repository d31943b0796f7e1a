// COCO run-length encoding, bit-exact with pycocotools (maskApi.c).
//
// Runs are taken in column-major (Fortran) order over an H x W mask, alternating
// background / foreground and starting with background (a leading 0 when the first pixel
// is set). The compressed string form is pycocotools' LEB128-like encoding: 5 data bits per
// character (offset 48), a continuation bit, sign extension, and counts from the third on
// stored as the difference to the count two before.
//
//   litseg::Rle rle = litseg::EncodeRle(mask);
//   std::string s = litseg::ToCompressedString(rle);   // "i\\Y4<Qj05K4..."
//   litseg::Mask back = litseg::DecodeRle(litseg::RleFromCompressedString(s, h, w));
//
// Malformed input (bad characters, a truncated number, negative runs, counts that do not
// sum to h * w) throws litseg::Error. Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "litseg/core/mask.h"

namespace litseg {

struct Rle {
  int height = 0;
  int width = 0;
  std::vector<uint32_t> counts;

  bool operator==(const Rle& other) const {
    return height == other.height && width == other.width && counts == other.counts;
  }
};

Rle EncodeRle(const Mask& mask);
// Throws litseg::Error when the counts do not cover exactly height * width pixels.
Mask DecodeRle(const Rle& rle);
// Foreground pixel count (sum of the odd runs); validates like DecodeRle.
uint64_t RleArea(const Rle& rle);

std::string ToCompressedString(const Rle& rle);
// Parses a compressed counts string; validates it against height * width.
Rle RleFromCompressedString(const std::string& counts, int height, int width);

// COCO JSON objects: {"size": [h, w], "counts": "<string>"} or {"size": [h, w], "counts": [..]}.
Rle RleFromJson(const nlohmann::json& object);
nlohmann::json RleToJson(const Rle& rle, bool compressed = true);

}  // namespace litseg
