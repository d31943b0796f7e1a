#include "litseg/sam2/weight_fill.h"

#include <cmath>

#include <ATen/Parallel.h>

#include "litseg/core/error.h"

namespace litseg::sam2 {
namespace {

bool EndsWith(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char b : bytes) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}

double LargeFillUniform(uint64_t hash, uint64_t index) {
  uint64_t z = hash + (index + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  // 24 random bits: exact in double.
  return static_cast<double>(z >> 40) * (1.0 / 16777216.0) - 0.5;
}

LargeFillRule GetLargeFillRule(const std::string& key, at::IntArrayRef shape) {
  if (EndsWith(key, "positional_encoding_gaussian_matrix")) return LargeFillRule::kGaussianMatrix;
  if (shape.size() >= 2) return EndsWith(key, ".weight") ? LargeFillRule::kFanIn : LargeFillRule::kBareParam;
  if (shape.size() == 1) {
    if (EndsWith(key, ".weight")) return LargeFillRule::kNormWeight;
    if (EndsWith(key, ".bias")) return LargeFillRule::kBias;
    return LargeFillRule::kOther1d;
  }
  throw Error("large fill: key " + key + " has a 0-d shape, which the fill does not define");
}

torch::Tensor LargeFillTensor(const std::string& key, at::IntArrayRef shape) {
  const LargeFillRule rule = GetLargeFillRule(key, shape);
  const uint64_t hash = Fnv1a64(key);
  torch::Tensor out = torch::empty(shape, torch::kFloat32);
  float* data = out.data_ptr<float>();
  int64_t fan_in = 1;
  for (size_t d = 1; d < shape.size(); ++d) fan_in *= shape[d];
  const double fan_scale = std::sqrt(12.0 / static_cast<double>(fan_in));
  at::parallel_for(0, out.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const double u = LargeFillUniform(hash, static_cast<uint64_t>(i));
      double v = 0;
      switch (rule) {
        case LargeFillRule::kGaussianMatrix: v = u * 4.0; break;
        case LargeFillRule::kFanIn: v = u * fan_scale; break;
        case LargeFillRule::kBareParam: v = u * 0.125; break;
        case LargeFillRule::kNormWeight: v = 1.0 + u * 0.25; break;
        case LargeFillRule::kBias: v = u * 0.03125; break;
        case LargeFillRule::kOther1d: v = u * 0.125; break;
      }
      data[i] = static_cast<float>(v);
    }
  });
  return out;
}

int ApplyLargeFill(torch::nn::Module& module, const std::string& key_prefix) {
  torch::NoGradGuard no_grad;
  int count = 0;
  auto fill = [&](const std::string& name, torch::Tensor& t) {
    if (!t.defined()) return;
    const torch::Tensor value = LargeFillTensor(key_prefix + name, t.sizes());
    t.copy_(value);
    ++count;
  };
  for (auto& item : module.named_parameters(/*recurse=*/true)) fill(item.key(), item.value());
  for (auto& item : module.named_buffers(/*recurse=*/true)) fill(item.key(), item.value());
  return count;
}

}  // namespace litseg::sam2
