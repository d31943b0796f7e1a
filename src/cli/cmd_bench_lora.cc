// litseg-cli bench lora: cost of live interactive training at the real decoder size.
//
// Time per training step (forward + backward + optimiser) for each schedule, per adapted
// prediction (inference, no gradient), and the trainable-parameter count of each adapter
// kind, on a mask decoder built from a config (sam2.1_hiera_l: width 256, 64x64 image
// embedding, 1024 image) with the deterministic large-fill weights (the timing does not
// depend on the values) and random decoder inputs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/machine_info.h"
#include "litseg/core/error.h"
#include "litseg/core/runtime.h"
#include "litseg/lit/trainer.h"
#include "litseg/sam2/config.h"
#include "litseg/sam2/mask_decoder.h"
#include "litseg/sam2/weight_fill.h"

#include <torch/csrc/autograd/profiler_legacy.h>

namespace litseg::cli {
namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Random inputs of the shapes the tracker gives the SAM head for one frame.
lit::DecoderInputs RandomInputs(const sam2::Sam2Config& c, int64_t seed) {
  torch::manual_seed(seed);
  const int64_t d = c.d_model(), h = c.image_embedding_size();
  lit::DecoderInputs in;
  in.image_embed = torch::randn({1, d, h, h});
  if (c.mask_decoder.use_high_res_features)
    in.high_res_features = {torch::randn({1, d / 8, 4 * h, 4 * h}), torch::randn({1, d / 4, 2 * h, 2 * h})};
  in.sparse = torch::randn({1, 2, d});
  in.dense = torch::randn({1, d, 1, 1}).expand({1, d, h, h});
  in.image_pe = torch::randn({1, d, h, h});
  return in;
}

// A disk covering ~20% of the image, as a [1, 1, S, S] target.
torch::Tensor DiskTarget(int size, double shift) {
  const torch::Tensor r = torch::arange(size, torch::kFloat32) / size - 0.5 - shift;
  const torch::Tensor d2 = r.view({-1, 1}).pow(2) + r.view({1, -1}).pow(2);
  return d2.lt(0.25 * 0.25 * 1.0).to(torch::kFloat32).view({1, 1, size, size});
}

struct Timing {
  std::string label;
  double median_ms = 0.0;
  int steps = 0;
  int batch = 0;
};

int RunBenchLora(const std::vector<std::string>& argv) {
  ArgParser args(argv);
  const std::string config_name = args.String("--config", "sam2.1_hiera_l");
  const int steps = args.Int("--steps", 10);
  const int warmup = args.Int("--warmup", 2);
  const bool paper = !args.Flag("--no-paper");
  const std::string profile_path = args.String("--profile", "");
  // Adapter settings to compare (defaults: the method's).
  lit::LoraConfig lora;
  lora.rank = args.Int("--rank", lora.rank);
  lora.alpha = args.Double("--alpha", lora.alpha);
  lora.dropout = args.Double("--dropout", lora.dropout);
  args.Finish();
  if (steps < 1 || warmup < 0) throw Error("--steps must be at least 1 and --warmup not negative");

  const sam2::Sam2Config config = sam2::LoadNamedConfig(config_name);
  sam2::MaskDecoder decoder(config);
  sam2::ApplyLargeFill(*decoder, "sam_mask_decoder.");
  for (auto& p : decoder->parameters()) p.set_requires_grad(false);

  std::vector<lit::DecoderInputs> inputs;
  std::vector<torch::Tensor> targets;
  for (int i = 0; i < 5; ++i) {
    inputs.push_back(RandomInputs(config, 100 + i));
    targets.push_back(DiskTarget(config.image_size, 0.04 * i));
  }

  std::printf("config:      %s (decoder width %d, image embedding %dx%d, image %d)\n", config_name.c_str(),
              config.d_model(), config.image_embedding_size(), config.image_embedding_size(), config.image_size);
  std::printf("machine:     %s; %d compute threads\n", MachineDescription().c_str(), ComputeThreads());
  std::printf("date:        %s\n", TodayUtc().c_str());
  std::printf("method:      median of %d timed calls after %d warm-up calls; LibTorch %s\n\n", steps, warmup,
              TORCH_VERSION);

  std::printf("| adapter | trainable parameters |\n|---|---|\n");
  for (lit::AdapterKind kind : {lit::AdapterKind::kDecoderLora, lit::AdapterKind::kMemoryAdapter}) {
    lit::TrainerOptions options;
    options.adapter.kind = kind;
    options.adapter.lora = lora;
    lit::OnlineTrainer trainer(config, decoder, options);
    std::printf("| %s | %lld |\n", lit::AdapterKindName(kind).c_str(),
                static_cast<long long>(trainer.AdapterParameterCount()));
  }
  std::printf("\n");

  // --profile FILE: Chrome traces (chrome://tracing, Perfetto) of the timed calls of the decoder
  // LoRA 1/1 step (FILE) and of the adapted LoRA prediction (FILE.predict.json).
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  auto time_calls = [&](const std::function<void()>& fn, const std::string& trace) {
    for (int i = 0; i < warmup; ++i) fn();
    if (!trace.empty()) profile = std::make_unique<torch::autograd::profiler::RecordProfile>(trace);
    std::vector<double> ms;
    for (int i = 0; i < steps; ++i) {
      const auto t0 = Clock::now();
      fn();
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    profile.reset();
    if (!trace.empty()) std::fprintf(stderr, "profile: %s\n", trace.c_str());
    return Median(ms);
  };
  const std::string no_trace;

  std::printf("| adapter | schedule | optimiser steps per correction | batch | ms per step | ms per correction |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (lit::AdapterKind kind : {lit::AdapterKind::kDecoderLora, lit::AdapterKind::kMemoryAdapter}) {
    const std::vector<std::string> schedules =
        kind == lit::AdapterKind::kDecoderLora ? std::vector<std::string>{"1/1", "3/3", "5/5", "3/1", "5/1"}
                                               : std::vector<std::string>{"1/1", "3/3", "5/1"};
    for (const std::string& name : schedules) {
      lit::TrainerOptions options;
      options.adapter.kind = kind;
      options.adapter.lora = lora;
      options.schedule = lit::ParseSchedule(name);
      lit::OnlineTrainer trainer(config, decoder, options);
      const int k = options.schedule.replay;
      const int batch = options.schedule.joint ? k : 1;
      std::vector<lit::DecoderInputs> in(inputs.begin(), inputs.begin() + batch);
      std::vector<torch::Tensor> tg(targets.begin(), targets.begin() + batch);
      const bool profiled = kind == lit::AdapterKind::kDecoderLora && name == "1/1";
      const double step_ms = time_calls([&] { trainer.Step(0, in, tg); }, profiled ? profile_path : no_trace);
      const int per_correction = options.schedule.joint ? 1 : k;
      std::printf("| %s | %s | %d | %d | %.1f | %.1f |\n", lit::AdapterKindName(kind).c_str(), name.c_str(),
                  per_correction, batch, step_ms, step_ms * per_correction);
      std::fflush(stdout);
    }
  }
  std::printf("\n| prediction | ms |\n|---|---|\n");
  {
    lit::TrainerOptions lora_options;
    lora_options.adapter.lora = lora;
    lit::OnlineTrainer trainer(config, decoder, lora_options);
    std::printf("| base decoder (single mask, gated) | %.1f |\n",
                time_calls([&] { trainer.PredictBase(inputs[0]); }, no_trace));
    std::printf("| adapted, decoder LoRA | %.1f |\n", time_calls([&] { trainer.Predict(inputs[0]); },
                                                                     profile_path.empty() ? no_trace : profile_path + ".predict.json"));
    lit::TrainerOptions options;
    options.adapter.kind = lit::AdapterKind::kMemoryAdapter;
    lit::OnlineTrainer memory(config, decoder, options);
    std::printf("| adapted, memory adapter | %.1f |\n", time_calls([&] { memory.Predict(inputs[0]); }, no_trace));
  }
  if (paper) {
    // The paper preset's first correction: 100 epochs on one correction (a new adapter).
    lit::TrainerOptions options;
    options.schedule = lit::ParseSchedule("paper");
    lit::OnlineTrainer trainer(config, decoder, options);
    const lit::TrainReport first = trainer.Train(inputs[0], targets[0], 0);
    const lit::TrainReport second = trainer.Train(inputs[1], targets[1], 1);
    std::printf("\n| paper preset | optimiser steps | batch | training ms | total ms |\n|---|---|---|---|---|\n");
    std::printf("| correction 1 (%s) | %d | 1 | %.0f | %.0f |\n", first.new_adapter ? "new adapter" : "fine-tune",
                first.steps, first.train_ms, first.total_ms);
    std::printf("| correction 2 (%s) | %d | %d | %.0f | %.0f |\n", second.new_adapter ? "new adapter" : "fine-tune",
                second.steps, second.new_adapter ? 1 : 2, second.train_ms, second.total_ms);
  }
  return 0;
}

CommandRegistrar bench_lora_command{
    {"bench lora", "live-training cost: ms per training step and per adapted prediction, adapter sizes",
     RunBenchLora}};

}  // namespace
}  // namespace litseg::cli
