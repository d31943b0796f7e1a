// Frame k after a seek is pixel-identical to frame k of a sequential decode, for every k,
// on the three real H.264 clips.
#include <random>

#include <gtest/gtest.h>

#include "common/shared_data.h"
#include "litseg/video/video_source.h"

namespace litseg {
namespace {

uint64_t HashFrame(const cv::Mat& m) {
  uint64_t h = 1469598103934665603ull;
  for (int y = 0; y < m.rows; ++y) {
    const uint8_t* row = m.ptr<uint8_t>(y);
    for (size_t i = 0; i < m.cols * m.elemSize(); ++i) h = (h ^ row[i]) * 1099511628211ull;
  }
  return h;
}

class SeekExactness : public ::testing::TestWithParam<const char*> {};

TEST_P(SeekExactness, EveryFrameMatchesSequentialDecode) {
  const std::string rel = std::string("data/videos/") + GetParam();
  LITSEG_REQUIRE_SHARED(rel);
  const std::string path = test::SharedPath(rel).string();
  std::vector<uint64_t> sequential;
  {
    auto source = OpenVideoSource(path);
    EXPECT_EQ(source->info().width, 1280);
    EXPECT_EQ(source->info().height, 720);
    for (int k = 0; k < source->info().frame_count; ++k) sequential.push_back(HashFrame(source->ReadFrame(k)));
  }
  ASSERT_GT(sequential.size(), 200u);
  // Every frame once, in random order (each read seeks or continues from an unrelated frame).
  std::vector<int> order(sequential.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::shuffle(order.begin(), order.end(), std::mt19937(5));
  auto source = OpenVideoSource(path);
  ASSERT_EQ(source->info().frame_count, static_cast<int>(sequential.size()));
  int mismatches = 0;
  for (int k : order) {
    if (HashFrame(source->ReadFrame(k)) != sequential[k]) {
      ++mismatches;
      ADD_FAILURE() << "frame " << k << " differs after a seek";
      if (mismatches > 5) break;
    }
  }
  // Backward stepping, the GUI's worst case.
  for (int k = static_cast<int>(sequential.size()) - 1; k >= static_cast<int>(sequential.size()) - 40; --k)
    ASSERT_EQ(HashFrame(source->ReadFrame(k)), sequential[k]) << "frame " << k << " stepping backwards";
}

INSTANTIATE_TEST_SUITE_P(RealClips, SeekExactness,
                         ::testing::Values("01_dog.mp4", "03_blocks.mp4", "05_default_juggle.mp4"));

}  // namespace
}  // namespace litseg
