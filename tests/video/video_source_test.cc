#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/core/mask_io.h"
#include "litseg/video/frame_cache.h"
#include "litseg/video/synthetic.h"
#include "litseg/video/video_source.h"
#include "litseg/video/video_writer.h"

namespace litseg {
namespace {
namespace fs = std::filesystem;

bool SameMat(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

TEST(FfmpegSource, RealClipInfoAndTimes) {
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
  cv::Mat f = source->ReadFrame(100);
  EXPECT_EQ(f.type(), CV_8UC3);
  EXPECT_THROW(source->ReadFrame(247), Error);
  EXPECT_THROW(source->ReadFrame(-1), Error);
}

TEST(FfmpegSource, TruncatedFileDecodesWhatIsReadable) {
  const std::string rel = "data/videos/01_dog.mp4";
  LITSEG_REQUIRE_SHARED(rel);
  const auto dir = test::TempDir("truncated");
  std::ifstream in(test::SharedPath(rel), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  {
    std::ofstream out(dir / "cut.mp4", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  // Either the container index is lost (clear error) or the readable part decodes and the
  // source reports where it stops.
  try {
    auto source = OpenVideoSource((dir / "cut.mp4").string());
    const VideoInfo& info = source->info();
    EXPECT_GT(info.frame_count, 0);
    EXPECT_NO_THROW(source->ReadFrame(0));
    int readable = 0;
    for (int k = 0; k < info.frame_count; ++k) {
      try {
        source->ReadFrame(k);
        ++readable;
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("frame"), std::string::npos);
        break;
      }
    }
    EXPECT_GT(readable, 10);
    EXPECT_LT(readable, 289);
    if (readable < info.frame_count) EXPECT_TRUE(info.truncated);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.mp4"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(VideoSourceErrors, MissingForeignAndEmpty) {
  EXPECT_THROW(OpenVideoSource("/nonexistent/video.mp4"), Error);
  const auto dir = test::TempDir("foreign_video");
  {
    std::ofstream(dir / "notes.mp4") << "definitely not a video";
  }
  try {
    OpenVideoSource((dir / "notes.mp4").string());
    ADD_FAILURE() << "a text file opened as a video";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("notes.mp4"), std::string::npos);
  }
  fs::create_directories(dir / "empty");
  EXPECT_THROW(OpenVideoSource((dir / "empty").string()), Error);
  fs::remove_all(dir);
}

TEST(FrameFolderSource, OrderGapsAndReadErrors) {
  const auto dir = test::TempDir("frames");
  for (int i : {0, 1, 2, 3, 5}) {
    cv::Mat img(24, 32, CV_8UC3, cv::Scalar(i * 10, 0, 255 - i * 10));  // BGR on disk
    char name[16];
    std::snprintf(name, sizeof(name), "%05d.png", i);
    cv::imwrite((dir / name).string(), img);
  }
  try {
    OpenVideoSource(dir.string());
    ADD_FAILURE() << "gap not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gap"), std::string::npos) << e.what();
  }
  VideoOpenOptions options;
  options.allow_gaps = true;
  auto source = OpenVideoSource(dir.string(), options);
  EXPECT_EQ(source->info().frame_count, 5);
  EXPECT_EQ(source->info().width, 32);
  cv::Mat f4 = source->ReadFrame(4);  // file 00005.png
  EXPECT_EQ(f4.at<cv::Vec3b>(0, 0), cv::Vec3b(255 - 50, 0, 50));  // RGB
  // A corrupt frame is a clear error naming the file.
  { std::ofstream(dir / "00004.png") << "broken"; }
  auto with_broken = OpenVideoSource(dir.string());
  try {
    with_broken->ReadFrame(4);
    ADD_FAILURE() << "corrupt frame decoded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("00004.png"), std::string::npos);
  }
  fs::remove_all(dir);
}

TEST(FrameFolderSource, DavisSequence) {
  const std::string rel = "data/vos/davis2016/DAVIS/JPEGImages/480p/blackswan";
  LITSEG_REQUIRE_SHARED(rel);
  auto source = OpenVideoSource(test::SharedPath(rel).string());
  EXPECT_EQ(source->info().frame_count, 50);
  EXPECT_EQ(source->info().width, 854);
  EXPECT_EQ(source->info().height, 480);
  EXPECT_TRUE(SameMat(source->ReadFrame(7), source->ReadFrame(7)));
}

TEST(Synthetic, DeterministicRandomAccessAndExactMasks) {
  SynthParams p;
  p.width = 160;
  p.height = 96;
  p.frames = 200;
  p.objects = 4;
  p.seed = 3;
  SyntheticClip a(p), b(p);
  SynthFrame f = a.Render(120);
  EXPECT_TRUE(SameMat(f.rgb, b.Render(120).rgb));
  EXPECT_EQ(f.labels, b.Render(120).labels);
  p.seed = 4;
  EXPECT_FALSE(SameMat(f.rgb, SyntheticClip(p).Render(120).rgb));
  // Objects are visible, occlude each other, and at least one leaves and re-enters.
  std::vector<int> visible_frames(5, 0);
  bool left_and_returned = false;
  std::vector<bool> absent_seen(5, false);
  for (int t = 0; t < 200; t += 2) {
    const auto ids = a.Render(t).labels.ObjectIds();
    for (int id = 1; id <= 4; ++id) {
      const bool present = std::find(ids.begin(), ids.end(), id) != ids.end();
      visible_frames[id] += present;
      if (!present) absent_seen[id] = true;
      if (present && absent_seen[id]) left_and_returned = true;
    }
  }
  for (int id = 1; id <= 4; ++id) EXPECT_GT(visible_frames[id], 0) << "object " << id;
  EXPECT_TRUE(left_and_returned);
}

TEST(Synthetic, SplitAndSourceSpec) {
  auto source = OpenVideoSource("synth:frames=30,objects=2,seed=9,size=128x80,split=1,drift=1");
  EXPECT_EQ(source->info().kind, "synthetic");
  EXPECT_EQ(source->info().frame_count, 30);
  EXPECT_EQ(source->info().width, 128);
  EXPECT_EQ(source->ReadFrame(29).cols, 128);
  EXPECT_THROW(OpenVideoSource("synth:frames=x"), Error);
  EXPECT_THROW(OpenVideoSource("synth:colour=red"), Error);
}

TEST(Synthetic, WritesDavisLayoutAndMp4ThatDecodes) {
  const auto dir = test::TempDir("synth_write");
  SynthParams p;
  p.width = 128;
  p.height = 72;
  p.frames = 12;
  p.objects = 2;
  p.seed = 11;
  SynthWriteOptions options;
  options.mp4 = true;
  WriteSyntheticClip(p, dir.string(), options);
  EXPECT_TRUE(fs::exists(dir / "JPEGImages" / "00011.jpg"));
  const LabelMap labels = ReadLabelPng((dir / "Annotations" / "00005.png").string());
  EXPECT_EQ(labels, SyntheticClip(p).Render(5).labels);
  auto folder = OpenVideoSource((dir / "JPEGImages").string());
  EXPECT_EQ(folder->info().frame_count, 12);
  auto mp4 = OpenVideoSource((dir / "video.mp4").string());
  EXPECT_EQ(mp4->info().frame_count, 12);
  EXPECT_EQ(mp4->info().codec, "h264");
  // Lossy, but close to the rendered frame.
  const cv::Mat decoded = mp4->ReadFrame(6), rendered = SyntheticClip(p).Render(6).rgb;
  EXPECT_LT(cv::norm(decoded, rendered, cv::NORM_L1) / decoded.total() / 3.0, 12.0);
  fs::remove_all(dir);
}

TEST(FrameCache, StaysUnderBudgetAndReadsAhead) {
  SynthParams p;
  p.width = 320;
  p.height = 200;  // 192,000 bytes per frame
  p.frames = 120;
  FrameCacheOptions options;
  options.limit_mb = 2;  // ~10 frames
  options.read_ahead = 4;
  FrameCache cache(MakeSyntheticSource(p), options);
  SyntheticClip reference(p);
  for (int k = 0; k < 60; ++k) {
    ASSERT_TRUE(SameMat(cache.Get(k), reference.Render(k).rgb)) << k;
    EXPECT_LE(cache.bytes(), options.limit_mb * 1024 * 1024);
  }
  // Read-ahead: shortly after Get(k), k+1.. are cached without being asked for.
  cache.Get(80);
  for (int i = 0; i < 200 && !cache.Contains(84); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(cache.Contains(84));
  EXPECT_GT(cache.stats().prefetched, 0u);
  EXPECT_GT(cache.stats().evicted, 0u);
  EXPECT_THROW(cache.Get(120), Error);
}

}  // namespace
}  // namespace litseg
