// Reading and writing masks as PNG files, in the layouts VOS datasets use.
//
// * DAVIS: one palette (indexed) PNG per frame, pixel value = object id, the official
//   256-entry DAVIS palette; 255 = void. Binary {0,255} PNGs (DAVIS-2016) read as id 1.
// * SA-V: one folder per object (000, 001, ...) holding a binary PNG per frame.
// All functions throw litseg::Error naming the file on a missing, truncated or corrupt PNG.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "litseg/core/mask.h"

namespace litseg {

using Rgb = std::array<uint8_t, 3>;
// The DAVIS palette (index -> RGB), as in the official davis2017-evaluation toolkit.
const std::array<Rgb, 256>& DavisPalette();

// Reads a palette PNG (indices are ids), a grayscale PNG ({0,255} binary masks become
// {0,1}; other gray values are ids), or an RGB PNG whose colours are DAVIS palette entries.
LabelMap ReadLabelPng(const std::string& path);
// Writes an 8-bit palette PNG with the DAVIS palette.
void WritePalettePng(const std::string& path, const LabelMap& labels);

// Binary masks: any non-zero pixel is foreground; written as 8-bit gray {0,255}.
Mask ReadBinaryPng(const std::string& path);
void WriteBinaryPng(const std::string& path, const Mask& mask);

// SA-V per-object layout: <dir>/<object id as %03d>/<frame_name>.png, one binary PNG per
// object and frame.
void WriteSavObjectPngs(const std::string& dir, const std::string& frame_name, const std::map<int, Mask>& objects);
// Reads every object folder of `dir` that holds <frame_name>.png (objects absent on that
// frame are skipped).
std::map<int, Mask> ReadSavObjectPngs(const std::string& dir, const std::string& frame_name);

}  // namespace litseg
