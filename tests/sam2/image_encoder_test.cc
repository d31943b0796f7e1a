#include "litseg/sam2/image_encoder.h"

#include <fstream>
#include <iostream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/sam2/config.h"
#include "litseg/sam2/preprocess.h"
#include "sam2/encoder_test_util.h"

namespace litseg::sam2 {
namespace {

using test::MaxAbsDiff;
using test::ReadSafetensorsForTest;
using test::SharedPath;

// README acceptance: 1e-3. Measured 7e-5 at most (values up to ~11); for comparison both
// this port and the reference differ from a float64 evaluation by ~2e-4 at the last stage,
// so the remaining difference is float32 rounding amplified by the sharp micro attention.
constexpr double kTolerance = 2e-4;

// Copies weights[prefix + name] into every parameter/buffer of `module`; all must exist.
void LoadWeights(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& weights,
                 const std::string& prefix) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.named_parameters()) {
    auto it = weights.find(prefix + p.key());
    ASSERT_NE(it, weights.end()) << "no weight " << prefix << p.key();
    ASSERT_EQ(it->second.sizes(), p.value().sizes()) << p.key();
    p.value().copy_(it->second);
  }
}

class MicroImageEncoder : public ::testing::Test {
 protected:
  void SetUp() override {
    LITSEG_REQUIRE_SHARED("sam2/micro/golden/image_encoder.safetensors");
    config_ = LoadNamedConfig("micro");
    encoder_ = ImageEncoder(config_.image_encoder);
    weights_ = ReadSafetensorsForTest(SharedPath("sam2/micro/weights.safetensors").string());
    LoadWeights(*encoder_, weights_, "image_encoder.");
    golden_ = ReadSafetensorsForTest(SharedPath("sam2/micro/golden/image_encoder.safetensors").string());
    inputs_ = ReadSafetensorsForTest(SharedPath("sam2/micro/golden/inputs.safetensors").string());
    std::ifstream in(SharedPath("sam2/micro/golden/manifest.json"));
    manifest_ = nlohmann::json::parse(in);
  }

  // Every tensor the reference stored, recomputed from `image`.
  std::map<std::string, torch::Tensor> Run(const torch::Tensor& image) {
    torch::NoGradGuard no_grad;
    std::map<std::string, torch::Tensor> got;
    ImageEncoderOutput out =
        encoder_->forward(image, [&](const std::string& name, const torch::Tensor& t) { got[name] = t; });
    // SAM2Base.forward_image: the decoder's high-resolution projections on levels 0 and 1.
    auto conv = [&](const torch::Tensor& x, const std::string& name) {
      return torch::conv2d(x, weights_.at("sam_mask_decoder." + name + ".weight"),
                           weights_.at("sam_mask_decoder." + name + ".bias"));
    };
    got["forward_image.backbone_fpn0"] = conv(out.backbone_fpn[0], "conv_s0");
    got["forward_image.backbone_fpn1"] = conv(out.backbone_fpn[1], "conv_s1");
    got["forward_image.backbone_fpn2"] = out.backbone_fpn[2];
    for (size_t i = 0; i < out.vision_pos_enc.size(); ++i)
      got["forward_image.vision_pos_enc" + std::to_string(i)] = out.vision_pos_enc[i];
    got["predictor.image_embed"] = out.vision_features + weights_.at("no_mem_embed").view({1, -1, 1, 1});
    got["input.preprocessed"] = image;
    return got;
  }

  Sam2Config config_;
  ImageEncoder encoder_{nullptr};
  std::map<std::string, torch::Tensor> weights_, golden_, inputs_;
  nlohmann::json manifest_;
};

TEST_F(MicroImageEncoder, EveryStoredIntermediateMatchesTheReference) {
  const auto& files = manifest_.at("files").at("image_encoder.safetensors");
  const std::map<std::string, torch::Tensor> got = Run(golden_.at("input.preprocessed"));
  double worst = 0;
  for (const auto& item : files.items()) {
    const std::string& name = item.key();
    SCOPED_TRACE(name);
    ASSERT_TRUE(golden_.count(name)) << "manifest names a tensor the file lacks";
    auto it = got.find(name);
    if (it == got.end()) {
      ADD_FAILURE() << "the port does not produce " << name;
      continue;
    }
    const torch::Tensor& ref = golden_.at(name);
    ASSERT_EQ(it->second.sizes(), ref.sizes());
    const double diff = MaxAbsDiff(it->second, ref);
    std::cout << "  " << name << " max|d| = " << diff << "\n";
    EXPECT_LE(diff, kTolerance);
    worst = std::max(worst, diff);
  }
  RecordProperty("max_abs_diff", std::to_string(worst));
  std::cout << "micro image encoder: worst max|d| = " << worst << "\n";
}

TEST_F(MicroImageEncoder, PreprocessingMatchesBothPredictors) {
  // Image predictor: antialiased bilinear resize of the 320x180 frame to 256x256.
  const torch::Tensor image = PreprocessImage(inputs_.at("image_u8"), config_.image_size);
  const double image_diff = MaxAbsDiff(image, golden_.at("input.preprocessed"));
  std::cout << "image predictor preprocessing max|d| = " << image_diff << "\n";
  EXPECT_LE(image_diff, 1e-5);
  // The same through a raw pointer with a padded row stride.
  const torch::Tensor u8 = inputs_.at("image_u8");
  const int64_t h = u8.size(0), w = u8.size(1), stride = 3 * w + 5;
  torch::Tensor padded = torch::zeros({h, stride}, torch::kUInt8);
  padded.narrow(1, 0, 3 * w).copy_(u8.reshape({h, 3 * w}));
  const torch::Tensor raw = PreprocessImage(padded.data_ptr<uint8_t>(), h, w, stride, config_.image_size);
  EXPECT_TRUE(torch::equal(raw, image));
  // Video predictor: frames already resized by PIL, normalised only.
  const torch::Tensor frame = NormalizeResizedFrame(inputs_.at("video.resized_u8")[0]);
  const double frame_diff = MaxAbsDiff(frame[0], inputs_.at("video.images_frame0"));
  std::cout << "video frame normalisation max|d| = " << frame_diff << "\n";
  EXPECT_LE(frame_diff, 1e-6);
  // End to end from the uint8 pixels.
  const auto got = Run(image);
  EXPECT_LE(MaxAbsDiff(got.at("forward_image.backbone_fpn2"), golden_.at("forward_image.backbone_fpn2")), kTolerance);
}

TEST_F(MicroImageEncoder, BatchedFramesAreEncodedIndependently) {
  torch::NoGradGuard no_grad;
  const torch::Tensor one = golden_.at("input.preprocessed");
  const torch::Tensor two = torch::cat({one, one.flip({3})}, 0);
  const ImageEncoderOutput batched = encoder_->forward(two);
  const ImageEncoderOutput single = encoder_->forward(one);
  const ImageEncoderOutput flipped = encoder_->forward(one.flip({3}).contiguous());
  // Different GEMM shapes round differently: float32 noise, not an interaction.
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_LE(MaxAbsDiff(batched.backbone_fpn[i][0], single.backbone_fpn[i][0]), kTolerance);
    EXPECT_LE(MaxAbsDiff(batched.backbone_fpn[i][1], flipped.backbone_fpn[i][0]), kTolerance);
    EXPECT_EQ(batched.vision_pos_enc[i].size(0), 2);
  }
}

TEST(ImageEncoder, RejectsBadInputs) {
  ImageEncoder encoder(LoadNamedConfig("micro").image_encoder);
  torch::NoGradGuard no_grad;
  EXPECT_THROW(encoder->forward(torch::zeros({1, 4, 256, 256})), Error);
  EXPECT_THROW(encoder->forward(torch::zeros({3, 256, 256})), Error);
  // 200 is not a multiple of the 8x8 window position embedding at stride 4.
  EXPECT_THROW(encoder->forward(torch::zeros({1, 3, 200, 200})), Error);
  EXPECT_THROW(PreprocessImage(torch::zeros({10, 10, 4}, torch::kUInt8), 256), Error);
  EXPECT_THROW(PreprocessImage(torch::zeros({10, 10, 3}, torch::kFloat32), 256), Error);
  EXPECT_THROW(NormalizeResizedFrame(torch::zeros({10, 12, 3}, torch::kUInt8)), Error);
}

TEST(PositionEmbeddingSine, MatchesTheFormula) {
  PositionEmbeddingSine pe(8);
  const torch::Tensor pos = pe->forward(torch::zeros({2, 1, 3, 5}));
  ASSERT_EQ(pos.sizes().vec(), (std::vector<int64_t>{2, 8, 3, 5}));
  // Channel layout: [sin(y/d0), cos(y/d0), sin(y/d2), cos(y/d2), then the same for x],
  // y = (row+1)/(H+1e-6)*2pi, d_j = 10000^(2*floor(j/2)/4).
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t c = 0; c < 5; ++c) {
      const double y = (r + 1) / (3 + 1e-6) * 2 * M_PI, x = (c + 1) / (5 + 1e-6) * 2 * M_PI;
      const double d2 = std::pow(10000.0, 2.0 / 4);
      const double expect[8] = {std::sin(y), std::cos(y), std::sin(y / d2), std::cos(y / d2),
                                std::sin(x), std::cos(x), std::sin(x / d2), std::cos(x / d2)};
      for (int ch = 0; ch < 8; ++ch) EXPECT_NEAR(pos[1][ch][r][c].item<float>(), expect[ch], 1e-5);
    }
  }
}

}  // namespace
}  // namespace litseg::sam2
