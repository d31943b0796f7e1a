// Numeric precision of the engine: float32 (default, what parity is judged on) or the bf16
// path. bf16 means: on CUDA, LibTorch's autocast; on the CPU (oneDNN bf16 kernels: AVX512-BF16
// or AMX), the image encoder's linear layers and every attention product run in bfloat16
// with float32 accumulation and float32 results; normalisations, softmax, residual streams
// and the mask decoder's small layers stay float32.
//
//   litseg::sam2::PrecisionScope scope(litseg::sam2::ParsePrecision("bf16"), device);
//   predictor.SetImage(rgb);  // runs with bf16 products while `scope` lives
//
// Outputs of the predictors are float32 in both modes. Engine code that writes into
// preallocated buffers checks InReducedPrecision() and takes an autocast-friendly path.
//
// Thread safety: autocast state is per thread, so a scope affects only the thread that
// created it; create it on the thread that runs the model.
#pragma once

#include <string>

#include <torch/types.h>

namespace litseg::sam2 {

enum class Precision { kFloat32, kBFloat16 };

// "fp32"/"float32" or "bf16"/"bfloat16"; throws litseg::Error otherwise.
Precision ParsePrecision(const std::string& name);
const char* PrecisionName(Precision precision);

// True while a bf16 PrecisionScope is alive on this thread.
bool InReducedPrecision();

// Turns the bf16 path on for this thread while alive (a no-op for kFloat32); scopes nest.
// Restores the previous state on destruction.
class PrecisionScope {
 public:
  PrecisionScope(Precision precision, const torch::Device& device);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

}  // namespace litseg::sam2
