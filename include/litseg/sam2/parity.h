// Parity of the engine with the official SAM 2 implementation, case by case.
//
// A golden folder (layout of ../shared/sam2/micro/golden: manifest.json + *.safetensors)
// holds outputs of the official Python predictors on seeded weights. RunParity rebuilds the
// model from the set's own config and weights, replays every call the manifest describes and
// compares every stored tensor and every discrete decision:
//
//   litseg::sam2::ParityOptions options;
//   options.golden_dir = "../shared/sam2/micro/golden";
//   litseg::sam2::ParityReport report = litseg::sam2::RunParity(options);
//   bool ok = report.failed() == 0;
//
// Everything is read from the folder (frames, prompts, sizes, correction frames), nothing is
// assumed about a particular set. Cases the engine cannot run are reported as "skipped",
// never as passed. Thread safety: RunParity is reentrant.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

namespace litseg::sam2 {

struct ParityOptions {
  std::filesystem::path golden_dir;
  // Defaults: <golden_dir>/../weights.safetensors (else weights.pt) and the "hydra_config" of
  // <golden_dir>/../config.json.
  std::filesystem::path weights;
  std::filesystem::path config;
  std::string device = "cpu";  // "cpu", "cuda", "auto"
  // Run the bf16 path (autocast-style reduced precision) and judge it with the looser
  // bf16 tolerances.
  bool bf16 = false;
};

// Tolerances recommended by ../shared/sam2/README.md for a float32 port.
struct ParityTolerances {
  double image_encoder = 1e-3;
  double predictor_logits = 1e-3;
  double ious = 1e-4;
  double object_scores = 0.02;
  double video_logits_max = 0.1;
  double video_logits_mean = 1e-3;
  double video_sign_flip_below = 0.1;  // sign disagreements allowed only where |ref| < this
  double obj_ptr = 0.02;
  double bf16_memory = 0.1;
  // Loosened for the bf16 path.
  static ParityTolerances Bf16();
};

struct ParityRecord {
  std::string case_name;  // e.g. "image_encoder", "p2_pos_neg_single", "s1.p1_fwd"
  std::string tensor;     // golden tensor name, or "decision:<what>"
  double max_abs_diff = 0.0;
  double mean_abs_diff = 0.0;
  double tolerance = 0.0;
  std::string status;  // "pass", "fail", "skipped"
  std::string detail;  // why it failed or was skipped
};

struct ParityReport {
  std::string golden_dir;
  std::string device;
  std::vector<ParityRecord> records;

  int passed() const;
  int failed() const;
  int skipped() const;
  // {"cases": [{"case", "tensor", "max_abs_diff", "tolerance", "status", ...}], "summary": {...}}
  std::string ToJson() const;
};

// Called once per record as soon as it is known (for live printing).
using ParityProgressFn = std::function<void(const ParityRecord&)>;

ParityReport RunParity(const ParityOptions& options, const ParityProgressFn& progress = nullptr);

// Collects records; shared by the image and video case runners.
class ParityCollector {
 public:
  explicit ParityCollector(ParityProgressFn progress) : progress_(std::move(progress)) {}

  // max|ours - ref| <= tolerance (shapes must match; NaN fails).
  void CompareTensor(const std::string& case_name, const std::string& tensor, const torch::Tensor& ours,
                     const torch::Tensor& ref, double tolerance);
  // Video logits: max <= max_tol, mean <= mean_tol, signs agree wherever |ref| >= sign_below.
  void CompareLogits(const std::string& case_name, const std::string& tensor, const torch::Tensor& ours,
                     const torch::Tensor& ref, double max_tol, double mean_tol, double sign_below);
  void Decision(const std::string& case_name, const std::string& what, bool identical, const std::string& detail);
  void Skip(const std::string& case_name, const std::string& tensor, const std::string& reason);
  void Fail(const std::string& case_name, const std::string& tensor, const std::string& reason);

  std::vector<ParityRecord> TakeRecords() { return std::move(records_); }

 private:
  void Add(ParityRecord record);
  ParityProgressFn progress_;
  std::vector<ParityRecord> records_;
};

}  // namespace litseg::sam2
