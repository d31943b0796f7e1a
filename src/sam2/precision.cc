#include "litseg/sam2/precision.h"

#include <ATen/autocast_mode.h>

#include "litseg/core/error.h"

namespace litseg::sam2 {

Precision ParsePrecision(const std::string& name) {
  if (name == "fp32" || name == "float32") return Precision::kFloat32;
  if (name == "bf16" || name == "bfloat16") return Precision::kBFloat16;
  throw Error("unknown precision '" + name + "' (use fp32 or bf16)");
}

const char* PrecisionName(Precision precision) { return precision == Precision::kBFloat16 ? "bf16" : "fp32"; }

namespace {
thread_local int reduced_precision_depth = 0;
}

bool InReducedPrecision() { return reduced_precision_depth > 0; }

PrecisionScope::PrecisionScope(Precision precision, const torch::Device& device) {
  if (precision == Precision::kFloat32) return;
  active_ = true;
  ++reduced_precision_depth;
  cuda_ = device.is_cuda();
  // On CUDA, autocast covers every module (it keeps LayerNorm and softmax in float32 there).
  // On the CPU, LibTorch 1.13's autocast sends bf16 tensors into LayerNorm kernels that only
  // take float32, so the engine converts explicitly where the work is: the Hiera linear
  // layers and attention products (see hiera.cc, attention.cc).
  if (cuda_) {
    previous_enabled_ = at::autocast::is_enabled();
    previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  }
}

PrecisionScope::~PrecisionScope() {
  if (!active_) return;
  --reduced_precision_depth;
  if (cuda_) {
    at::autocast::set_enabled(previous_enabled_);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
    // Autocast caches casted weights while enabled; drop them with the scope.
    if (!previous_enabled_) at::autocast::clear_cache();
  }
}

}  // namespace litseg::sam2
