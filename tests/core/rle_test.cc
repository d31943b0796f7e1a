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
  // masklet_size_abs = mean area over the frames where the object is visible.
  for (size_t o = 0; o < objects; ++o) {
    ASSERT_GT(present[o], 0);
    EXPECT_NEAR(area_sum[o] / present[o], size_abs[o].get<double>(), 1e-6) << "masklet " << o;
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
