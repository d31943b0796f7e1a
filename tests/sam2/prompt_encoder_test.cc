// Prompt encoder: parity with the official SAM2ImagePredictor calls of the micro golden set
// (sparse/dense embeddings, dense PE, the predictors' point conventions), the label rules,
// the box path, bad inputs and the official state-dict layout of the full-size configs.
#include "litseg/sam2/prompt_encoder.h"

#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/shared_data.h"
#include "sam2/micro_test_util.h"
#include "litseg/core/error.h"
#include "litseg/sam2/checkpoint.h"
#include "litseg/sam2/config.h"
#include "litseg/sam2/safetensors.h"

namespace litseg::sam2 {
namespace {

using litseg::test::SharedPath;
using test::Subset;
using test::ReadJson;

constexpr const char* kPrefix = "sam_prompt_encoder.";

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return 1e30;
  if (a.numel() == 0) return 0;
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// Every parameter and buffer name with its shape.
std::map<std::string, std::vector<int64_t>> StateShapes(const torch::nn::Module& module) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.value().sizes().vec();
  for (const auto& b : module.named_buffers()) out[b.key()] = b.value().sizes().vec();
  return out;
}

class MicroPromptEncoder : public ::testing::Test {
 protected:
  void SetUp() override {
    LITSEG_REQUIRE_SHARED("sam2/micro/golden/image_predictor.safetensors");
    LITSEG_REQUIRE_SHARED("sam2/micro/weights.safetensors");
    config_ = LoadNamedConfig("micro");
    encoder_ = PromptEncoder(config_);
    const TensorMap weights = ReadSafetensors(SharedPath("sam2/micro/weights.safetensors")).tensors;
    report_ = LoadStateDict(*encoder_, Subset(weights, kPrefix));  // strict: every key, every shape
    encoder_->eval();
    golden_ = ReadSafetensors(SharedPath("sam2/micro/golden/image_predictor.safetensors")).tensors;
    manifest_ = ReadJson(SharedPath("sam2/micro/golden/manifest.json"));
  }

  Sam2Config config_;
  PromptEncoder encoder_{nullptr};
  LoadReport report_;
  TensorMap golden_;
  nlohmann::json manifest_;
};

TEST_F(MicroPromptEncoder, LoadsEveryOfficialTensor) {
  EXPECT_TRUE(report_.missing.empty());
  EXPECT_TRUE(report_.unexpected.empty());
  EXPECT_EQ(report_.loaded_tensors, 17);  // 16 parameters + the Gaussian matrix buffer
}

TEST_F(MicroPromptEncoder, SparseAndDenseEmbeddingsMatchTheReference) {
  torch::NoGradGuard no_grad;
  const auto& calls = manifest_.at("image_predictor_calls");
  ASSERT_EQ(calls.size(), 6u);
  double worst_sparse = 0, worst_dense = 0;
  for (const auto& call : calls) {
    const std::string tag = call.at("tag");
    SCOPED_TRACE(tag);
    const torch::Tensor coords = golden_.At(tag + ".prompt_coords");
    const torch::Tensor labels = golden_.At(tag + ".prompt_labels");
    const torch::Tensor* mask_input = golden_.Find(tag + ".mask_input");
    const PromptEmbeddings got = encoder_->forward(coords, labels, {}, mask_input ? *mask_input : torch::Tensor());
    // One padding token is always appended.
    EXPECT_EQ(got.sparse.size(1), coords.size(1) + 1);
    const double sparse = MaxAbsDiff(got.sparse, golden_.At(tag + ".sparse_embeddings"));
    std::cout << "  " << tag << " sparse max|d| = " << sparse;
    EXPECT_LE(sparse, 1e-5);
    worst_sparse = std::max(worst_sparse, sparse);
    if (const torch::Tensor* dense_ref = golden_.Find(tag + ".dense_embeddings")) {
      const double dense = MaxAbsDiff(got.dense, *dense_ref);
      std::cout << ", dense (mask input) max|d| = " << dense;
      EXPECT_LE(dense, 1e-5);
      worst_dense = std::max(worst_dense, dense);
    } else {
      // No mask: the learned no-mask embedding everywhere.
      const torch::Tensor expect = encoder_->no_mask_embed->weight.view({1, -1, 1, 1}).expand_as(got.dense);
      EXPECT_EQ(got.dense.size(0), coords.size(0));
      EXPECT_TRUE(torch::equal(got.dense, expect));
    }
    std::cout << "\n";
  }
  RecordProperty("sparse_max_abs_diff", std::to_string(worst_sparse));
  RecordProperty("dense_max_abs_diff", std::to_string(worst_dense));
}

TEST_F(MicroPromptEncoder, DensePositionEncodingMatchesTheReference) {
  torch::NoGradGuard no_grad;
  const torch::Tensor pe = encoder_->GetDensePe();
  const double diff = MaxAbsDiff(pe, golden_.At("dense_pe"));
  std::cout << "dense PE max|d| = " << diff << "\n";
  EXPECT_LE(diff, 1e-5);
}

TEST_F(MicroPromptEncoder, DensePositionEncodingCacheFollowsTheWeights) {
  torch::NoGradGuard no_grad;
  const torch::Tensor first = encoder_->GetDensePe().clone();
  EXPECT_TRUE(torch::equal(encoder_->GetDensePe(), first));  // served from the cache
  // Changing the Gaussian matrix in place (as a checkpoint load does) must invalidate it.
  torch::Tensor& gaussian = encoder_->pe_layer->positional_encoding_gaussian_matrix;
  const torch::Tensor saved = gaussian.clone();
  gaussian.mul_(2.0);
  const torch::Tensor changed = encoder_->GetDensePe();
  EXPECT_FALSE(torch::equal(changed, first));
  EXPECT_TRUE(torch::equal(changed, encoder_->pe_layer->forward(encoder_->embedding_h, encoder_->embedding_w).unsqueeze(0)));
  gaussian.copy_(saved);
  EXPECT_TRUE(torch::equal(encoder_->GetDensePe(), first));
}

TEST_F(MicroPromptEncoder, PointPromptHelperReproducesThePredictorInputs) {
  const auto& size = manifest_.at("input_frames").at("size_WH");
  const int width = size.at(0), height = size.at(1);
  const int model_size = manifest_.at("image_size_S");
  ASSERT_EQ(model_size, config_.image_size);
  for (const auto& call : manifest_.at("image_predictor_calls")) {
    const std::string tag = call.at("tag");
    SCOPED_TRACE(tag);
    const auto& args = call.at("args");
    std::vector<PromptPoint> clicks;
    if (args.contains("point_coords")) {
      for (size_t i = 0; i < args.at("point_coords").size(); ++i)
        clicks.push_back({args["point_coords"][i][0].get<float>(), args["point_coords"][i][1].get<float>(),
                          args["point_labels"][i].get<int>()});
    }
    std::vector<std::optional<PromptBox>> boxes;
    if (!args.contains("box")) {
      boxes.push_back(std::nullopt);
    } else {
      const auto& box = args.at("box");
      const bool batched = box.at(0).is_array();
      for (size_t i = 0; i < (batched ? box.size() : 1); ++i) {
        const auto& b = batched ? box[i] : box;
        boxes.push_back(PromptBox{b[0].get<float>(), b[1].get<float>(), b[2].get<float>(), b[3].get<float>()});
      }
    }
    std::vector<PointPrompt> prompts;
    for (const auto& box : boxes) prompts.push_back(MakePointPrompt(clicks, box, width, height, model_size));
    const PointPrompt prompt = StackPointPrompts(prompts);
    const torch::Tensor& coords_ref = golden_.At(tag + ".prompt_coords");
    ASSERT_EQ(prompt.coords.sizes(), coords_ref.sizes());
    // Same float32 operations as the reference: bit-identical.
    EXPECT_TRUE(torch::equal(prompt.coords, coords_ref)) << MaxAbsDiff(prompt.coords, coords_ref);
    EXPECT_TRUE(torch::equal(prompt.labels, golden_.At(tag + ".prompt_labels")));
    // And the embeddings of the helper's prompt are the reference's.
    torch::NoGradGuard no_grad;
    const PromptEmbeddings got = encoder_->Encode(prompt);
    EXPECT_LE(MaxAbsDiff(got.sparse, golden_.At(tag + ".sparse_embeddings")), 1e-5);
  }
}

TEST_F(MicroPromptEncoder, LabelsSelectTheLearnedEmbeddings) {
  torch::NoGradGuard no_grad;
  const torch::Tensor coords = torch::tensor({10.f, 20.f, 100.f, 50.f, 30.f, 200.f, 250.f, 3.f, 7.f, 7.f}).view({1, 5, 2});
  const torch::Tensor labels = torch::tensor({0, 1, 2, 3, -1}, torch::kInt32).view({1, 5});
  const torch::Tensor sparse = encoder_->forward(coords, labels, {}, {}).sparse;
  ASSERT_EQ(sparse.sizes().vec(), (std::vector<int64_t>{1, 6, 64}));
  // Clicks and corners: PE of the pixel centre plus the label's embedding.
  const torch::Tensor pe = encoder_->pe_layer->ForwardWithCoords(coords + 0.5, 256, 256);
  for (int i = 0; i < 4; ++i) {
    const torch::Tensor expect = pe[0][i] + encoder_->point_embeddings->ptr<torch::nn::EmbeddingImpl>(i)->weight[0];
    EXPECT_LE(MaxAbsDiff(sparse[0][i], expect), 1e-6) << "label " << i;
  }
  // A -1 point and the appended padding carry no position: exactly not_a_point_embed.
  EXPECT_TRUE(torch::equal(sparse[0][4], encoder_->not_a_point_embed->weight[0]));
  EXPECT_TRUE(torch::equal(sparse[0][5], encoder_->not_a_point_embed->weight[0]));
  // The PE itself: sin/cos of 2 pi (2c - 1) G, c = (p + 0.5) / S.
  const torch::Tensor g = encoder_->pe_layer->positional_encoding_gaussian_matrix.to(torch::kFloat64);
  const double cx = (10.0 + 0.5) / 256 * 2 - 1, cy = (20.0 + 0.5) / 256 * 2 - 1;
  for (int64_t j = 0; j < 32; j += 7) {
    const double arg = 2 * M_PI * (cx * g[0][j].item<double>() + cy * g[1][j].item<double>());
    EXPECT_NEAR(pe[0][0][j].item<float>(), std::sin(arg), 1e-5);
    EXPECT_NEAR(pe[0][0][32 + j].item<float>(), std::cos(arg), 1e-5);
  }
}

TEST_F(MicroPromptEncoder, BoxPathEqualsCornerPointsWithoutPadding) {
  torch::NoGradGuard no_grad;
  const torch::Tensor boxes = torch::tensor({120.f, 57.f, 226.f, 241.f, 3.f, 4.f, 90.f, 80.f}).view({2, 4});
  const PromptEmbeddings from_boxes = encoder_->forward({}, {}, boxes, {});
  ASSERT_EQ(from_boxes.sparse.sizes().vec(), (std::vector<int64_t>{2, 2, 64}));
  const torch::Tensor corner_labels = torch::tensor({2, 3, 2, 3}, torch::kInt32).view({2, 2});
  const PromptEmbeddings from_points = encoder_->forward(boxes.view({2, 2, 2}), corner_labels, {}, {});
  ASSERT_EQ(from_points.sparse.size(1), 3);  // padding appended without boxes
  EXPECT_LE(MaxAbsDiff(from_boxes.sparse, from_points.sparse.narrow(1, 0, 2)), 1e-6);
  // Points together with boxes: no padding, box tokens after the points.
  const torch::Tensor click = torch::tensor({40.f, 40.f, 50.f, 60.f}).view({2, 1, 2});
  const torch::Tensor click_label = torch::ones({2, 1}, torch::kInt32);
  const PromptEmbeddings both = encoder_->forward(click, click_label, boxes, {});
  ASSERT_EQ(both.sparse.size(1), 3);
  EXPECT_TRUE(torch::equal(both.sparse.narrow(1, 1, 2), from_boxes.sparse));
  // Nothing at all: no sparse tokens, batch 1.
  const PromptEmbeddings none = encoder_->forward({}, {}, {}, {});
  EXPECT_EQ(none.sparse.sizes().vec(), (std::vector<int64_t>{1, 0, 64}));
  EXPECT_EQ(none.dense.sizes().vec(), (std::vector<int64_t>{1, 64, 16, 16}));
}

TEST(PromptEncoder, RejectsBadInputs) {
  const Sam2Config config = LoadNamedConfig("micro");
  PromptEncoder encoder(config);
  torch::NoGradGuard no_grad;
  const torch::Tensor pts = torch::zeros({1, 2, 2});
  const torch::Tensor lbl = torch::ones({1, 2}, torch::kInt32);
  EXPECT_THROW(encoder->forward(pts, {}, {}, {}), Error);
  EXPECT_THROW(encoder->forward(torch::zeros({1, 2, 3}), lbl, {}, {}), Error);
  EXPECT_THROW(encoder->forward(pts, torch::ones({1, 3}, torch::kInt32), {}, {}), Error);
  EXPECT_THROW(encoder->forward(pts, torch::full({1, 2}, 4, torch::kInt32), {}, {}), Error);
  EXPECT_THROW(encoder->forward(pts, torch::ones({1, 2}), {}, {}), Error);  // float labels
  EXPECT_THROW(encoder->forward(pts, lbl, torch::zeros({1, 3}), {}), Error);
  EXPECT_THROW(encoder->forward(pts, lbl, {}, torch::zeros({1, 1, 32, 32})), Error);
  EXPECT_THROW(encoder->forward(pts, lbl, {}, torch::zeros({2, 1, 64, 64})), Error);
  EXPECT_NO_THROW(encoder->forward(pts, lbl, {}, torch::zeros({1, 1, 64, 64})));
  EXPECT_THROW(MakePointPrompt({}, std::nullopt, 320, 180, 256), Error);
  EXPECT_THROW(MakePointPrompt({{1.f, 2.f, 2}}, std::nullopt, 320, 180, 256), Error);
  EXPECT_THROW(MakePointPrompt({{1.f, 2.f, 1}}, std::nullopt, 0, 180, 256), Error);
  EXPECT_THROW(MakePointPrompt({{NAN, 2.f, 1}}, std::nullopt, 320, 180, 256), Error);
  const PointPrompt one = MakePointPrompt({{1.f, 2.f, 1}}, std::nullopt, 320, 180, 256);
  const PointPrompt two = MakePointPrompt({{1.f, 2.f, 1}, {3.f, 4.f, 0}}, std::nullopt, 320, 180, 256);
  EXPECT_THROW(StackPointPrompts({one, two}), Error);
  EXPECT_THROW(StackPointPrompts({}), Error);
}

// The module's state dict is the official one (names, shapes, parameter/buffer) for the
// full-size configs.
TEST(PromptEncoder, StateDictMatchesTheOfficialKeys) {
  for (const std::string name : {"sam2.1_hiera_t", "sam2.1_hiera_l"}) {
    SCOPED_TRACE(name);
    const std::string keys_file = "sam2/keys/" + name + ".json";
    if (!std::filesystem::exists(SharedPath(keys_file))) GTEST_SKIP() << "reference data not available: " << keys_file;
    const nlohmann::json keys = ReadJson(SharedPath(keys_file));
    std::map<std::string, std::vector<int64_t>> expected;
    std::set<std::string> buffers;
    for (const auto& entry : keys.at("keys")) {
      const std::string key = entry.at("key");
      if (key.rfind(kPrefix, 0) != 0) continue;
      expected[key.substr(std::string(kPrefix).size())] = entry.at("shape").get<std::vector<int64_t>>();
      if (entry.at("kind") == "buffer") buffers.insert(key.substr(std::string(kPrefix).size()));
    }
    PromptEncoder encoder(LoadNamedConfig(name));
    EXPECT_EQ(StateShapes(*encoder), expected);
    std::set<std::string> our_buffers;
    for (const auto& b : encoder->named_buffers()) our_buffers.insert(b.key());
    EXPECT_EQ(our_buffers, buffers);
  }
}

}  // namespace
}  // namespace litseg::sam2
