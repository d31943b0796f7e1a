// Reading and writing masks as PNG files, in the layouts VOS datasets use.
//
// * DAVIS: one palette (indexed) PNG per frame, pixel value = object id, the official
//   256-entry DAVIS palette; 255 = void. Binary {0,255} gray PNGs (DAVIS-2016) read as id 1.
// * SA-V: one folder per object (000, 001, ...) holding a binary PNG per frame.
// All functions throw litseg::Error naming the file on a missing, truncated or corrupt PNG;
// a damaged file never crashes or aborts the process (libpng errors are turned into
// exceptions).
//
//   litseg::LabelMap truth = litseg::ReadLabelPng("Annotations/480p/bear/00000.png");
//   litseg::WritePalettePng("out/bear/00000.png", prediction);      // DAVIS palette
//   litseg::WriteSavObjectPngs("out/sav_000001", "00004", {{0, mask0}, {1, mask1}});
//
// Writers write to "<path>.tmp" and rename, so readers never see half a file.
// Thread safety: all functions are reentrant (no shared mutable state); two threads must
// not write the same path at once.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "litseg/core/mask.h"

namespace litseg {

using Rgb = std::array<uint8_t, 3>;
// The DAVIS palette (index -> RGB), as in the official davis2017-evaluation toolkit: the
// PASCAL VOC colour map (bits of the index spread over the high bits of R, G and B).
const std::array<Rgb, 256>& DavisPalette();

// Reads a palette PNG (indices are ids, whatever the palette's colours), a grayscale PNG
// ({0,255}-only masks become {0,1}; other gray values are ids), or an RGB(A) PNG whose
// colours are DAVIS palette entries (another colour is an error). Sub-8-bit images give
// their raw sample values; 16-bit gray images give their values when all are <= 255 and
// are otherwise scaled to 8 bits (a non-zero sample stays non-zero).
LabelMap ReadLabelPng(const std::string& path);
// Writes an 8-bit palette PNG with the DAVIS palette (all 256 entries).
void WritePalettePng(const std::string& path, const LabelMap& labels);

// Binary masks: any non-zero pixel is foreground (palette index, gray value, or any of the
// R, G, B channels; alpha is ignored); written as 8-bit gray {0,255}.
Mask ReadBinaryPng(const std::string& path);
void WriteBinaryPng(const std::string& path, const Mask& mask);

// The same conversions on PNG bytes in memory (e.g. masks kept as database blobs).
// `name` only appears in error messages.
LabelMap DecodeLabelPng(const std::vector<uint8_t>& png, const std::string& name = "PNG data");
Mask DecodeBinaryPng(const std::vector<uint8_t>& png, const std::string& name = "PNG data");
std::vector<uint8_t> EncodePalettePng(const LabelMap& labels);
std::vector<uint8_t> EncodeBinaryPng(const Mask& mask);

// SA-V per-object layout (sam2's vos_inference --per_obj_png_file and SA-V val/test
// Annotations_6fps): <dir>/<object id as %03d>/<frame_name>.png, one binary PNG per
// object and frame. Object ids must be 0..999.
void WriteSavObjectPngs(const std::string& dir, const std::string& frame_name, const std::map<int, Mask>& objects);
// Reads every object folder of `dir` (an all-digit name) that holds <frame_name>.png;
// objects absent on that frame are skipped.
std::map<int, Mask> ReadSavObjectPngs(const std::string& dir, const std::string& frame_name);

}  // namespace litseg
