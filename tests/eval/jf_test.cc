#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/core/mask_io.h"
#include "litseg/eval/jf.h"

namespace litseg {
namespace {
namespace fs = std::filesystem;

Mask Rect(int w, int h, int x0, int y0, int x1, int y1) {
  Mask m(w, h);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) m(x, y) = 1;
  return m;
}

TEST(RegionJ, DefinitionAndVoid) {
  Mask a = Rect(20, 10, 0, 0, 9, 9), b = Rect(20, 10, 5, 0, 14, 9);
  EXPECT_DOUBLE_EQ(RegionJ(a, b), 50.0 / 150.0);
  EXPECT_DOUBLE_EQ(RegionJ(Mask(20, 10), Mask(20, 10)), 1.0);
  Mask void_pixels = Rect(20, 10, 10, 0, 19, 9);  // hides b's right half
  EXPECT_DOUBLE_EQ(RegionJ(a, b, &void_pixels), 50.0 / 100.0);
  EXPECT_THROW(RegionJ(a, Mask(10, 20)), Error);
}

TEST(BoundaryMap, MatchesSeg2bmapOnASquare) {
  // A 3x3 square at (2..4, 2..4) in 8x8: boundary = pixels whose E, S or SE neighbour differs.
  Mask m = Rect(8, 8, 2, 2, 4, 4);
  Mask b = BoundaryMap(m);
  // Inside corner (2,2): E,S,SE all set -> not boundary.
  EXPECT_EQ(b(2, 2), 0);
  EXPECT_EQ(b(4, 4), 1);  // E differs
  EXPECT_EQ(b(1, 1), 1);  // outside, SE neighbour set
  EXPECT_EQ(b(1, 2), 1);  // E neighbour set
  EXPECT_EQ(b(0, 0), 0);
  // Edge rules: last row compares east only, last column south only, corner 0.
  Mask full(4, 3, 1);
  Mask bf = BoundaryMap(full);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) EXPECT_EQ(bf(x, y), 0);
  Mask col(3, 3);
  col(2, 0) = 1;
  EXPECT_EQ(BoundaryMap(col)(2, 0), 1);  // last column: differs from south
}

TEST(BoundaryF, PerfectAndEmptyCases) {
  Mask a = Rect(100, 80, 10, 10, 60, 50);
  EXPECT_DOUBLE_EQ(BoundaryF(a, a), 1.0);
  EXPECT_DOUBLE_EQ(BoundaryF(Mask(100, 80), Mask(100, 80)), 1.0);
  EXPECT_DOUBLE_EQ(BoundaryF(Mask(100, 80), a), 0.0);  // precision 1, recall 0
  EXPECT_DOUBLE_EQ(BoundaryF(a, Mask(100, 80)), 0.0);
  // Shifted by 1 px: within the tolerance (ceil(0.008 * 128) = 2 px) -> perfect.
  Mask shifted = Rect(100, 80, 11, 10, 61, 50);
  EXPECT_DOUBLE_EQ(BoundaryF(a, shifted), 1.0);
  // Far apart: nothing matches.
  Mask far = Rect(100, 80, 70, 60, 90, 75);
  EXPECT_DOUBLE_EQ(BoundaryF(a, far), 0.0);
}

TEST(Statistics, MeanRecallDecayAndLongSequences) {
  std::vector<double> v = {1.0, 1.0, 0.4, 0.0};
  JfStatistics s = ComputeStatistics(v);
  EXPECT_DOUBLE_EQ(s.mean, 0.6);
  EXPECT_DOUBLE_EQ(s.recall, 0.5);
  // ids = round(linspace(1,4,5)+1e-10)-1 = [0,1,2,2,3] (1.75->2, 2.5->3, 3.25->3) ...
  // bins [0..1], [1..2], [2..2]... first = mean(1,1)=1, last = [2..3] = mean(0.4, 0) = 0.2
  EXPECT_NEAR(s.decay, 0.8, 1e-12);
  // 1000 frames, linear ramp down: the official uint8 cast would wrap; ours bins correctly.
  std::vector<double> ramp(1000);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = 1.0 - static_cast<double>(i) / 999.0;
  JfStatistics r = ComputeStatistics(ramp);
  // First bin = frames 0..250 (mean 0.875), last = 749..999 (mean 0.125).
  EXPECT_NEAR(r.decay, 0.75, 1e-3);
  EXPECT_NEAR(r.mean, 0.5, 1e-12);
}

TEST(JfFolders, ReproducesOfficialOsvosFigures) {
  const std::string gt_rel = "data/vos/davis2016/DAVIS/Annotations/480p";
  const std::string pred_rel = "data/vos/davis2017-evaluation-osvos-results/results/semi-supervised/osvos";
  const std::string ref_rel = "data/vos/osvos_official_jf.json";
  LITSEG_REQUIRE_SHARED(ref_rel);
  LITSEG_REQUIRE_SHARED(gt_rel);
  LITSEG_REQUIRE_SHARED(pred_rel);
  std::ifstream in(test::SharedPath(ref_rel));
  const nlohmann::json ref = nlohmann::json::parse(in);
  JfParams params;
  params.foreground = true;
  const JfReport report =
      EvaluateFolders(test::SharedPath(gt_rel).string(), test::SharedPath(pred_rel).string(), params);
  ASSERT_EQ(report.objects.size(), ref.at("sequences").size());
  double worst_mean = 0.0, worst_frame = 0.0;
  for (const auto& o : report.objects) {
    SCOPED_TRACE(o.sequence);
    const auto& r = ref.at("sequences").at(o.sequence);
    ASSERT_EQ(o.j.size(), r.at("frames_scored").get<size_t>());
    EXPECT_NEAR(o.j_stats.mean, r.at("J_mean").get<double>(), 1e-4);
    EXPECT_NEAR(o.f_stats.mean, r.at("F_mean").get<double>(), 1e-4);
    worst_mean = std::max({worst_mean, std::abs(o.j_stats.mean - r.at("J_mean").get<double>()),
                           std::abs(o.f_stats.mean - r.at("F_mean").get<double>())});
    const auto& jr = r.at("J_per_frame");
    const auto& fr = r.at("F_per_frame");
    for (size_t i = 0; i < o.j.size(); ++i) {
      EXPECT_NEAR(o.j[i], jr[i].get<double>(), 1e-3) << "frame " << o.frames[i];
      EXPECT_NEAR(o.f[i], fr[i].get<double>(), 1e-3) << "frame " << o.frames[i];
      worst_frame = std::max({worst_frame, std::abs(o.j[i] - jr[i].get<double>()), std::abs(o.f[i] - fr[i].get<double>())});
    }
  }
  RecordProperty("worst_sequence_mean_diff", std::to_string(worst_mean));
  RecordProperty("worst_per_frame_diff", std::to_string(worst_frame));
  std::printf("max |diff| vs official: sequence means %.3g, per frame %.3g\n", worst_mean, worst_frame);
}

TEST(JfFolders, MultiObjectPaletteFoldersAndErrors) {
  const auto dir = test::TempDir("jf_multi");
  fs::create_directories(dir / "gt" / "seq");
  fs::create_directories(dir / "pred" / "seq");
  for (int f = 0; f < 5; ++f) {
    LabelMap gt(40, 30), pred(40, 30);
    gt.Paint(Rect(40, 30, 2, 2, 10, 10), 1);
    gt.Paint(Rect(40, 30, 20, 5, 30, 20), 2);
    gt.Paint(Rect(40, 30, 0, 25, 39, 29), LabelMap::kVoid);
    pred.Paint(Rect(40, 30, 2, 2, 10, 10), 1);  // object 1 perfect, object 2 missing
    pred.Paint(Rect(40, 30, 0, 25, 39, 29), 2);  // lies in void: ignored
    char name[16];
    std::snprintf(name, sizeof(name), "%05d.png", f);
    WritePalettePng((dir / "gt" / "seq" / name).string(), gt);
    WritePalettePng((dir / "pred" / "seq" / name).string(), pred);
  }
  JfParams params;
  JfReport report = EvaluateFolders((dir / "gt").string(), (dir / "pred").string(), params);
  ASSERT_EQ(report.objects.size(), 2u);
  EXPECT_EQ(report.objects[0].j.size(), 3u);  // frames 1..3
  EXPECT_DOUBLE_EQ(report.objects[0].j_stats.mean, 1.0);
  EXPECT_DOUBLE_EQ(report.objects[1].j_stats.mean, 0.0);
  EXPECT_DOUBLE_EQ(report.j_mean, 0.5);
  params.all_frames = true;
  EXPECT_EQ(EvaluateFolders((dir / "gt").string(), (dir / "pred").string(), params).objects[0].j.size(), 5u);
  fs::remove(dir / "pred" / "seq" / "00003.png");
  EXPECT_THROW(EvaluateFolders((dir / "gt").string(), (dir / "pred").string(), params), Error);
  fs::remove_all(dir / "pred" / "seq");
  EXPECT_THROW(EvaluateFolders((dir / "gt").string(), (dir / "pred").string(), params), Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace litseg
