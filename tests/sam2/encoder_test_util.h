// Test-only helpers of the image-encoder tests: a minimal safetensors reader (the engine's
// checkpoint loader lives elsewhere) and comparison utilities.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace litseg::test {

// Every tensor of a .safetensors file (F32, U8, I32, I64, BF16 upcast to F32).
inline std::map<std::string, torch::Tensor> ReadSafetensorsForTest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  std::ostringstream rest;
  rest << in.rdbuf();
  const std::string data = rest.str();
  std::map<std::string, torch::Tensor> out;
  const nlohmann::json index = nlohmann::json::parse(header);
  for (const auto& [name, entry] : index.items()) {
    if (name == "__metadata__") continue;
    const std::string dtype = entry.at("dtype");
    std::vector<int64_t> shape = entry.at("shape").get<std::vector<int64_t>>();
    const uint64_t begin = entry.at("data_offsets")[0], end = entry.at("data_offsets")[1];
    void* ptr = const_cast<char*>(data.data() + begin);
    torch::Tensor t;
    if (dtype == "F32") t = torch::from_blob(ptr, shape, torch::kFloat32).clone();
    else if (dtype == "U8") t = torch::from_blob(ptr, shape, torch::kUInt8).clone();
    else if (dtype == "I32") t = torch::from_blob(ptr, shape, torch::kInt32).clone();
    else if (dtype == "I64") t = torch::from_blob(ptr, shape, torch::kInt64).clone();
    else if (dtype == "BF16") t = torch::from_blob(ptr, shape, torch::kBFloat16).to(torch::kFloat32);
    else throw std::runtime_error("unsupported dtype " + dtype + " in " + path);
    (void)end;
    out.emplace(name, t);
  }
  return out;
}

inline double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace litseg::test
