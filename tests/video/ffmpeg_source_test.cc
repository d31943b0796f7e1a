// FFmpeg-backed VideoSource: codecs, rotation, variable frame rate, frame-exact seeking,
// truncated and foreign files. Clips are generated with Mp4Writer from synthetic frames
// (small, so the whole suite stays fast); the real clips in ../shared are used when present.
#include <filesystem>
#include <functional>
#include <map>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "video/video_test_util.h"

namespace litseg {
namespace {
namespace fs = std::filesystem;
using test::HashFrame;
using test::MeanAbsDiff;

std::string ErrorText(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------------------------------
// Every codec the issue names, in the common containers, plus streams without usable
// timestamps, through the same checks: metadata, closeness to the rendered frames (and
// not to the neighbouring ones), and frame-exact random access.

struct CodecCase {
  const char* label;
  const char* encoder;
  const char* extension;
  const char* codec;  // VideoInfo::codec expected after decoding
  double max_mean_diff;
  std::map<std::string, std::string> options;
};

void PrintTo(const CodecCase& c, std::ostream* os) { *os << c.label; }

class CodecRoundTrip : public ::testing::TestWithParam<CodecCase> {};

TEST_P(CodecRoundTrip, DecodesEveryFrameExactlyInAnyOrder) {
  const CodecCase& c = GetParam();
  const auto dir = test::TempDir(std::string("codec_") + c.label);
  const std::string path = (dir / (std::string("clip") + c.extension)).string();
  const SynthParams p = test::SmallClip(36);
  Mp4WriterOptions options;
  options.encoder = c.encoder;
  options.gop_size = 12;  // three keyframes: seeks must pick the right one
  options.preset = "veryfast";  // with B-frames, like most real H.264/H.265 files
  options.codec_options = c.options;
  std::string why;
  if (!test::EncodeClip(p, path, options, &why)) GTEST_SKIP() << why;

  auto source = OpenVideoSource(path);
  const VideoInfo& info = source->info();
  EXPECT_EQ(info.kind, "ffmpeg");
  EXPECT_EQ(info.codec, c.codec);
  EXPECT_EQ(info.width, p.width);
  EXPECT_EQ(info.height, p.height);
  ASSERT_EQ(info.frame_count, p.frames);
  EXPECT_FALSE(info.truncated) << info.warning;
  EXPECT_NEAR(info.fps, 25.0, 1e-3);
  EXPECT_NEAR(source->FrameTime(10), 0.4, 1e-3);

  SyntheticClip clip(p);
  std::vector<uint64_t> hashes;
  for (int k = 0; k < p.frames; ++k) {
    const cv::Mat frame = source->ReadFrame(k);
    ASSERT_EQ(frame.type(), CV_8UC3);
    const double diff = MeanAbsDiff(frame, clip.Render(k).rgb);
    EXPECT_LT(diff, c.max_mean_diff) << "frame " << k;
    // Neighbouring frames differ more from it than the codec's loss (so the index is right).
    if (k > 0) EXPECT_GT(MeanAbsDiff(frame, clip.Render(k - 1).rgb), diff) << "frame " << k;
    hashes.push_back(HashFrame(frame));
  }
  EXPECT_EQ(source->decode_stats().seeks, 0) << "a sequential read must not seek";
  EXPECT_EQ(source->decode_stats().frames_decoded, p.frames);

  auto fresh = OpenVideoSource(path);
  EXPECT_EQ(test::RandomOrderMismatches(*fresh, hashes, -1, 3), 0);
  for (int k = p.frames - 1; k >= 0; k -= 5) EXPECT_EQ(HashFrame(fresh->ReadFrame(k)), hashes[k]) << "backwards " << k;
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, CodecRoundTrip,
    ::testing::Values(CodecCase{"h264", "libx264", ".mp4", "h264", 6.0, {}},
                      CodecCase{"h264_mkv", "libx264", ".mkv", "h264", 6.0, {}},
                      CodecCase{"h264_ts", "libx264", ".ts", "h264", 6.0, {}},
                      // No usable pts with B-frames: frames are identified by decode order.
                      CodecCase{"h264_raw", "libx264", ".h264", "h264", 6.0, {}},
                      CodecCase{"h264_avi", "libx264", ".avi", "h264", 6.0, {}},
                      CodecCase{"hevc_raw", "libx265", ".hevc", "hevc", 6.0, {}},
                      CodecCase{"mpeg2_ps", "mpeg2video", ".mpg", "mpeg2video", 8.0, {{"bf", "2"}, {"b", "2M"}}},
                      CodecCase{"hevc", "libx265", ".mp4", "hevc", 6.0, {}},
                      CodecCase{"vp9", "libvpx-vp9", ".webm", "vp9", 8.0, {{"deadline", "realtime"}, {"cpu-used", "8"}}},
                      CodecCase{"av1", "libaom-av1", ".mkv", "av1", 8.0, {{"cpu-used", "8"}}},
                      CodecCase{"mjpeg", "mjpeg", ".avi", "mjpeg", 8.0, {{"b", "4M"}}},
                      CodecCase{"mpeg4_bframes", "mpeg4", ".mp4", "mpeg4", 8.0, {{"bf", "2"}, {"b", "2M"}}},
                      CodecCase{"ffv1", "ffv1", ".mkv", "ffv1", 4.0, {}}),
    [](const ::testing::TestParamInfo<CodecCase>& info) { return std::string(info.param.label); });

// ---------------------------------------------------------------------------------------

class Rotation : public ::testing::TestWithParam<int> {};

TEST_P(Rotation, DisplayMatrixIsApplied) {
  const int degrees = GetParam();
  const auto dir = test::TempDir("rotation_" + std::to_string(degrees));
  const std::string path = (dir / "rotated.mp4").string();
  const SynthParams p = test::SmallClip(8);
  Mp4WriterOptions options;
  options.rotation_degrees = degrees;
  ASSERT_TRUE(test::EncodeClip(p, path, options));

  auto source = OpenVideoSource(path);
  const VideoInfo& info = source->info();
  EXPECT_EQ(info.rotation_degrees, degrees);
  const bool swapped = degrees % 180 != 0;
  EXPECT_EQ(info.width, swapped ? p.height : p.width);
  EXPECT_EQ(info.height, swapped ? p.width : p.height);
  cv::Mat expected = SyntheticClip(p).Render(5).rgb;
  if (degrees == 90) cv::rotate(expected, expected, cv::ROTATE_90_CLOCKWISE);
  if (degrees == 180) cv::rotate(expected, expected, cv::ROTATE_180);
  if (degrees == 270) cv::rotate(expected, expected, cv::ROTATE_90_COUNTERCLOCKWISE);
  const cv::Mat frame = source->ReadFrame(5);
  ASSERT_EQ(frame.size(), expected.size());
  EXPECT_LT(MeanAbsDiff(frame, expected), 6.0);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Degrees, Rotation, ::testing::Values(0, 90, 180, 270));

// ---------------------------------------------------------------------------------------

TEST(FfmpegSource, VariableFrameRate) {
  const auto dir = test::TempDir("vfr");
  const std::string path = (dir / "vfr.mp4").string();
  const SynthParams p = test::SmallClip(40);
  Mp4WriterOptions options;
  options.timescale = 1000;
  options.gop_size = 10;
  SyntheticClip clip(p);
  std::vector<double> times;
  {
    Mp4Writer writer(path, p.width, p.height, p.fps, options);
    const int steps_ms[] = {40, 40, 80, 20, 120, 40, 33};
    int t_ms = 0;
    for (int k = 0; k < p.frames; ++k) {
      times.push_back(t_ms / 1000.0);
      writer.WriteAt(clip.Render(k).rgb, t_ms / 1000.0);
      t_ms += steps_ms[k % 7];
    }
    writer.Finish();
  }
  auto source = OpenVideoSource(path);
  ASSERT_EQ(source->info().frame_count, p.frames);
  for (int k = 0; k < p.frames; ++k) EXPECT_NEAR(source->FrameTime(k), times[k], 1e-6) << "frame " << k;
  std::vector<uint64_t> hashes;
  for (int k = 0; k < p.frames; ++k) {
    const cv::Mat frame = source->ReadFrame(k);
    EXPECT_LT(MeanAbsDiff(frame, clip.Render(k).rgb), 6.0) << "frame " << k;
    hashes.push_back(HashFrame(frame));
  }
  auto fresh = OpenVideoSource(path);
  EXPECT_EQ(test::RandomOrderMismatches(*fresh, hashes, -1, 11), 0);
  fs::remove_all(dir);
}

TEST(FfmpegSource, TruncatedMatroskaKeepsEveryDecodableFrame) {
  const auto dir = test::TempDir("truncated_mkv");
  const std::string path = (dir / "full.mkv").string();
  const SynthParams p = test::SmallClip(60);
  Mp4WriterOptions options;
  options.gop_size = 10;
  ASSERT_TRUE(test::EncodeClip(p, path, options));
  auto full = OpenVideoSource(path);
  const std::vector<uint64_t> hashes = test::SequentialHashes(*full, p.frames);

  const std::string bytes = test::ReadBytes(path);
  const std::string cut = (dir / "cut.mkv").string();
  test::WriteBytes(cut, bytes.substr(0, bytes.size() * 6 / 10));
  auto source = OpenVideoSource(cut);
  const int n = source->info().frame_count;
  EXPECT_GT(n, 15);
  EXPECT_LT(n, p.frames);
  for (int k = 0; k < n; ++k) ASSERT_EQ(HashFrame(source->ReadFrame(k)), hashes[k]) << "frame " << k;
  EXPECT_EQ(test::RandomOrderMismatches(*source, std::vector<uint64_t>(hashes.begin(), hashes.begin() + n), -1, 2), 0);
  EXPECT_THROW(source->ReadFrame(n), Error);
  fs::remove_all(dir);
}

TEST(FfmpegSource, CutBeforeTheIndexIsAClearError) {
  // Mp4Writer puts the index (moov) at the end, so a cut file has none: say so.
  const auto dir = test::TempDir("truncated_mp4");
  const std::string path = (dir / "full.mp4").string();
  ASSERT_TRUE(test::EncodeClip(test::SmallClip(20), path, {}));
  const std::string bytes = test::ReadBytes(path);
  const std::string cut = (dir / "cut.mp4").string();
  test::WriteBytes(cut, bytes.substr(0, bytes.size() / 2));
  const std::string message = ErrorText([&] { OpenVideoSource(cut); });
  EXPECT_NE(message.find("cut.mp4"), std::string::npos) << message;
  EXPECT_NE(message.find("cut short"), std::string::npos) << message;
  fs::remove_all(dir);
}

TEST(FfmpegSource, UnsupportedCodecIsNamed) {
  // An AVI whose FourCC no decoder knows: write FFV1 and rename its tag.
  const auto dir = test::TempDir("unsupported");
  const std::string path = (dir / "ffv1.avi").string();
  Mp4WriterOptions options;
  options.encoder = "ffv1";
  std::string why;
  if (!test::EncodeClip(test::SmallClip(4), path, options, &why)) GTEST_SKIP() << why;
  std::string bytes = test::ReadBytes(path);
  int renamed = 0;
  for (size_t at = bytes.find("FFV1"); at != std::string::npos; at = bytes.find("FFV1", at + 4)) {
    bytes.replace(at, 4, "QZQZ");
    ++renamed;
  }
  ASSERT_GT(renamed, 0);
  const std::string patched = (dir / "mystery.avi").string();
  test::WriteBytes(patched, bytes);
  const std::string message = ErrorText([&] { OpenVideoSource(patched); });
  EXPECT_NE(message.find("unsupported codec"), std::string::npos) << message;
  EXPECT_NE(message.find("QZQZ"), std::string::npos) << message;
  EXPECT_NE(message.find("mystery.avi"), std::string::npos) << message;
  fs::remove_all(dir);
}

TEST(FfmpegSource, MissingAndForeignFiles) {
  EXPECT_NE(ErrorText([] { OpenVideoSource("/nonexistent/video.mp4"); }).find("/nonexistent/video.mp4"),
            std::string::npos);
  const auto dir = test::TempDir("foreign_video");
  test::WriteBytes((dir / "notes.mp4").string(), "definitely not a video, just some text\n");
  const std::string message = ErrorText([&] { OpenVideoSource((dir / "notes.mp4").string()); });
  EXPECT_NE(message.find("notes.mp4"), std::string::npos) << message;
  EXPECT_NE(message.find("not a video"), std::string::npos) << message;
  test::WriteBytes((dir / "empty.mp4").string(), "");
  EXPECT_NE(ErrorText([&] { OpenVideoSource((dir / "empty.mp4").string()); }).find("empty.mp4"), std::string::npos);
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------
// The real clips (1280x720 H.264). The every-frame check lives in seek_slowtest.cc.

TEST(FfmpegSource, RealClipInfoSequentialAndSeeks) {
  const std::string rel = "data/videos/05_default_juggle.mp4";
  LITSEG_REQUIRE_SHARED(rel);
  auto source = OpenVideoSource(test::SharedPath(rel).string());
  const VideoInfo& info = source->info();
  EXPECT_EQ(info.kind, "ffmpeg");
  EXPECT_EQ(info.codec, "h264");
  EXPECT_EQ(info.width, 1280);
  EXPECT_EQ(info.height, 720);
  EXPECT_EQ(info.frame_count, 247);
  EXPECT_NEAR(info.fps, 24.0, 1e-6);
  EXPECT_FALSE(info.truncated);
  EXPECT_NEAR(source->FrameTime(24), 1.0, 1e-6);
  EXPECT_THROW(source->ReadFrame(247), Error);
  EXPECT_THROW(source->ReadFrame(-1), Error);

  const std::vector<uint64_t> hashes = test::SequentialHashes(*source, info.frame_count);
  EXPECT_EQ(source->decode_stats().seeks, 0);
  EXPECT_EQ(source->decode_stats().frames_decoded, info.frame_count);
  EXPECT_EQ(test::RandomOrderMismatches(*source, hashes, 20, 7), 0);
  for (int k : {246, 245, 200, 1, 0, 130, 129}) EXPECT_EQ(HashFrame(source->ReadFrame(k)), hashes[k]) << k;
}

TEST(FfmpegSource, TruncatedRealClipDecodesWhatIsReadable) {
  const std::string rel = "data/videos/01_dog.mp4";
  LITSEG_REQUIRE_SHARED(rel);
  const auto dir = test::TempDir("truncated");
  const std::string bytes = test::ReadBytes(test::SharedPath(rel).string());
  const std::string cut = (dir / "cut.mp4").string();
  test::WriteBytes(cut, bytes.substr(0, bytes.size() / 2));  // the index (moov) is at the front

  auto source = OpenVideoSource(cut);
  const VideoInfo& info = source->info();
  EXPECT_TRUE(info.truncated);
  EXPECT_NE(info.warning.find("stops at frame " + std::to_string(info.frame_count)), std::string::npos) << info.warning;
  EXPECT_GT(info.frame_count, 100);
  EXPECT_LT(info.frame_count, 289);
  // Every frame below frame_count decodes, and is the same picture as in the intact file.
  auto full = OpenVideoSource(test::SharedPath(rel).string());
  const std::vector<uint64_t> hashes = test::SequentialHashes(*full, info.frame_count);
  for (int k = 0; k < info.frame_count; ++k) ASSERT_EQ(HashFrame(source->ReadFrame(k)), hashes[k]) << "frame " << k;
  for (int k : {info.frame_count - 1, 3, info.frame_count / 2})
    EXPECT_EQ(HashFrame(source->ReadFrame(k)), hashes[k]) << "after a seek: frame " << k;
  const std::string past = ErrorText([&] { source->ReadFrame(info.frame_count); });
  EXPECT_NE(past.find("out of range"), std::string::npos) << past;

  // Cut inside the index: a clear error, not a crash.
  test::WriteBytes(cut, bytes.substr(0, 4000));
  const std::string message = ErrorText([&] { OpenVideoSource(cut); });
  EXPECT_NE(message.find("cut.mp4"), std::string::npos) << message;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace litseg
