// Synthetic clips: determinism, random access, exact masks, occlusion, motion, splitting,
// appearance drift, long clips, DAVIS export.
#include <filesystem>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/core/mask_io.h"
#include "video/video_test_util.h"

namespace litseg {
namespace {
namespace fs = std::filesystem;
using test::SameMat;

SynthParams Params(int frames, int objects, uint64_t seed) {
  SynthParams p;
  p.width = 160;
  p.height = 96;
  p.frames = frames;
  p.objects = objects;
  p.seed = seed;
  return p;
}

cv::Mat LabelsAsMat(const LabelMap& labels) {
  return cv::Mat(labels.height(), labels.width(), CV_8UC1, const_cast<uint8_t*>(labels.data())).clone();
}

TEST(Synthetic, DeterministicAndRandomAccess) {
  const SynthParams p = Params(200, 4, 3);
  SyntheticClip sequential(p);
  SynthFrame walked;
  for (int t = 0; t <= 120; ++t) walked = sequential.Render(t);
  // A fresh clip renders frame 120 directly, identically.
  const SynthFrame direct = SyntheticClip(p).Render(120);
  EXPECT_TRUE(SameMat(walked.rgb, direct.rgb));
  EXPECT_EQ(walked.labels, direct.labels);
  EXPECT_EQ(direct.rgb.type(), CV_8UC3);
  EXPECT_EQ(direct.rgb.cols, 160);
  EXPECT_EQ(direct.labels.width(), 160);
  EXPECT_FALSE(SameMat(direct.rgb, SyntheticClip(Params(200, 4, 4)).Render(120).rgb));
  EXPECT_FALSE(SameMat(direct.rgb, sequential.Render(121).rgb));
  EXPECT_THROW(sequential.Render(200), Error);
  EXPECT_THROW(sequential.Render(-1), Error);
}

TEST(Synthetic, LabelsAreTheSilhouettesPaintedBackToFront) {
  const SynthParams p = Params(150, 4, 21);
  SyntheticClip clip(p);
  const std::vector<int> depth = clip.DepthOrder();
  ASSERT_EQ(depth.size(), 4u);
  int occluded_pixels = 0;
  for (int t = 0; t < p.frames; t += 3) {
    cv::Mat expected = cv::Mat::zeros(p.height, p.width, CV_8UC1);
    cv::Mat coverage = cv::Mat::zeros(p.height, p.width, CV_8UC1);
    for (int id : depth) {
      const cv::Mat amodal = clip.AmodalMask(t, id);
      expected.setTo(id, amodal);
      coverage += amodal;
    }
    occluded_pixels += cv::countNonZero(coverage > 1);
    ASSERT_EQ(cv::countNonZero(expected != LabelsAsMat(clip.Render(t).labels)), 0) << "frame " << t;
  }
  EXPECT_GT(occluded_pixels, 100) << "objects never overlap, so occlusion is never exercised";
  EXPECT_THROW(clip.AmodalMask(0, 5), Error);
}

TEST(Synthetic, ObjectsMoveSmoothlyScaleAndLeaveAndReturn) {
  const SynthParams p = Params(240, 4, 3);
  SyntheticClip clip(p);
  for (int id = 1; id <= 4; ++id) {
    int visible = 0, min_area = 1 << 30, max_area = 0;
    bool absent_seen = false, returned = false;
    cv::Point2d previous(-1, -1);
    for (int t = 0; t < p.frames; ++t) {
      const cv::Mat amodal = clip.AmodalMask(t, id);
      const cv::Moments m = cv::moments(amodal, true);
      const bool inside = m.m00 > 0 && cv::countNonZero(amodal.row(0)) == 0 && cv::countNonZero(amodal.row(p.height - 1)) == 0 &&
                          cv::countNonZero(amodal.col(0)) == 0 && cv::countNonZero(amodal.col(p.width - 1)) == 0;
      if (m.m00 == 0) {
        absent_seen = true;
        previous = {-1, -1};
        continue;
      }
      ++visible;
      if (absent_seen) returned = true;
      if (inside) {
        min_area = std::min(min_area, static_cast<int>(m.m00));
        max_area = std::max(max_area, static_cast<int>(m.m00));
        const cv::Point2d centre(m.m10 / m.m00, m.m01 / m.m00);
        if (previous.x >= 0) EXPECT_LT(cv::norm(centre - previous), 12.0) << "object " << id << " jumps at " << t;
        previous = centre;
      } else {
        previous = {-1, -1};
      }
    }
    EXPECT_GT(visible, 0) << "object " << id;
    if (max_area > 0) EXPECT_GT(max_area, 1.2 * min_area) << "object " << id << " never changes scale";
    if (id == 2) EXPECT_TRUE(returned) << "object 2 is meant to leave the frame and come back";
  }
}

TEST(Synthetic, SplitIntoFragments) {
  SynthParams p = Params(90, 2, 9);
  p.split = true;
  SyntheticClip clip(p);
  auto components = [&](int t) {
    cv::Mat labels;
    return cv::connectedComponents(clip.AmodalMask(t, 1), labels, 8) - 1;
  };
  for (int t = 0; t < p.frames / 3; t += 5) EXPECT_EQ(components(t), 1) << "before the split, frame " << t;
  int split_frames = 0;
  for (int t = p.frames / 3 + 15; t < p.frames; t += 5) split_frames += components(t) == 2;
  EXPECT_GT(split_frames, 3);
  p.split = false;
  SyntheticClip whole(p);
  cv::Mat labels;
  EXPECT_EQ(cv::connectedComponents(whole.AmodalMask(80, 1), labels, 8) - 1, 1);
}

TEST(Synthetic, AppearanceDrift) {
  SynthParams p = Params(80, 1, 4);
  auto colour_change = [&](bool drift) {
    p.appearance_drift = drift;
    SyntheticClip clip(p);
    auto mean_colour = [&](int t) {
      const SynthFrame f = clip.Render(t);
      return cv::mean(f.rgb, LabelsAsMat(f.labels) == 1);
    };
    const cv::Scalar a = mean_colour(5), b = mean_colour(60);
    return std::abs(a[0] - b[0]) + std::abs(a[1] - b[1]) + std::abs(a[2] - b[2]);
  };
  const double without = colour_change(false), with = colour_change(true);
  EXPECT_GT(with, without + 15.0) << "drift " << with << " vs none " << without;
}

TEST(Synthetic, LongClipsRenderAnyFrame) {
  SynthParams p = Params(6000, 3, 2);
  p.width = 96;
  p.height = 64;
  SyntheticClip clip(p);
  auto source = MakeSyntheticSource(p);
  EXPECT_EQ(source->info().frame_count, 6000);
  int objects_seen = 0;
  for (int t : {0, 2500, 5001, 5999}) {
    const SynthFrame f = clip.Render(t);
    EXPECT_TRUE(SameMat(source->ReadFrame(t), f.rgb));
    objects_seen += static_cast<int>(f.labels.ObjectIds().size());
  }
  EXPECT_GT(objects_seen, 4);
  EXPECT_NEAR(source->FrameTime(4800), 4800 / p.fps, 1e-9);
}

TEST(Synthetic, SpecParsing) {
  const SynthParams p = ParseSynthSpec("synth:frames=30,objects=2,seed=9,size=128x80,split=1,drift=1,fps=12.5");
  EXPECT_EQ(p.frames, 30);
  EXPECT_EQ(p.objects, 2);
  EXPECT_EQ(p.seed, 9u);
  EXPECT_EQ(p.width, 128);
  EXPECT_EQ(p.height, 80);
  EXPECT_TRUE(p.split);
  EXPECT_TRUE(p.appearance_drift);
  EXPECT_DOUBLE_EQ(p.fps, 12.5);
  auto source = OpenVideoSource("synth:frames=30,objects=2,seed=9,size=128x80,split=1,drift=1");
  EXPECT_EQ(source->info().kind, "synthetic");
  EXPECT_EQ(source->info().frame_count, 30);
  EXPECT_EQ(source->info().width, 128);
  SynthParams q = p;
  q.fps = 24.0;
  EXPECT_TRUE(SameMat(source->ReadFrame(29), SyntheticClip(q).Render(29).rgb));
  EXPECT_THROW(OpenVideoSource("synth:frames=x"), Error);
  EXPECT_THROW(OpenVideoSource("synth:colour=red"), Error);
  EXPECT_THROW(OpenVideoSource("synth:size=12"), Error);
  EXPECT_THROW(OpenVideoSource("synth:frames=0"), Error);
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
  EXPECT_FALSE(fs::exists(dir / "JPEGImages" / "00012.jpg"));
  SyntheticClip clip(p);
  for (int t : {0, 5, 11}) {
    char name[16];
    std::snprintf(name, sizeof(name), "%05d.png", t);
    EXPECT_EQ(ReadLabelPng((dir / "Annotations" / name).string()), clip.Render(t).labels) << name;
  }
  auto folder = OpenVideoSource((dir / "JPEGImages").string());
  EXPECT_EQ(folder->info().frame_count, 12);
  EXPECT_LT(test::MeanAbsDiff(folder->ReadFrame(3), clip.Render(3).rgb), 4.0);
  auto mp4 = OpenVideoSource((dir / "video.mp4").string());
  EXPECT_EQ(mp4->info().frame_count, 12);
  EXPECT_EQ(mp4->info().codec, "h264");
  EXPECT_NEAR(mp4->info().fps, p.fps, 1e-6);
  EXPECT_LT(test::MeanAbsDiff(mp4->ReadFrame(6), clip.Render(6).rgb), 6.0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace litseg
