// Suggestions and gating of live interactive training: what becomes a frame's result when an
// adapter proposes a mask. One API that the GUI and a simulated user both drive.
//
// When tracking reaches a frame, the tracker computes the base mask; the session caches the
// frame's decoder inputs (so a later correction does not re-run the image encoder) and, when
// an adapter exists, computes the adapted mask. A trigger decides whether the frame needs
// attention, a policy what happens then:
//   trigger kPredictedIou (default): the base mask's predicted IoU < iou_threshold (0.8,
//           the value the method found best aligned with a true IoU of 0.5);
//           kUser: only frames the user asks about (RequestSuggestion); kEveryFrame.
//   policy  kReview (default): the adapted mask is a suggestion that waits; Accept makes it
//           the frame's mask (the caller conditions the tracker's memory on it, e.g. the
//           tracker's "add mask on frame"); Reject keeps the base mask and asks for a
//           correction, whose result (SubmitCorrection) trains the adapter.
//           kAuto: adapted masks are used directly (batch runs).
// Without a trained adapter a triggered frame asks for a correction.
// Every decision is reported as an Event (suggested, accepted, rejected, correction
// requested, auto-applied, trained with loss before/after and time, reset, saved, loaded).
//
//   litseg::lit::Session session(model, {}, [](const litseg::lit::Event& e) { log(e); });
//   auto outcome = session.ObserveFrame(/*object=*/1, /*frame=*/t, inputs, base_prediction);
//   if (outcome.decision == litseg::lit::Decision::kAwaitingReview) {
//     if (user_likes_it) tracker.AddMask(t, 1, session.Accept(1, t, width, height));
//     else { session.Reject(1, t); /* ... user corrects ... */ session.SubmitCorrection(1, t, mask); }
//   }
//
// One adapter (one OnlineTrainer) per object: objects are independent, as in the tracker.
// Thread-safety: all methods lock an internal mutex, so the tracker's worker thread and the
// GUI thread may call them; events are delivered on the calling thread, with the lock held
// (an event callback must not call back into the session).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include <torch/torch.h>

#include "litseg/core/mask.h"
#include "litseg/lit/trainer.h"
#include "litseg/sam2/sam2_model.h"

namespace litseg::lit {

enum class GatePolicy { kReview, kAuto };
enum class SuggestTrigger { kPredictedIou, kUser, kEveryFrame };

std::string GatePolicyName(GatePolicy policy);     // "review" / "auto"
GatePolicy ParseGatePolicy(const std::string& name);
std::string SuggestTriggerName(SuggestTrigger trigger);  // "iou" / "user" / "every_frame"
SuggestTrigger ParseSuggestTrigger(const std::string& name);

struct SessionOptions {
  TrainerOptions trainer;  // adapter kind, schedule, optimiser, loss
  GatePolicy policy = GatePolicy::kReview;
  SuggestTrigger trigger = SuggestTrigger::kPredictedIou;
  double iou_threshold = 0.8;  // predicted IoU below this triggers (the method's best value)
  int feature_cache_frames = 16;  // cached frames (per session, LRU); ~20 MB each at 1024
};

enum class EventType {
  kSuggested,            // an adapted mask waits for review
  kAccepted,             // the suggestion became the frame's mask
  kRejected,             // the suggestion was refused; the base mask stays
  kCorrectionRequested,  // the frame needs the user's correction
  kAutoApplied,          // policy auto: the adapted mask became the frame's mask
  kTrained,              // a correction trained the adapter
  kReset,
  kSaved,
  kLoaded,
};
std::string EventTypeName(EventType type);

struct Event {
  EventType type = EventType::kSuggested;
  int object = -1;
  int frame = -1;
  double base_iou = -1.0;       // predicted IoUs (-1: not known)
  double adapted_iou = -1.0;
  double loss_before = -1.0;    // kTrained
  double loss_after = -1.0;
  int steps = 0;
  int adapter_index = -1;
  double duration_ms = 0.0;     // kTrained: training time; others: time of the call
  std::string detail;           // file path, reason, ...
};
using EventFn = std::function<void(const Event&)>;

// What the tracker gave for the frame (or the session computes it when left undefined).
struct BaseResult {
  torch::Tensor low_res_logits;  // [1, 1, 4h, 4w]
  double predicted_iou = -1.0;   // < 0: unknown (the session computes the base itself)
};

enum class Decision {
  kBase,             // the base mask is the frame's result
  kAdapted,          // the adapted mask is the frame's result (auto policy)
  kAwaitingReview,   // a suggestion waits for Accept / Reject; the base mask stands meanwhile
  kNeedsCorrection,  // triggered without an adapter (or after a reject): ask the user
};
std::string DecisionName(Decision decision);

struct FrameOutcome {
  Decision decision = Decision::kBase;
  bool triggered = false;
  torch::Tensor base_logits;     // [1, 1, 4h, 4w]
  torch::Tensor adapted_logits;  // undefined when no adapter was trained
  double base_iou = -1.0;
  double adapted_iou = -1.0;
  // The logits that are the frame's result now (base or adapted).
  torch::Tensor result_logits() const { return decision == Decision::kAdapted ? adapted_logits : base_logits; }
};

class Session {
 public:
  Session(sam2::Sam2Model model, SessionOptions options = {}, EventFn on_event = nullptr);
  ~Session();

  // The tracker ran the SAM head on (object, frame) with `inputs`; `base` is its result
  // (computed here when base.low_res_logits is undefined).
  FrameOutcome ObserveFrame(int object, int frame, const DecoderInputs& inputs, const BaseResult& base = {});
  // The user asks for the adapter's proposal on a frame the tracker visited (cached inputs).
  // Throws litseg::Error when the frame's inputs are not cached.
  FrameOutcome RequestSuggestion(int object, int frame);

  // The pending suggestion of (object, frame), if any.
  std::optional<FrameOutcome> Pending(int object, int frame) const;
  // Makes the pending suggestion the frame's mask and returns it at width x height (what the
  // caller gives the tracker's "add mask"). Throws litseg::Error without a pending suggestion.
  Mask Accept(int object, int frame, int width, int height);
  // Low-resolution variant: returns the accepted logits [1, 1, 4h, 4w].
  torch::Tensor AcceptLogits(int object, int frame);
  // Refuses the suggestion: the base mask stays and a correction is requested.
  void Reject(int object, int frame);
  // The mask the user settled on for (object, frame) (after clicks, drawn or imported):
  // trains the object's adapter on the frame's cached inputs. Throws litseg::Error when the
  // frame was never observed (or fell out of the cache).
  TrainReport SubmitCorrection(int object, int frame, const Mask& corrected);
  TrainReport SubmitCorrection(int object, int frame, const torch::Tensor& target);

  // Adapters of an object (created on first use). trainer() hands out the object's trainer
  // itself (history, Predict, ...): not synchronised, use it while no other thread calls
  // the session.
  void ResetAdapter(int object);
  void SaveAdapter(int object, const std::filesystem::path& path);
  void LoadAdapter(int object, const std::filesystem::path& path);
  OnlineTrainer& trainer(int object);

  const SessionOptions& options() const { return options_; }
  // Frames whose inputs are cached, for tests and the GUI.
  bool HasCachedInputs(int object, int frame) const;
  std::optional<DecoderInputs> CachedInputs(int object, int frame) const;

 private:
  using Key = std::pair<int, int>;  // (object, frame)
  OnlineTrainer& TrainerLocked(int object);
  FrameOutcome Decide(int object, int frame, const DecoderInputs& inputs, const BaseResult& base, bool user_request);
  void Cache(int object, int frame, const DecoderInputs& inputs);
  const DecoderInputs* Cached(int object, int frame);
  void Emit(Event event);

  sam2::Sam2Model model_;
  SessionOptions options_;
  EventFn on_event_;
  mutable std::mutex mutex_;
  std::map<int, std::unique_ptr<OnlineTrainer>> trainers_;
  std::list<std::pair<Key, DecoderInputs>> cache_;  // most recent first
  std::map<Key, FrameOutcome> pending_;
};

}  // namespace litseg::lit
