#include "litseg/sam2/weight_fill.h"

#include <cstring>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/shared_data.h"

namespace litseg::sam2 {
namespace {

const char* RuleName(LargeFillRule rule) {
  switch (rule) {
    case LargeFillRule::kGaussianMatrix: return "gauss_matrix";
    case LargeFillRule::kFanIn: return "fan_in";
    case LargeFillRule::kBareParam: return "bare_param";
    case LargeFillRule::kNormWeight: return "norm_weight";
    case LargeFillRule::kBias: return "bias";
    case LargeFillRule::kOther1d: return "other_1d";
  }
  return "?";
}

std::string Hex(uint64_t value, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llx", digits, static_cast<unsigned long long>(value));
  return buf;
}

TEST(LargeFill, Fnv1aOfKnownStrings) {
  // Published FNV-1a 64 test vectors.
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

// Every key of the two full-size models, against the reference generator's check list.
void CheckModel(const std::string& model) {
  const std::string rel = "sam2/large_fill/fill_check_" + model + ".json";
  std::ifstream in(test::SharedPath(rel));
  const nlohmann::json check = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& entry : check.at("keys")) {
    const std::string key = entry.at("key");
    SCOPED_TRACE(key);
    const std::vector<int64_t> shape = entry.at("shape").get<std::vector<int64_t>>();
    EXPECT_EQ(Hex(Fnv1a64(key), 16), entry.at("fnv1a64").get<std::string>());
    EXPECT_STREQ(RuleName(GetLargeFillRule(key, shape)), entry.at("rule").get<std::string>().c_str());
    const torch::Tensor t = LargeFillTensor(key, shape);
    ASSERT_EQ(t.sizes().vec(), shape);
    const float* data = t.data_ptr<float>();
    const auto& bits = entry.at("first4_f32_bits");
    for (size_t i = 0; i < bits.size() && static_cast<int64_t>(i) < t.numel(); ++i) {
      uint32_t b = 0;
      std::memcpy(&b, &data[i], 4);
      EXPECT_EQ(Hex(b, 8), bits[i].get<std::string>()) << "value " << i;
    }
    const torch::Tensor d = t.to(torch::kFloat64);
    const double sum = d.sum().item<double>(), sum_abs = d.abs().sum().item<double>();
    const double ref_sum = entry.at("sum_f64"), ref_abs = entry.at("sum_abs_f64");
    EXPECT_NEAR(sum_abs, ref_abs, 1e-6 * ref_abs);
    EXPECT_NEAR(sum, ref_sum, 1e-6 * ref_abs);
    ++checked;
  }
  EXPECT_GT(checked, 400);
}

TEST(LargeFill, MatchesReferenceChecksTiny) {
  LITSEG_REQUIRE_SHARED("sam2/large_fill/fill_check_t.json");
  CheckModel("t");
}

TEST(LargeFill, MatchesReferenceChecksLarge) {
  LITSEG_REQUIRE_SHARED("sam2/large_fill/fill_check_l.json");
  CheckModel("l");
}

TEST(LargeFill, ApplyFillsParametersByPrefixedName) {
  torch::nn::Linear linear(4, 3);
  EXPECT_EQ(ApplyLargeFill(*linear, "head."), 2);
  EXPECT_TRUE(torch::equal(linear->weight, LargeFillTensor("head.weight", {3, 4})));
  EXPECT_TRUE(torch::equal(linear->bias, LargeFillTensor("head.bias", {3})));
  // Rule 5 range: biases in [-1/64, 1/64).
  EXPECT_LT(linear->bias.abs().max().item<float>(), 1.0f / 64);
}

}  // namespace
}  // namespace litseg::sam2
