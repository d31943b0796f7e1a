// Per-object state of the VideoTracker (shared by video_tracker*.cc only).
#pragma once

#include <algorithm>
#include <list>
#include <map>
#include <vector>

#include "litseg/core/rle.h"
#include "litseg/sam2/video_tracker.h"

namespace litseg::sam2 {

// frame -> output in insertion order (a Python dict: re-assigning keeps the position).
struct VideoTracker::OrderedOutputs {
  std::vector<int> order;
  std::map<int, FrameOutput> items;

  FrameOutput* Find(int frame) {
    auto it = items.find(frame);
    return it == items.end() ? nullptr : &it->second;
  }
  const FrameOutput* Find(int frame) const {
    auto it = items.find(frame);
    return it == items.end() ? nullptr : &it->second;
  }
  void Put(int frame, FrameOutput output) {
    if (items.find(frame) == items.end()) order.push_back(frame);
    items[frame] = std::move(output);
  }
  bool Erase(int frame) {
    if (items.erase(frame) == 0) return false;
    order.erase(std::find(order.begin(), order.end(), frame));
    return true;
  }
  void Clear() {
    order.clear();
    items.clear();
  }
};

struct VideoTracker::ObjectState {
  int id = 0;
  std::map<int, PointPrompt> point_inputs;     // model-input coordinates
  std::map<int, torch::Tensor> mask_inputs;    // [1, 1, S, S] float 0/1
  ObjectOutputs outputs;                       // output_dict_per_obj
  OrderedOutputs temp_cond, temp_non_cond;     // temp_output_dict_per_obj
  std::vector<int8_t> tracked;                 // per frame: -1 untracked, 0 forward, 1 reverse
  std::vector<Rle> results;                    // per frame (empty counts = none)
  std::vector<uint8_t> has_result;
  std::list<int> logits_lru;                   // non-conditioning frames holding pred_masks, newest first

  OrderedOutputs& temp(bool is_cond) { return is_cond ? temp_cond : temp_non_cond; }
  const OrderedOutputs& temp(bool is_cond) const { return is_cond ? temp_cond : temp_non_cond; }
  // The newest output of the frame: temporary (of the given kind), then conditioning, then
  // non-conditioning (the lookup order of the reference).
  const FrameOutput* Latest(int frame, bool is_cond) const {
    if (const FrameOutput* o = temp(is_cond).Find(frame)) return o;
    if (const FrameOutput* o = outputs.FindCond(frame)) return o;
    return outputs.FindNonCond(frame);
  }
  int FirstCondFrame() const {
    int first = -1;
    for (int t : outputs.cond_frames()) first = first < 0 ? t : std::min(first, t);
    return first;
  }
  int LastCondFrame() const {
    int last = -1;
    for (int t : outputs.cond_frames()) last = std::max(last, t);
    return last;
  }
};

}  // namespace litseg::sam2
