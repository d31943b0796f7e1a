// litseg-cli bench encode / bench prompt: speed of the SAM 2.1 image path.
//
//   litseg-cli bench encode --config sam2.1_hiera_t [--reps 5] [--precision bf16]
//   litseg-cli bench prompt --config sam2.1_hiera_l [--reps 50]
//
// Without --checkpoint the model gets the deterministic large-fill weights (weight_fill.h):
// the work per frame does not depend on the weights' values, so timings equal those with the
// official checkpoints. `encode` times SAM2Base.forward_image (the official timing excludes
// preprocessing; it is reported separately); `prompt` times one click to a full-resolution
// mask on a cached image embedding (prompt encoder + mask decoder + upsampling).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>

#include <time.h>

#include <torch/torch.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/machine_info.h"
#include "litseg/core/error.h"
#include "litseg/core/runtime.h"
#include "litseg/sam2/image_predictor.h"
#include "litseg/sam2/precision.h"
#include "litseg/sam2/preprocess.h"
#include "litseg/sam2/sam2_model.h"
#include "litseg/sam2/weight_fill.h"

namespace litseg::cli {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// CPU seconds of the whole process (all threads). With one compute thread this equals the
// wall time on an idle machine and is much less disturbed by other load than wall time.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * (v.size() - 1);
  const size_t lo = static_cast<size_t>(pos), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

struct BenchModelOptions {
  std::string config = "sam2.1_hiera_l";
  std::string checkpoint;  // empty: deterministic large fill
  std::string device = "auto";
  sam2::Precision precision = sam2::Precision::kFloat32;
};

BenchModelOptions ParseModelOptions(ArgParser& args) {
  BenchModelOptions o;
  o.config = args.String("--config", o.config);
  o.checkpoint = args.String("--checkpoint", "");
  o.device = args.String("--device", o.device);
  o.precision = sam2::ParsePrecision(args.String("--precision", "fp32"));
  return o;
}

sam2::Sam2Model BuildModel(const BenchModelOptions& o, std::string* weights_note) {
  if (!o.checkpoint.empty()) {
    *weights_note = o.checkpoint;
    return sam2::LoadSam2Model({o.config, o.checkpoint, o.device});
  }
  *weights_note = "deterministic large fill (timing does not depend on weight values)";
  const sam2::Sam2Config config = sam2::LoadNamedConfig(o.config);
  sam2::Sam2Model model(config);
  model->eval();
  sam2::ApplyLargeFill(*model, "");
  model->to(sam2::ResolveDevice(o.device));
  return model;
}

torch::Tensor RandomImage(int width, int height, int seed) {
  torch::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  return torch::randint(0, 256, {height, width, 3}, gen, torch::kUInt8);
}

void Synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

void PrintHeader(const char* what, const BenchModelOptions& o, const sam2::Sam2Model& model,
                 const std::string& weights_note, const torch::Device& device) {
  std::printf("benchmark:   %s\n", what);
  std::printf("config:      %s (%lld parameters, image size %d)\n", o.config.c_str(),
              static_cast<long long>(model->ParameterCount()), model->config.image_size);
  std::printf("weights:     %s\n", weights_note.c_str());
  std::printf("device:      %s, %s\n", device.str().c_str(), sam2::PrecisionName(o.precision));
  std::printf("machine:     %s; %d compute threads\n", MachineDescription().c_str(), ComputeThreads());
  std::printf("date:        %s\n", TodayUtc().c_str());
}

int RunBenchEncode(const std::vector<std::string>& argv) {
  ArgParser args(argv);
  const BenchModelOptions o = ParseModelOptions(args);
  const int reps = args.Int("--reps", 5);
  const int warmup = args.Int("--warmup", 1);
  const int width = args.Int("--width", 1280), height = args.Int("--height", 720);
  args.Finish();
  if (reps < 1 || warmup < 0) throw Error("--reps must be >= 1 and --warmup >= 0");

  std::string weights_note;
  sam2::Sam2Model model = BuildModel(o, &weights_note);
  const torch::Device device = model->parameters().front().device();
  PrintHeader("image encoder (SAM2Base.forward_image) per frame", o, model, weights_note, device);
  torch::NoGradGuard no_grad;
  sam2::PrecisionScope precision(o.precision, device);
  const torch::Tensor rgb = RandomImage(width, height, 1).to(device);

  std::vector<double> pre_s, encode_s, encode_cpu_s;
  for (int i = 0; i < warmup + reps; ++i) {
    auto t0 = Clock::now();
    const torch::Tensor input = sam2::PreprocessImage(rgb, model->config.image_size);
    Synchronize(device);
    const double pre = Seconds(t0);
    t0 = Clock::now();
    const double cpu0 = ProcessCpuSeconds();
    const sam2::ImageFeatures features = model->ForwardImage(input);
    Synchronize(device);
    const double enc = Seconds(t0), enc_cpu = ProcessCpuSeconds() - cpu0;
    std::printf("  run %d%s: forward_image %.3f s wall, %.3f s CPU; preprocessing %.1f ms\n", i + 1,
                i < warmup ? " (warm-up)" : "", enc, enc_cpu, pre * 1e3);
    std::fflush(stdout);
    if (i >= warmup) {
      pre_s.push_back(pre);
      encode_s.push_back(enc);
      encode_cpu_s.push_back(enc_cpu);
    }
  }
  std::printf("forward_image: median %.3f s, min %.3f s, max %.3f s over %d runs (input %dx%d -> %d)\n",
              Quantile(encode_s, 0.5), Quantile(encode_s, 0.0), Quantile(encode_s, 1.0), reps, width, height,
              model->config.image_size);
  std::printf("forward_image CPU time: median %.3f s, min %.3f s (process CPU seconds, all threads)\n",
              Quantile(encode_cpu_s, 0.5), Quantile(encode_cpu_s, 0.0));
  std::printf("preprocessing: median %.1f ms\n", Quantile(pre_s, 0.5) * 1e3);
  return 0;
}

int RunBenchPrompt(const std::vector<std::string>& argv) {
  ArgParser args(argv);
  const BenchModelOptions o = ParseModelOptions(args);
  const int reps = args.Int("--reps", 50);
  const int warmup = args.Int("--warmup", 3);
  const int width = args.Int("--width", 1280), height = args.Int("--height", 720);
  const bool multimask = !args.Flag("--single-mask");
  const std::string profile_path = args.String("--profile", "");
  args.Finish();
  if (reps < 1 || warmup < 0) throw Error("--reps must be >= 1 and --warmup >= 0");

  std::string weights_note;
  sam2::Sam2Model model = BuildModel(o, &weights_note);
  const torch::Device device = model->parameters().front().device();
  PrintHeader("click to mask (prompt encoder + mask decoder + upsampling, cached embedding)", o, model,
              weights_note, device);
  sam2::PrecisionScope precision(o.precision, device);
  sam2::ImagePredictor predictor(model);
  const auto t_set = Clock::now();
  predictor.SetImage(RandomImage(width, height, 1));
  std::printf("set_image:   %.3f s (once)\n", Seconds(t_set));

  std::mt19937 rng(7);
  std::uniform_real_distribution<float> px(0.f, static_cast<float>(width - 1)), py(0.f, static_cast<float>(height - 1));
  std::vector<double> ms, cpu_ms;
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  for (int i = 0; i < warmup + reps; ++i) {
    // --profile: a Chrome trace (chrome://tracing, Perfetto) of the timed clicks' operators.
    if (i == warmup && !profile_path.empty())
      profile = std::make_unique<torch::autograd::profiler::RecordProfile>(profile_path);
    sam2::ImagePrompt prompt;
    prompt.points = {{px(rng), py(rng), 1}};
    prompt.multimask = multimask;
    const auto t0 = Clock::now();
    const double cpu0 = ProcessCpuSeconds();
    sam2::ImagePrediction p = predictor.Predict(prompt);
    const torch::Tensor mask = (p.masks[p.iou.argmax().item<int64_t>()] > 0).to(torch::kCPU);
    const double s = Seconds(t0), cpu = ProcessCpuSeconds() - cpu0;
    if (i >= warmup) {
      ms.push_back(s * 1e3);
      cpu_ms.push_back(cpu * 1e3);
    }
  }
  profile.reset();
  if (!profile_path.empty()) std::printf("profile:     %s (Chrome trace)\n", profile_path.c_str());
  std::printf("click->mask: median %.1f ms, p90 %.1f ms, min %.1f ms over %d clicks (%s, mask %dx%d)\n",
              Quantile(ms, 0.5), Quantile(ms, 0.9), Quantile(ms, 0.0), reps, multimask ? "multimask" : "single mask",
              width, height);
  std::printf("click->mask CPU time: median %.1f ms (process CPU, all threads)\n", Quantile(cpu_ms, 0.5));
  return 0;
}

CommandRegistrar encode_reg{{"bench encode", "image-encoder time per frame (--config C, --reps, --precision fp32|bf16)",
                             RunBenchEncode}};
CommandRegistrar prompt_reg{{"bench prompt", "click-to-mask time on a cached embedding (--config C, --reps)",
                             RunBenchPrompt}};

}  // namespace
}  // namespace litseg::cli
