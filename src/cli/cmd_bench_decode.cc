// litseg-cli bench decode: sequential decoding speed and random-access latency of a video.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/machine_info.h"
#include "litseg/core/error.h"
#include "litseg/core/runtime.h"
#include "litseg/video/video_source.h"

namespace litseg::cli {
namespace {

using Clock = std::chrono::steady_clock;

double Percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double pos = q * (values.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (pos - lo);
}

int RunBenchDecode(const std::vector<std::string>& argv) {
  ArgParser args(argv);
  const int seeks = args.Int("--seeks", 100);
  const int seed = args.Int("--seed", 1);
  auto files = args.Positional();
  args.Finish();
  if (files.size() != 1) {
    std::cerr << "usage: litseg-cli bench decode FILE [--seeks 100] [--seed 1]\n";
    return 2;
  }
  const std::string& path = files[0];
  if (seeks < 1) throw Error("--seeks must be at least 1");

  const auto open_start = Clock::now();
  auto source = OpenVideoSource(path);
  const double open_s = std::chrono::duration<double>(Clock::now() - open_start).count();
  const VideoInfo info = source->info();

  const auto seq_start = Clock::now();
  for (int k = 0; k < info.frame_count; ++k) source->ReadFrame(k);
  const double seq_s = std::chrono::duration<double>(Clock::now() - seq_start).count();

  const DecodeStats after_sequential = source->decode_stats();
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::uniform_int_distribution<int> pick(0, info.frame_count - 1);
  std::vector<double> latency_ms;
  for (int i = 0; i < seeks; ++i) {
    const int k = pick(rng);
    const auto t0 = Clock::now();
    source->ReadFrame(k);
    latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }

  const DecodeStats after_random = source->decode_stats();
  const double decoded_per_seek =
      seeks > 0 ? static_cast<double>(after_random.frames_decoded - after_sequential.frames_decoded) / seeks : 0.0;

  std::printf("file:        %s\n", path.c_str());
  std::printf("video:       %s %dx%d, %d frames, %.3f fps%s\n", info.codec.c_str(), info.width, info.height,
              info.frame_count, info.fps, info.truncated ? " (truncated)" : "");
  std::printf("machine:     %s; %d compute threads\n", MachineDescription().c_str(), ComputeThreads());
  std::printf("date:        %s\n", TodayUtc().c_str());
  std::printf("open:        %.1f ms (includes the demux pass that builds the frame table)\n", open_s * 1e3);
  std::printf("sequential:  %.1f fps (%.2f ms/frame, RGB output)\n", info.frame_count / seq_s,
              seq_s * 1e3 / info.frame_count);
  std::printf("random seek: median %.1f ms, p90 %.1f ms, max %.1f ms over %d reads of random frames (seed %d)\n",
              Percentile(latency_ms, 0.5), Percentile(latency_ms, 0.9),
              *std::max_element(latency_ms.begin(), latency_ms.end()), seeks, seed);
  std::printf("             %lld container seeks; %.1f frames decoded per read on average\n",
              static_cast<long long>(after_random.seeks - after_sequential.seeks), decoded_per_seek);
  return 0;
}

CommandRegistrar bench_decode_command{
    {"bench decode", "sequential fps and random-seek latency of a video file", RunBenchDecode}};

}  // namespace
}  // namespace litseg::cli
