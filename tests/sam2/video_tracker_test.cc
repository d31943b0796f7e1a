// VideoTracker on the micro model and the golden frames: behaviour against the official
// predictor's outputs, object independence, corrections, reverse propagation, cancellation,
// bounded memory, observer data and input errors.
#include "litseg/sam2/video_tracker.h"

#include <atomic>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/sam2/config.h"
#include "litseg/sam2/safetensors.h"

namespace litseg::sam2 {
namespace {

using test::SharedPath;

class VideoTrackerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(SharedPath("sam2/micro/golden/manifest.json"))) return;
    std::ifstream in(SharedPath("sam2/micro/config.json"));
    const nlohmann::json config = nlohmann::json::parse(in);
    const Sam2Config c = ConfigFromOfficialModelJson(config.at("hydra_config").dump(), "micro/config.json");
    model_ = new Sam2Model(LoadSam2Model(c, SharedPath("sam2/micro/weights.safetensors"), "cpu"));
    inputs_ = new TensorMap(ReadSafetensors(SharedPath("sam2/micro/golden/inputs.safetensors")).tensors);
    golden_ = new TensorMap(ReadSafetensors(SharedPath("sam2/micro/golden/video.safetensors")).tensors);
  }
  static void TearDownTestSuite() {
    delete model_;
    delete inputs_;
    delete golden_;
    model_ = nullptr;
    inputs_ = nullptr;
    golden_ = nullptr;
  }
  void SetUp() override { LITSEG_REQUIRE_SHARED("sam2/micro/golden/manifest.json"); }

  // The 8 golden frames (320x180, already resized to 256 by PIL), optionally repeated.
  static std::unique_ptr<VideoTracker> MakeTracker(TrackerOptions options = {}, int repeat = 1) {
    torch::Tensor frames = inputs_->At("video.resized_u8");
    if (repeat > 1) frames = frames.repeat({repeat, 1, 1, 1});
    return std::make_unique<VideoTracker>(*model_, TrackerFramesFromResized(frames, 320, 180), options);
  }

  static double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a.to(torch::kFloat64) - b.to(torch::kFloat64).reshape(a.sizes())).abs().max().item<double>();
  }

  static Sam2Model* model_;
  static TensorMap* inputs_;
  static TensorMap* golden_;
};

Sam2Model* VideoTrackerTest::model_ = nullptr;
TensorMap* VideoTrackerTest::inputs_ = nullptr;
TensorMap* VideoTrackerTest::golden_ = nullptr;

const std::vector<PromptPoint> kObj1Click = {{200.f, 100.f, 1}};
const PromptBox kObj2Box = {20.f, 30.f, 120.f, 150.f};
const std::vector<PromptPoint> kCorrection = {{230.f, 120.f, 0}};

// Scenario s3 of the goldens through the public API: the correction on frame 4 becomes a
// conditioning frame and the re-propagated frames match the official predictor.
TEST_F(VideoTrackerTest, CorrectionAsConditioningMatchesOfficialScenarioS3) {
  TrackerOptions options;
  options.independent_object_ranges = false;
  auto tracker = MakeTracker(options);
  tracker->AddPoints(0, 1, kObj1Click);
  tracker->AddBox(0, 2, kObj2Box);
  tracker->Propagate();
  const torch::Tensor corrected = tracker->AddPoints(4, 1, kCorrection);
  EXPECT_LE(MaxDiff(corrected, golden_->At("s3.a3_obj1_correction_f4.video_res_masks")), 0.1);
  std::map<int, torch::Tensor> logits;
  std::map<int, std::vector<bool>> cond;
  tracker->Propagate({}, [&](const PropagatedFrame& f) {
    logits[f.frame] = f.video_res_logits;
    cond[f.frame] = f.conditioning;
  });
  EXPECT_EQ(cond.at(4), (std::vector<bool>{true, false}));
  EXPECT_LE(MaxDiff(logits.at(3), golden_->At("s3.p2_fwd_again.f03.video_res_masks")), 0.1);
  EXPECT_LE(MaxDiff(logits.at(5), golden_->At("s3.p2_fwd_again.f05.video_res_masks")), 0.1);
  // The corrected mask stays on frame 4.
  EXPECT_TRUE(torch::equal(logits.at(4)[0], corrected[0]));
}

// With the official default the correction is overwritten: the second pass equals the first.
TEST_F(VideoTrackerTest, OfficialDefaultOverwritesCorrection) {
  TrackerOptions options;
  options.corrections_as_conditioning = false;
  auto tracker = MakeTracker(options);
  tracker->AddPoints(0, 1, kObj1Click);
  std::map<int, torch::Tensor> first, second;
  tracker->Propagate({}, [&](const PropagatedFrame& f) { first[f.frame] = f.video_res_logits; });
  EXPECT_LE(MaxDiff(first.at(4)[0], golden_->At("s1.p1_fwd.f04.video_res_masks")[0]), 0.1);
  const Mask before = *tracker->GetMask(4, 1);
  tracker->AddPoints(4, 1, kCorrection);
  tracker->Propagate({}, [&](const PropagatedFrame& f) { second[f.frame] = f.video_res_logits; });
  for (const auto& [frame, t] : first) EXPECT_TRUE(torch::equal(t, second.at(frame))) << "frame " << frame;
  EXPECT_EQ(*tracker->GetMask(4, 1), before);
}

TEST_F(VideoTrackerTest, CorrectionSticksAndRepropagates) {
  auto tracker = MakeTracker();
  tracker->AddPoints(0, 1, kObj1Click);
  tracker->Propagate();
  std::vector<Mask> first;
  std::vector<float> first_scores;
  for (int f = 0; f < tracker->frame_count(); ++f) {
    first.push_back(*tracker->GetMask(f, 1));
    first_scores.push_back(tracker->GetFrameOutput(f, 1)->object_score_logits.item<float>());
  }
  // The tracked object is lost on frame 4 (the micro model's object score is negative):
  // the user draws it.
  tracker->AddMask(4, 1, inputs_->At("video.s2_obj3_mask"));
  const Mask corrected = *tracker->GetMask(4, 1);
  EXPECT_NE(corrected, first[4]);
  tracker->Propagate();
  EXPECT_EQ(*tracker->GetMask(4, 1), corrected);  // the correction stuck
  EXPECT_EQ(*tracker->GetMask(0, 1), first[0]);
  EXPECT_EQ(tracker->GetFrameOutput(0, 1)->object_score_logits.item<float>(), first_scores[0]);
  // Every tracked frame now also attends to the conditioning memory of frame 4 (frames 1-3
  // to a future one, as the official add_all_frames_to_correct_as_cond). The micro model's
  // random weights keep predicting the object absent there, so compare scores, not masks.
  for (int f = 1; f < tracker->frame_count(); ++f)
    if (f != 4) EXPECT_NE(tracker->GetFrameOutput(f, 1)->object_score_logits.item<float>(), first_scores[f]) << f;
}

TEST_F(VideoTrackerTest, AddingObjectMidVideoDoesNotChangeOthers) {
  auto reference = MakeTracker();
  reference->AddPoints(0, 1, kObj1Click);
  reference->Propagate();

  auto tracker = MakeTracker();
  tracker->AddPoints(0, 1, kObj1Click);
  tracker->Propagate();
  tracker->AddBox(3, 2, {30.f, 20.f, 140.f, 110.f});
  tracker->Propagate();
  tracker->AddPoints(5, 2, {{80.f, 70.f, 1}}, std::nullopt, /*clear_old_points=*/false);  // edit object 2
  tracker->Propagate();
  tracker->Propagate({.reverse = true});
  EXPECT_EQ(tracker->object_ids(), (std::vector<int>{1, 2}));
  for (int f = 0; f < tracker->frame_count(); ++f) {
    EXPECT_EQ(*tracker->GetRle(f, 1), *reference->GetRle(f, 1)) << "frame " << f;
    const auto a = tracker->GetFrameOutput(f, 1), b = reference->GetFrameOutput(f, 1);
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(torch::equal(a->pred_masks, b->pred_masks)) << "frame " << f;
    EXPECT_TRUE(torch::equal(a->obj_ptr, b->obj_ptr)) << "frame " << f;
  }
  // Object 2 is tracked from its first prompt on, and backwards from there.
  for (int f = 0; f < tracker->frame_count(); ++f) EXPECT_TRUE(tracker->HasResult(f, 2)) << f;
  // Removing object 2 leaves object 1 as it was.
  tracker->RemoveObject(2);
  EXPECT_EQ(tracker->object_ids(), (std::vector<int>{1}));
  EXPECT_EQ(*tracker->GetRle(6, 1), *reference->GetRle(6, 1));
}

TEST_F(VideoTrackerTest, ReversePropagation) {
  auto tracker = MakeTracker();
  tracker->AddPoints(4, 1, {{180.f, 90.f, 1}, {60.f, 140.f, 0}});
  PropagateSummary forward = tracker->Propagate();
  EXPECT_EQ(forward.processing_order, (std::vector<int>{4, 5, 6, 7}));
  for (int f = 0; f < 4; ++f) EXPECT_FALSE(tracker->HasResult(f, 1));
  PropagateSummary reverse = tracker->Propagate({.reverse = true});
  EXPECT_EQ(reverse.processing_order, (std::vector<int>{4, 3, 2, 1, 0}));
  for (int f = 0; f < tracker->frame_count(); ++f) EXPECT_TRUE(tracker->HasResult(f, 1)) << f;

  // Official scenario s2 values (reverse pass of the same prompts, plus two more objects in
  // the reference that do not influence object 1).
  const auto out0 = tracker->GetFrameOutput(0, 1);
  ASSERT_TRUE(out0.has_value());
  EXPECT_LE(MaxDiff(out0->pred_masks, golden_->At("s2.p4_reverse_from_f4.f00.pred_masks")[0]), 0.1);

  // Reverse from the last frame: no conditioning frame lies ahead, so no object pointer is
  // available; the official code fails here in float32, the tracker works.
  auto t2 = MakeTracker();
  t2->AddPoints(0, 1, kObj1Click);
  t2->Propagate();
  const PropagateSummary back = t2->Propagate({.start_frame = 7, .reverse = true});
  EXPECT_EQ(back.frames_done, 8);
  for (int f = 0; f < 8; ++f) EXPECT_TRUE(t2->HasResult(f, 1));
}

TEST_F(VideoTrackerTest, CancellationStopsWithinOneFrameAndLeavesConsistentState) {
  auto reference = MakeTracker();
  reference->AddPoints(0, 1, kObj1Click);
  reference->AddBox(0, 2, kObj2Box);
  reference->Propagate();

  auto tracker = MakeTracker();
  tracker->AddPoints(0, 1, kObj1Click);
  tracker->AddBox(0, 2, kObj2Box);
  std::atomic<int> frames_seen{0};
  std::atomic<bool> busy_rejected{false};
  PropagateSummary done_summary;
  std::string done_error;
  tracker->StartPropagation(
      {},
      [&](const PropagatedFrame& f) {
        ++frames_seen;
        EXPECT_EQ(f.total, 8);
        if (f.done == 2) {
          try {
            tracker->AddPoints(3, 1, kCorrection);
          } catch (const Error&) {
            busy_rejected = true;
          }
          EXPECT_TRUE(tracker->GetMask(f.frame, 1).has_value());  // readers work meanwhile
          tracker->Cancel();
        }
      },
      [&](const PropagateSummary& s, const std::string& error) {
        done_summary = s;
        done_error = error;
      });
  tracker->Wait();
  EXPECT_FALSE(tracker->busy());
  EXPECT_TRUE(busy_rejected);
  EXPECT_TRUE(done_error.empty()) << done_error;
  EXPECT_TRUE(done_summary.cancelled);
  EXPECT_EQ(done_summary.frames_done, 2);
  EXPECT_EQ(frames_seen.load(), 2);
  for (int f = 0; f < 8; ++f) {
    EXPECT_EQ(tracker->HasResult(f, 1), f < 2) << f;
    EXPECT_EQ(tracker->HasResult(f, 2), f < 2) << f;
  }
  // Propagating again finishes the job with exactly the uncancelled results.
  tracker->Propagate();
  for (int f = 0; f < 8; ++f)
    for (int obj : {1, 2}) EXPECT_EQ(*tracker->GetRle(f, obj), *reference->GetRle(f, obj)) << f << " " << obj;
}

TEST_F(VideoTrackerTest, BoundedMemoryIsExactAndBounded) {
  TrackerOptions bounded;
  bounded.logits_cache_frames = 4;
  TrackerOptions unbounded;
  unbounded.bounded_memory = false;
  auto a = MakeTracker(bounded, /*repeat=*/5);  // 40 frames
  auto b = MakeTracker(unbounded, 5);
  for (auto* t : {a.get(), b.get()}) {
    t->AddPoints(0, 1, kObj1Click);
    t->AddBox(10, 2, kObj2Box);
  }
  a->Propagate();
  b->Propagate();
  const TrackerMemoryStats s = a->memory_stats();
  // Object 1: memories within 6 frames of frame 0 and of the front (39); object 2 likewise.
  EXPECT_LE(s.memory_entries, 2 * (6 + 7));
  EXPECT_LE(s.pointer_entries, 2 * (15 + 16));
  EXPECT_LE(s.logits_entries, 2 * 4);
  EXPECT_LE(s.feature_frames, 3);
  EXPECT_GT(b->memory_stats().memory_entries, 60);
  for (int f = 0; f < 40; ++f)
    for (int obj : {1, 2}) {
      EXPECT_EQ(a->HasResult(f, obj), obj == 1 || f >= 10) << f << " " << obj;
      EXPECT_TRUE(a->GetRle(f, obj) == b->GetRle(f, obj)) << f << " " << obj;
    }
  // Reverse from the conditioning frame still finds the forward memories it needs.
  a->Propagate({.reverse = true});
  b->Propagate({.reverse = true});
  for (int f = 0; f < 10; ++f) {
    EXPECT_TRUE(a->HasResult(f, 2)) << f;
    EXPECT_TRUE(a->GetRle(f, 2) == b->GetRle(f, 2)) << f;
  }
  // Re-clicking a frame whose logits were dropped still works (rebuilt from the result).
  EXPECT_FALSE(a->GetFrameOutput(20, 1).has_value());  // nothing later steps could use
  a->AddPoints(20, 1, {{200.f, 100.f, 1}});
  EXPECT_TRUE(a->HasResult(20, 1));
}

TEST_F(VideoTrackerTest, ObserverGetsTheDecoderInputs) {
  std::vector<SamHeadObservation> seen;
  std::vector<torch::Tensor> recomputed;
  TrackerOptions options;
  options.observer = [&](const SamHeadObservation& o) {
    seen.push_back(o);
    // high_res and step point into the tracker: valid during the call only.
    ASSERT_NE(o.high_res, nullptr);
    EXPECT_EQ(o.high_res->size(), 2u);
    EXPECT_EQ((*o.high_res)[0].sizes(), (std::vector<int64_t>{1, 8, 64, 64}));
    if (o.mask_as_output) return;
    // The decoder called on the observed inputs gives the observed logits.
    MaskDecoderOutput d = (*model_)->sam_mask_decoder->forward(o.pix_feat_with_mem, o.image_pe, o.sparse_embeddings,
                                                               o.dense_embeddings, o.ious.size(1) > 1, false,
                                                               *o.high_res);
    torch::Tensor masks = d.masks;
    if (!(o.object_score_logits.item<float>() > 0)) masks = torch::full_like(masks, kNoObjectScore);
    recomputed.push_back((masks - o.low_res_multimasks).abs().max());
  };
  auto tracker = MakeTracker(options);
  tracker->AddPoints(0, 1, kObj1Click);
  tracker->AddMask(2, 2, (inputs_->At("video.s2_obj3_mask") != 0));
  tracker->Propagate({.max_frames = 3});
  ASSERT_EQ(seen.size(), 2u + 3u + 1u);  // 2 interactions, frames 1-3 for object 1, frame 3 for object 2
  EXPECT_TRUE(seen[0].interaction && seen[0].conditioning);
  EXPECT_TRUE(seen[1].mask_as_output);
  for (const auto& o : seen) {
    EXPECT_EQ(o.pix_feat_with_mem.sizes(), (std::vector<int64_t>{1, 64, 16, 16}));
    EXPECT_EQ(o.dense_embeddings.sizes(), (std::vector<int64_t>{1, 64, 16, 16}));
    EXPECT_EQ(o.low_res_masks.sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
  }
  EXPECT_FALSE(seen.back().interaction);
  EXPECT_EQ(seen.back().sparse_embeddings.size(1), 2);  // padding point + appended padding
  for (const auto& d : recomputed) EXPECT_EQ(d.item<float>(), 0.f);
}

TEST_F(VideoTrackerTest, AddMaskIsTheFrameResult) {
  auto tracker = MakeTracker();
  const torch::Tensor mask = inputs_->At("video.s2_obj3_mask");
  const torch::Tensor logits = tracker->AddMask(4, 3, mask);
  const torch::Tensor ours = logits[0][0] > 0, ref = mask != 0;
  const double inter = (ours & ref).sum().item<double>(), uni = (ours | ref).sum().item<double>();
  EXPECT_GT(inter / uni, 0.9);
  EXPECT_LE(MaxDiff(logits, golden_->At("s2.b2_obj3_mask_f4.video_res_masks")[1]), 0.1);
  // The same through a litseg::Mask.
  Mask m(320, 180);
  std::memcpy(m.data(), mask.contiguous().data_ptr<uint8_t>(), m.pixel_count());
  auto t2 = MakeTracker();
  EXPECT_TRUE(torch::equal(t2->AddMask(4, 3, m), logits));
}

TEST_F(VideoTrackerTest, ClearPromptsDowngradesAndErrors) {
  auto tracker = MakeTracker();
  tracker->AddPoints(0, 1, kObj1Click);
  tracker->AddPoints(2, 2, {{60.f, 60.f, 1}});
  tracker->ClearPrompts(2, 2);
  EXPECT_FALSE(tracker->HasResult(2, 2));
  // Object 2 has no prompt left: propagation says so.
  try {
    tracker->Propagate();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("object 2"), std::string::npos) << e.what();
  }
  tracker->RemoveObject(2);
  tracker->Propagate();
  // Clearing a conditioning frame after tracking keeps its output as a tracked one.
  tracker->ClearPrompts(0, 1);
  EXPECT_TRUE(tracker->HasResult(0, 1));
}

TEST_F(VideoTrackerTest, BadInputsThrowClearErrors) {
  auto tracker = MakeTracker();
  EXPECT_THROW(tracker->Propagate(), Error);                     // no objects
  EXPECT_THROW(tracker->AddPoints(8, 1, kObj1Click), Error);     // frame out of range
  EXPECT_THROW(tracker->AddPoints(-1, 1, kObj1Click), Error);
  EXPECT_THROW(tracker->AddPoints(0, 1, {}), Error);             // nothing given
  EXPECT_THROW(tracker->AddPoints(0, 1, {{10.f, 10.f, 5}}), Error);  // bad label
  EXPECT_THROW(tracker->AddPoints(0, 1, {}, kObj2Box, false), Error);  // box must clear old points
  EXPECT_THROW(tracker->AddMask(0, 1, torch::zeros({10, 10}, torch::kUInt8)), Error);
  EXPECT_THROW(tracker->AddMask(0, 1, Mask(10, 10)), Error);
  EXPECT_THROW(tracker->RemoveObject(42), Error);
  EXPECT_THROW(tracker->ClearPrompts(0, 42), Error);
  EXPECT_THROW(tracker->GetMask(0, 42), Error);
  EXPECT_TRUE(tracker->object_ids().empty());  // failed calls created no object
  tracker->AddPoints(0, 1, kObj1Click);
  EXPECT_THROW(tracker->Propagate({.start_frame = 99}), Error);
  EXPECT_THROW(tracker->Propagate({.max_frames = -2}), Error);
  EXPECT_FALSE(tracker->GetMask(5, 1).has_value());  // not tracked yet
  EXPECT_THROW(VideoTracker(*model_, std::unique_ptr<TrackerFrames>()), Error);
  EXPECT_THROW(TrackerFramesFromResized(torch::zeros({2, 3, 4}, torch::kUInt8), 10, 10), Error);
}

// Frames read from a VideoSource are resized like PIL (antialiased bicubic).
class TensorVideoSource : public VideoSource {
 public:
  explicit TensorVideoSource(torch::Tensor frames) : frames_(std::move(frames)) {
    info_.kind = "test";
    info_.frame_count = static_cast<int>(frames_.size(0));
    info_.height = static_cast<int>(frames_.size(1));
    info_.width = static_cast<int>(frames_.size(2));
  }
  const VideoInfo& info() const override { return info_; }
  cv::Mat ReadFrame(int index) override {
    if (index < 0 || index >= info_.frame_count) throw Error("frame out of range");
    ++reads;
    torch::Tensor f = frames_[index].contiguous();
    return cv::Mat(info_.height, info_.width, CV_8UC3, f.data_ptr<uint8_t>()).clone();
  }
  double FrameTime(int index) const override { return index / 24.0; }
  int reads = 0;

 private:
  torch::Tensor frames_;
  VideoInfo info_;
};

TEST_F(VideoTrackerTest, VideoSourceFramesAreReadLazilyAndResizedLikePil) {
  auto source = std::make_unique<TensorVideoSource>(inputs_->At("frames_u8"));
  TensorVideoSource* raw = source.get();
  auto frames = TrackerFramesFromVideo(std::move(source));
  EXPECT_EQ(frames->width(), 320);
  EXPECT_EQ(frames->height(), 180);
  const torch::Tensor ours = frames->ResizedFrame(3, 256).to(torch::kFloat32);
  const torch::Tensor pil = inputs_->At("video.resized_u8")[3].to(torch::kFloat32);
  EXPECT_LT((ours - pil).abs().mean().item<double>(), 0.5);
  EXPECT_LE((ours - pil).abs().max().item<double>(), 3.0);
  EXPECT_EQ(raw->reads, 1);

  auto src2 = std::make_unique<TensorVideoSource>(inputs_->At("frames_u8"));
  TensorVideoSource* raw2 = src2.get();
  VideoTracker tracker(*model_, std::move(src2));
  tracker.AddPoints(0, 1, kObj1Click);
  EXPECT_EQ(raw2->reads, 1);  // only the prompted frame
  tracker.Propagate({.max_frames = 2});
  EXPECT_EQ(raw2->reads, 3);
  EXPECT_TRUE(tracker.HasResult(2, 1));
}

}  // namespace
}  // namespace litseg::sam2
