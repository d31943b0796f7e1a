// SAM 2.1 video tracking with memory: the equivalent of the official SAM2VideoPredictor and
// its inference state, as one C++ object per video.
//
//   auto tracker = litseg::sam2::VideoTracker(model, litseg::OpenVideoSource("clip.mp4"));
//   tracker.AddPoints(/*frame=*/0, /*object_id=*/1, {{200.f, 100.f, 1}});      // a positive click
//   tracker.AddBox(0, 2, {20.f, 30.f, 120.f, 150.f});                          // a second object
//   tracker.StartPropagation({}, [](const litseg::sam2::PropagatedFrame& f) { /* progress */ });
//   tracker.Wait();
//   std::optional<litseg::Mask> m = tracker.GetMask(42, 1);                   // video resolution
//   tracker.AddPoints(42, 1, {{210.f, 96.f, 0}});     // a correction: frame 42 now conditions 1
//   tracker.Propagate({});                             // synchronous re-propagation
//
// Behaviour follows the official predictor (facebookresearch/sam2, see ../shared/sam2/README.md):
// objects are tracked one at a time (batch 1) and never interact; the first prompt of an
// object on an untracked frame makes it a conditioning frame; clicks on a frame that already
// has an output feed the previous low-res logits as mask prompt; memories are encoded when
// a propagation starts (binarised masks for interacted frames) and after every tracked
// frame; memories are stored in bfloat16 (round to nearest even) and upcast for attention.
// Differences, all selectable:
//  * corrections stick: a click or mask on an already tracked frame makes it a conditioning
//    frame (the official add_all_frames_to_correct_as_cond); `corrections_as_conditioning =
//    false` gives the official default, where the next propagation overwrites it;
//  * objects are independent also in their ranges: by default an object is tracked forward
//    from its first conditioning frame and backward from its first conditioning frame, so
//    adding an object never changes another one (`independent_object_ranges = false`: every
//    object on every frame of the range, as the official code);
//  * reverse propagation works in float32 (the official code fails when no object pointer is
//    available, see the README);
//  * bounded memory: frames are read lazily, image features live in a small LRU, and per
//    object only what a later step can use is kept (conditioning frames, non-conditioning
//    memories within num_maskmem - 1 frames of a conditioning frame or of the propagation
//    front, object pointers within max_obj_ptrs_in_encoder - 1 frames of those, low-res
//    logits of the last `logits_cache_frames` outputs); results are stored as RLE at video
//    resolution. This is exact with respect to the official predictor as long as each
//    propagation starts at a conditioning frame (the default) or where the previous one
//    stopped; a propagation started elsewhere may find fewer memories than the official
//    code, which keeps everything (`bounded_memory = false` keeps everything too).
// Hole filling (fill_hole_area, which needs the official CUDA extension) is not applied, as
// in the official CPU runs.
//
// Thread safety: every method may be called from any thread. Propagation runs on the
// calling thread (Propagate) or on a worker (StartPropagation); while it runs, calls that
// change prompts or objects throw litseg::Error ("busy"), readers wait at most one frame.
// Callbacks run on the propagating thread without the tracker's lock held (they may call
// the readers, not the mutators).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "litseg/core/mask.h"
#include "litseg/core/rle.h"
#include "litseg/sam2/precision.h"
#include "litseg/sam2/prompt_encoder.h"
#include "litseg/sam2/sam2_model.h"
#include "litseg/sam2/track_step.h"
#include "litseg/video/video_source.h"

namespace litseg::sam2 {

// Frames as the tracker consumes them.
class TrackerFrames {
 public:
  virtual ~TrackerFrames() = default;
  virtual int frame_count() const = 0;
  virtual int width() const = 0;   // original frame size: prompts and results use it
  virtual int height() const = 0;
  // Frame `index` resized to image_size x image_size: uint8 [S, S, 3] RGB.
  virtual torch::Tensor ResizedFrame(int index, int image_size) = 0;
};

// Frames of a VideoSource, squashed to S x S with antialiased bicubic (a = -0.5) rounded to
// 8 bits, which is how PIL's resize of the official JPEG loader works.
std::unique_ptr<TrackerFrames> TrackerFramesFromVideo(std::unique_ptr<VideoSource> source);
// Frames already resized: uint8 [N, S, S, 3] of a width x height video (e.g. the goldens'
// inputs.video.resized_u8).
std::unique_ptr<TrackerFrames> TrackerFramesFromResized(torch::Tensor resized_u8, int width, int height);

using SamHeadObserver = std::function<void(const SamHeadObservation&)>;

struct TrackerOptions {
  bool corrections_as_conditioning = true;  // add_all_frames_to_correct_as_cond
  bool independent_object_ranges = true;
  bool bounded_memory = true;
  int feature_cache_frames = 3;   // image features kept (LRU); at least 1
  int logits_cache_frames = 32;   // per object: low-res logits kept (re-clicks, GetFrameLogits)
  // kBFloat16: attention and encoder products in bf16 (precision.h), applied on whichever
  // thread runs the model; float32 (the default) is what parity is judged on.
  Precision precision = Precision::kFloat32;
  // Called for every SAM-head run (interactions and propagation), on the running thread,
  // with the tracker's lock held: it must not call the tracker.
  SamHeadObserver observer;
};

struct PropagateOptions {
  // Default: each object from its own first conditioning frame (independent_object_ranges;
  // else every object from the earliest one). An explicit start applies to every object.
  std::optional<int> start_frame;
  std::optional<int> max_frames;   // frames after (before) the start; default: to the end
  bool reverse = false;
};

// One propagated frame, as the official propagate_in_video yields it.
struct PropagatedFrame {
  int frame = 0;
  int done = 0;   // frames finished in this propagation, this one included
  int total = 0;  // frames this propagation will visit
  std::vector<int> object_ids;  // in the order objects were added
  // [n_obj, 1, H, W] mask logits at video resolution (-1024 for objects not tracked here).
  torch::Tensor video_res_logits;
  // Per object: the stored output (pred_masks, obj_ptr, score, bf16 memory); undefined
  // tensors for objects not tracked on this frame. `conditioning`: a conditioning frame.
  std::vector<FrameOutput> outputs;
  std::vector<bool> conditioning;
};

struct PropagateSummary {
  int frames_done = 0;
  int frames_planned = 0;
  bool cancelled = false;
  std::vector<int> processing_order;  // the frames visited, in order
};

using PropagateCallback = std::function<void(const PropagatedFrame&)>;
using PropagateDoneCallback = std::function<void(const PropagateSummary&, const std::string& error)>;

// What the tracker keeps (for the memory benchmark and tests).
struct TrackerMemoryStats {
  int64_t memory_entries = 0;   // non-conditioning spatial memories held, all objects
  int64_t pointer_entries = 0;  // non-conditioning object pointers held
  int64_t logits_entries = 0;   // non-conditioning low-res logits held
  int64_t cond_entries = 0;     // conditioning outputs
  int64_t feature_frames = 0;   // image features cached
  int64_t result_bytes = 0;     // RLE counts of all results
};

// Where propagation time went (wall seconds, accumulated since construction).
struct TrackerTimings {
  double image_encoder_seconds = 0.0;  // forward_image of frames not in the feature cache
  int64_t image_encoder_calls = 0;
  double step_seconds = 0.0;           // tracking steps: memory attention + SAM heads + memory encoder
  int64_t steps = 0;                   // (frame, object) steps run by propagations
  double memory_seconds = 0.0;         // of step_seconds: memory selection + memory attention
  double heads_seconds = 0.0;          //                  prompt encoder + mask decoder + pointer
  double encode_seconds = 0.0;         //                  memory encoder
};

class VideoTracker {
 public:
  VideoTracker(Sam2Model model, std::unique_ptr<TrackerFrames> frames, TrackerOptions options = {});
  VideoTracker(Sam2Model model, std::unique_ptr<VideoSource> source, TrackerOptions options = {});
  ~VideoTracker();  // cancels a running propagation and waits for it
  VideoTracker(const VideoTracker&) = delete;
  VideoTracker& operator=(const VideoTracker&) = delete;

  int frame_count() const { return num_frames_; }
  int width() const { return width_; }
  int height() const { return height_; }
  const TrackerOptions& options() const { return options_; }
  std::vector<int> object_ids() const;

  // ---- Prompts (each returns the frame's consolidated logits [n_obj, 1, H, W], objects
  // in object_ids() order, -1024 for objects without output on the frame).
  // Clicks (x, y in video pixels, label 1/0) and/or a box (xyxy); clear_old_points = false
  // appends to the clicks already on this frame (not allowed with a box).
  torch::Tensor AddPoints(int frame, int object_id, const std::vector<PromptPoint>& points,
                          const std::optional<PromptBox>& box = std::nullopt, bool clear_old_points = true);
  torch::Tensor AddBox(int frame, int object_id, const PromptBox& box) { return AddPoints(frame, object_id, {}, box); }
  // A mask at video resolution (non-zero = object). Used as the output on that frame
  // (mask as output without SAM); also what "accept a suggestion" calls.
  torch::Tensor AddMask(int frame, int object_id, const Mask& mask);
  torch::Tensor AddMask(int frame, int object_id, const torch::Tensor& mask_hw);  // [H, W] bool/uint8/float
  // Removes the object's clicks / mask on the frame (a conditioning output becomes a
  // non-conditioning one, as in the official code).
  torch::Tensor ClearPrompts(int frame, int object_id);
  void RemoveObject(int object_id);  // throws if unknown
  void Reset();                      // all objects, prompts and results

  // ---- Propagation
  PropagateSummary Propagate(const PropagateOptions& options = {}, const PropagateCallback& on_frame = nullptr);
  // Runs Propagate on a worker thread; on_done gets the summary (and an error message when
  // it failed). Throws if a propagation is already running.
  void StartPropagation(const PropagateOptions& options, PropagateCallback on_frame = nullptr,
                        PropagateDoneCallback on_done = nullptr);
  void Cancel();  // the running propagation stops after the frame in progress
  void Wait();    // joins the worker (no-op when none)
  bool busy() const { return running_.load(); }

  // ---- Results
  // The object's mask at video resolution, nullopt when the frame has no result for it.
  std::optional<Mask> GetMask(int frame, int object_id) const;
  std::optional<Rle> GetRle(int frame, int object_id) const;
  bool HasResult(int frame, int object_id) const;
  // Consolidated logits of the frame [n_obj, 1, H, W] from the stored low-res logits (the
  // RLE result as +-10 when the logits were dropped; -1024 without output).
  torch::Tensor GetFrameLogits(int frame) const;
  // The stored output of an object on a frame (conditioning first); nullopt when none.
  std::optional<FrameOutput> GetFrameOutput(int frame, int object_id) const;
  TrackerMemoryStats memory_stats() const;
  TrackerTimings timings() const;

 private:
  struct OrderedOutputs;  // insertion-ordered frame -> output (the reference's dicts)
  struct ObjectState;

  ObjectState& GetOrCreateObject(int object_id);
  ObjectState& GetObject(int object_id);
  const ObjectState* FindObject(int object_id) const;
  void CheckFrame(int frame, const char* what) const;
  void CheckIdle(const char* what) const;
  const TrackFrameFeatures& Features(int frame);
  const torch::Tensor& PosEnc(const TrackFrameFeatures& features);
  torch::Tensor AddInput(int frame, int object_id, const PointPrompt* points, const torch::Tensor& mask_inputs);
  void Observe(int frame, const ObjectState& object, const TrackStepResult& step, bool interaction,
               bool conditioning, const TrackFrameFeatures& features);
  torch::Tensor Consolidate(int frame, bool is_cond) const;  // requires mutex_
  torch::Tensor ToVideoRes(const torch::Tensor& low_res) const;
  void StoreResult(ObjectState& object, int frame, const torch::Tensor& video_res_logits);
  void TouchLogits(ObjectState& object, int frame);
  void Preflight();
  void Retain(ObjectState& object, int front);
  PropagateSummary RunPropagation(const PropagateOptions& options, const PropagateCallback& on_frame);

  Sam2Model model_;
  std::unique_ptr<TrackerFrames> frames_;
  TrackerOptions options_;
  int num_frames_ = 0, width_ = 0, height_ = 0;

  mutable std::mutex mutex_;  // guards everything below
  std::vector<std::unique_ptr<ObjectState>> objects_;  // in the order objects were added
  std::list<std::pair<int, TrackFrameFeatures>> features_;  // LRU, most recent first
  torch::Tensor maskmem_pos_enc_;
  TrackerTimings timings_;

  std::atomic<bool> running_{false};
  std::atomic<bool> cancel_{false};
  std::thread worker_;
};

}  // namespace litseg::sam2
