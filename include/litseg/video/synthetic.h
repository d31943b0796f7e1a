// Deterministic synthetic clips with exact per-object masks, for tests, demos and training.
//
// A textured background and K textured objects (ellipses, polygons, blobs) that move
// smoothly, rotate and change scale, occlude each other by a fixed depth order, leave the
// frame and come back; optionally their colours drift and they split into fragments. Every
// frame is computed from (params, index) alone, so any frame of a long clip (thousands of
// frames) is available in constant time and memory, and the same seed gives the same bytes
// (own SplitMix64 random numbers, no std:: distributions, whose output differs between
// standard libraries; floating-point maths from libm/OpenCV may still round differently on
// another CPU or library version).
//
//   litseg::SynthParams p;  p.frames = 100;  p.objects = 3;  p.seed = 7;
//   litseg::SyntheticClip clip(p);
//   litseg::SynthFrame f = clip.Render(42);   // f.rgb (CV_8UC3 RGB), f.labels (ids 1..K)
//   auto source = litseg::MakeSyntheticSource(p);   // as a VideoSource
//
// Thread safety: Render() is const and may run on several threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "litseg/core/mask.h"
#include "litseg/video/video_source.h"

namespace litseg {

struct SynthParams {
  int width = 640;
  int height = 360;
  int frames = 60;
  int objects = 3;
  uint64_t seed = 1;
  double fps = 24.0;
  bool appearance_drift = false;  // object colours drift over the clip
  bool split = false;             // the first object breaks into two fragments after a third of the clip
};

struct SynthFrame {
  cv::Mat rgb;      // CV_8UC3, RGB
  LabelMap labels;  // 0 background, 1..objects
};

class SyntheticClip {
 public:
  explicit SyntheticClip(const SynthParams& params);
  SynthFrame Render(int index) const;
  // The whole silhouette of object `id` (1..objects) in frame `index`, hidden parts
  // included (CV_8UC1, 1 inside, 0 outside); Render's labels are these masks painted
  // back to front.
  cv::Mat AmodalMask(int index, int id) const;
  // Object ids from the farthest to the nearest (the painting order).
  std::vector<int> DepthOrder() const;
  const SynthParams& params() const { return params_; }

  struct Object;  // motion, shape and texture of one object (synthetic.cc)

 private:
  cv::Mat ObjectMask(const Object& object, int index) const;

  SynthParams params_;
  cv::Mat background_;  // CV_32FC3, RGB in [0, 255]
  std::vector<std::shared_ptr<const Object>> objects_;  // back to front
};

// "synth:frames=100,objects=3,seed=7,size=640x360,drift=1,split=1" (every key optional).
SynthParams ParseSynthSpec(const std::string& spec);
std::unique_ptr<VideoSource> MakeSyntheticSource(const SynthParams& params);

struct SynthWriteOptions {
  bool mp4 = false;         // also encode <dir>/video.mp4 (H.264)
  int jpeg_quality = 95;
  std::function<void(int done, int total)> progress;  // called after each frame
};
// Writes DAVIS layout: <dir>/JPEGImages/00000.jpg ... and <dir>/Annotations/00000.png (palette).
void WriteSyntheticClip(const SynthParams& params, const std::string& dir, const SynthWriteOptions& options = {});

}  // namespace litseg
