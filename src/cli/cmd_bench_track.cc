// litseg-cli bench track: speed and memory of the video tracker on a synthetic clip.
//
//   litseg-cli bench track --config sam2.1_hiera_t --objects 1 --frames 10      # ms per step
//   litseg-cli bench track --config micro --frames 5000 --checkpoint W          # peak RSS
//
// Speed: the first frame holds one click per object; the clip is then propagated and the
// steps after the first `--warmup` tracked frames are timed (by then 6 earlier memories are
// in the bank: the steady state). Without --checkpoint the weights are the deterministic
// "large fill" (weight_fill.h), which is enough for timing.
// Memory: peak RSS (VmHWM) after 1000 frames and at the end; the bounded tracker should stay
// flat. Prints a Markdown-ready summary.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <torch/torch.h>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/machine_info.h"
#include "litseg/core/error.h"
#include "litseg/sam2/sam2_model.h"
#include "litseg/sam2/video_tracker.h"
#include "litseg/sam2/weight_fill.h"
#include "litseg/video/synthetic.h"

namespace litseg::cli {
namespace {

// A field of /proc/self/status in MiB (VmHWM = peak resident set, VmRSS = current).
double ProcStatusMiB(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream s(line.substr(field.size() + 1));
      double kb = 0;
      s >> kb;
      return kb / 1024.0;
    }
  }
  return 0.0;
}

// A point inside each synthetic object on frame 0 (the centre of its visible pixels).
std::vector<sam2::PromptPoint> ObjectClicks(const SynthParams& params) {
  const SynthFrame f = SyntheticClip(params).Render(0);
  std::vector<sam2::PromptPoint> clicks;
  for (int id = 1; id <= params.objects; ++id) {
    double sx = 0, sy = 0, n = 0;
    for (int y = 0; y < f.labels.height(); ++y)
      for (int x = 0; x < f.labels.width(); ++x)
        if (f.labels(x, y) == id) sx += x, sy += y, n += 1;
    if (n == 0) sx = params.width * (id + 0.5) / (params.objects + 1), sy = params.height / 2.0, n = 1;
    clicks.push_back({static_cast<float>(sx / n), static_cast<float>(sy / n), 1});
  }
  return clicks;
}

int RunBenchTrack(const std::vector<std::string>& argv) {
  ArgParser args(argv);
  if (args.Flag("--help")) {
    std::cout << "usage: litseg-cli bench track [--config NAME|FILE] [--checkpoint FILE] [--objects N]\n"
                 "                              [--frames F] [--warmup W] [--size WxH] [--threads T]\n"
                 "                              [--unbounded] [--feature-cache K] [--attention-block-mb M]\n"
                 "                              [--precision fp32|bf16]\n"
                 "  Tracks N objects over a synthetic clip of F frames and prints ms per frame and per\n"
                 "  object with and without the image encoder (steps after the first W tracked frames),\n"
                 "  and the peak RSS after 1000 frames and at the end (memory flatness).\n"
                 "  --attention-block-mb: score block of the memory-attention layers (default: the\n"
                 "  engine's AttentionOptions), to measure the effect of larger query blocks.\n";
    return 0;
  }
  const std::string config_name = args.String("--config", "micro");
  const std::string checkpoint = args.String("--checkpoint", "");
  const int objects = args.Int("--objects", 1);
  const int frames = args.Int("--frames", 10);
  const int warmup = args.Int("--warmup", 7);
  const std::string size = args.String("--size", "320x180");
  const int threads = args.Int("--threads", 0);
  const bool unbounded = args.Flag("--unbounded");
  const int feature_cache = args.Int("--feature-cache", 3);
  const double block_mb = args.Double("--attention-block-mb", 0.0);
  const std::string precision = args.String("--precision", "fp32");
  args.Finish();
  if (objects < 1 || frames < 2) throw Error("bench track: need at least 1 object and 2 frames");
  if (threads > 0) torch::set_num_threads(threads);

  torch::NoGradGuard no_grad;
  const double rss_start = ProcStatusMiB("VmRSS");
  const sam2::Sam2Config config = sam2::LoadNamedConfig(config_name);
  sam2::Sam2Model model = nullptr;
  if (checkpoint.empty()) {
    model = sam2::Sam2Model(config);
    sam2::ApplyLargeFill(*model, "");
    model->eval();
  } else {
    model = sam2::LoadSam2Model(config, checkpoint, "cpu");
  }
  if (block_mb > 0) {
    const int64_t elements = static_cast<int64_t>(block_mb * 1024 * 1024 / 4);
    for (const auto& layer : *model->memory_attention->layers) {
      auto* l = layer->as<sam2::MemoryAttentionLayerImpl>();
      l->self_attn->options.attention.max_score_elements = elements;
      l->cross_attn_image->options.attention.max_score_elements = elements;
    }
  }
  const std::string spec = "synth:frames=" + std::to_string(frames) + ",objects=" + std::to_string(objects) +
                           ",seed=7,size=" + size;
  const SynthParams params = ParseSynthSpec(spec);
  sam2::TrackerOptions options;
  options.bounded_memory = !unbounded;
  options.feature_cache_frames = feature_cache;
  options.precision = sam2::ParsePrecision(precision);
  sam2::VideoTracker tracker(model, OpenVideoSource(spec), options);
  const std::vector<sam2::PromptPoint> clicks = ObjectClicks(params);
  for (int i = 0; i < objects; ++i) tracker.AddPoints(0, i + 1, {clicks[static_cast<size_t>(i)]});

  // Per-frame wall times and the tracker's own split, sampled at the end of the warm-up.
  double timed_wall = 0.0;
  int timed_frames = 0;
  sam2::TrackerTimings at_warmup;
  double hwm_at_1000 = -1, rss_at_1000 = -1;
  auto last = std::chrono::steady_clock::now();
  const auto start = last;
  tracker.Propagate({}, [&](const sam2::PropagatedFrame& f) {
    const auto now = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(now - last).count();
    last = now;
    if (f.done == warmup + 1) at_warmup = tracker.timings();
    if (f.done > warmup + 1) {
      timed_wall += dt;
      ++timed_frames;
    }
    if (f.done == 1000) {
      hwm_at_1000 = ProcStatusMiB("VmHWM");
      rss_at_1000 = ProcStatusMiB("VmRSS");
    }
    if (f.done % 500 == 0) {
      std::fprintf(stderr, "  %d/%d frames, %.1f s, RSS %.1f MiB\n", f.done, f.total,
                   std::chrono::duration<double>(now - start).count(), ProcStatusMiB("VmRSS"));
    }
  });
  const sam2::TrackerTimings end = tracker.timings();
  const sam2::TrackerMemoryStats mem = tracker.memory_stats();

  std::printf("bench track: %s, %s, %s weights, %d object(s), %d frames of %s, %d thread(s), %s memory%s\n",
              config.name.c_str(), precision.c_str(), checkpoint.empty() ? "large-fill" : "checkpoint", objects, frames, size.c_str(),
              torch::get_num_threads(), unbounded ? "unbounded" : "bounded",
              block_mb > 0 ? (", memory-attention score blocks of " + std::to_string(block_mb) + " MB").c_str() : "");
  std::printf("machine: %s (%s)\n", MachineDescription().c_str(), TodayUtc().c_str());
  if (timed_frames > 0) {
    const double enc = (end.image_encoder_seconds - at_warmup.image_encoder_seconds) /
                       std::max<int64_t>(end.image_encoder_calls - at_warmup.image_encoder_calls, 1);
    const double step = (end.step_seconds - at_warmup.step_seconds) / std::max<int64_t>(end.steps - at_warmup.steps, 1);
    const double frame = timed_wall / timed_frames;
    const double n_steps = static_cast<double>(std::max<int64_t>(end.steps - at_warmup.steps, 1));
    std::printf("steady state (%d frames after %d warm-up frames, 6+ memories):\n", timed_frames, warmup);
    std::printf("  image encoder           %10.1f ms per frame\n", enc * 1e3);
    std::printf("  tracking step           %10.1f ms per frame per object (memory attention + heads + memory encoder)\n",
                step * 1e3);
    std::printf("    of which memory attention %.1f ms, SAM heads %.1f ms, memory encoder %.1f ms\n",
                (end.memory_seconds - at_warmup.memory_seconds) / n_steps * 1e3,
                (end.heads_seconds - at_warmup.heads_seconds) / n_steps * 1e3,
                (end.encode_seconds - at_warmup.encode_seconds) / n_steps * 1e3);
    std::printf("  whole frame (wall)      %10.1f ms per frame, %.1f ms per frame per object incl. encoder\n",
                frame * 1e3, frame * 1e3 / objects);
  } else {
    std::printf("(no steady-state frames: use --frames > --warmup + 1)\n");
  }
  std::printf("memory: RSS at start %.1f MiB; peak RSS after 1000 frames %s; peak RSS at the end %.1f MiB (now %.1f)\n",
              rss_start, hwm_at_1000 < 0 ? "n/a" : (std::to_string(hwm_at_1000) + " MiB").c_str(),
              ProcStatusMiB("VmHWM"), ProcStatusMiB("VmRSS"));
  if (hwm_at_1000 > 0) {
    const double growth = ProcStatusMiB("VmHWM") - hwm_at_1000;
    std::printf("  growth 1000 -> %d frames: %+.1f MiB (%+.2f%%); RSS at 1000: %.1f MiB\n", frames, growth,
                100.0 * growth / hwm_at_1000, rss_at_1000);
  }
  std::printf("  kept: %lld memories, %lld pointers, %lld low-res logits, %lld conditioning outputs, %lld feature "
              "frames, %.1f KiB of RLE results\n",
              static_cast<long long>(mem.memory_entries), static_cast<long long>(mem.pointer_entries),
              static_cast<long long>(mem.logits_entries), static_cast<long long>(mem.cond_entries),
              static_cast<long long>(mem.feature_frames), mem.result_bytes / 1024.0);
  return 0;
}

CommandRegistrar bench_track_command{
    {"bench track", "tracker speed (ms per frame per object) and memory on a synthetic clip", RunBenchTrack}};

}  // namespace
}  // namespace litseg::cli
