// Frame k after a seek is pixel-identical to frame k of a sequential decode, for every k,
// on the three real H.264 clips (1280x720, one or two keyframes each, so most reads decode
// a long run of frames: this is the slow part of the suite).
#include <gtest/gtest.h>

#include "common/shared_data.h"
#include "video/video_test_util.h"

namespace litseg {
namespace {

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
    sequential = test::SequentialHashes(*source, source->info().frame_count);
    EXPECT_EQ(source->decode_stats().seeks, 0) << "sequential reading must not seek";
  }
  ASSERT_GT(sequential.size(), 200u);
  // Every frame once, in random order (each read seeks or continues from an unrelated frame).
  auto source = OpenVideoSource(path);
  ASSERT_EQ(source->info().frame_count, static_cast<int>(sequential.size()));
  EXPECT_EQ(test::RandomOrderMismatches(*source, sequential, -1, 5), 0);
  // Backward stepping, the GUI's worst case.
  const int n = static_cast<int>(sequential.size());
  for (int k = n - 1; k >= n - 20; --k)
    ASSERT_EQ(test::HashFrame(source->ReadFrame(k)), sequential[k]) << "frame " << k << " stepping backwards";
}

INSTANTIATE_TEST_SUITE_P(RealClips, SeekExactness,
                         ::testing::Values("01_dog.mp4", "03_blocks.mp4", "05_default_juggle.mp4"));

}  // namespace
}  // namespace litseg
