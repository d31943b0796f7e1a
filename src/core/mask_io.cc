#include "litseg/core/mask_io.h"

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <unordered_map>

#include <png.h>

#include "litseg/core/error.h"

namespace litseg {
namespace fs = std::filesystem;

const std::array<Rgb, 256>& DavisPalette() {
  // davis2017-evaluation's _pascal_color_map: bit j of each 3-bit group of the index goes
  // to bit 7 - j of R, G and B.
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

// Largest side accepted (libpng's own default is 1,000,000): far above any video frame,
// small enough that a forged header cannot ask for terabytes.
constexpr png_uint_32 kMaxSide = 1 << 15;
// zlib's deflate cannot compress better than about 1032:1, so a file whose declared
// image needs more than this many raw bytes per remaining file byte is truncated or forged.
// Checking it before allocating keeps a 100-byte file from asking for gigabytes.
constexpr uint64_t kMaxDeflateRatio = 1100;

// libpng reports errors through a callback that must not return: it longjmps back to the
// setjmp in the function that drives libpng, which then throws litseg::Error. No C++ object
// with a destructor lives in the frames the jump skips (libpng's and the callbacks').
struct ErrorSink {
  std::jmp_buf jump;
  char message[256];
};

[[noreturn]] void OnPngError(png_structp png, png_const_charp message) {
  auto* sink = static_cast<ErrorSink*>(png_get_error_ptr(png));
  std::snprintf(sink->message, sizeof(sink->message), "%s", message ? message : "unknown libpng error");
  std::longjmp(sink->jump, 1);
}

void OnPngWarning(png_structp, png_const_charp) {}

struct ReadContext {
  ErrorSink errors;
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t offset = 0;
};

void ReadFromMemory(png_structp png, png_bytep out, png_size_t length) {
  auto* ctx = static_cast<ReadContext*>(png_get_io_ptr(png));
  if (length > ctx->size - ctx->offset) png_error(png, "the file ends too early (truncated)");
  std::memcpy(out, ctx->data + ctx->offset, length);
  ctx->offset += length;
}

struct WriteContext {
  ErrorSink errors;
  std::vector<uint8_t> bytes;
};

void WriteToMemory(png_structp png, png_bytep data, png_size_t length) {
  auto* ctx = static_cast<WriteContext*>(png_get_io_ptr(png));
  bool stored = true;
  try {
    ctx->bytes.insert(ctx->bytes.end(), data, data + length);
  } catch (const std::bad_alloc&) {
    stored = false;
  }
  // Outside the catch block: png_error longjmps and must not leave a handler half-run.
  if (!stored) png_error(png, "out of memory");
}

void FlushNothing(png_structp) {}

// A decoded PNG, 8 bits per sample: `channels` samples per pixel (1 = gray or palette
// index, 2 = gray + alpha, 3 = RGB, 4 = RGBA); the palette when the file is indexed.
struct RawPng {
  int width = 0;
  int height = 0;
  int channels = 0;
  bool indexed = false;
  bool gray = false;
  std::vector<Rgb> palette;
  std::vector<uint8_t> pixels;
};

// 16-bit samples (big-endian) to 8 bits. Gray images whose values all fit 8 bits hold ids
// and keep them; otherwise the high byte is kept, and a non-zero sample stays non-zero so
// that a faint 16-bit mask does not vanish.
std::vector<uint8_t> NarrowSamples(const std::vector<uint8_t>& wide, bool gray) {
  const size_t n = wide.size() / 2;
  bool fits = gray;
  for (size_t i = 0; i < n && fits; ++i) fits = wide[2 * i] == 0;
  std::vector<uint8_t> narrow(n);
  for (size_t i = 0; i < n; ++i) {
    const unsigned value = (unsigned(wide[2 * i]) << 8) | wide[2 * i + 1];
    narrow[i] = fits ? static_cast<uint8_t>(value) : static_cast<uint8_t>(std::max(value >> 8, value ? 1u : 0u));
  }
  return narrow;
}

RawPng DecodePng(const uint8_t* data, size_t size, const std::string& name) {
  if (size < 8 || png_sig_cmp(data, 0, 8) != 0) throw Error(name + " is not a PNG file");

  ReadContext ctx;
  ctx.data = data;
  ctx.size = size;
  ctx.offset = 8;
  RawPng raw;
  std::vector<uint8_t> decoded;
  std::vector<png_bytep> rows;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx.errors, OnPngError, OnPngWarning);
  if (!png) throw Error("out of memory reading " + name);
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    throw Error("out of memory reading " + name);
  }
  if (setjmp(ctx.errors.jump)) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw Error(name + " is a damaged or truncated PNG: " + ctx.errors.message);
  }
  png_set_read_fn(png, &ctx, ReadFromMemory);
  png_set_sig_bytes(png, 8);
  png_set_user_limits(png, kMaxSide, kMaxSide);
  png_read_info(png, info);

  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  const uint64_t stream_bytes = uint64_t{png_get_image_height(png, info)} * (png_get_rowbytes(png, info) + 1);
  if (stream_bytes > kMaxDeflateRatio * (ctx.size - ctx.offset) + 4096) {
    char message[160];
    std::snprintf(message, sizeof(message), "the header declares %ux%u pixels, more than %zu bytes of data can hold",
                  png_get_image_width(png, info), png_get_image_height(png, info), ctx.size - ctx.offset);
    png_error(png, message);
  }
  // Sub-8-bit samples are unpacked to one byte each without scaling: a 2-bit image of ids
  // 0..3 stays 0..3 (a 1-bit mask gives 0/1).
  if (bit_depth < 8) png_set_packing(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    png_colorp plte = nullptr;
    int entries = 0;
    if (png_get_PLTE(png, info, &plte, &entries) == PNG_INFO_PLTE)
      for (int i = 0; i < entries; ++i) raw.palette.push_back({plte[i].red, plte[i].green, plte[i].blue});
    raw.indexed = true;
  }
  raw.gray = (color_type & PNG_COLOR_MASK_COLOR) == 0;
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  raw.width = static_cast<int>(png_get_image_width(png, info));
  raw.height = static_cast<int>(png_get_image_height(png, info));
  raw.channels = png_get_channels(png, info);
  const size_t sample_bytes = bit_depth == 16 ? 2 : 1;
  const size_t row_bytes = png_get_rowbytes(png, info);
  if (row_bytes != static_cast<size_t>(raw.width) * raw.channels * sample_bytes) png_error(png, "unexpected row layout");
  bool allocated = true;
  try {
    decoded.resize(row_bytes * raw.height);
    rows.resize(raw.height);
  } catch (const std::bad_alloc&) {
    allocated = false;
  }
  if (!allocated) png_error(png, "not enough memory for the image");
  for (int y = 0; y < raw.height; ++y) rows[y] = decoded.data() + row_bytes * y;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);

  raw.pixels = sample_bytes == 2 ? NarrowSamples(decoded, raw.gray) : std::move(decoded);
  return raw;
}

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("cannot read " + path + ": no such file");
  if (fs::is_directory(path, ec)) throw Error("cannot read " + path + ": it is a folder, not a PNG file");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error("cannot open " + path + ": " + std::strerror(errno));
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error("cannot read " + path);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) throw Error("cannot read " + path);
  return bytes;
}

// Writes next to the target and renames, so a reader never sees a partial file.
void WriteFileAtomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write " + path + ": " + std::strerror(errno));
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::remove(temp.c_str());
      throw Error("cannot write " + path + " (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    std::remove(temp.c_str());
    throw Error("cannot write " + path + ": " + ec.message());
  }
}

// 8-bit gray or palette (DAVIS palette) PNG from one byte per pixel.
std::vector<uint8_t> EncodePng(int width, int height, const uint8_t* pixels, bool palette) {
  if (width <= 0 || height <= 0) throw Error("cannot store an empty (0-pixel) mask as PNG");
  if (width > static_cast<int>(kMaxSide) || height > static_cast<int>(kMaxSide))
    throw Error("mask of " + std::to_string(width) + "x" + std::to_string(height) + " is too large for a PNG mask");
  WriteContext ctx;
  std::vector<png_bytep> rows(height);
  for (int y = 0; y < height; ++y) rows[y] = const_cast<png_bytep>(pixels + static_cast<size_t>(y) * width);
  std::array<png_color, 256> plte{};
  const auto& davis = DavisPalette();
  for (int i = 0; i < 256; ++i) plte[i] = png_color{davis[i][0], davis[i][1], davis[i][2]};

  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx.errors, OnPngError, OnPngWarning);
  if (!png) throw Error("out of memory writing a PNG");
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    throw Error("out of memory writing a PNG");
  }
  if (setjmp(ctx.errors.jump)) {
    png_destroy_write_struct(&png, &info);
    throw Error(std::string("cannot encode PNG: ") + ctx.errors.message);
  }
  png_set_write_fn(png, &ctx, WriteToMemory, FlushNothing);
  png_set_IHDR(png, info, width, height, 8, palette ? PNG_COLOR_TYPE_PALETTE : PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (palette) png_set_PLTE(png, info, plte.data(), 256);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return std::move(ctx.bytes);
}

// Exact colour -> DAVIS index (the 256 colours are distinct).
uint8_t DavisIndexOfColour(const uint8_t* rgb, const std::string& name) {
  static const std::unordered_map<uint32_t, uint8_t> index_of = [] {
    std::unordered_map<uint32_t, uint8_t> map;
    const auto& p = DavisPalette();
    for (int i = 0; i < 256; ++i) map[(uint32_t(p[i][0]) << 16) | (uint32_t(p[i][1]) << 8) | p[i][2]] = uint8_t(i);
    return map;
  }();
  const auto it = index_of.find((uint32_t(rgb[0]) << 16) | (uint32_t(rgb[1]) << 8) | rgb[2]);
  if (it == index_of.end())
    throw Error(name + ": colour (" + std::to_string(rgb[0]) + "," + std::to_string(rgb[1]) + "," +
                std::to_string(rgb[2]) + ") is not in the DAVIS palette, so it names no object");
  return it->second;
}

LabelMap LabelsFromRaw(const RawPng& raw, const std::string& name) {
  LabelMap labels(raw.width, raw.height);
  const size_t n = static_cast<size_t>(raw.width) * raw.height;
  uint8_t* out = labels.data();
  if (raw.channels == 1) {
    std::memcpy(out, raw.pixels.data(), n);
    if (!raw.indexed) {
      // Binary {0,255} masks (DAVIS-2016) are object 1; other gray images hold ids.
      const bool binary = std::all_of(raw.pixels.begin(), raw.pixels.end(), [](uint8_t v) { return v == 0 || v == 255; });
      if (binary)
        for (size_t i = 0; i < n; ++i) out[i] = out[i] ? 1 : 0;
    }
    return labels;
  }
  if (raw.channels == 3 || raw.channels == 4) {
    // An RGB rendering of a DAVIS annotation: map each colour back to its palette index.
    // Neighbouring pixels mostly share a colour, so the last lookup is remembered.
    const uint8_t* previous = nullptr;
    uint8_t previous_id = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* px = raw.pixels.data() + i * raw.channels;
      if (!previous || std::memcmp(px, previous, 3) != 0) {
        previous_id = DavisIndexOfColour(px, name);
        previous = px;
      }
      out[i] = previous_id;
    }
    return labels;
  }
  throw Error(name + ": a gray + alpha PNG is not a label map (expected palette, gray or RGB)");
}

Mask BinaryFromRaw(const RawPng& raw) {
  Mask mask(raw.width, raw.height);
  const size_t n = static_cast<size_t>(raw.width) * raw.height;
  // Colour channels only: gray (1 or gray+alpha) or RGB (RGB or RGBA).
  const int colour_channels = raw.channels >= 3 ? 3 : 1;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* px = raw.pixels.data() + i * raw.channels;
    bool set = false;
    for (int c = 0; c < colour_channels; ++c) set |= px[c] != 0;
    mask.data()[i] = set ? 1 : 0;
  }
  return mask;
}

std::vector<uint8_t> GrayBytes(const Mask& mask) {
  std::vector<uint8_t> gray(mask.pixel_count());
  std::transform(mask.pixels().begin(), mask.pixels().end(), gray.begin(),
                 [](uint8_t v) { return static_cast<uint8_t>(v ? 255 : 0); });
  return gray;
}

}  // namespace

LabelMap DecodeLabelPng(const std::vector<uint8_t>& png, const std::string& name) {
  return LabelsFromRaw(DecodePng(png.data(), png.size(), name), name);
}

Mask DecodeBinaryPng(const std::vector<uint8_t>& png, const std::string& name) {
  return BinaryFromRaw(DecodePng(png.data(), png.size(), name));
}

std::vector<uint8_t> EncodePalettePng(const LabelMap& labels) {
  return EncodePng(labels.width(), labels.height(), labels.data(), /*palette=*/true);
}

std::vector<uint8_t> EncodeBinaryPng(const Mask& mask) {
  const std::vector<uint8_t> gray = GrayBytes(mask);
  return EncodePng(mask.width(), mask.height(), gray.data(), /*palette=*/false);
}

LabelMap ReadLabelPng(const std::string& path) { return DecodeLabelPng(ReadFileBytes(path), path); }

void WritePalettePng(const std::string& path, const LabelMap& labels) {
  std::vector<uint8_t> bytes;
  try {
    bytes = EncodePalettePng(labels);
  } catch (const Error& e) {
    throw Error("cannot write " + path + ": " + e.what());
  }
  WriteFileAtomically(path, bytes);
}

Mask ReadBinaryPng(const std::string& path) { return DecodeBinaryPng(ReadFileBytes(path), path); }

void WriteBinaryPng(const std::string& path, const Mask& mask) {
  std::vector<uint8_t> bytes;
  try {
    bytes = EncodeBinaryPng(mask);
  } catch (const Error& e) {
    throw Error("cannot write " + path + ": " + e.what());
  }
  WriteFileAtomically(path, bytes);
}

void WriteSavObjectPngs(const std::string& dir, const std::string& frame_name, const std::map<int, Mask>& objects) {
  for (const auto& [id, mask] : objects) {
    if (id < 0 || id > 999) throw Error("SA-V object ids must be 0..999, got " + std::to_string(id));
    char folder[8];
    std::snprintf(folder, sizeof(folder), "%03d", id);
    const fs::path object_dir = fs::path(dir) / folder;
    std::error_code ec;
    fs::create_directories(object_dir, ec);
    if (ec) throw Error("cannot create folder " + object_dir.string() + ": " + ec.message());
    WriteBinaryPng((object_dir / (frame_name + ".png")).string(), mask);
  }
}

std::map<int, Mask> ReadSavObjectPngs(const std::string& dir, const std::string& frame_name) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("not a folder: " + dir);
  std::map<int, Mask> objects;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    const std::string name = it->path().filename().string();
    // Object folders are ids written with %03d; anything else (".git", "notes") is not one.
    if (name.empty() || name.size() > 6 || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const fs::path file = it->path() / (frame_name + ".png");
    if (fs::exists(file, ec)) objects[std::stoi(name)] = ReadBinaryPng(file.string());
  }
  if (ec) throw Error("cannot list " + dir + ": " + ec.message());
  return objects;
}

}  // namespace litseg
