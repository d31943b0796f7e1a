#include <algorithm>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/core/mask_ops.h"
#include "litseg/core/rle.h"

namespace litseg {
namespace {

Mask RandomMask(std::mt19937& rng, int w, int h, double density) {
  Mask m(w, h);
  std::bernoulli_distribution on(density);
  // Blocky content so runs have realistic lengths.
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m(x, y) = on(rng) ? 1 : (x > 0 && m(x - 1, y) && on(rng) ? 1 : 0);
  return m;
}

TEST(Rle, EncodesColumnMajorStartingWithBackground) {
  // 2x3 mask (h=2, w=3): column-major pixels 0,1 | 1,1 | 0,0
  Mask m(3, 2);
  m(0, 1) = 1;
  m(1, 0) = 1;
  m(1, 1) = 1;
  Rle rle = EncodeRle(m);
  EXPECT_EQ(rle.counts, (std::vector<uint32_t>{1, 3, 2}));
  EXPECT_EQ(RleArea(rle), 3u);
  EXPECT_EQ(DecodeRle(rle), m);

  Mask first_set(2, 2, 1);
  EXPECT_EQ(EncodeRle(first_set).counts, (std::vector<uint32_t>{0, 4}));
}

TEST(Rle, CompressedStringMatchesPycocotoolsExamples) {
  // pycocotools: encode(np.asfortranarray of a 4x4 with a 2x2 square in the middle)
  // -> counts [5, 2, 2, 2, 5] -> b'52203'
  Rle rle{4, 4, {5, 2, 2, 2, 5}};
  EXPECT_EQ(ToCompressedString(rle), "52203");
  EXPECT_EQ(RleFromCompressedString("52203", 4, 4), rle);
}

TEST(Rle, CompressedStringWithMultiCharacterAndNegativeDeltas) {
  // Worked by hand from maskApi.c rleToString (5 bits per character, 0x20 = more follows,
  // 0x10 of the last character = sign, +48), counts from the fourth on as deltas:
  //   100        -> 4|0x20, 3          -> 'T' '3'
  //   30         -> 30|0x20, 0         -> 'n' '0'   (bit 4 set: a 0 chunk ends it)
  //   200        -> 8|0x20, 6          -> 'X' '6'   (third count: no delta yet)
  //   40 - 30    -> 10                 -> ':'
  //   10 - 200   -> -190: 2|0x20, 26   -> 'R' 'J'   (26 has bit 4: negative, ends)
  const Rle rle{19, 20, {100, 30, 200, 40, 10}};
  EXPECT_EQ(ToCompressedString(rle), "T3n0X6:RJ");
  EXPECT_EQ(RleFromCompressedString("T3n0X6:RJ", 19, 20), rle);
  // Large runs need up to seven characters (35 bits) for a full uint32 delta.
  const Rle big{65536, 65536, {0xFFFFFFFFu, 1, 0, 0}};
  const std::string s = ToCompressedString(big);
  EXPECT_EQ(RleFromCompressedString(s, 65536, 65536), big);
  EXPECT_THROW(DecodeRle(big), Error) << "4 G pixels is no mask to decode";
}

TEST(Rle, EdgeShapes) {
  // pycocotools encodes an empty (0-pixel) mask as counts [0] and an all-background mask
  // as one run.
  EXPECT_EQ(EncodeRle(Mask()).counts, (std::vector<uint32_t>{0}));
  EXPECT_EQ(ToCompressedString(EncodeRle(Mask())), "0");
  EXPECT_EQ(EncodeRle(Mask(3, 5)).counts, (std::vector<uint32_t>{15}));
  EXPECT_EQ(DecodeRle(Rle{5, 3, {15}}), Mask(3, 5));
  EXPECT_EQ(DecodeRle(Rle{0, 7, {}}), Mask(7, 0));
  // Non-zero values other than 1 count as foreground.
  Mask m(2, 2);
  m(1, 1) = 255;
  EXPECT_EQ(EncodeRle(m).counts, (std::vector<uint32_t>{3, 1}));
  // Zero-length runs in the middle (as merged RLEs may have) decode fine.
  Mask expected(2, 2);
  expected(0, 1) = 1;  // column-major index 1
  EXPECT_EQ(DecodeRle(Rle{2, 2, {1, 0, 0, 1, 2}}), expected);
}

TEST(Rle, RandomRoundTrips) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    const int w = 1 + static_cast<int>(rng() % 97), h = 1 + static_cast<int>(rng() % 61);
    Mask m = RandomMask(rng, w, h, (rng() % 100) / 100.0);
    Rle rle = EncodeRle(m);
    EXPECT_EQ(DecodeRle(rle), m);
    EXPECT_EQ(RleArea(rle), Area(m));
    const std::string s = ToCompressedString(rle);
    EXPECT_EQ(RleFromCompressedString(s, h, w), rle);
    EXPECT_EQ(RleFromJson(RleToJson(rle, false)), rle);
    EXPECT_EQ(RleFromJson(RleToJson(rle, true)), rle);
  }
}

TEST(Rle, SavManualAnnotationsRoundTripByteForByte) {
  const std::string rel = "data/vos/sa-v/sav_dataset/example/sav_000001_manual.json";
  LITSEG_REQUIRE_SHARED(rel);
  std::ifstream in(test::SharedPath(rel));
  const nlohmann::json sav = nlohmann::json::parse(in);
  const auto& masklets = sav.at("masklet");
  const auto& size_abs = sav.at("masklet_size_abs");
  const size_t objects = size_abs.size();
  ASSERT_EQ(sav.at("masklet_num").get<size_t>(), objects);
  std::vector<double> area_sum(objects, 0.0);
  std::vector<int> present(objects, 0);
  size_t strings = 0;
  for (const auto& frame : masklets) {
    ASSERT_EQ(frame.size(), objects);
    for (size_t o = 0; o < objects; ++o) {
      const std::string counts = frame[o].at("counts").get<std::string>();
      const Rle rle = RleFromJson(frame[o]);
      ASSERT_EQ(rle.height, sav.at("video_height").get<double>());
      ASSERT_EQ(rle.width, sav.at("video_width").get<double>());
      const Mask mask = DecodeRle(rle);
      const uint64_t area = Area(mask);
      EXPECT_EQ(area, RleArea(rle));
      if (area > 0) {
        area_sum[o] += static_cast<double>(area);
        ++present[o];
      }
      // Re-encoding the decoded pixels gives back the exact string.
      ASSERT_EQ(ToCompressedString(EncodeRle(mask)), counts) << "frame object " << o;
      ++strings;
    }
  }
  EXPECT_EQ(strings, masklets.size() * objects);
  // masklet_size_abs = mean area over the frames where the object is visible, and
  // masklet_size_rel = the same divided by the frame's pixel count.
  const double resolution = sav.at("video_resolution").get<double>();
  for (size_t o = 0; o < objects; ++o) {
    ASSERT_GT(present[o], 0);
    const double mean_area = area_sum[o] / present[o];
    EXPECT_NEAR(mean_area, size_abs[o].get<double>(), 1e-6) << "masklet " << o;
    EXPECT_NEAR(mean_area / resolution, sav.at("masklet_size_rel")[o].get<double>(), 1e-9) << "masklet " << o;
  }
}

TEST(Rle, SavVisibilityStatisticsFollowFromTheDecodedMasks) {
  const std::string rel = "data/vos/sa-v/sav_dataset/example/sav_000001_manual.json";
  LITSEG_REQUIRE_SHARED(rel);
  std::ifstream in(test::SharedPath(rel));
  const nlohmann::json sav = nlohmann::json::parse(in);
  const auto& masklets = sav.at("masklet");
  for (size_t o = 0; o < sav.at("masklet_num").get<size_t>(); ++o) {
    // Visibility per annotated frame, from the decoded masks' areas.
    std::vector<bool> visible;
    for (const auto& frame : masklets) visible.push_back(Area(DecodeRle(RleFromJson(frame[o]))) > 0);
    const size_t first = std::find(visible.begin(), visible.end(), true) - visible.begin();
    int changes = 0;  // appearing / disappearing after the first appearance
    for (size_t f = first + 1; f < visible.size(); ++f) changes += visible[f] != visible[f - 1];
    EXPECT_EQ(first, static_cast<size_t>(sav.at("masklet_first_appeared_frame")[o].get<double>())) << "masklet " << o;
    EXPECT_EQ(changes, sav.at("masklet_visibility_changes")[o].get<int>()) << "masklet " << o;
    EXPECT_EQ(visible.size(), sav.at("masklet_frame_count")[o].get<size_t>());
  }
}

TEST(RleErrors, MalformedStringsThrow) {
  EXPECT_THROW(RleFromCompressedString("52203", 4, 5), Error);  // sums to 16, not 20
  EXPECT_THROW(RleFromCompressedString("5220", 4, 4), Error);   // short
  EXPECT_THROW(RleFromCompressedString("52 03", 4, 4), Error);  // space is outside the alphabet
  EXPECT_THROW(RleFromCompressedString("5220\x7f", 4, 4), Error);
  EXPECT_THROW(RleFromCompressedString("52203o", 4, 4), Error);  // 'o' continues past the end
  EXPECT_THROW(RleFromCompressedString("52203", -4, -4), Error);
  EXPECT_THROW(DecodeRle(Rle{4, 4, {5, 2, 2}}), Error);
  EXPECT_THROW(RleFromJson(nlohmann::json{{"size", {4, 4}}, {"counts", {5, -2, 13}}}), Error);
  EXPECT_THROW(RleFromJson(nlohmann::json{{"size", {4}}, {"counts", "52203"}}), Error);
  EXPECT_THROW(RleFromJson(nlohmann::json{{"counts", "52203"}}), Error);
  EXPECT_THROW(RleFromJson(nlohmann::json{{"size", {-4, -4}}, {"counts", nlohmann::json::array()}}), Error);
  EXPECT_THROW(RleFromJson(nlohmann::json{{"size", {4, 4}}, {"counts", {5, 2, 2, 2, 4}}}), Error);  // sums to 15
  EXPECT_THROW(RleFromJson(nlohmann::json{{"size", {4, 4}}, {"counts", {5, 2.5, 9}}}), Error);
  EXPECT_THROW(RleFromJson(nlohmann::json{{"size", {4, 4}}, {"counts", {16, 4294967296LL}}}), Error);
  EXPECT_THROW(RleFromJson(nlohmann::json{{"size", {4, 4}}, {"counts", 16}}), Error);
  EXPECT_THROW(RleFromJson(nlohmann::json{{"size", {4000000000LL, 1}}, {"counts", "0"}}), Error);
  EXPECT_THROW(RleFromJson(nlohmann::json::array()), Error);
  EXPECT_THROW(DecodeRle(Rle{-1, 4, {}}), Error);
  EXPECT_THROW(RleArea(Rle{4, 4, {5, 2}}), Error);
  // A run that decodes below zero ('O' = -1 added to counts[1] = 0), and a number longer
  // than any 32-bit count.
  EXPECT_THROW(RleFromCompressedString("100O", 1, 1), Error);
  EXPECT_THROW(RleFromCompressedString(std::string(20, 'o') + "0", 1, 1), Error);
  // Both JSON forms are accepted and agree.
  const Rle a = RleFromJson(nlohmann::json::parse(R"({"size": [4, 4], "counts": "52203"})"));
  const Rle b = RleFromJson(nlohmann::json::parse(R"({"size": [4, 4], "counts": [5, 2, 2, 2, 5]})"));
  EXPECT_EQ(a, b);
  EXPECT_EQ(RleToJson(a).dump(), R"({"counts":"52203","size":[4,4]})");
}

TEST(RleErrors, DamagedRealStringsThrowOrDecodeConsistently) {
  const std::string rel = "data/vos/sa-v/sav_dataset/example/sav_000001_manual.json";
  LITSEG_REQUIRE_SHARED(rel);
  std::ifstream in(test::SharedPath(rel));
  const nlohmann::json sav = nlohmann::json::parse(in);
  const std::string good = sav.at("masklet")[60][1].at("counts").get<std::string>();
  const int h = 848, w = 480;
  std::mt19937 rng(77);
  int errors = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string s = good;
    switch (i % 3) {
      case 0: s.resize(rng() % s.size()); break;                             // truncated
      case 1: s[rng() % s.size()] = static_cast<char>(48 + rng() % 64); break;  // other valid character
      default: s.erase(rng() % s.size(), 1 + rng() % 3); break;              // characters lost
    }
    try {
      const Rle rle = RleFromCompressedString(s, h, w);
      EXPECT_EQ(Area(DecodeRle(rle)), RleArea(rle));
    } catch (const Error&) {
      ++errors;
    }
  }
  // Nearly every damage breaks the total of h * w pixels.
  EXPECT_GT(errors, 1900);
}

TEST(RleErrors, FuzzedStringsNeverCrash) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> any_char(0, 255), alphabet(48, 111);
  int accepted = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string s(1 + rng() % 40, '0');
    for (char& c : s) c = static_cast<char>(i % 3 == 0 ? any_char(rng) : alphabet(rng));
    try {
      Rle rle = RleFromCompressedString(s, 1 + rng() % 30, 1 + rng() % 30);
      // Accepted strings must decode consistently.
      EXPECT_EQ(Area(DecodeRle(rle)), RleArea(rle));
      ++accepted;
    } catch (const Error&) {
    }
  }
  // Most random strings are inconsistent with the size; the point is: no crash, no hang.
  EXPECT_LT(accepted, 5000);
}

}  // namespace
}  // namespace litseg
