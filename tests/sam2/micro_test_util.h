// Helpers shared by the sam2 tests that load the micro model of ../shared/sam2/micro piecewise.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/shared_data.h"
#include "litseg/sam2/config.h"
#include "litseg/sam2/safetensors.h"

namespace litseg::sam2::test {

inline double MaxAbs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// The tensors of `all` whose names start with `prefix`, renamed without it.
inline TensorMap Subset(const TensorMap& all, const std::string& prefix) {
  TensorMap out;
  for (const auto& [name, tensor] : all)
    if (name.rfind(prefix, 0) == 0) out.Insert(name.substr(prefix.size()), tensor);
  return out;
}

inline nlohmann::json ReadJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// The golden set's own model configuration (config.json "hydra_config").
inline Sam2Config MicroConfig() {
  const nlohmann::json config = ReadJson(litseg::test::SharedPath("sam2/micro/config.json"));
  return ConfigFromOfficialModelJson(config.at("hydra_config").dump(), "micro/config.json");
}

}  // namespace litseg::sam2::test
