// Full-size structural check: sam2.1_hiera_t and sam2.1_hiera_l image encoders at 1024 with
// the deterministic "large fill" weights, against compact summaries of the official model
// (shared/sam2/large_fill). Slow: one Hiera-L forward takes several seconds.
#include <chrono>
#include <fstream>
#include <iostream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/shared_data.h"
#include "litseg/sam2/config.h"
#include "litseg/sam2/image_encoder.h"
#include "litseg/sam2/preprocess.h"
#include "litseg/sam2/weight_fill.h"
#include "sam2/encoder_test_util.h"

namespace litseg::sam2 {
namespace {

using test::MaxAbsDiff;
using test::SharedPath;

// Summaries as written by the reference generator (README "Outputs").
struct Summary {
  torch::Tensor chan_mean, chan_std, sub, crop;
};

Summary Summarise(const torch::Tensor& p, const nlohmann::json& info) {
  const torch::Tensor x = p.to(torch::kFloat64);
  const int64_t step = info.at("subsample_step");
  const auto rows = info.at("crop_rows").get<std::vector<int64_t>>();
  const auto cols = info.at("crop_cols").get<std::vector<int64_t>>();
  Summary s;
  s.chan_mean = x.mean({0, 2, 3});
  s.chan_std = x.std({0, 2, 3}, /*unbiased=*/true);
  s.sub = x.slice(2, 0, x.size(2), step).slice(3, 0, x.size(3), step);
  s.crop = x.slice(2, rows[0], rows[1]).slice(3, cols[0], cols[1]);
  return s;
}

void CheckModel(const std::string& model) {
  LITSEG_REQUIRE_SHARED("sam2/large_fill/sam2.1_hiera_" + model + ".safetensors");
  const std::string name = "sam2.1_hiera_" + model;
  const auto golden = test::ReadSafetensorsForTest(SharedPath("sam2/large_fill/" + name + ".safetensors").string());
  const auto inputs = test::ReadSafetensorsForTest(SharedPath("sam2/large_fill/inputs.safetensors").string());
  std::ifstream summary_file(SharedPath("sam2/large_fill/summary.json"));
  const nlohmann::json summary = nlohmann::json::parse(summary_file).at("models").at(model).at("tensors");

  const Sam2Config config = LoadNamedConfig(name);
  ASSERT_EQ(config.image_size, 1024);
  ImageEncoder encoder(config.image_encoder);
  ApplyLargeFill(*encoder, "image_encoder.");
  const int d = config.d_model();
  const torch::Tensor conv_s0_w = LargeFillTensor("sam_mask_decoder.conv_s0.weight", {d / 8, d, 1, 1});
  const torch::Tensor conv_s0_b = LargeFillTensor("sam_mask_decoder.conv_s0.bias", {d / 8});
  const torch::Tensor conv_s1_w = LargeFillTensor("sam_mask_decoder.conv_s1.weight", {d / 4, d, 1, 1});
  const torch::Tensor conv_s1_b = LargeFillTensor("sam_mask_decoder.conv_s1.bias", {d / 4});
  EXPECT_TRUE(torch::equal(encoder->trunk->patch_embed->proj->weight.slice(0, 0, 2), golden.at("patch_embed_weight_check")));

  const torch::Tensor image = NormalizeResizedFrame(inputs.at("frame0_resized_1024_u8"));
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> got;
  const auto start = std::chrono::steady_clock::now();
  ImageEncoderOutput out = encoder->forward(image, [&](const std::string& key, const torch::Tensor& t) {
    if (key.rfind("trunk.out", 0) == 0 || key.rfind("neck.fpn", 0) == 0) got[key] = t;
  });
  got["forward_image.backbone_fpn0"] = torch::conv2d(out.backbone_fpn[0], conv_s0_w, conv_s0_b);
  got["forward_image.backbone_fpn1"] = torch::conv2d(out.backbone_fpn[1], conv_s1_w, conv_s1_b);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  got["forward_image.backbone_fpn2"] = out.backbone_fpn[2];
  for (size_t i = 0; i < out.vision_pos_enc.size(); ++i)
    got["forward_image.vision_pos_enc" + std::to_string(i)] = out.vision_pos_enc[i];
  got["neck.fpn0_before_conv_s0"] = got.at("neck.fpn0");
  got["neck.fpn1_before_conv_s1"] = got.at("neck.fpn1");
  got["neck.fpn3_dropped_by_scalp"] = got.at("neck.fpn3");
  std::cout << name << ": forward_image " << seconds << " s with " << at::get_num_threads() << " thread(s)\n";
  ::testing::Test::RecordProperty("forward_image_s", std::to_string(seconds));

  int compared = 0;
  for (const auto& item : summary.items()) {
    const std::string& tensor = item.key();
    SCOPED_TRACE(tensor);
    auto it = got.find(tensor);
    if (it == got.end()) {
      ADD_FAILURE() << "the port does not produce " << tensor;
      continue;
    }
    ASSERT_EQ(it->second.sizes().vec(), item.value().at("shape").get<std::vector<int64_t>>());
    const Summary s = Summarise(it->second, item.value());
    // Float32 rounding grows with depth (48 blocks in Hiera-L); compare relative to the
    // tensor's spread.
    const double spread = item.value().at("std").get<double>();
    const double tolerance = 2e-4 * std::max(1.0, spread);
    const std::pair<const char*, const torch::Tensor*> parts[] = {
        {"chan_mean", &s.chan_mean}, {"chan_std", &s.chan_std}, {"sub", &s.sub}, {"crop", &s.crop}};
    for (const auto& [part, value] : parts) {
      const torch::Tensor& ref = golden.at(tensor + "." + part);
      ASSERT_EQ(value->sizes(), ref.sizes()) << part;
      const double diff = MaxAbsDiff(*value, ref);
      std::cout << "  " << tensor << "." << part << " max|d| = " << diff << " (tolerance " << tolerance << ")\n";
      EXPECT_LE(diff, tolerance) << part;
    }
    ++compared;
  }
  EXPECT_EQ(compared, 13);
}

TEST(LargeFillImageEncoder, TinyAt1024MatchesOfficialSummaries) { CheckModel("t"); }

TEST(LargeFillImageEncoder, LargeAt1024MatchesOfficialSummaries) { CheckModel("l"); }

}  // namespace
}  // namespace litseg::sam2
