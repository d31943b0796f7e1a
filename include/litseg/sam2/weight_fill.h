// The deterministic "large fill" (version 1) of shared/sam2/large_fill/README.md: float32
// weights generated from a state-dict key and shape alone, so that a full-size model can be
// checked against the official Python code without shipping real weights.
//
//   torch::Tensor w = litseg::sam2::LargeFillTensor("image_encoder.trunk.pos_embed", {1, 96, 7, 7});
//   litseg::sam2::ApplyLargeFill(*encoder, "image_encoder.");  // every parameter and buffer
//
// Value i of key K: SplitMix64 output i+1 from the start state FNV-1a-64(K), mapped to
// u in [-0.5, 0.5) and scaled by the first matching rule (see LargeFillRule).
//
// Thread-safety: pure functions; ApplyLargeFill writes the module's tensors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <torch/torch.h>

namespace litseg::sam2 {

uint64_t Fnv1a64(std::string_view bytes);

enum class LargeFillRule {
  kGaussianMatrix,  // key ends with positional_encoding_gaussian_matrix: u * 4
  kFanIn,           // ndim >= 2, ".weight": u * sqrt(12 / fan_in)
  kBareParam,       // ndim >= 2, other keys: u * 0.125
  kNormWeight,      // ndim == 1, ".weight": 1 + u * 0.25
  kBias,            // ndim == 1, ".bias": u * 0.03125
  kOther1d,         // ndim == 1, other keys: u * 0.125
};

LargeFillRule GetLargeFillRule(const std::string& key, at::IntArrayRef shape);
// The uniform number u in [-0.5, 0.5) for flat index `index` of a tensor whose key hashes to `hash`.
double LargeFillUniform(uint64_t hash, uint64_t index);

// A new float32 CPU tensor of `shape` filled for `key`.
torch::Tensor LargeFillTensor(const std::string& key, at::IntArrayRef shape);

// Overwrites every parameter and buffer of `module` (recursively) with the fill of
// key_prefix + its name. Returns the number of tensors filled.
int ApplyLargeFill(torch::nn::Module& module, const std::string& key_prefix);

}  // namespace litseg::sam2
