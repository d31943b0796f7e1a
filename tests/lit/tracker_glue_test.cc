// The tracker's observer feeds a Session with exactly what the SAM head saw; an accepted
// suggestion becomes the tracker's mask.
#include <map>

#include <gtest/gtest.h>

#include "lit_test_util.h"
#include "litseg/core/mask_ops.h"
#include "litseg/lit/tracker_glue.h"
#include "litseg/sam2/video_tracker.h"

namespace litseg::lit {
namespace {

std::unique_ptr<sam2::TrackerFrames> BlackswanFrames(int count, int size, int* width, int* height) {
  std::vector<torch::Tensor> resized;
  for (int f = 0; f < count; ++f) {
    const torch::Tensor rgb = test::ReadDavisFrame("blackswan", f);
    *height = static_cast<int>(rgb.size(0));
    *width = static_cast<int>(rgb.size(1));
    cv::Mat src(*height, *width, CV_8UC3, rgb.data_ptr<uint8_t>());
    cv::Mat dst;
    cv::resize(src, dst, cv::Size(size, size), 0, 0, cv::INTER_CUBIC);
    resized.push_back(torch::from_blob(dst.data, {size, size, 3}, torch::kUInt8).clone());
  }
  return sam2::TrackerFramesFromResized(torch::stack(resized), *width, *height);
}

TEST(LitTrackerGlue, PropagationFeedsTheSessionAndAcceptConditionsTheTracker) {
  LITSEG_REQUIRE_SHARED("sam2/micro/weights.safetensors");
  LITSEG_REQUIRE_SHARED("data/vos/davis2016/DAVIS/JPEGImages/480p/blackswan/00000.jpg");
  sam2::Sam2Model model = test::LoadMicroModel();
  SessionOptions options;
  options.trigger = SuggestTrigger::kEveryFrame;
  Session session(model, options);

  std::map<int, torch::Tensor> multimasks;
  std::map<int, Decision> decisions;
  const sam2::SamHeadObserver glue =
      MakeSessionObserver(session, [&](int frame, int, const FrameOutcome& o) { decisions[frame] = o.decision; });
  sam2::TrackerOptions topt;
  topt.observer = [&](const sam2::SamHeadObservation& o) {
    if (!o.interaction && !o.mask_as_output) multimasks[o.frame] = o.low_res_multimasks.clone();
    glue(o);
  };
  int width = 0, height = 0;
  sam2::VideoTracker tracker(model, BlackswanFrames(6, model->config.image_size, &width, &height), topt);
  tracker.AddMask(0, 1, test::ReadDavisMask("blackswan", 0));
  tracker.Propagate({});

  for (int f = 1; f < 6; ++f) {
    SCOPED_TRACE(f);
    ASSERT_TRUE(session.HasCachedInputs(1, f));
    EXPECT_EQ(decisions.at(f), Decision::kNeedsCorrection);  // no adapter yet
  }
  EXPECT_FALSE(decisions.count(0));  // the conditioning frame's mask is the user's

  // The cached inputs are exactly the SAM head's: the decoder reproduces the tracker's
  // multimask logits (after its no-object gating) from them.
  {
    const std::optional<DecoderInputs> in = session.CachedInputs(1, 3);
    ASSERT_TRUE(in.has_value());
    torch::NoGradGuard no_grad;
    const sam2::MaskDecoderRawOutput raw = model->sam_mask_decoder->PredictMasks(
        in->image_embed, in->image_pe, in->sparse, in->dense, false, in->high_res_features);
    torch::Tensor multi = raw.masks.narrow(1, 1, 3);
    multi = torch::where(raw.object_score_logits.gt(0).view({-1, 1, 1, 1}), multi, torch::full_like(multi, -1024.0));
    const torch::Tensor tracker_masks = multimasks.at(3);
    ASSERT_EQ(tracker_masks.sizes(), multi.sizes());
    EXPECT_LT((tracker_masks - multi).abs().max().item<double>(), 1e-4);
  }

  // A correction trains the adapter from the cached tracking inputs; re-propagation then
  // brings suggestions, and an accepted one conditions the tracker.
  session.SubmitCorrection(1, 3, test::ReadDavisMask("blackswan", 3));
  EXPECT_TRUE(session.trainer(1).trained());
  decisions.clear();
  tracker.Propagate({});
  EXPECT_EQ(decisions.at(4), Decision::kAwaitingReview);
  const Mask accepted = AcceptIntoTracker(session, tracker, 1, 4);
  const std::optional<Mask> stored = tracker.GetMask(4, 1);
  ASSERT_TRUE(stored.has_value());
  // The tracker stores an added mask through its low-resolution logits: the same mask up to
  // resampling at the borders.
  EXPECT_GT(IoU(*stored, accepted), 0.9);
  EXPECT_EQ(accepted.width(), width);
  EXPECT_EQ(accepted.height(), height);
}

}  // namespace
}  // namespace litseg::lit
