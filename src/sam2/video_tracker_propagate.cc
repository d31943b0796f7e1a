// VideoTracker: propagation (propagate_in_video and its preflight), bounded memory, worker.
#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "litseg/core/error.h"
#include "litseg/sam2/video_tracker.h"
#include "video_tracker_internal.h"

namespace litseg::sam2 {
namespace F = torch::nn::functional;

// propagate_in_video_preflight: interacted frames get their memory (binarised masks) and
// move from the temporary outputs into the object's outputs.
void VideoTracker::Preflight() {
  if (objects_.empty()) throw Error("tracker: no objects to track: add clicks, a box or a mask first");
  for (const auto& o : objects_)
    if (o->outputs.cond().empty() && o->temp_cond.items.empty())
      throw Error("tracker: object " + std::to_string(o->id) +
                  " has no clicks, box or mask on any frame: add one or remove the object");
  const int S = model_->config.image_size;
  for (auto& o : objects_) {
    for (bool is_cond : {false, true}) {
      OrderedOutputs& temp = o->temp(is_cond);
      for (int frame : temp.order) {
        FrameOutput out = temp.items.at(frame);
        if (!out.maskmem_features.defined()) {
          const TrackFrameFeatures& features = Features(frame);
          const torch::Tensor high_res = F::interpolate(out.pred_masks.to(features.vision.device()),
                                                        F::InterpolateFuncOptions()
                                                            .size(std::vector<int64_t>{S, S})
                                                            .mode(torch::kBilinear)
                                                            .align_corners(false));
          out.maskmem_features = EncodeFrameMemory(*model_, features, high_res, out.object_score_logits,
                                                   /*is_mask_from_pts=*/true);
        }
        if (is_cond) {
          o->outputs.PutCond(frame, std::move(out));
        } else {
          o->outputs.PutNonCond(frame, std::move(out));
          TouchLogits(*o, frame);
        }
      }
      temp.Clear();
    }
    // A frame with a conditioning output has no non-conditioning one.
    for (int frame : o->outputs.cond_frames()) {
      o->outputs.EraseNonCond(frame);
      o->logits_lru.remove(frame);
    }
  }
}

// Drops what no later step can use: spatial memories further than num_maskmem - 1 frames
// (object pointers: max_obj_ptrs_in_encoder - 1) from every conditioning frame and from the
// propagation front.
void VideoTracker::Retain(ObjectState& object, int front) {
  if (!options_.bounded_memory) return;
  const Sam2Config& c = model_->config;
  const int mem_window = std::max(c.num_maskmem - 1, 0) * std::max(c.memory_temporal_stride_for_eval, 1);
  const int ptr_window = std::max(std::min(num_frames_, c.max_obj_ptrs_in_encoder) - 1, 0);
  const std::vector<int>& cond = object.outputs.cond_frames();
  auto near = [&](int t, int window) {
    if (front >= 0 && std::abs(t - front) <= window) return true;
    for (int c_frame : cond)
      if (std::abs(t - c_frame) <= window) return true;
    return false;
  };
  auto& non_cond = object.outputs.non_cond();
  for (auto it = non_cond.begin(); it != non_cond.end();) {
    FrameOutput& out = it->second;
    if (out.maskmem_features.defined() && !near(it->first, mem_window)) out.maskmem_features = torch::Tensor();
    if (out.obj_ptr.defined() && !near(it->first, ptr_window)) out.obj_ptr = torch::Tensor();
    if (!out.maskmem_features.defined() && !out.obj_ptr.defined() && !out.pred_masks.defined())
      it = non_cond.erase(it);
    else
      ++it;
  }
}

PropagateSummary VideoTracker::RunPropagation(const PropagateOptions& options, const PropagateCallback& on_frame) {
  torch::NoGradGuard no_grad;
  PrecisionScope precision(options_.precision, model_->parameters().front().device());
  PropagateSummary summary;
  std::vector<int> order;
  // Per object: the range of frames it is tracked on in this propagation.
  std::vector<int> first_cond;
  bool explicit_start = options.start_frame.has_value();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (options.start_frame) CheckFrame(*options.start_frame, "Propagate");
    if (options.max_frames && *options.max_frames < 0) throw Error("tracker: max_frames must not be negative");
    Preflight();
    int start = 0;
    for (const auto& o : objects_) {
      first_cond.push_back(o->FirstCondFrame());
    }
    if (options.start_frame) {
      start = *options.start_frame;
    } else if (options.reverse && options_.independent_object_ranges) {
      start = *std::max_element(first_cond.begin(), first_cond.end());
    } else {
      start = *std::min_element(first_cond.begin(), first_cond.end());
    }
    const int max_frames = options.max_frames.value_or(num_frames_);
    if (options.reverse) {
      const int end = std::max(start - max_frames, 0);
      // As the reference: reverse tracking from frame 0 visits nothing.
      if (start > 0)
        for (int f = start; f >= end; --f) order.push_back(f);
    } else {
      const int end = std::min(start + max_frames, num_frames_ - 1);
      for (int f = start; f <= end; ++f) order.push_back(f);
    }
  }
  summary.frames_planned = static_cast<int>(order.size());

  const bool reverse = options.reverse;
  for (size_t k = 0; k < order.size(); ++k) {
    if (cancel_.load()) {
      summary.cancelled = true;
      break;
    }
    const int frame = order[k];
    PropagatedFrame pf;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const TrackFrameFeatures* features = nullptr;
      const int64_t low = model_->config.image_size / 4;
      std::vector<torch::Tensor> low_res;
      std::vector<bool> tracked_here;
      for (size_t i = 0; i < objects_.size(); ++i) {
        ObjectState& o = *objects_[i];
        // Default ranges: each object from its own first conditioning frame (forward or
        // backward); an explicit start frame applies to every object, as in the reference.
        bool eligible = true;
        if (options_.independent_object_ranges && !explicit_start)
          eligible = reverse ? frame <= first_cond[i] : frame >= first_cond[i];
        pf.object_ids.push_back(o.id);
        tracked_here.push_back(eligible);
        if (!eligible) {
          pf.outputs.emplace_back();
          pf.conditioning.push_back(false);
          low_res.push_back(torch::full({1, 1, low, low}, kNoObjectScore, torch::kFloat32));
          continue;
        }
        if (const FrameOutput* cond = o.outputs.FindCond(frame)) {
          // Frames with clicks or masks keep their interaction output.
          pf.outputs.push_back(*cond);
          pf.conditioning.push_back(true);
        } else {
          if (!features) features = &Features(frame);
          TrackStepInput in;
          in.frame = frame;
          in.num_frames = num_frames_;
          in.is_init_cond_frame = false;
          in.track_in_reverse = reverse;
          in.run_mem_encoder = true;
          const auto start = std::chrono::steady_clock::now();
          TrackStepResult step = TrackStep(*model_, *features, o.outputs, PosEnc(*features), in);
          timings_.step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          ++timings_.steps;
          timings_.memory_seconds += step.memory_seconds;
          timings_.heads_seconds += step.heads_seconds;
          timings_.encode_seconds += step.encode_seconds;
          o.outputs.PutNonCond(frame, step.output);
          TouchLogits(o, frame);
          Observe(frame, o, step, /*interaction=*/false, /*conditioning=*/false, *features);
          pf.outputs.push_back(step.output);
          pf.conditioning.push_back(false);
        }
        o.tracked[frame] = reverse ? 1 : 0;
        low_res.push_back(pf.outputs.back().pred_masks.to(torch::kCPU));
      }
      pf.video_res_logits = ToVideoRes(torch::cat(low_res, 0));
      for (size_t i = 0; i < objects_.size(); ++i) {
        if (!tracked_here[i]) continue;
        StoreResult(*objects_[i], frame, pf.video_res_logits[static_cast<int64_t>(i)]);
        Retain(*objects_[i], frame);
      }
    }
    pf.frame = frame;
    pf.done = static_cast<int>(k) + 1;
    pf.total = summary.frames_planned;
    summary.frames_done = pf.done;
    summary.processing_order.push_back(frame);
    if (on_frame) on_frame(pf);
  }
  return summary;
}

PropagateSummary VideoTracker::Propagate(const PropagateOptions& options, const PropagateCallback& on_frame) {
  bool expected = false;
  if (!running_.compare_exchange_strong(expected, true))
    throw Error("tracker is busy propagating: cancel or wait before starting another propagation");
  cancel_ = false;
  try {
    PropagateSummary summary = RunPropagation(options, on_frame);
    running_ = false;
    return summary;
  } catch (...) {
    running_ = false;
    throw;
  }
}

void VideoTracker::StartPropagation(const PropagateOptions& options, PropagateCallback on_frame,
                                    PropagateDoneCallback on_done) {
  bool expected = false;
  if (!running_.compare_exchange_strong(expected, true))
    throw Error("tracker is busy propagating: cancel or wait before starting another propagation");
  if (worker_.joinable()) worker_.join();  // a finished earlier run
  cancel_ = false;
  worker_ = std::thread([this, options, on_frame = std::move(on_frame), on_done = std::move(on_done)]() {
    PropagateSummary summary;
    std::string error;
    try {
      summary = RunPropagation(options, on_frame);
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown error during propagation";
    }
    running_ = false;
    if (on_done) on_done(summary, error);
  });
}

void VideoTracker::Cancel() { cancel_ = true; }

void VideoTracker::Wait() {
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

}  // namespace litseg::sam2
