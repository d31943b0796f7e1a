#include "litseg/sam2/memory_encoder.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/shared_data.h"
#include "sam2/micro_test_util.h"
#include "litseg/core/error.h"
#include "litseg/sam2/checkpoint.h"
#include "litseg/sam2/config.h"
#include "litseg/sam2/image_encoder.h"
#include "litseg/sam2/safetensors.h"

namespace litseg::sam2 {
namespace {

using litseg::test::SharedPath;
using test::Subset;
using test::ReadJson;
using test::MaxAbs;
using test::MicroConfig;

// float32 -> bfloat16 with round-to-nearest-even on the bit pattern (NaN-free inputs), as
// torch.Tensor.to(torch.bfloat16) does; returned upcast to float.
float RoundToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint32_t lsb = (bits >> 16) & 1u;
  bits = (bits + 0x7FFFu + lsb) & 0xFFFF0000u;
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

TEST(MemoryEncoderTest, ParameterNamesMatchOfficialKeys) {
  LITSEG_REQUIRE_SHARED("sam2/keys/sam2.1_hiera_l.json");
  for (const std::string name : {"sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"}) {
    SCOPED_TRACE(name);
    const Sam2Config config = LoadNamedConfig(name);
    MemoryEncoder encoder(config.memory_encoder);
    std::map<std::string, std::vector<int64_t>> expected, got;
    const nlohmann::json keys = ReadJson(SharedPath("sam2/keys/" + name + ".json"));
    for (const auto& entry : keys.at("keys")) {
      const std::string key = entry.at("key");
      if (key.rfind("memory_encoder.", 0) == 0) expected[key] = entry.at("shape").get<std::vector<int64_t>>();
    }
    for (const auto& p : encoder->named_parameters()) got["memory_encoder." + p.key()] = p.value().sizes().vec();
    for (const auto& b : encoder->named_buffers()) got["memory_encoder." + b.key()] = b.value().sizes().vec();
    EXPECT_FALSE(expected.empty());
    EXPECT_EQ(got, expected);
  }
}

TEST(MemoryEncoderTest, RejectsInconsistentConfigurations) {
  MemoryEncoderConfig config;
  config.mask_downsampler_total_stride = 12;  // not a power of 2
  EXPECT_THROW(MemoryEncoder{config}, Error);
  config = MemoryEncoderConfig();
  config.mask_downsampler_embed_dim = 128;  // cannot be added to 256-channel features
  EXPECT_THROW(MemoryEncoder{config}, Error);
}

TEST(MemoryEncoderTest, CxBlockWithoutLayerScaleHasNoGamma) {
  MemoryEncoderConfig config;
  config.fuser_layer_scale_init_value = 0;
  MemoryEncoder encoder(config);
  for (const auto& p : encoder->named_parameters()) EXPECT_EQ(p.key().find("gamma"), std::string::npos) << p.key();
}

// ---------------------------------------------------------------------------------------
// Parity with the memories the official video predictor stored in the micro golden set.

class MicroMemoryEncoder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(SharedPath("sam2/micro/golden/video.safetensors"))) return;
    config_ = new Sam2Config(MicroConfig());
    weights_ = new TensorMap(ReadSafetensors(SharedPath("sam2/micro/weights.safetensors")).tensors);
    golden_ = new TensorMap(ReadSafetensors(SharedPath("sam2/micro/golden/video.safetensors")).tensors);
    manifest_ = new nlohmann::json(ReadJson(SharedPath("sam2/micro/golden/manifest.json")));
  }
  static void TearDownTestSuite() {
    delete config_;
    delete weights_;
    delete golden_;
    delete manifest_;
    config_ = nullptr;
    weights_ = golden_ = nullptr;
    manifest_ = nullptr;
  }
  void SetUp() override {
    LITSEG_REQUIRE_SHARED("sam2/micro/golden/video.safetensors");
    encoder_ = MemoryEncoder(config_->memory_encoder);
    LoadStateDict(*encoder_, Subset(*weights_, "memory_encoder."));
    encoder_->eval();
  }

  // Raw level-2 features [1, C, H, W] of every frame that a stored memory-attention call saw
  // (its `curr` input is current_vision_feats[-1] = the frame's level-2 features, [HW, 1, C]).
  static std::map<int, torch::Tensor> FrameFeatures() {
    std::map<int, torch::Tensor> frames;
    const std::regex pattern(R"(^.*\.f(\d+)\.obj\d+\.memattn\.curr$)");
    const int64_t side = config_->image_embedding_size();
    for (const auto& [name, tensor] : *golden_) {
      std::smatch m;
      if (std::regex_match(name, m, pattern))
        frames[std::stoi(m[1])] = tensor.permute({1, 2, 0}).reshape({1, tensor.size(2), side, side});
    }
    return frames;
  }

  // One stored memory of one object to recompute.
  struct StoredMemory {
    std::string name;  // "<scenario>.<pass>.fNN"
    int frame;
    int object_index;
    bool conditioning;
  };

  // Every (pass, frame, object) of the manifest's propagation calls whose frame features are
  // known. Conditioning outputs come from user input (clicks, boxes, masks) and are encoded
  // with is_mask_from_pts = true (binarised masks); tracked outputs use the sigmoid.
  static std::vector<StoredMemory> StoredMemories(const std::map<int, torch::Tensor>& frames) {
    std::vector<StoredMemory> out;
    for (const auto& call : manifest_->at("video").at("calls")) {
      if (!call.contains("output_kind_per_frame")) continue;
      for (const auto& [frame_text, kinds] : call.at("output_kind_per_frame").items()) {
        const int frame = std::stoi(frame_text);
        char buf[16];
        std::snprintf(buf, sizeof buf, "f%02d", frame);
        const std::string name = call.at("scenario").get<std::string>() + "." + call.at("tag").get<std::string>() + "." + buf;
        if (!frames.count(frame) || !golden_->Contains(name + ".maskmem_features")) continue;
        for (size_t i = 0; i < kinds.size(); ++i)
          out.push_back({name, frame, static_cast<int>(i), kinds[i].get<std::string>() == "cond"});
      }
    }
    return out;
  }

  // The official path: low-res logits -> bilinear to S -> _encode_new_memory.
  NewMemory Encode(const torch::Tensor& features, const StoredMemory& m, bool round_to_bf16 = true) {
    const torch::Tensor low_res = golden_->At(m.name + ".pred_masks").narrow(0, m.object_index, 1);
    const torch::Tensor score = golden_->At(m.name + ".object_score_logits").narrow(0, m.object_index, 1);
    const torch::Tensor high_res = torch::nn::functional::interpolate(
        low_res, torch::nn::functional::InterpolateFuncOptions()
                     .size(std::vector<int64_t>{config_->image_size, config_->image_size})
                     .mode(torch::kBilinear)
                     .align_corners(false));
    NewMemoryOptions options = NewMemoryOptionsFrom(*config_);
    options.round_to_bf16 = round_to_bf16;
    return EncodeNewMemory(*encoder_, features, high_res, score, m.conditioning, weights_->At("no_obj_embed_spatial"),
                           options);
  }

  static Sam2Config* config_;
  static TensorMap* weights_;
  static TensorMap* golden_;
  static nlohmann::json* manifest_;
  MemoryEncoder encoder_{nullptr};
};
Sam2Config* MicroMemoryEncoder::config_ = nullptr;
TensorMap* MicroMemoryEncoder::weights_ = nullptr;
TensorMap* MicroMemoryEncoder::golden_ = nullptr;
nlohmann::json* MicroMemoryEncoder::manifest_ = nullptr;

// README acceptance for bf16 memories: 0.1 (a float32 difference can flip a bf16 rounding).
constexpr double kBf16MemoryTolerance = 0.1;

TEST_F(MicroMemoryEncoder, PositionEncodingMatchesGolden) {
  torch::NoGradGuard no_grad;
  const int64_t side = config_->image_embedding_size();
  const torch::Tensor features = torch::zeros({1, config_->memory_encoder.in_dim, side, side});
  const torch::Tensor masks = torch::zeros({1, 1, config_->image_size, config_->image_size});
  const MemoryEncoderOutput out = encoder_->forward(features, masks);
  const torch::Tensor expected = golden_->At("video.maskmem_pos_enc");
  ASSERT_EQ(out.vision_pos_enc.sizes(), expected.sizes());
  EXPECT_LE(MaxAbs(out.vision_pos_enc, expected), 1e-6);
  EXPECT_EQ(out.vision_features.sizes(), expected.sizes());
}

TEST_F(MicroMemoryEncoder, StoredMemoriesMatchGolden) {
  torch::NoGradGuard no_grad;
  const std::map<int, torch::Tensor> frames = FrameFeatures();
  ASSERT_FALSE(frames.empty()) << "no frame features (memattn.curr) in the golden set";
  const std::vector<StoredMemory> memories = StoredMemories(frames);
  int conditioning = 0, tracked = 0, absent = 0;
  int64_t elements = 0, differing = 0;
  double worst = 0, worst_excess = 0;
  for (const StoredMemory& m : memories) {
    SCOPED_TRACE(m.name + " object " + std::to_string(m.object_index));
    const NewMemory got = Encode(frames.at(m.frame), m);
    const torch::Tensor expected = golden_->At(m.name + ".maskmem_features").narrow(0, m.object_index, 1);
    ASSERT_EQ(got.features.scalar_type(), torch::kBFloat16);
    ASSERT_EQ(got.features.sizes(), expected.sizes());
    const double diff = MaxAbs(got.features, expected);
    EXPECT_LE(diff, kBf16MemoryTolerance);
    worst = std::max(worst, diff);
    // Stronger: before rounding, our float32 value must lie within half a bf16 step of the
    // stored value (up to float32 noise), i.e. differences are only rounding-boundary flips.
    const torch::Tensor ours = Encode(frames.at(m.frame), m, /*round_to_bf16=*/false).features;
    const torch::Tensor ref = expected.to(torch::kFloat32);
    const torch::Tensor half_step = torch::pow(2.0, torch::floor(torch::log2(ref.abs().clamp_min(1e-30f))) - 8);
    worst_excess = std::max(worst_excess, ((ours - ref).abs() - half_step).clamp_min(0).max().item<double>());
    elements += expected.numel();
    differing += (got.features.to(torch::kFloat32) != expected.to(torch::kFloat32)).sum().item<int64_t>();
    (m.conditioning ? conditioning : tracked) += 1;
    if (golden_->At(m.name + ".object_score_logits")[m.object_index].item<float>() <= 0) ++absent;
  }
  std::cout << "[ memenc ] " << memories.size() << " stored memories (" << conditioning << " conditioning, " << tracked
            << " tracked, " << absent << " with the object absent) from " << frames.size()
            << " frames: worst max|d| = " << worst << ", " << differing << " of " << elements
            << " bf16 values differ; float32 values beyond half a bf16 step of the stored ones by at most "
            << worst_excess << "\n";
  EXPECT_LE(worst_excess, 1e-5);  // measured 4.8e-7
  // Both mask paths (binarised and sigmoid) and the no-object embedding must be exercised.
  EXPECT_GT(conditioning, 0);
  EXPECT_GT(tracked, 0);
  EXPECT_GT(absent, 0);
  EXPECT_LT(absent, static_cast<int>(memories.size()));
}

TEST_F(MicroMemoryEncoder, FeaturesAreRoundedToNearestEvenBf16) {
  torch::NoGradGuard no_grad;
  const std::map<int, torch::Tensor> frames = FrameFeatures();
  const std::vector<StoredMemory> memories = StoredMemories(frames);
  ASSERT_FALSE(memories.empty());
  const StoredMemory& m = memories.front();
  const torch::Tensor full = Encode(frames.at(m.frame), m, /*round_to_bf16=*/false).features;
  const torch::Tensor rounded = Encode(frames.at(m.frame), m).features;
  ASSERT_EQ(full.scalar_type(), torch::kFloat32);
  const torch::Tensor flat = full.contiguous().view(-1);
  const torch::Tensor got = rounded.to(torch::kFloat32).contiguous().view(-1);
  auto f = flat.accessor<float, 1>();
  auto g = got.accessor<float, 1>();
  for (int64_t i = 0; i < flat.numel(); ++i) ASSERT_EQ(g[i], RoundToBf16(f[i])) << "element " << i << " of " << f[i];
}

TEST_F(MicroMemoryEncoder, MemoryFromImageEncoderFeaturesMatchesGolden) {
  // The whole chain for frame 0: the video predictor's normalised frame -> image encoder ->
  // level-2 features -> memory of each conditioning object.
  LITSEG_REQUIRE_SHARED("sam2/micro/golden/inputs.safetensors");
  torch::NoGradGuard no_grad;
  const TensorMap inputs = ReadSafetensors(SharedPath("sam2/micro/golden/inputs.safetensors")).tensors;
  ImageEncoder image_encoder(config_->image_encoder);
  LoadStateDict(*image_encoder, Subset(*weights_, "image_encoder."));
  image_encoder->eval();
  const torch::Tensor level2 = image_encoder->forward(inputs.At("video.images_frame0").unsqueeze(0)).vision_features;

  const std::map<int, torch::Tensor> frames = FrameFeatures();
  if (frames.count(0)) {
    const double diff = MaxAbs(level2, frames.at(0));
    std::cout << "[ memenc ] frame 0 level-2 features vs golden memattn.curr: max|d| = " << diff << "\n";
    EXPECT_LE(diff, 1e-3);
  }
  std::map<int, torch::Tensor> only_frame0{{0, level2}};
  int compared = 0;
  for (const StoredMemory& m : StoredMemories(only_frame0)) {
    SCOPED_TRACE(m.name + " object " + std::to_string(m.object_index));
    const torch::Tensor expected = golden_->At(m.name + ".maskmem_features").narrow(0, m.object_index, 1);
    EXPECT_LE(MaxAbs(Encode(level2, m).features, expected), kBf16MemoryTolerance);
    ++compared;
  }
  EXPECT_GT(compared, 0);
}

TEST_F(MicroMemoryEncoder, NonOverlapConstraintCapsLosingObjects) {
  torch::NoGradGuard no_grad;
  const std::map<int, torch::Tensor> frames = FrameFeatures();
  ASSERT_FALSE(frames.empty());
  const torch::Tensor features = frames.begin()->second.expand({2, -1, -1, -1});
  torch::manual_seed(3);
  const torch::Tensor logits = torch::randn({2, 1, config_->image_size, config_->image_size}) * 20;
  const torch::Tensor scores = torch::tensor({{1.0f}, {-1.0f}});
  // By hand: where the other object's logit is higher, cap at -10.
  const torch::Tensor other = logits.flip(0);
  const torch::Tensor capped = torch::where(logits >= other, logits, torch::clamp_max(logits, -10.0));
  NewMemoryOptions options = NewMemoryOptionsFrom(*config_);
  options.round_to_bf16 = false;
  const torch::Tensor plain = EncodeNewMemory(*encoder_, features, capped, scores, false,
                                              weights_->At("no_obj_embed_spatial"), options)
                                  .features;
  options.non_overlap_masks = true;
  const torch::Tensor constrained = EncodeNewMemory(*encoder_, features, logits, scores, false,
                                                    weights_->At("no_obj_embed_spatial"), options)
                                        .features;
  EXPECT_LT(MaxAbs(plain, constrained), 1e-5);
}

TEST_F(MicroMemoryEncoder, RejectsInconsistentInputs) {
  torch::NoGradGuard no_grad;
  const int64_t side = config_->image_embedding_size(), s = config_->image_size;
  const torch::Tensor features = torch::zeros({1, config_->memory_encoder.in_dim, side, side});
  const torch::Tensor no_obj = weights_->At("no_obj_embed_spatial");
  EXPECT_THROW(encoder_->forward(features, torch::zeros({1, 1, s / 2, s / 2})), Error);
  EXPECT_THROW(encoder_->forward(torch::zeros({1, 3, side, side}), torch::zeros({1, 1, s, s})), Error);
  EXPECT_THROW(EncodeNewMemory(*encoder_, features, torch::zeros({2, 1, s, s}), torch::ones({2, 1}), true, no_obj),
               Error);
  EXPECT_THROW(EncodeNewMemory(*encoder_, features, torch::zeros({1, 1, s, s}), torch::ones({3}), true, no_obj),
               Error);
  EXPECT_NO_THROW(EncodeNewMemory(*encoder_, features, torch::zeros({1, 1, s, s}), torch::ones({1, 1}), true, no_obj));
}

}  // namespace
}  // namespace litseg::sam2
