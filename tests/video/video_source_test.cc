// OpenVideoSource dispatch and the frame-folder source (DAVIS / SA-V layouts).
#include <filesystem>
#include <functional>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "video/video_test_util.h"

namespace litseg {
namespace {
namespace fs = std::filesystem;

std::string ErrorText(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Writes a w x h image whose pixel (0,0) encodes `number` (BGR on disk).
void WriteFrame(const fs::path& path, int number, int w = 32, int h = 24) {
  cv::Mat img(h, w, CV_8UC3, cv::Scalar(number * 10, 0, 255 - number * 10));
  ASSERT_TRUE(cv::imwrite(path.string(), img)) << path;
}

TEST(OpenVideoSource, Dispatch) {
  EXPECT_EQ(OpenVideoSource("synth:frames=3,size=64x48")->info().kind, "synthetic");
  const auto dir = test::TempDir("dispatch");
  for (int i = 0; i < 3; ++i) WriteFrame(dir / ("0000" + std::to_string(i) + ".png"), i);
  EXPECT_EQ(OpenVideoSource(dir.string())->info().kind, "frames");
  EXPECT_NE(ErrorText([] { OpenVideoSource(""); }), "");
  EXPECT_NE(ErrorText([] { OpenVideoSource("/nonexistent/folder/"); }).find("/nonexistent/folder"), std::string::npos);
  fs::remove_all(dir);
}

TEST(FrameFolderSource, OrderGapsAndReadErrors) {
  const auto dir = test::TempDir("frames");
  for (int i : {0, 1, 2, 3, 5}) {
    char name[16];
    std::snprintf(name, sizeof(name), "%05d.png", i);
    WriteFrame(dir / name, i);
  }
  const std::string gap = ErrorText([&] { OpenVideoSource(dir.string()); });
  EXPECT_NE(gap.find("gap"), std::string::npos) << gap;
  EXPECT_NE(gap.find("00005.png"), std::string::npos) << gap;
  VideoOpenOptions options;
  options.allow_gaps = true;
  auto source = OpenVideoSource(dir.string(), options);
  EXPECT_EQ(source->info().frame_count, 5);
  EXPECT_EQ(source->info().width, 32);
  EXPECT_EQ(source->info().height, 24);
  EXPECT_EQ(source->info().codec, "png");
  EXPECT_NEAR(source->FrameTime(4), 4 / options.folder_fps, 1e-9);
  EXPECT_EQ(source->ReadFrame(4).at<cv::Vec3b>(0, 0), cv::Vec3b(255 - 50, 0, 50));  // 00005.png, RGB
  EXPECT_THROW(source->ReadFrame(5), Error);
  // A corrupt frame is a clear error naming the file.
  test::WriteBytes((dir / "00004.png").string(), "broken");
  auto with_broken = OpenVideoSource(dir.string());
  const std::string corrupt = ErrorText([&] { with_broken->ReadFrame(4); });
  EXPECT_NE(corrupt.find("00004.png"), std::string::npos) << corrupt;
  fs::remove_all(dir);
}

TEST(FrameFolderSource, NumericOrderPrefixesAndStrayFiles) {
  const auto dir = test::TempDir("frames_prefix");
  for (int i : {8, 9, 10, 11}) WriteFrame(dir / ("frame_" + std::to_string(i) + ".jpg"), i);
  test::WriteBytes((dir / "README.txt").string(), "not an image");  // ignored
  auto source = OpenVideoSource(dir.string());
  ASSERT_EQ(source->info().frame_count, 4);
  EXPECT_EQ(source->info().codec, "jpeg");
  // 9 before 10 (numeric, not lexicographic): pixel (0,0) blue channel encodes the number.
  EXPECT_NEAR(source->ReadFrame(1).at<cv::Vec3b>(0, 0)[2], 90, 4);
  EXPECT_NEAR(source->ReadFrame(2).at<cv::Vec3b>(0, 0)[2], 100, 4);
  WriteFrame(dir / "other_12.jpg", 12);
  const std::string mixed = ErrorText([&] { OpenVideoSource(dir.string()); });
  EXPECT_NE(mixed.find("other_12.jpg"), std::string::npos) << mixed;
  fs::remove_all(dir);
}

TEST(FrameFolderSource, EmptyFolderAndSizeMismatch) {
  const auto dir = test::TempDir("frames_empty");
  const std::string empty = ErrorText([&] { OpenVideoSource(dir.string()); });
  EXPECT_NE(empty.find("no .jpg"), std::string::npos) << empty;
  WriteFrame(dir / "00000.png", 0);
  WriteFrame(dir / "00001.png", 1, 40, 24);
  auto source = OpenVideoSource(dir.string());
  const std::string size = ErrorText([&] { source->ReadFrame(1); });
  EXPECT_NE(size.find("00001.png"), std::string::npos) << size;
  fs::remove_all(dir);
}

TEST(FrameFolderSource, DavisSequence) {
  const std::string rel = "data/vos/davis2016/DAVIS/JPEGImages/480p/blackswan";
  LITSEG_REQUIRE_SHARED(rel);
  const std::string dir = test::SharedPath(rel).string();
  auto source = OpenVideoSource(dir);
  EXPECT_EQ(source->info().kind, "frames");
  EXPECT_EQ(source->info().frame_count, 50);
  EXPECT_EQ(source->info().width, 854);
  EXPECT_EQ(source->info().height, 480);
  // Frame k is file k, converted to RGB, whatever the read order.
  for (int k : {49, 0, 7, 7, 23}) {
    char name[16];
    std::snprintf(name, sizeof(name), "%05d.jpg", k);
    cv::Mat bgr = cv::imread((fs::path(dir) / name).string(), cv::IMREAD_COLOR);
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    EXPECT_TRUE(test::SameMat(source->ReadFrame(k), rgb)) << name;
  }
}

}  // namespace
}  // namespace litseg
