#include "litseg/core/mask_io.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <vector>

#include <png.h>

#include "litseg/core/error.h"

namespace litseg {
namespace fs = std::filesystem;

const std::array<Rgb, 256>& DavisPalette() {
  // The PASCAL VOC colour map (bits of the index spread over the high bits of R, G, B),
  // which the DAVIS annotations and the davis2017-evaluation toolkit use.
  static const std::array<Rgb, 256> palette = [] {
    std::array<Rgb, 256> p{};
    for (int i = 0; i < 256; ++i) {
      int r = 0, g = 0, b = 0, c = i;
      for (int j = 0; j < 8; ++j) {
        r |= ((c >> 0) & 1) << (7 - j);
        g |= ((c >> 1) & 1) << (7 - j);
        b |= ((c >> 2) & 1) << (7 - j);
        c >>= 3;
      }
      p[i] = {static_cast<uint8_t>(r), static_cast<uint8_t>(g), static_cast<uint8_t>(b)};
    }
    return p;
  }();
  return palette;
}

namespace {

// Decoded 8-bit PNG: `channels` samples per pixel (1 = gray or palette index, 3 = RGB,
// 4 = RGBA, 2 = gray+alpha); palette entries when the file is indexed.
struct RawPng {
  int width = 0;
  int height = 0;
  int channels = 0;
  bool indexed = false;
  std::vector<Rgb> palette;
  std::vector<uint8_t> pixels;
};

struct MemoryReader {
  const std::vector<uint8_t>* bytes;
  size_t offset;
};

struct PngErrorState {
  std::jmp_buf jump;
  char message[256];
};

void OnPngError(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngErrorState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof(state->message), "%s", message);
  std::longjmp(state->jump, 1);
}

void OnPngWarning(png_structp, png_const_charp) {}

void ReadFromMemory(png_structp png, png_bytep out, png_size_t length) {
  auto* reader = static_cast<MemoryReader*>(png_get_io_ptr(png));
  if (reader->offset + length > reader->bytes->size()) png_error(png, "file is truncated");
  std::memcpy(out, reader->bytes->data() + reader->offset, length);
  reader->offset += length;
}

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path + (fs::exists(path) ? " (permission denied?)" : ": no such file"));
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Decodes with libpng. libpng reports errors by longjmp: everything that must survive the
// jump lives in `raw`/`state` (addressed through pointers, so not register-cached).
RawPng DecodePng(const std::string& path) {
  const std::vector<uint8_t> bytes = ReadFileBytes(path);
  if (bytes.size() < 8 || png_sig_cmp(bytes.data(), 0, 8) != 0) throw Error(path + " is not a PNG file");

  RawPng raw;
  PngErrorState state{};
  MemoryReader reader{&bytes, 8};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, OnPngError, OnPngWarning);
  if (!png) throw Error("out of memory reading " + path);
  png_infop info = png_create_info_struct(png);
  std::vector<png_bytep> rows;
  if (setjmp(state.jump)) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw Error("corrupt PNG " + path + ": " + state.message);
  }
  if (!info) png_error(png, "out of memory");
  png_set_read_fn(png, &reader, ReadFromMemory);
  png_set_sig_bytes(png, 8);
  png_set_user_limits(png, 1 << 15, 1 << 15);
  png_read_info(png, info);

  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  if (bit_depth == 16) png_set_strip_16(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    if (bit_depth < 8) png_set_packing(png);  // indices stay indices, one byte each
    png_colorp plte = nullptr;
    int entries = 0;
    if (png_get_PLTE(png, info, &plte, &entries) == PNG_INFO_PLTE)
      for (int i = 0; i < entries; ++i) raw.palette.push_back({plte[i].red, plte[i].green, plte[i].blue});
    raw.indexed = true;
  } else if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  raw.width = static_cast<int>(png_get_image_width(png, info));
  raw.height = static_cast<int>(png_get_image_height(png, info));
  raw.channels = png_get_channels(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  if (row_bytes != static_cast<size_t>(raw.width) * raw.channels) png_error(png, "unexpected row layout");
  raw.pixels.resize(row_bytes * raw.height);
  rows.resize(raw.height);
  for (int y = 0; y < raw.height; ++y) rows[y] = raw.pixels.data() + row_bytes * y;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return raw;
}

void EncodePng(const std::string& path, int width, int height, const uint8_t* pixels, bool palette) {
  if (width <= 0 || height <= 0) throw Error("cannot write an empty mask to " + path);
  const fs::path target(path);
  const fs::path temp = target.string() + ".tmp";
  FILE* file = std::fopen(temp.c_str(), "wb");
  if (!file) throw Error("cannot write " + path);
  PngErrorState state{};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, OnPngError, OnPngWarning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  std::vector<png_bytep> rows(height);
  std::vector<png_color> plte(256);
  if (!png || !info || setjmp(state.jump)) {
    png_destroy_write_struct(&png, &info);
    std::fclose(file);
    std::remove(temp.c_str());
    throw Error("cannot write PNG " + path + ": " + state.message);
  }
  png_init_io(png, file);
  png_set_IHDR(png, info, width, height, 8, palette ? PNG_COLOR_TYPE_PALETTE : PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (palette) {
    const auto& p = DavisPalette();
    for (int i = 0; i < 256; ++i) plte[i] = png_color{p[i][0], p[i][1], p[i][2]};
    png_set_PLTE(png, info, plte.data(), 256);
  }
  png_write_info(png, info);
  for (int y = 0; y < height; ++y) rows[y] = const_cast<png_bytep>(pixels + static_cast<size_t>(y) * width);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  if (std::fclose(file) != 0) {
    std::remove(temp.c_str());
    throw Error("cannot write " + path + " (disk full?)");
  }
  std::error_code ec;
  fs::rename(temp, target, ec);
  if (ec) throw Error("cannot write " + path + ": " + ec.message());
}

}  // namespace

LabelMap ReadLabelPng(const std::string& path) {
  RawPng raw = DecodePng(path);
  LabelMap labels(raw.width, raw.height);
  const size_t n = static_cast<size_t>(raw.width) * raw.height;
  if (raw.indexed || raw.channels == 1) {
    std::memcpy(labels.data(), raw.pixels.data(), n);
    if (!raw.indexed) {
      // Binary {0,255} masks (DAVIS-2016) are object 1; other gray images hold ids.
      bool binary = true;
      for (size_t i = 0; i < n && binary; ++i) binary = raw.pixels[i] == 0 || raw.pixels[i] == 255;
      if (binary)
        for (size_t i = 0; i < n; ++i) labels.data()[i] = raw.pixels[i] ? 1 : 0;
    }
    return labels;
  }
  if (raw.channels == 3 || raw.channels == 4) {
    // RGB rendering of a DAVIS annotation: map each colour back to its palette index.
    const auto& palette = DavisPalette();
    auto key = [](uint8_t r, uint8_t g, uint8_t b) { return (uint32_t(r) << 16) | (uint32_t(g) << 8) | b; };
    std::vector<int> index_of(1 << 24, -1);
    for (int i = 255; i >= 0; --i) index_of[key(palette[i][0], palette[i][1], palette[i][2])] = i;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* px = raw.pixels.data() + i * raw.channels;
      const int id = index_of[key(px[0], px[1], px[2])];
      if (id < 0)
        throw Error(path + ": colour (" + std::to_string(px[0]) + "," + std::to_string(px[1]) + "," +
                    std::to_string(px[2]) + ") is not in the DAVIS palette");
      labels.data()[i] = static_cast<uint8_t>(id);
    }
    return labels;
  }
  throw Error(path + ": unsupported PNG layout (gray+alpha) for a mask");
}

void WritePalettePng(const std::string& path, const LabelMap& labels) {
  EncodePng(path, labels.width(), labels.height(), labels.data(), /*palette=*/true);
}

Mask ReadBinaryPng(const std::string& path) {
  RawPng raw = DecodePng(path);
  Mask mask(raw.width, raw.height);
  const size_t n = static_cast<size_t>(raw.width) * raw.height;
  for (size_t i = 0; i < n; ++i) {
    bool set = false;
    for (int c = 0; c < std::min(raw.channels, 3); ++c) set |= raw.pixels[i * raw.channels + c] != 0;
    mask.data()[i] = set ? 1 : 0;
  }
  return mask;
}

void WriteBinaryPng(const std::string& path, const Mask& mask) {
  std::vector<uint8_t> gray(mask.pixel_count());
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = mask.data()[i] ? 255 : 0;
  EncodePng(path, mask.width(), mask.height(), gray.data(), /*palette=*/false);
}

void WriteSavObjectPngs(const std::string& dir, const std::string& frame_name, const std::map<int, Mask>& objects) {
  for (const auto& [id, mask] : objects) {
    if (id < 0 || id > 999) throw Error("SA-V object ids must be 0..999, got " + std::to_string(id));
    char folder[8];
    std::snprintf(folder, sizeof(folder), "%03d", id);
    const fs::path object_dir = fs::path(dir) / folder;
    fs::create_directories(object_dir);
    WriteBinaryPng((object_dir / (frame_name + ".png")).string(), mask);
  }
}

std::map<int, Mask> ReadSavObjectPngs(const std::string& dir, const std::string& frame_name) {
  if (!fs::is_directory(dir)) throw Error("not a folder: " + dir);
  std::map<int, Mask> objects;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const fs::path file = entry.path() / (frame_name + ".png");
    if (fs::exists(file)) objects[std::stoi(name)] = ReadBinaryPng(file.string());
  }
  return objects;
}

}  // namespace litseg
