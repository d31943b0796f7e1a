#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/core/mask_io.h"
#include "litseg/core/mask_ops.h"

namespace litseg {
namespace {
namespace fs = std::filesystem;

std::string Bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteBytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

LabelMap AllIds() {
  LabelMap labels(32, 8);
  for (int i = 0; i < 256; ++i) labels(i % 32, i / 32) = static_cast<uint8_t>(i);
  return labels;
}

TEST(DavisPalette, IsThePascalVocColourMap) {
  const auto& p = DavisPalette();
  EXPECT_EQ(p[0], (Rgb{0, 0, 0}));
  EXPECT_EQ(p[1], (Rgb{128, 0, 0}));
  EXPECT_EQ(p[2], (Rgb{0, 128, 0}));
  EXPECT_EQ(p[3], (Rgb{128, 128, 0}));
  EXPECT_EQ(p[255], (Rgb{224, 224, 192}));
}

TEST(MaskIo, PalettePngRoundTripsEveryId) {
  const auto dir = test::TempDir("palette");
  const LabelMap labels = AllIds();
  WritePalettePng((dir / "a.png").string(), labels);
  EXPECT_EQ(ReadLabelPng((dir / "a.png").string()), labels);
  fs::remove_all(dir);
}

TEST(MaskIo, BinaryPngRoundTripAndReadsAsObjectOne) {
  const auto dir = test::TempDir("binary");
  Mask m(17, 9);
  m(3, 4) = m(16, 8) = 1;
  WriteBinaryPng((dir / "m.png").string(), m);
  EXPECT_EQ(ReadBinaryPng((dir / "m.png").string()), m);
  const LabelMap labels = ReadLabelPng((dir / "m.png").string());
  EXPECT_EQ(labels.ObjectIds(), (std::vector<uint8_t>{1}));
  EXPECT_EQ(labels.ForegroundMask(), m);
  fs::remove_all(dir);
}

TEST(MaskIo, SavObjectLayout) {
  const auto dir = test::TempDir("sav");
  std::map<int, Mask> objects;
  objects[0] = Mask(5, 4);
  objects[0](1, 1) = 1;
  objects[12] = Mask(5, 4, 1);
  WriteSavObjectPngs(dir.string(), "00007", objects);
  EXPECT_TRUE(fs::exists(dir / "000" / "00007.png"));
  EXPECT_TRUE(fs::exists(dir / "012" / "00007.png"));
  auto back = ReadSavObjectPngs(dir.string(), "00007");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0], objects[0]);
  EXPECT_EQ(back[12], objects[12]);
  EXPECT_TRUE(ReadSavObjectPngs(dir.string(), "00008").empty());
  fs::remove_all(dir);
}

TEST(MaskIo, RealOsvosPalettePngs) {
  const std::string rel = "data/vos/davis2017-evaluation-osvos-results/results/semi-supervised/osvos/blackswan/00001.png";
  LITSEG_REQUIRE_SHARED(rel);
  const LabelMap labels = ReadLabelPng(test::SharedPath(rel).string());
  EXPECT_EQ(labels.width(), 854);
  EXPECT_EQ(labels.height(), 480);
  EXPECT_EQ(labels.ObjectIds(), (std::vector<uint8_t>{1}));
  EXPECT_GT(Area(labels.ForegroundMask()), 1000u);
  // Writing it back with our palette gives the same pixels and the same palette bytes.
  const auto dir = test::TempDir("osvos");
  WritePalettePng((dir / "b.png").string(), labels);
  EXPECT_EQ(ReadLabelPng((dir / "b.png").string()), labels);
  const std::string original = Bytes(test::SharedPath(rel)), ours = Bytes(dir / "b.png");
  auto plte = [](const std::string& png) {
    const size_t at = png.find("PLTE");
    return at == std::string::npos ? std::string() : png.substr(at + 4, 768);
  };
  ASSERT_FALSE(plte(original).empty());
  EXPECT_EQ(plte(ours), plte(original));
  fs::remove_all(dir);
}

TEST(MaskIo, RealDavis2016GrayAnnotations) {
  const std::string rel = "data/vos/davis2016/DAVIS/Annotations/480p/blackswan/00000.png";
  LITSEG_REQUIRE_SHARED(rel);
  const LabelMap labels = ReadLabelPng(test::SharedPath(rel).string());
  EXPECT_EQ(labels.ObjectIds(), (std::vector<uint8_t>{1}));
  EXPECT_EQ(ReadBinaryPng(test::SharedPath(rel).string()), labels.ForegroundMask());
}

TEST(MaskIoErrors, MissingAndForeignFiles) {
  EXPECT_THROW(ReadLabelPng("/nonexistent/x.png"), Error);
  const auto dir = test::TempDir("foreign");
  WriteBytes(dir / "text.png", "this is not a png at all");
  EXPECT_THROW(ReadLabelPng((dir / "text.png").string()), Error);
  WriteBytes(dir / "empty.png", "");
  EXPECT_THROW(ReadBinaryPng((dir / "empty.png").string()), Error);
  fs::remove_all(dir);
}

TEST(MaskIoErrors, TruncatedAndCorruptedPngsThrowOrDecode) {
  const auto dir = test::TempDir("fuzzpng");
  LabelMap labels(64, 48);
  std::mt19937 rng(99);
  for (auto& v : labels.labels()) v = static_cast<uint8_t>(rng() % 4);
  WritePalettePng((dir / "good.png").string(), labels);
  const std::string good = Bytes(dir / "good.png");
  const fs::path bad = dir / "bad.png";
  // Every truncation point is an error (a PNG without its IEND chunk is incomplete data).
  int truncated_errors = 0;
  for (size_t cut = 0; cut < good.size(); cut += 1 + cut / 16) {
    WriteBytes(bad, good.substr(0, cut));
    try {
      ReadLabelPng(bad.string());
    } catch (const Error&) {
      ++truncated_errors;
    }
  }
  EXPECT_GT(truncated_errors, 0);
  // Random byte flips: either a clean error or a valid decode of the right size, never a crash.
  for (int i = 0; i < 1500; ++i) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng() % 256);
    WriteBytes(bad, bytes);
    try {
      LabelMap decoded = ReadLabelPng(bad.string());
      EXPECT_GT(decoded.width(), 0);
    } catch (const Error&) {
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace litseg
