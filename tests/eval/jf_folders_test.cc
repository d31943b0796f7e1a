// J&F over DAVIS-layout folders: objects, frame selection, errors, and the official OSVOS
// figures on real DAVIS-2016 data.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>

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

std::string FrameName(int f) {
  char name[16];
  std::snprintf(name, sizeof(name), "%05d.png", f);
  return name;
}

std::string ErrorText(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Reads the official figures and compares a report with them: per-object J and F means
// within 1e-4, every per-frame value within 1e-3. Returns the largest deviations seen.
std::pair<double, double> CompareWithOfficial(const JfReport& report, const nlohmann::json& ref) {
  EXPECT_EQ(report.objects.size(), ref.at("sequences").size());
  double worst_mean = 0.0, worst_frame = 0.0;
  for (const auto& o : report.objects) {
    SCOPED_TRACE(o.sequence);
    EXPECT_EQ(o.Name(), o.sequence);  // foreground mode: one object named after the sequence
    const auto& r = ref.at("sequences").at(o.sequence);
    const auto& jr = r.at("J_per_frame");
    const auto& fr = r.at("F_per_frame");
    EXPECT_EQ(o.j.size(), r.at("frames_scored").get<size_t>());
    if (o.j.size() != jr.size() || o.f.size() != fr.size()) {
      ADD_FAILURE() << "scored frame count differs";
      continue;
    }
    const double dj = std::abs(o.j_stats.mean - r.at("J_mean").get<double>());
    const double df = std::abs(o.f_stats.mean - r.at("F_mean").get<double>());
    EXPECT_LE(dj, 1e-4);
    EXPECT_LE(df, 1e-4);
    EXPECT_LE(std::abs(o.JfMean() - r.at("JF_mean").get<double>()), 1e-4);
    worst_mean = std::max({worst_mean, dj, df});
    for (size_t i = 0; i < o.j.size(); ++i) {
      const double fj = std::abs(o.j[i] - jr[i].get<double>()), ff = std::abs(o.f[i] - fr[i].get<double>());
      EXPECT_LE(fj, 1e-3) << "J, frame " << o.frames[i];
      EXPECT_LE(ff, 1e-3) << "F, frame " << o.frames[i];
      worst_frame = std::max({worst_frame, fj, ff});
    }
  }
  return {worst_mean, worst_frame};
}

const char* kGtRel = "data/vos/davis2016/DAVIS/Annotations/480p";
const char* kPredRel = "data/vos/davis2017-evaluation-osvos-results/results/semi-supervised/osvos";
const char* kRefRel = "data/vos/osvos_official_jf.json";

TEST(JfFolders, ReproducesTheOfficialOsvosFigures) {
  LITSEG_REQUIRE_SHARED(kRefRel);
  LITSEG_REQUIRE_SHARED(kGtRel);
  LITSEG_REQUIRE_SHARED(kPredRel);
  std::ifstream in(test::SharedPath(kRefRel));
  const nlohmann::json ref = nlohmann::json::parse(in);
  JfParams params;
  params.foreground = true;
  const JfReport report = EvaluateFolders(test::SharedPath(kGtRel).string(), test::SharedPath(kPredRel).string(), params);
  const auto [worst_mean, worst_frame] = CompareWithOfficial(report, ref);
  RecordProperty("worst_sequence_mean_diff", std::to_string(worst_mean));
  RecordProperty("worst_per_frame_diff", std::to_string(worst_frame));
  std::printf("max |ours - official|: sequence means %.3g, per-frame values %.3g\n", worst_mean, worst_frame);
  // The global figures are the means over the objects.
  double j = 0, f = 0;
  for (const auto& [name, r] : ref.at("sequences").items()) {
    j += r.at("J_mean").get<double>();
    f += r.at("F_mean").get<double>();
  }
  const double n = static_cast<double>(ref.at("sequences").size());
  EXPECT_NEAR(report.j_mean, j / n, 1e-4);
  EXPECT_NEAR(report.f_mean, f / n, 1e-4);
  EXPECT_NEAR(report.jf_mean, (j / n + f / n) / 2.0, 1e-4);

  // The JSON report carries the same numbers.
  const nlohmann::json ours = nlohmann::json::parse(report.ToJson());
  EXPECT_NEAR(ours.at("JF_mean").get<double>(), report.jf_mean, 1e-12);
  for (const auto& [name, r] : ref.at("sequences").items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(ours.at("sequences").contains(name));
    EXPECT_NEAR(ours["sequences"][name].at("J_mean").get<double>(), r.at("J_mean").get<double>(), 1e-4);
    EXPECT_EQ(ours["sequences"][name].at("F_per_frame").size(), r.at("F_per_frame").size());
  }
}

TEST(JfFolders, SingleSequenceFolderAgainstSequenceOrParentFolder) {
  LITSEG_REQUIRE_SHARED(kRefRel);
  LITSEG_REQUIRE_SHARED(kGtRel);
  LITSEG_REQUIRE_SHARED(kPredRel);
  std::ifstream in(test::SharedPath(kRefRel));
  const nlohmann::json ref = nlohmann::json::parse(in);
  JfParams params;
  params.foreground = true;
  const std::string gt = (test::SharedPath(kGtRel) / "blackswan").string();
  const auto& r = ref.at("sequences").at("blackswan");
  for (const std::string pred : {(test::SharedPath(kPredRel) / "blackswan").string(), test::SharedPath(kPredRel).string()}) {
    SCOPED_TRACE(pred);
    const JfReport report = EvaluateFolders(gt + "/", pred, params);
    ASSERT_EQ(report.objects.size(), 1u);
    EXPECT_EQ(report.objects[0].sequence, "blackswan");
    EXPECT_NEAR(report.objects[0].j_stats.mean, r.at("J_mean").get<double>(), 1e-4);
    EXPECT_NEAR(report.objects[0].f_stats.mean, r.at("F_mean").get<double>(), 1e-4);
  }
  // DAVIS-2016 ground truth is binary (read as id 1), OSVOS writes id 1: per-object mode
  // gives the same single object.
  const JfReport per_object = EvaluateFolders(gt, (test::SharedPath(kPredRel) / "blackswan").string(), JfParams{});
  ASSERT_EQ(per_object.objects.size(), 1u);
  EXPECT_EQ(per_object.objects[0].Name(), "blackswan_1");
  EXPECT_NEAR(per_object.objects[0].j_stats.mean, r.at("J_mean").get<double>(), 1e-4);
}

// Writes a two-object sequence: object 1 predicted perfectly, object 2 never predicted,
// a void band at the bottom where the prediction paints object 2.
void WriteTwoObjectSequence(const fs::path& gt_dir, const fs::path& pred_dir, int frames) {
  fs::create_directories(gt_dir);
  fs::create_directories(pred_dir);
  for (int f = 0; f < frames; ++f) {
    LabelMap gt(40, 30), pred(40, 30);
    gt.Paint(Rect(40, 30, 2, 2, 10, 10), 1);
    gt.Paint(Rect(40, 30, 20, 5, 30, 20), 2);
    gt.Paint(Rect(40, 30, 0, 25, 39, 29), LabelMap::kVoid);
    pred.Paint(Rect(40, 30, 2, 2, 10, 10), 1);
    pred.Paint(Rect(40, 30, 0, 25, 39, 29), 2);
    WritePalettePng((gt_dir / FrameName(f)).string(), gt);
    WritePalettePng((pred_dir / FrameName(f)).string(), pred);
  }
}

TEST(JfFolders, MultiObjectSequencesWithVoid) {
  const auto dir = test::TempDir("jf_multi");
  WriteTwoObjectSequence(dir / "gt" / "seq", dir / "pred" / "seq", 5);
  JfParams params;
  const JfReport report = EvaluateFolders((dir / "gt").string(), (dir / "pred").string(), params);
  ASSERT_EQ(report.objects.size(), 2u);
  EXPECT_EQ(report.objects[0].Name(), "seq_1");
  EXPECT_EQ(report.objects[1].Name(), "seq_2");
  EXPECT_EQ(report.objects[0].frames, (std::vector<std::string>{"00001.png", "00002.png", "00003.png"}));
  EXPECT_DOUBLE_EQ(report.objects[0].j_stats.mean, 1.0);
  EXPECT_DOUBLE_EQ(report.objects[0].f_stats.mean, 1.0);
  // Object 2's prediction lies only in void: an empty prediction of a non-empty object.
  EXPECT_DOUBLE_EQ(report.objects[1].j_stats.mean, 0.0);
  EXPECT_DOUBLE_EQ(report.objects[1].f_stats.mean, 0.0);
  EXPECT_DOUBLE_EQ(report.j_mean, 0.5);
  EXPECT_DOUBLE_EQ(report.jf_mean, 0.5);
  // Foreground mode: GT 1 or 2 vs any predicted label; the void band is ignored.
  params.foreground = true;
  const JfReport fg = EvaluateFolders((dir / "gt").string(), (dir / "pred").string(), params);
  ASSERT_EQ(fg.objects.size(), 1u);
  EXPECT_EQ(fg.objects[0].Name(), "seq");
  EXPECT_DOUBLE_EQ(fg.objects[0].j_stats.mean, 81.0 / (81.0 + 176.0));
  params.foreground = false;
  params.all_frames = true;
  EXPECT_EQ(EvaluateFolders((dir / "gt").string(), (dir / "pred").string(), params).objects[0].j.size(), 5u);
  fs::remove_all(dir);
}

TEST(JfFolders, FirstAndLastPredictionsAreOnlyNeededWithAllFrames) {
  const auto dir = test::TempDir("jf_ends");
  WriteTwoObjectSequence(dir / "gt" / "seq", dir / "pred" / "seq", 4);
  fs::remove(dir / "pred" / "seq" / FrameName(0));
  fs::remove(dir / "pred" / "seq" / FrameName(3));
  JfParams params;
  EXPECT_EQ(EvaluateFolders((dir / "gt").string(), (dir / "pred").string(), params).objects[0].j.size(), 2u);
  params.all_frames = true;
  const std::string message = ErrorText([&] { EvaluateFolders((dir / "gt").string(), (dir / "pred").string(), params); });
  EXPECT_NE(message.find("00000.png"), std::string::npos) << message;
  EXPECT_NE(message.find("00003.png"), std::string::npos) << message;
  fs::remove_all(dir);
}

TEST(JfFolders, ErrorsNameWhatIsMissingOrWrong) {
  const auto dir = test::TempDir("jf_errors");
  WriteTwoObjectSequence(dir / "gt" / "alpha", dir / "pred" / "alpha", 4);
  WriteTwoObjectSequence(dir / "gt" / "beta", dir / "pred" / "beta", 4);
  WriteTwoObjectSequence(dir / "gt" / "gamma", dir / "pred" / "gamma", 4);
  const std::string gt = (dir / "gt").string(), pred = (dir / "pred").string();
  JfParams params;
  EXPECT_EQ(EvaluateFolders(gt, pred, params).objects.size(), 6u);

  // A missing scored frame.
  fs::remove(dir / "pred" / "beta" / FrameName(2));
  std::string message = ErrorText([&] { EvaluateFolders(gt, pred, params); });
  EXPECT_NE(message.find("beta"), std::string::npos) << message;
  EXPECT_NE(message.find("00002.png"), std::string::npos) << message;

  // Missing sequences are listed; extra prediction folders are ignored.
  fs::remove_all(dir / "pred" / "beta");
  fs::remove_all(dir / "pred" / "gamma");
  fs::create_directories(dir / "pred" / "delta");
  message = ErrorText([&] { EvaluateFolders(gt, pred, params); });
  EXPECT_NE(message.find("beta, gamma"), std::string::npos) << message;
  EXPECT_EQ(message.find("alpha"), std::string::npos) << message;

  // Object ids the ground truth does not have.
  WriteTwoObjectSequence(dir / "gt" / "beta", dir / "pred" / "beta", 4);
  WriteTwoObjectSequence(dir / "gt" / "gamma", dir / "pred" / "gamma", 4);
  LabelMap extra(40, 30);
  extra.Paint(Rect(40, 30, 0, 0, 3, 3), 3);
  WritePalettePng((dir / "pred" / "gamma" / FrameName(1)).string(), extra);
  message = ErrorText([&] { EvaluateFolders(gt, pred, params); });
  EXPECT_NE(message.find("object id 3"), std::string::npos) << message;
  params.foreground = true;  // any label is foreground: fine
  EXPECT_EQ(EvaluateFolders(gt, pred, params).objects.size(), 3u);
  params.foreground = false;

  // Size mismatch.
  WritePalettePng((dir / "pred" / "gamma" / FrameName(1)).string(), LabelMap(20, 30));
  message = ErrorText([&] { EvaluateFolders(gt, pred, params); });
  EXPECT_NE(message.find("20x30"), std::string::npos) << message;

  // Too short for the default protocol, and folders that do not exist.
  const auto short_dir = dir / "short";
  WriteTwoObjectSequence(short_dir / "gt", short_dir / "pred", 2);
  EXPECT_THROW(EvaluateFolders((short_dir / "gt").string(), (short_dir / "pred").string(), params), Error);
  params.all_frames = true;
  EXPECT_EQ(EvaluateFolders((short_dir / "gt").string(), (short_dir / "pred").string(), params).objects[0].j.size(), 2u);
  EXPECT_THROW(EvaluateFolders((dir / "nope").string(), pred, params), Error);
  EXPECT_THROW(EvaluateFolders(gt, (dir / "nope").string(), params), Error);
  fs::create_directories(dir / "empty");
  EXPECT_THROW(EvaluateFolders((dir / "empty").string(), pred, params), Error);
  // A first frame without objects is only scorable as foreground.
  const auto blank = dir / "blank";
  fs::create_directories(blank / "gt");
  fs::create_directories(blank / "pred");
  for (int f = 0; f < 3; ++f) {
    WritePalettePng((blank / "gt" / FrameName(f)).string(), LabelMap(8, 8));
    WritePalettePng((blank / "pred" / FrameName(f)).string(), LabelMap(8, 8));
  }
  params.foreground = false;
  EXPECT_THROW(EvaluateFolders((blank / "gt").string(), (blank / "pred").string(), params), Error);
  params.foreground = true;
  const JfReport fg = EvaluateFolders((blank / "gt").string(), (blank / "pred").string(), params);
  EXPECT_DOUBLE_EQ(fg.jf_mean, 1.0);  // empty against empty
  fs::remove_all(dir);
}

TEST(JfFolders, ObjectsComeFromTheFirstGroundTruthFrame) {
  // First frame: ids 1 and 3 (no 2). Objects 1..3 are scored, as evaluation.py does; a
  // later frame's object 4 is not an object of the sequence.
  LabelMap first(20, 20);
  first.Paint(Rect(20, 20, 0, 0, 4, 4), 1);
  first.Paint(Rect(20, 20, 10, 10, 14, 14), 3);
  JfParams params;
  params.all_frames = true;
  JfSequenceScorer scorer("s", first, params);
  EXPECT_EQ(scorer.object_ids(), (std::vector<int>{1, 2, 3}));
  LabelMap later = first;
  later.Paint(Rect(20, 20, 15, 0, 19, 4), 4);
  scorer.AddFrame("a", first, first);
  scorer.AddFrame("b", later, first);
  const auto results = scorer.Results();
  ASSERT_EQ(results.size(), 3u);
  for (const auto& r : results) {
    SCOPED_TRACE(r.Name());
    EXPECT_EQ(r.j, (std::vector<double>{1.0, 1.0}));  // object 2: empty vs empty = 1
    EXPECT_EQ(r.f, (std::vector<double>{1.0, 1.0}));
  }
  // Predicting id 4 is an error in per-object mode.
  EXPECT_THROW(scorer.AddFrame("c", later, later), Error);
}

TEST(JfFolders, LongSequenceDecayEndToEnd) {
  // 300 frames: the object is found for the first 150 scored frames and lost afterwards.
  const auto dir = test::TempDir("jf_long");
  fs::create_directories(dir / "gt");
  fs::create_directories(dir / "pred");
  const int frames = 302;  // 300 scored
  for (int f = 0; f < frames; ++f) {
    LabelMap gt(16, 12), pred(16, 12);
    gt.Paint(Rect(16, 12, 4, 3, 9, 8), 1);
    if (f <= 150) pred.Paint(Rect(16, 12, 4, 3, 9, 8), 1);
    WritePalettePng((dir / "gt" / FrameName(f)).string(), gt);
    WritePalettePng((dir / "pred" / FrameName(f)).string(), pred);
  }
  const JfReport report = EvaluateFolders((dir / "gt").string(), (dir / "pred").string(), JfParams{});
  ASSERT_EQ(report.objects.size(), 1u);
  const auto& o = report.objects[0];
  ASSERT_EQ(o.j.size(), 300u);
  EXPECT_DOUBLE_EQ(o.j_stats.mean, 0.5);
  EXPECT_DOUBLE_EQ(o.j_stats.recall, 0.5);
  // Bins 0..75 (all found) and 224..299 (all lost): decay exactly 1, not NaN.
  EXPECT_DOUBLE_EQ(o.j_stats.decay, 1.0);
  EXPECT_DOUBLE_EQ(o.f_stats.decay, 1.0);
  EXPECT_DOUBLE_EQ(report.j_decay, 1.0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace litseg
