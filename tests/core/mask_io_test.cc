#include <csetjmp>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <png.h>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/core/mask_io.h"
#include "litseg/core/mask_ops.h"

namespace litseg {
namespace {
namespace fs = std::filesystem;

const char* kOsvosDir = "data/vos/davis2017-evaluation-osvos-results/results/semi-supervised/osvos";
const char* kDavis2016Dir = "data/vos/davis2016/DAVIS/Annotations/480p";

std::vector<uint8_t> FileBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteBytes(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<fs::path> PngsUnder(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.path().extension() == ".png") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

uint32_t BigEndian32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

void PutBigEndian32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24), p[1] = uint8_t(v >> 16), p[2] = uint8_t(v >> 8), p[3] = uint8_t(v);
}

// The data of the first chunk of the given type, by walking the chunk list (not a substring
// search, which could match inside compressed data).
std::vector<uint8_t> ChunkData(const std::vector<uint8_t>& png, const std::string& type) {
  for (size_t at = 8; at + 12 <= png.size();) {
    const uint32_t length = BigEndian32(&png[at]);
    if (at + 12 + length > png.size()) break;
    if (std::string(png.begin() + at + 4, png.begin() + at + 8) == type)
      return std::vector<uint8_t>(png.begin() + at + 8, png.begin() + at + 8 + length);
    at += 12 + length;
  }
  return {};
}

// PNG's CRC-32 (ISO 3309, reflected polynomial 0xEDB88320), bit by bit: slow but obvious.
uint32_t Crc32(const uint8_t* data, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

// Recomputes every chunk CRC so that damage reaches the decoder instead of the CRC check.
void RepairCrcs(std::vector<uint8_t>& png) {
  for (size_t at = 8; at + 12 <= png.size();) {
    const uint32_t length = BigEndian32(&png[at]);
    if (length > png.size() || at + 12 + length > png.size()) break;
    PutBigEndian32(&png[at + 8 + length], Crc32(&png[at + 4], length + 4));
    at += 12 + length;
  }
}

std::vector<uint8_t> PaletteBytes() {
  std::vector<uint8_t> bytes;
  for (const Rgb& c : DavisPalette()) bytes.insert(bytes.end(), c.begin(), c.end());
  return bytes;
}

// Writes a PNG with libpng directly, in layouts litseg never writes itself (sub-8-bit,
// 16-bit, gray + alpha, interlaced). `samples` holds width * height * channels values.
std::vector<uint8_t> MakePng(int width, int height, int color_type, int bit_depth, bool interlaced,
                             const std::vector<unsigned>& samples) {
  const int channels = color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_PALETTE ? 1
                       : color_type == PNG_COLOR_TYPE_GRAY_ALPHA                                ? 2
                       : color_type == PNG_COLOR_TYPE_RGB                                       ? 3
                                                                                                : 4;
  EXPECT_EQ(samples.size(), size_t(width) * height * channels);
  const size_t row_bytes = (size_t(width) * channels * bit_depth + 7) / 8;
  std::vector<uint8_t> packed(row_bytes * height, 0);
  for (int y = 0; y < height; ++y) {
    uint8_t* row = packed.data() + row_bytes * y;
    for (int i = 0; i < width * channels; ++i) {
      const unsigned v = samples[size_t(y) * width * channels + i];
      if (bit_depth == 16) {
        row[2 * i] = uint8_t(v >> 8), row[2 * i + 1] = uint8_t(v);
      } else if (bit_depth == 8) {
        row[i] = uint8_t(v);
      } else {
        const int bit = i * bit_depth;  // most significant bits first
        row[bit / 8] |= uint8_t(v << (8 - bit_depth - bit % 8));
      }
    }
  }
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    ADD_FAILURE() << "test PNG writer failed";
    return {};
  }
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep data, png_size_t n) {
        auto* v = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(p));
        v->insert(v->end(), data, data + n);
      },
      [](png_structp) {});
  png_set_IHDR(png, info, width, height, bit_depth, color_type, interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  std::vector<png_color> plte;
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    for (int i = 0; i < (1 << bit_depth); ++i)
      plte.push_back(png_color{uint8_t(3 * i), uint8_t(5 * i), uint8_t(7 * i)});  // not the DAVIS colours
    png_set_PLTE(png, info, plte.data(), static_cast<int>(plte.size()));
  }
  png_write_info(png, info);
  std::vector<png_bytep> rows(height);
  for (int y = 0; y < height; ++y) rows[y] = packed.data() + row_bytes * y;
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

LabelMap AllIds() {
  LabelMap labels(32, 8);
  for (int i = 0; i < 256; ++i) labels(i % 32, i / 32) = static_cast<uint8_t>(i);
  return labels;
}

// ---------------------------------------------------------------------------------------
// Palette

TEST(DavisPalette, SpotValuesOfThePascalVocColourMap) {
  const auto& p = DavisPalette();
  EXPECT_EQ(p[0], (Rgb{0, 0, 0}));
  EXPECT_EQ(p[1], (Rgb{128, 0, 0}));
  EXPECT_EQ(p[2], (Rgb{0, 128, 0}));
  EXPECT_EQ(p[3], (Rgb{128, 128, 0}));
  EXPECT_EQ(p[4], (Rgb{0, 0, 128}));
  EXPECT_EQ(p[8], (Rgb{64, 0, 0}));
  EXPECT_EQ(p[255], (Rgb{224, 224, 192}));
}

TEST(DavisPalette, EqualsThePlteOfEveryRealOsvosPng) {
  LITSEG_REQUIRE_SHARED(kOsvosDir);
  const std::vector<uint8_t> ours = PaletteBytes();
  const auto files = PngsUnder(test::SharedPath(kOsvosDir));
  ASSERT_GT(files.size(), 100u);
  for (const auto& file : files) {
    const std::vector<uint8_t> plte = ChunkData(FileBytes(file), "PLTE");
    ASSERT_EQ(plte.size(), 768u) << file;
    ASSERT_EQ(plte, ours) << file;
  }
}

// ---------------------------------------------------------------------------------------
// Round trips

TEST(MaskIo, PalettePngRoundTripsEveryId) {
  const auto dir = test::TempDir("palette");
  const LabelMap labels = AllIds();
  const std::string path = (dir / "a.png").string();
  WritePalettePng(path, labels);
  EXPECT_EQ(ReadLabelPng(path), labels);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(DecodeLabelPng(EncodePalettePng(labels)), labels);
  // The file carries the full DAVIS palette, and an independent decoder (OpenCV renders
  // palette PNGs as colours) sees palette[id] at every pixel.
  EXPECT_EQ(ChunkData(FileBytes(path), "PLTE"), PaletteBytes());
  const cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  ASSERT_EQ(bgr.size(), cv::Size(32, 8));
  for (int i = 0; i < 256; ++i) {
    const cv::Vec3b px = bgr.at<cv::Vec3b>(i / 32, i % 32);
    EXPECT_EQ((Rgb{px[2], px[1], px[0]}), DavisPalette()[i]) << "id " << i;
  }
  fs::remove_all(dir);
}

TEST(MaskIo, RandomLabelMapsRoundTrip) {
  std::mt19937 rng(3);
  for (int i = 0; i < 20; ++i) {
    LabelMap labels(1 + int(rng() % 200), 1 + int(rng() % 150));
    const int ids = 1 + int(rng() % 256);
    for (auto& v : labels.labels()) v = uint8_t(rng() % ids);
    EXPECT_EQ(DecodeLabelPng(EncodePalettePng(labels)), labels);
  }
}

TEST(MaskIo, BinaryPngRoundTripAndReadsAsObjectOne) {
  const auto dir = test::TempDir("binary");
  Mask m(17, 9);
  m(3, 4) = m(16, 8) = m(0, 0) = 1;
  const std::string path = (dir / "m.png").string();
  WriteBinaryPng(path, m);
  EXPECT_EQ(ReadBinaryPng(path), m);
  const LabelMap labels = ReadLabelPng(path);
  EXPECT_EQ(labels.ObjectIds(), (std::vector<uint8_t>{1}));
  EXPECT_EQ(labels.ForegroundMask(), m);
  // Stored as 8-bit gray {0, 255}, as an independent decoder sees it.
  const cv::Mat gray = cv::imread(path, cv::IMREAD_UNCHANGED);
  ASSERT_EQ(gray.type(), CV_8UC1);
  EXPECT_EQ(cv::countNonZero(gray == 255), 3);
  EXPECT_EQ(cv::countNonZero(gray == 0), 17 * 9 - 3);

  std::mt19937 rng(5);
  for (int i = 0; i < 20; ++i) {
    Mask r(1 + int(rng() % 300), 1 + int(rng() % 200));
    for (auto& v : r.pixels()) v = uint8_t(rng() % 5 == 0);
    EXPECT_EQ(DecodeBinaryPng(EncodeBinaryPng(r)), r);
  }
  fs::remove_all(dir);
}

TEST(MaskIo, SavObjectLayout) {
  const auto dir = test::TempDir("sav");
  std::map<int, Mask> objects;
  objects[0] = Mask(5, 4);
  objects[0](1, 1) = 1;
  objects[12] = Mask(5, 4, 1);
  objects[7] = Mask(5, 4);  // present but empty on this frame
  WriteSavObjectPngs(dir.string(), "00007", objects);
  EXPECT_TRUE(fs::exists(dir / "000" / "00007.png"));
  EXPECT_TRUE(fs::exists(dir / "007" / "00007.png"));
  EXPECT_TRUE(fs::exists(dir / "012" / "00007.png"));
  // Files are binary gray PNGs, as sam2's sav_benchmark expects (values > 0 = object).
  EXPECT_EQ(cv::countNonZero(cv::imread((dir / "012" / "00007.png").string(), cv::IMREAD_UNCHANGED) == 255), 20);
  fs::create_directories(dir / "notes");  // not an object folder
  WriteBinaryPng((dir / "notes" / "00007.png").string(), Mask(5, 4, 1));
  auto back = ReadSavObjectPngs(dir.string(), "00007");
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0], objects[0]);
  EXPECT_EQ(back[7], objects[7]);
  EXPECT_EQ(back[12], objects[12]);
  EXPECT_TRUE(ReadSavObjectPngs(dir.string(), "00008").empty());
  EXPECT_THROW(ReadSavObjectPngs((dir / "absent").string(), "00007"), Error);
  EXPECT_THROW(WriteSavObjectPngs(dir.string(), "00009", {{1000, Mask(2, 2)}}), Error);
  EXPECT_THROW(WriteSavObjectPngs(dir.string(), "00009", {{-1, Mask(2, 2)}}), Error);
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------
// Layouts other tools write

TEST(MaskIoFormats, SubByteAndSixteenBitAndInterlacedImages) {
  const int w = 13, h = 7;  // odd width: rows end inside a byte
  std::mt19937 rng(11);
  for (int bits : {1, 2, 4, 8}) {
    std::vector<unsigned> ids(w * h);
    for (auto& v : ids) v = rng() % (1u << bits);
    LabelMap expected(w, h);
    for (int i = 0; i < w * h; ++i) expected.data()[i] = uint8_t(ids[i]);
    for (bool interlaced : {false, true}) {
      SCOPED_TRACE(std::to_string(bits) + "-bit, interlaced " + std::to_string(interlaced));
      // Palette images give their indices whatever the palette colours are.
      EXPECT_EQ(DecodeLabelPng(MakePng(w, h, PNG_COLOR_TYPE_PALETTE, bits, interlaced, ids)), expected);
      // Gray images give their raw values (no 1/2/4-bit scaling to 0..255): a 1-bit mask is 0/1.
      if (bits < 8) EXPECT_EQ(DecodeLabelPng(MakePng(w, h, PNG_COLOR_TYPE_GRAY, bits, interlaced, ids)), expected);
      Mask binary(w, h);
      for (int i = 0; i < w * h; ++i) binary.data()[i] = ids[i] != 0;
      EXPECT_EQ(DecodeBinaryPng(MakePng(w, h, PNG_COLOR_TYPE_PALETTE, bits, interlaced, ids)), binary);
    }
  }
  // 16-bit gray: ids that fit 8 bits are kept; {0, 65535} is a binary mask; other values
  // are scaled and never vanish.
  std::vector<unsigned> small = {0, 1, 2, 7, 254, 255, 3, 0, 1, 1, 0, 2};
  LabelMap small_ids(4, 3);
  for (int i = 0; i < 12; ++i) small_ids.data()[i] = uint8_t(small[i]);
  EXPECT_EQ(DecodeLabelPng(MakePng(4, 3, PNG_COLOR_TYPE_GRAY, 16, false, small)), small_ids);
  std::vector<unsigned> full = {0, 65535, 65535, 0};
  LabelMap one(2, 2);
  one(1, 0) = one(0, 1) = 1;
  EXPECT_EQ(DecodeLabelPng(MakePng(2, 2, PNG_COLOR_TYPE_GRAY, 16, false, full)), one);
  const Mask faint = DecodeBinaryPng(MakePng(4, 1, PNG_COLOR_TYPE_GRAY, 16, false, {0, 1, 300, 40000}));
  EXPECT_EQ(faint.pixels(), (std::vector<uint8_t>{0, 1, 1, 1}));
}

TEST(MaskIoFormats, RgbRenderingsAndAlpha) {
  const auto& p = DavisPalette();
  const std::vector<int> ids = {0, 1, 2, 255, 17, 1};
  std::vector<unsigned> rgb, rgba, rgb16;
  for (int id : ids)
    for (int c = 0; c < 4; ++c) {
      if (c < 3) rgb.push_back(p[id][c]), rgb16.push_back(p[id][c] * 257u);
      rgba.push_back(c < 3 ? p[id][c] : 255u);
    }
  LabelMap expected(3, 2);
  for (int i = 0; i < 6; ++i) expected.data()[i] = uint8_t(ids[i]);
  EXPECT_EQ(DecodeLabelPng(MakePng(3, 2, PNG_COLOR_TYPE_RGB, 8, false, rgb)), expected);
  EXPECT_EQ(DecodeLabelPng(MakePng(3, 2, PNG_COLOR_TYPE_RGB_ALPHA, 8, false, rgba)), expected);
  EXPECT_EQ(DecodeLabelPng(MakePng(3, 2, PNG_COLOR_TYPE_RGB, 16, false, rgb16)), expected);
  // A colour outside the palette names no object.
  rgb[3] = 1;
  EXPECT_THROW(DecodeLabelPng(MakePng(3, 2, PNG_COLOR_TYPE_RGB, 8, false, rgb)), Error);
  // Gray + alpha: the mask is the gray channel; fully opaque background stays background.
  const std::vector<unsigned> gray_alpha = {0, 255, 255, 255, 0, 0, 9, 0};
  EXPECT_EQ(DecodeBinaryPng(MakePng(4, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, gray_alpha)).pixels(),
            (std::vector<uint8_t>{0, 1, 0, 1}));
  EXPECT_THROW(DecodeLabelPng(MakePng(4, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, gray_alpha)), Error);
}

// ---------------------------------------------------------------------------------------
// Real data

TEST(MaskIoReal, OsvosPalettePngsMatchAnIndependentDecoder) {
  LITSEG_REQUIRE_SHARED(kOsvosDir);
  const auto files = PngsUnder(test::SharedPath(kOsvosDir));
  ASSERT_GT(files.size(), 100u);
  size_t checked = 0;
  for (size_t f = 0; f < files.size(); f += 5) {
    const LabelMap labels = ReadLabelPng(files[f].string());
    ASSERT_EQ(labels.width(), 854);
    ASSERT_EQ(labels.height(), 480);
    // OpenCV renders the indices through the file's palette; mapping our ids through the
    // DAVIS palette must give the same colours at every pixel.
    const cv::Mat bgr = cv::imread(files[f].string(), cv::IMREAD_COLOR);
    ASSERT_EQ(bgr.size(), cv::Size(854, 480));
    size_t mismatches = 0;
    for (int y = 0; y < 480; ++y)
      for (int x = 0; x < 854; ++x) {
        const cv::Vec3b px = bgr.at<cv::Vec3b>(y, x);
        mismatches += Rgb{px[2], px[1], px[0]} != DavisPalette()[labels(x, y)];
      }
    ASSERT_EQ(mismatches, 0u) << files[f];
    ++checked;
  }
  EXPECT_GT(checked, 40u);
  // A prediction has objects; writing it back keeps every id.
  const LabelMap labels = ReadLabelPng(files.front().string());
  EXPECT_FALSE(labels.ObjectIds().empty());
  EXPECT_EQ(DecodeLabelPng(EncodePalettePng(labels)), labels);
}

TEST(MaskIoReal, Davis2016GrayAnnotationsReadAsObjectOne) {
  LITSEG_REQUIRE_SHARED(kDavis2016Dir);
  const auto files = PngsUnder(test::SharedPath(kDavis2016Dir));
  ASSERT_GT(files.size(), 200u);
  for (size_t f = 0; f < files.size(); f += 3) {
    const LabelMap labels = ReadLabelPng(files[f].string());
    const cv::Mat gray = cv::imread(files[f].string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(gray.type(), CV_8UC1) << files[f];  // 8-bit gray {0, 255}
    ASSERT_EQ(cv::countNonZero(gray != 0 & gray != 255), 0) << files[f];
    const Mask truth = MaskFromMat(gray);
    ASSERT_EQ(labels.ObjectMask(1), truth) << files[f];
    ASSERT_EQ(Area(labels.ObjectMask(0)) + Area(truth), labels.labels().size()) << "only ids 0 and 1";
    ASSERT_EQ(ReadBinaryPng(files[f].string()), truth) << files[f];
  }
}

// ---------------------------------------------------------------------------------------
// Damaged input

TEST(MaskIoErrors, MissingForeignAndUnwritable) {
  EXPECT_THROW(ReadLabelPng("/nonexistent/x.png"), Error);
  const auto dir = test::TempDir("foreign");
  EXPECT_THROW(ReadLabelPng(dir.string()), Error);  // a folder
  WriteBytes(dir / "text.png", {'n', 'o', 't', ' ', 'a', ' ', 'p', 'n', 'g', '!'});
  EXPECT_THROW(ReadLabelPng((dir / "text.png").string()), Error);
  WriteBytes(dir / "empty.png", {});
  EXPECT_THROW(ReadBinaryPng((dir / "empty.png").string()), Error);
  EXPECT_THROW(WritePalettePng((dir / "no" / "such" / "folder.png").string(), AllIds()), Error);
  EXPECT_THROW(WriteBinaryPng((dir / "zero.png").string(), Mask()), Error);
  EXPECT_FALSE(fs::exists(dir / "zero.png"));
  try {
    ReadLabelPng((dir / "text.png").string());
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text.png"), std::string::npos) << "the message names the file";
  }
  fs::remove_all(dir);
}

TEST(MaskIoErrors, EveryTruncationThrows) {
  LabelMap labels(64, 48);
  std::mt19937 rng(99);
  for (auto& v : labels.labels()) v = static_cast<uint8_t>(rng() % 4);
  const std::vector<uint8_t> good = EncodePalettePng(labels);
  ASSERT_EQ(DecodeLabelPng(good), labels);
  // Without its end the file is incomplete, wherever it is cut (IEND included).
  for (size_t cut = 0; cut < good.size(); ++cut)
    EXPECT_THROW(DecodeLabelPng(std::vector<uint8_t>(good.begin(), good.begin() + cut)), Error) << "cut at " << cut;
  // The same through files, at a few cut points.
  const auto dir = test::TempDir("truncated");
  for (size_t cut : {size_t{7}, size_t{40}, good.size() / 2, good.size() - 1}) {
    WriteBytes(dir / "cut.png", std::vector<uint8_t>(good.begin(), good.begin() + cut));
    EXPECT_THROW(ReadLabelPng((dir / "cut.png").string()), Error);
    EXPECT_THROW(ReadBinaryPng((dir / "cut.png").string()), Error);
  }
  fs::remove_all(dir);
}

TEST(MaskIoErrors, RandomByteDamageThrowsOrDecodesConsistently) {
  LabelMap labels(64, 48);
  std::mt19937 rng(1234);
  for (auto& v : labels.labels()) v = static_cast<uint8_t>(rng() % 4);
  const std::vector<uint8_t> good = EncodePalettePng(labels);
  int errors = 0, decoded = 0;
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint8_t> bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
    // Half the cases get valid CRCs, so the damage reaches the header and zlib stream.
    if (i % 2) RepairCrcs(bytes);
    try {
      const LabelMap result = DecodeLabelPng(bytes);
      ASSERT_EQ(result.labels().size(), size_t(result.width()) * result.height());
      ++decoded;
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_EQ(errors + decoded, 3000);
  EXPECT_GT(errors, 1000) << "most damage must be detected";
}

TEST(MaskIoErrors, ForgedHeadersThrowBeforeAllocating) {
  const std::vector<uint8_t> good = EncodeBinaryPng(Mask(16, 16));
  auto forged = [&](uint32_t width, uint32_t height) {
    std::vector<uint8_t> bytes = good;
    PutBigEndian32(&bytes[16], width);  // IHDR data starts at 8 + 8
    PutBigEndian32(&bytes[20], height);
    RepairCrcs(bytes);
    return bytes;
  };
  EXPECT_THROW(DecodeBinaryPng(forged(30000, 30000)), Error);  // would need 900 MB from ~100 bytes
  EXPECT_THROW(DecodeBinaryPng(forged(2000000000, 1)), Error);
  EXPECT_THROW(DecodeBinaryPng(forged(0, 16)), Error);
  EXPECT_THROW(DecodeBinaryPng(forged(17, 16)), Error);  // too little image data for its size
  EXPECT_EQ(DecodeBinaryPng(forged(16, 16)), Mask(16, 16));
}

}  // namespace
}  // namespace litseg
