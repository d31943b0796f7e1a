// The assembled model has exactly the official state-dict keys and shapes of every config.
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/sam2/sam2_model.h"

namespace litseg::sam2 {
namespace {

class OfficialKeys : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(OfficialKeys, EveryNameAndShapeMatches) {
  const auto [config_name, keys_file] = GetParam();
  const std::string rel = std::string("sam2/keys/") + keys_file;
  LITSEG_REQUIRE_SHARED(rel);
  std::ifstream in(test::SharedPath(rel));
  const nlohmann::json ref = nlohmann::json::parse(in);
  std::map<std::string, std::vector<int64_t>> expected;
  for (const auto& k : ref.at("keys")) expected[k.at("key").get<std::string>()] = k.at("shape").get<std::vector<int64_t>>();

  Sam2Model model(LoadNamedConfig(config_name));
  std::map<std::string, std::vector<int64_t>> ours;
  for (const auto& p : model->named_parameters()) ours[p.key()] = p.value().sizes().vec();
  for (const auto& b : model->named_buffers()) ours[b.key()] = b.value().sizes().vec();

  std::vector<std::string> missing, unexpected, wrong_shape;
  for (const auto& [key, shape] : expected) {
    auto it = ours.find(key);
    if (it == ours.end()) missing.push_back(key);
    else if (it->second != shape) wrong_shape.push_back(key);
  }
  for (const auto& [key, shape] : ours)
    if (!expected.count(key)) unexpected.push_back(key);
  auto head = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 8; ++i) s += v[i] + " ";
    return s;
  };
  EXPECT_TRUE(missing.empty()) << missing.size() << " missing: " << head(missing);
  EXPECT_TRUE(unexpected.empty()) << unexpected.size() << " unexpected: " << head(unexpected);
  EXPECT_TRUE(wrong_shape.empty()) << wrong_shape.size() << " wrong shapes: " << head(wrong_shape);
  EXPECT_EQ(ours.size(), ref.at("num_keys").get<size_t>());
  EXPECT_EQ(model->ParameterCount(), ref.at("parameter_count").get<int64_t>());
}

INSTANTIATE_TEST_SUITE_P(Sam21, OfficialKeys,
                         ::testing::Values(std::make_pair("sam2.1_hiera_t", "sam2.1_hiera_t.json"),
                                           std::make_pair("sam2.1_hiera_s", "sam2.1_hiera_s.json"),
                                           std::make_pair("sam2.1_hiera_b+", "sam2.1_hiera_b+.json"),
                                           std::make_pair("sam2.1_hiera_l", "sam2.1_hiera_l.json")));

TEST(Sam2Model, MicroCheckpointLoadsStrictlyFromBothFormats) {
  LITSEG_REQUIRE_SHARED("sam2/micro/weights.pt");
  for (const char* file : {"sam2/micro/weights.pt", "sam2/micro/weights.safetensors"}) {
    LoadReport report;
    Sam2Model model = LoadSam2Model(LoadNamedConfig("micro"), test::SharedPath(file), "cpu", &report);
    EXPECT_EQ(model->ParameterCount(), 1718866) << file;
    EXPECT_TRUE(report.missing.empty());
    EXPECT_TRUE(report.unexpected.empty());
  }
}

TEST(Sam2Model, WrongConfigForCheckpointIsAClearError) {
  LITSEG_REQUIRE_SHARED("sam2/micro/weights.safetensors");
  try {
    LoadSam2Model(LoadNamedConfig("sam2.1_hiera_t"), test::SharedPath("sam2/micro/weights.safetensors"), "cpu");
    ADD_FAILURE() << "micro weights loaded into the tiny architecture";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not fit"), std::string::npos) << e.what();
  }
}

TEST(Sam2Model, DeviceResolution) {
  EXPECT_EQ(ResolveDevice("cpu"), torch::Device(torch::kCPU));
  EXPECT_THROW(ResolveDevice("tpu"), Error);
  if (!torch::cuda::is_available()) {
    EXPECT_EQ(ResolveDevice("auto"), torch::Device(torch::kCPU));
    EXPECT_THROW(ResolveDevice("cuda"), Error);
  }
}

}  // namespace
}  // namespace litseg::sam2
