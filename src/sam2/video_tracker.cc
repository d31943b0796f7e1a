// VideoTracker: frames, objects, prompts and results (propagation: video_tracker_propagate.cc).
#include "litseg/sam2/video_tracker.h"

#include <chrono>
#include <cstring>
#include <sstream>

#include "litseg/core/error.h"
#include "litseg/sam2/preprocess.h"
#include "video_tracker_internal.h"

namespace litseg::sam2 {
namespace F = torch::nn::functional;

// ---------------------------------------------------------------------------------------
// Frame sources

namespace {

class VideoSourceFrames : public TrackerFrames {
 public:
  explicit VideoSourceFrames(std::unique_ptr<VideoSource> source) : source_(std::move(source)) {
    if (!source_) throw Error("tracker: no video source");
    const VideoInfo& info = source_->info();
    if (info.frame_count <= 0 || info.width <= 0 || info.height <= 0)
      throw Error("tracker: the video " + info.path + " has no frames");
  }
  int frame_count() const override { return source_->info().frame_count; }
  int width() const override { return source_->info().width; }
  int height() const override { return source_->info().height; }
  torch::Tensor ResizedFrame(int index, int image_size) override {
    cv::Mat rgb = source_->ReadFrame(index);
    if (rgb.type() != CV_8UC3) throw Error("tracker: the video source returned a frame that is not 8-bit RGB");
    const torch::Tensor view = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3},
                                                {static_cast<int64_t>(rgb.step[0]), 3, 1}, torch::kUInt8);
    torch::Tensor x = view.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32);
    if (rgb.rows != image_size || rgb.cols != image_size) {
      // PIL's resize: antialiased bicubic (a = -0.5), rounded to 8 bits.
      x = F::interpolate(x, F::InterpolateFuncOptions()
                                .size(std::vector<int64_t>{image_size, image_size})
                                .mode(torch::kBicubic)
                                .align_corners(false)
                                .antialias(true));
      x = x.round().clamp(0, 255);
    }
    return x.to(torch::kUInt8).squeeze(0).permute({1, 2, 0}).contiguous();
  }

 private:
  std::unique_ptr<VideoSource> source_;
};

class ResizedTensorFrames : public TrackerFrames {
 public:
  ResizedTensorFrames(torch::Tensor frames, int width, int height)
      : frames_(std::move(frames)), width_(width), height_(height) {
    if (!frames_.defined() || frames_.dim() != 4 || frames_.size(3) != 3 || frames_.size(1) != frames_.size(2) ||
        frames_.scalar_type() != torch::kUInt8 || frames_.size(0) < 1)
      throw Error("tracker: resized frames must be uint8 [N, S, S, 3]");
    if (width <= 0 || height <= 0) throw Error("tracker: the video size must be positive");
  }
  int frame_count() const override { return static_cast<int>(frames_.size(0)); }
  int width() const override { return width_; }
  int height() const override { return height_; }
  torch::Tensor ResizedFrame(int index, int image_size) override {
    if (frames_.size(1) != image_size)
      throw Error("tracker: frames were resized to " + std::to_string(frames_.size(1)) + " but the model needs " +
                  std::to_string(image_size));
    return frames_[index];
  }

 private:
  torch::Tensor frames_;
  int width_, height_;
};

}  // namespace

std::unique_ptr<TrackerFrames> TrackerFramesFromVideo(std::unique_ptr<VideoSource> source) {
  return std::make_unique<VideoSourceFrames>(std::move(source));
}

std::unique_ptr<TrackerFrames> TrackerFramesFromResized(torch::Tensor resized_u8, int width, int height) {
  return std::make_unique<ResizedTensorFrames>(std::move(resized_u8), width, height);
}

// ---------------------------------------------------------------------------------------
// Construction, objects

VideoTracker::VideoTracker(Sam2Model model, std::unique_ptr<TrackerFrames> frames, TrackerOptions options)
    : model_(std::move(model)), frames_(std::move(frames)), options_(std::move(options)) {
  if (!model_) throw Error("tracker: no model");
  if (!frames_) throw Error("tracker: no frames");
  num_frames_ = frames_->frame_count();
  width_ = frames_->width();
  height_ = frames_->height();
  if (num_frames_ <= 0) throw Error("tracker: the video has no frames");
  if (options_.feature_cache_frames < 1) options_.feature_cache_frames = 1;
  if (options_.logits_cache_frames < 0) options_.logits_cache_frames = 0;
}

VideoTracker::VideoTracker(Sam2Model model, std::unique_ptr<VideoSource> source, TrackerOptions options)
    : VideoTracker(std::move(model), TrackerFramesFromVideo(std::move(source)), std::move(options)) {}

VideoTracker::~VideoTracker() {
  Cancel();
  Wait();
}

std::vector<int> VideoTracker::object_ids() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int> ids;
  for (const auto& o : objects_) ids.push_back(o->id);
  return ids;
}

VideoTracker::ObjectState& VideoTracker::GetOrCreateObject(int object_id) {
  for (auto& o : objects_)
    if (o->id == object_id) return *o;
  auto o = std::make_unique<ObjectState>();
  o->id = object_id;
  o->tracked.assign(num_frames_, -1);
  o->results.resize(num_frames_);
  o->has_result.assign(num_frames_, 0);
  objects_.push_back(std::move(o));
  return *objects_.back();
}

VideoTracker::ObjectState& VideoTracker::GetObject(int object_id) {
  for (auto& o : objects_)
    if (o->id == object_id) return *o;
  throw Error("tracker: there is no object with id " + std::to_string(object_id));
}

const VideoTracker::ObjectState* VideoTracker::FindObject(int object_id) const {
  for (const auto& o : objects_)
    if (o->id == object_id) return o.get();
  return nullptr;
}

void VideoTracker::CheckFrame(int frame, const char* what) const {
  if (frame < 0 || frame >= num_frames_)
    throw Error(std::string("tracker: ") + what + ": frame " + std::to_string(frame) + " is outside the video (0.." +
                std::to_string(num_frames_ - 1) + ")");
}

void VideoTracker::CheckIdle(const char* what) const {
  if (running_.load())
    throw Error(std::string("tracker is busy propagating: cancel or wait before ") + what);
}

const TrackFrameFeatures& VideoTracker::Features(int frame) {
  for (auto it = features_.begin(); it != features_.end(); ++it) {
    if (it->first == frame) {
      features_.splice(features_.begin(), features_, it);
      return features_.front().second;
    }
  }
  const torch::Device device = model_->parameters().front().device();
  torch::Tensor input = NormalizeResizedFrame(frames_->ResizedFrame(frame, model_->config.image_size)).to(device);
  const auto start = std::chrono::steady_clock::now();
  TrackFrameFeatures f = TrackFeaturesFrom(model_->ForwardImage(input), model_->config);
  timings_.image_encoder_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ++timings_.image_encoder_calls;
  features_.emplace_front(frame, std::move(f));
  while (static_cast<int>(features_.size()) > options_.feature_cache_frames) features_.pop_back();
  return features_.front().second;
}

const torch::Tensor& VideoTracker::PosEnc(const TrackFrameFeatures& features) {
  if (!maskmem_pos_enc_.defined()) maskmem_pos_enc_ = MaskmemPosEnc(*model_, features);
  return maskmem_pos_enc_;
}

torch::Tensor VideoTracker::ToVideoRes(const torch::Tensor& low_res) const {
  if (low_res.size(-2) == height_ && low_res.size(-1) == width_) return low_res;
  return F::interpolate(low_res, F::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{height_, width_})
                                     .mode(torch::kBilinear)
                                     .align_corners(false));
}

void VideoTracker::StoreResult(ObjectState& object, int frame, const torch::Tensor& video_res_logits) {
  const torch::Tensor binary = (video_res_logits.reshape({height_, width_}) > 0).to(torch::kCPU, torch::kUInt8).contiguous();
  Mask mask(width_, height_);
  std::memcpy(mask.data(), binary.data_ptr<uint8_t>(), mask.pixel_count());
  object.results[frame] = EncodeRle(mask);
  object.has_result[frame] = 1;
}

void VideoTracker::TouchLogits(ObjectState& object, int frame) {
  if (!options_.bounded_memory) return;
  object.logits_lru.remove(frame);
  object.logits_lru.push_front(frame);
  while (static_cast<int>(object.logits_lru.size()) > options_.logits_cache_frames) {
    const int old = object.logits_lru.back();
    object.logits_lru.pop_back();
    if (FrameOutput* out = object.outputs.MutableNonCond(old)) out->pred_masks = torch::Tensor();
  }
}

namespace {

// A stored binary result as logits (+10 inside, -10 outside) at video resolution.
torch::Tensor RleAsLogits(const Rle& rle) {
  const Mask mask = DecodeRle(rle);
  torch::Tensor m = torch::from_blob(const_cast<uint8_t*>(mask.data()), {1, 1, mask.height(), mask.width()},
                                     torch::kUInt8)
                        .to(torch::kFloat32);
  return m * 20.0 - 10.0;
}

}  // namespace

torch::Tensor VideoTracker::Consolidate(int frame, bool is_cond) const {
  const int64_t n = static_cast<int64_t>(objects_.size());
  torch::Tensor out = torch::full({n, 1, height_, width_}, kNoObjectScore, torch::kFloat32);
  for (int64_t i = 0; i < n; ++i) {
    const ObjectState& o = *objects_[i];
    const FrameOutput* f = o.Latest(frame, is_cond);
    if (!f) continue;
    if (f->pred_masks.defined())
      out[i].copy_(ToVideoRes(f->pred_masks).to(torch::kCPU)[0]);
    else if (o.has_result[frame])
      out[i].copy_(RleAsLogits(o.results[frame])[0]);
  }
  return out;
}

void VideoTracker::Observe(int frame, const ObjectState& object, const TrackStepResult& step, bool interaction,
                           bool conditioning, const TrackFrameFeatures& features) {
  if (!options_.observer) return;
  SamHeadObservation obs;
  obs.frame = frame;
  obs.object_id = object.id;
  obs.interaction = interaction;
  obs.conditioning = conditioning;
  obs.mask_as_output = step.mask_as_output;
  obs.pix_feat_with_mem = step.mask_as_output ? features.vision : step.memory.pix_feat_with_mem;
  obs.high_res = &features.high_res;
  obs.image_pe = model_->sam_prompt_encoder->GetDensePe();
  obs.sparse_embeddings = step.sam.embeddings.sparse;
  obs.dense_embeddings = step.sam.embeddings.dense;
  obs.low_res_multimasks = step.sam.low_res_multimasks;
  obs.ious = step.sam.ious;
  obs.object_score_logits = step.sam.object_score_logits;
  obs.low_res_masks = step.sam.low_res_masks;
  obs.step = &step;
  options_.observer(obs);
}

// ---------------------------------------------------------------------------------------
// Prompts

torch::Tensor VideoTracker::AddInput(int frame, int object_id, const PointPrompt* points,
                                     const torch::Tensor& mask_inputs) {
  torch::NoGradGuard no_grad;
  PrecisionScope precision(options_.precision, model_->parameters().front().device());
  const bool created = FindObject(object_id) == nullptr;
  ObjectState& o = GetOrCreateObject(object_id);
  // Inputs of the frame before this call, restored if the step fails.
  std::optional<PointPrompt> old_points;
  std::optional<torch::Tensor> old_mask;
  if (auto it = o.point_inputs.find(frame); it != o.point_inputs.end()) old_points = it->second;
  if (auto it = o.mask_inputs.find(frame); it != o.mask_inputs.end()) old_mask = it->second;
  try {
    if (points) {
      o.point_inputs[frame] = *points;
      o.mask_inputs.erase(frame);
    } else {
      o.mask_inputs[frame] = mask_inputs;
      o.point_inputs.erase(frame);
    }
    // An untracked frame becomes an initial conditioning frame (SAM without memory); on a
    // tracked frame the input corrects the tracked mask.
    const bool is_init_cond_frame = o.tracked[frame] < 0;
    const bool reverse = !is_init_cond_frame && o.tracked[frame] == 1;
    const bool is_cond = is_init_cond_frame || options_.corrections_as_conditioning;

    torch::Tensor prev_logits;
    if (points) {
      const FrameOutput* prev = o.Latest(frame, is_cond);
      if (prev && prev->pred_masks.defined()) {
        prev_logits = prev->pred_masks.clamp(-32.0, 32.0);
      } else if (o.has_result[frame]) {
        // The low-res logits were dropped by the bounded store: rebuild them from the result.
        const int64_t low = model_->config.image_size / 4;
        prev_logits = F::interpolate(RleAsLogits(o.results[frame]), F::InterpolateFuncOptions()
                                                                        .size(std::vector<int64_t>{low, low})
                                                                        .mode(torch::kBilinear)
                                                                        .align_corners(false)
                                                                        .antialias(true));
      }
    }
    const TrackFrameFeatures& features = Features(frame);
    TrackStepInput in;
    in.frame = frame;
    in.num_frames = num_frames_;
    in.is_init_cond_frame = is_init_cond_frame;
    if (points) in.points = *points;
    in.mask_inputs = mask_inputs;
    in.track_in_reverse = reverse;
    in.run_mem_encoder = false;  // encoded when propagation starts
    if (prev_logits.defined()) in.prev_sam_mask_logits = prev_logits.to(features.vision.device());
    TrackStepResult step = TrackStep(*model_, features, o.outputs, PosEnc(features), in);
    o.temp(is_cond).Put(frame, step.output);
    Observe(frame, o, step, /*interaction=*/true, is_cond, features);
    StoreResult(o, frame, ToVideoRes(step.output.pred_masks));
    return Consolidate(frame, is_cond);
  } catch (...) {
    if (created) {
      objects_.pop_back();
    } else {
      o.point_inputs.erase(frame);
      o.mask_inputs.erase(frame);
      if (old_points) o.point_inputs[frame] = *old_points;
      if (old_mask) o.mask_inputs[frame] = *old_mask;
    }
    throw;
  }
}

torch::Tensor VideoTracker::AddPoints(int frame, int object_id, const std::vector<PromptPoint>& points,
                                      const std::optional<PromptBox>& box, bool clear_old_points) {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckIdle("adding clicks");
  CheckFrame(frame, "AddPoints");
  if (points.empty() && !box) throw Error("tracker: give at least one click or a box");
  if (box && !clear_old_points)
    throw Error("tracker: a box must come before any click: add it with clear_old_points = true");
  PointPrompt prompt = MakePointPrompt(points, box, width_, height_, model_->config.image_size);
  if (!clear_old_points) {
    const ObjectState* o = FindObject(object_id);
    if (o) {
      auto it = o->point_inputs.find(frame);
      if (it != o->point_inputs.end())
        prompt = {torch::cat({it->second.coords, prompt.coords}, 1), torch::cat({it->second.labels, prompt.labels}, 1)};
    }
  }
  return AddInput(frame, object_id, &prompt, {});
}

torch::Tensor VideoTracker::AddMask(int frame, int object_id, const Mask& mask) {
  if (mask.width() != width_ || mask.height() != height_)
    throw Error("tracker: the mask is " + std::to_string(mask.width()) + "x" + std::to_string(mask.height()) +
                " but the video is " + std::to_string(width_) + "x" + std::to_string(height_));
  const torch::Tensor t =
      torch::from_blob(const_cast<uint8_t*>(mask.data()), {mask.height(), mask.width()}, torch::kUInt8).clone();
  return AddMask(frame, object_id, t);
}

torch::Tensor VideoTracker::AddMask(int frame, int object_id, const torch::Tensor& mask_hw) {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckIdle("adding a mask");
  CheckFrame(frame, "AddMask");
  if (!mask_hw.defined() || mask_hw.dim() != 2 || mask_hw.size(0) != height_ || mask_hw.size(1) != width_)
    throw Error("tracker: a mask must be [H, W] = [" + std::to_string(height_) + ", " + std::to_string(width_) + "]");
  torch::NoGradGuard no_grad;
  const int S = model_->config.image_size;
  const torch::Device device = model_->parameters().front().device();
  torch::Tensor mask = (mask_hw != 0).to(device, torch::kFloat32).unsqueeze(0).unsqueeze(0);
  if (height_ != S || width_ != S) {
    mask = F::interpolate(mask, F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{S, S})
                                    .mode(torch::kBilinear)
                                    .align_corners(false)
                                    .antialias(true));
    mask = (mask >= 0.5).to(torch::kFloat32);
  }
  return AddInput(frame, object_id, nullptr, mask);
}

torch::Tensor VideoTracker::ClearPrompts(int frame, int object_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckIdle("clearing prompts");
  CheckFrame(frame, "ClearPrompts");
  torch::NoGradGuard no_grad;
  ObjectState& o = GetObject(object_id);
  o.point_inputs.erase(frame);
  o.mask_inputs.erase(frame);
  o.temp_cond.Erase(frame);
  o.temp_non_cond.Erase(frame);
  if (const FrameOutput* cond = o.outputs.FindCond(frame)) {
    // No input any more: the conditioning output is downgraded to a non-conditioning one.
    FrameOutput moved = *cond;
    o.outputs.EraseCond(frame);
    o.outputs.PutNonCond(frame, std::move(moved));
    o.tracked[frame] = -1;
    TouchLogits(o, frame);
  }
  if (const FrameOutput* f = o.Latest(frame, false)) {
    if (f->pred_masks.defined()) StoreResult(o, frame, ToVideoRes(f->pred_masks));
  } else {
    o.results[frame] = Rle();
    o.has_result[frame] = 0;
  }
  bool is_cond = false;
  for (const auto& other : objects_) is_cond = is_cond || other->temp_cond.Find(frame) != nullptr;
  return Consolidate(frame, is_cond);
}

void VideoTracker::RemoveObject(int object_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckIdle("removing an object");
  for (auto it = objects_.begin(); it != objects_.end(); ++it) {
    if ((*it)->id == object_id) {
      objects_.erase(it);
      return;
    }
  }
  throw Error("tracker: there is no object with id " + std::to_string(object_id));
}

void VideoTracker::Reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckIdle("resetting");
  objects_.clear();
}

// ---------------------------------------------------------------------------------------
// Results

std::optional<Rle> VideoTracker::GetRle(int frame, int object_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckFrame(frame, "GetRle");
  const ObjectState* o = FindObject(object_id);
  if (!o) throw Error("tracker: there is no object with id " + std::to_string(object_id));
  if (!o->has_result[frame]) return std::nullopt;
  return o->results[frame];
}

std::optional<Mask> VideoTracker::GetMask(int frame, int object_id) const {
  std::optional<Rle> rle = GetRle(frame, object_id);
  if (!rle) return std::nullopt;
  return DecodeRle(*rle);
}

bool VideoTracker::HasResult(int frame, int object_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckFrame(frame, "HasResult");
  const ObjectState* o = FindObject(object_id);
  return o && o->has_result[frame];
}

torch::Tensor VideoTracker::GetFrameLogits(int frame) const {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckFrame(frame, "GetFrameLogits");
  torch::NoGradGuard no_grad;
  bool is_cond = false;
  for (const auto& o : objects_) is_cond = is_cond || o->temp_cond.Find(frame) != nullptr;
  return Consolidate(frame, is_cond);
}

std::optional<FrameOutput> VideoTracker::GetFrameOutput(int frame, int object_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckFrame(frame, "GetFrameOutput");
  const ObjectState* o = FindObject(object_id);
  if (!o) throw Error("tracker: there is no object with id " + std::to_string(object_id));
  if (const FrameOutput* f = o->outputs.FindCond(frame)) return *f;
  if (const FrameOutput* f = o->outputs.FindNonCond(frame)) return *f;
  return std::nullopt;
}

TrackerTimings VideoTracker::timings() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return timings_;
}

TrackerMemoryStats VideoTracker::memory_stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  TrackerMemoryStats s;
  s.feature_frames = static_cast<int64_t>(features_.size());
  for (const auto& o : objects_) {
    s.cond_entries += static_cast<int64_t>(o->outputs.cond().size());
    for (const auto& [t, out] : o->outputs.non_cond()) {
      s.memory_entries += out.maskmem_features.defined();
      s.pointer_entries += out.obj_ptr.defined();
      s.logits_entries += out.pred_masks.defined();
    }
    for (int t = 0; t < num_frames_; ++t)
      if (o->has_result[t]) s.result_bytes += static_cast<int64_t>(o->results[t].counts.size() * sizeof(uint32_t));
  }
  return s;
}

}  // namespace litseg::sam2
