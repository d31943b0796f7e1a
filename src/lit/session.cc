#include "litseg/lit/session.h"

#include <chrono>

#include "litseg/core/error.h"

namespace litseg::lit {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string FrameText(int object, int frame) {
  return "frame " + std::to_string(frame) + " of object " + std::to_string(object);
}

}  // namespace

std::string GatePolicyName(GatePolicy policy) { return policy == GatePolicy::kReview ? "review" : "auto"; }

GatePolicy ParseGatePolicy(const std::string& name) {
  if (name == "review") return GatePolicy::kReview;
  if (name == "auto") return GatePolicy::kAuto;
  throw Error("unknown gate policy '" + name + "' (expected review or auto)");
}

std::string SuggestTriggerName(SuggestTrigger trigger) {
  switch (trigger) {
    case SuggestTrigger::kPredictedIou: return "iou";
    case SuggestTrigger::kUser: return "user";
    case SuggestTrigger::kEveryFrame: return "every_frame";
  }
  return "?";
}

SuggestTrigger ParseSuggestTrigger(const std::string& name) {
  if (name == "iou") return SuggestTrigger::kPredictedIou;
  if (name == "user") return SuggestTrigger::kUser;
  if (name == "every_frame") return SuggestTrigger::kEveryFrame;
  throw Error("unknown suggestion trigger '" + name + "' (expected iou, user or every_frame)");
}

std::string EventTypeName(EventType type) {
  switch (type) {
    case EventType::kSuggested: return "suggested";
    case EventType::kAccepted: return "accepted";
    case EventType::kRejected: return "rejected";
    case EventType::kCorrectionRequested: return "correction_requested";
    case EventType::kAutoApplied: return "auto_applied";
    case EventType::kTrained: return "trained";
    case EventType::kReset: return "reset";
    case EventType::kSaved: return "saved";
    case EventType::kLoaded: return "loaded";
  }
  return "?";
}

std::string DecisionName(Decision decision) {
  switch (decision) {
    case Decision::kBase: return "base";
    case Decision::kAdapted: return "adapted";
    case Decision::kAwaitingReview: return "awaiting_review";
    case Decision::kNeedsCorrection: return "needs_correction";
  }
  return "?";
}

Session::Session(sam2::Sam2Model model, SessionOptions options, EventFn on_event)
    : model_(std::move(model)), options_(std::move(options)), on_event_(std::move(on_event)) {
  if (!model_) throw Error("a live-training session needs a model");
  if (!(options_.iou_threshold >= 0.0 && options_.iou_threshold <= 1.0))
    throw Error("the IoU threshold must be in [0, 1]");
  if (options_.feature_cache_frames < 1) throw Error("the feature cache must hold at least one frame");
}

Session::~Session() = default;

void Session::Emit(Event event) {
  if (on_event_) on_event_(event);
}

OnlineTrainer& Session::TrainerLocked(int object) {
  auto it = trainers_.find(object);
  if (it == trainers_.end())
    it = trainers_.emplace(object, std::make_unique<OnlineTrainer>(model_, options_.trainer)).first;
  return *it->second;
}

OnlineTrainer& Session::trainer(int object) {
  std::lock_guard<std::mutex> lock(mutex_);
  return TrainerLocked(object);
}

void Session::Cache(int object, int frame, const DecoderInputs& inputs) {
  const Key key{object, frame};
  for (auto it = cache_.begin(); it != cache_.end(); ++it) {
    if (it->first == key) {
      cache_.erase(it);
      break;
    }
  }
  DecoderInputs copy;
  copy.image_embed = inputs.image_embed.detach();
  for (const auto& t : inputs.high_res_features) copy.high_res_features.push_back(t.detach());
  copy.sparse = inputs.sparse.detach();
  copy.dense = inputs.dense.detach();
  copy.image_pe = inputs.image_pe.detach();
  cache_.emplace_front(key, std::move(copy));
  while (static_cast<int>(cache_.size()) > options_.feature_cache_frames) cache_.pop_back();
}

const DecoderInputs* Session::Cached(int object, int frame) {
  const Key key{object, frame};
  for (auto it = cache_.begin(); it != cache_.end(); ++it) {
    if (it->first == key) {
      cache_.splice(cache_.begin(), cache_, it);  // most recently used first
      return &cache_.front().second;
    }
  }
  return nullptr;
}

bool Session::HasCachedInputs(int object, int frame) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& entry : cache_)
    if (entry.first == Key{object, frame}) return true;
  return false;
}

std::optional<DecoderInputs> Session::CachedInputs(int object, int frame) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& entry : cache_)
    if (entry.first == Key{object, frame}) return entry.second;
  return std::nullopt;
}

FrameOutcome Session::Decide(int object, int frame, const DecoderInputs& inputs, const BaseResult& base,
                             bool user_request) {
  const auto start = Clock::now();
  OnlineTrainer& trainer = TrainerLocked(object);
  FrameOutcome out;
  if (base.low_res_logits.defined() && base.predicted_iou >= 0.0) {
    out.base_logits = base.low_res_logits.detach();
    out.base_iou = base.predicted_iou;
  } else {
    const Prediction p = trainer.PredictBase(inputs);
    out.base_logits = base.low_res_logits.defined() ? base.low_res_logits.detach() : p.low_res_logits;
    out.base_iou = p.iou.item<double>();
  }
  if (trainer.trained()) {
    const Prediction p = trainer.Predict(inputs);
    out.adapted_logits = p.low_res_logits;
    out.adapted_iou = p.iou.item<double>();
  }
  switch (options_.trigger) {
    case SuggestTrigger::kPredictedIou: out.triggered = user_request || out.base_iou < options_.iou_threshold; break;
    case SuggestTrigger::kUser: out.triggered = user_request; break;
    case SuggestTrigger::kEveryFrame: out.triggered = true; break;
  }

  const Key key{object, frame};
  pending_.erase(key);  // a new visit supersedes an old suggestion
  Event e;
  e.object = object;
  e.frame = frame;
  e.base_iou = out.base_iou;
  e.adapted_iou = out.adapted_iou;
  if (!out.triggered) {
    out.decision = Decision::kBase;
    return out;
  }
  if (!out.adapted_logits.defined()) {
    out.decision = Decision::kNeedsCorrection;
    e.type = EventType::kCorrectionRequested;
    e.detail = "no trained adapter yet";
  } else if (options_.policy == GatePolicy::kAuto) {
    out.decision = Decision::kAdapted;
    e.type = EventType::kAutoApplied;
  } else {
    out.decision = Decision::kAwaitingReview;
    pending_[key] = out;
    e.type = EventType::kSuggested;
  }
  e.duration_ms = MsSince(start);
  Emit(e);
  return out;
}

FrameOutcome Session::ObserveFrame(int object, int frame, const DecoderInputs& inputs, const BaseResult& base) {
  std::lock_guard<std::mutex> lock(mutex_);
  Cache(object, frame, inputs);
  return Decide(object, frame, *Cached(object, frame), base, /*user_request=*/false);
}

FrameOutcome Session::RequestSuggestion(int object, int frame) {
  std::lock_guard<std::mutex> lock(mutex_);
  const DecoderInputs* inputs = Cached(object, frame);
  if (!inputs) throw Error("no cached features for " + FrameText(object, frame) + ": the tracker must visit it first");
  return Decide(object, frame, *inputs, {}, /*user_request=*/true);
}

std::optional<FrameOutcome> Session::Pending(int object, int frame) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pending_.find({object, frame});
  if (it == pending_.end()) return std::nullopt;
  return it->second;
}

torch::Tensor Session::AcceptLogits(int object, int frame) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pending_.find({object, frame});
  if (it == pending_.end()) throw Error("no suggestion waits on " + FrameText(object, frame));
  FrameOutcome outcome = std::move(it->second);
  pending_.erase(it);
  Event e;
  e.type = EventType::kAccepted;
  e.object = object;
  e.frame = frame;
  e.base_iou = outcome.base_iou;
  e.adapted_iou = outcome.adapted_iou;
  Emit(e);
  return outcome.adapted_logits;
}

Mask Session::Accept(int object, int frame, int width, int height) {
  return MaskFromLogits(AcceptLogits(object, frame), width, height);
}

void Session::Reject(int object, int frame) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pending_.find({object, frame});
  if (it == pending_.end()) throw Error("no suggestion waits on " + FrameText(object, frame));
  Event e;
  e.object = object;
  e.frame = frame;
  e.base_iou = it->second.base_iou;
  e.adapted_iou = it->second.adapted_iou;
  pending_.erase(it);
  e.type = EventType::kRejected;
  Emit(e);
  e.type = EventType::kCorrectionRequested;
  e.detail = "suggestion rejected";
  Emit(e);
}

TrainReport Session::SubmitCorrection(int object, int frame, const Mask& corrected) {
  if (corrected.empty()) throw Error("the correction of " + FrameText(object, frame) + " is an empty raster");
  // The target size is the model's, the same for every trainer.
  return SubmitCorrection(object, frame, PrepareTarget(corrected, model_->config.image_size));
}

TrainReport Session::SubmitCorrection(int object, int frame, const torch::Tensor& target) {
  std::lock_guard<std::mutex> lock(mutex_);
  const DecoderInputs* inputs = Cached(object, frame);
  if (!inputs)
    throw Error("no cached features for " + FrameText(object, frame) +
                ": the tracker must visit the frame before its correction can train the adapter");
  pending_.erase({object, frame});  // the user's mask supersedes a suggestion
  const TrainReport r = TrainerLocked(object).Train(*inputs, target, frame, object);
  Event e;
  e.type = EventType::kTrained;
  e.object = object;
  e.frame = frame;
  e.loss_before = r.loss_before;
  e.loss_after = r.loss_after;
  e.steps = r.steps;
  e.adapter_index = r.adapter_index;
  e.duration_ms = r.train_ms;
  e.detail = r.new_adapter ? "new adapter" : "";
  Emit(e);
  return r;
}

void Session::ResetAdapter(int object) {
  std::lock_guard<std::mutex> lock(mutex_);
  TrainerLocked(object).Reset();
  for (auto it = pending_.begin(); it != pending_.end();)
    it = it->first.first == object ? pending_.erase(it) : std::next(it);
  Event e;
  e.type = EventType::kReset;
  e.object = object;
  Emit(e);
}

void Session::SaveAdapter(int object, const std::filesystem::path& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto start = Clock::now();
  TrainerLocked(object).Save(path);
  Event e;
  e.type = EventType::kSaved;
  e.object = object;
  e.detail = path.string();
  e.duration_ms = MsSince(start);
  Emit(e);
}

void Session::LoadAdapter(int object, const std::filesystem::path& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto start = Clock::now();
  TrainerLocked(object).Load(path);
  for (auto it = pending_.begin(); it != pending_.end();)
    it = it->first.first == object ? pending_.erase(it) : std::next(it);
  Event e;
  e.type = EventType::kLoaded;
  e.object = object;
  e.detail = path.string();
  e.duration_ms = MsSince(start);
  Emit(e);
}

}  // namespace litseg::lit
