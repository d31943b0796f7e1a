// Mask decoder and two-way transformer: parity with the six official SAM2ImagePredictor
// calls of the micro golden set (raw outputs of all 4 mask tokens, IoUs, object scores, the
// selected low-res logits and every discrete decision), the high-resolution projections,
// the LoRA adapter hook, gradient flow, and the official state-dict layout.
#include "litseg/sam2/mask_decoder.h"

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
#include "litseg/sam2/prompt_encoder.h"
#include "litseg/sam2/safetensors.h"

namespace litseg::sam2 {
namespace {

using litseg::test::SharedPath;
using test::Subset;
using test::ReadJson;

// README acceptance for the image predictor: logits <= 1e-3, IoUs <= 1e-4.
constexpr double kLogitTolerance = 1e-3;
constexpr double kIouTolerance = 1e-4;

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return 1e30;
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// A LoRA-style adapter: delta = scale * (x A^T) B^T.
struct LowRankAdapter : ProjectionAdapter {
  LowRankAdapter(int64_t in, int64_t out, int64_t rank, double b_scale, bool trainable, uint64_t seed) {
    torch::manual_seed(seed);
    a = (torch::randn({rank, in}) * 0.3).set_requires_grad(trainable);
    b = (torch::randn({out, rank}) * b_scale).set_requires_grad(trainable);
  }
  torch::Tensor Delta(const torch::Tensor& x) override { return torch::matmul(torch::matmul(x, a.t()), b.t()); }
  torch::Tensor a, b;
};

// A decoder's state: names, shapes and a checksum of every tensor.
std::map<std::string, std::pair<std::vector<int64_t>, double>> Fingerprint(const torch::nn::Module& module) {
  std::map<std::string, std::pair<std::vector<int64_t>, double>> out;
  torch::NoGradGuard no_grad;
  for (const auto& p : module.named_parameters())
    out[p.key()] = {p.value().sizes().vec(), p.value().to(torch::kFloat64).sum().item<double>()};
  for (const auto& b : module.named_buffers())
    out[b.key()] = {b.value().sizes().vec(), b.value().to(torch::kFloat64).sum().item<double>()};
  return out;
}

class MicroMaskDecoder : public ::testing::Test {
 protected:
  void SetUp() override {
    LITSEG_REQUIRE_SHARED("sam2/micro/golden/image_predictor.safetensors");
    LITSEG_REQUIRE_SHARED("sam2/micro/golden/image_encoder.safetensors");
    LITSEG_REQUIRE_SHARED("sam2/micro/weights.safetensors");
    config_ = LoadNamedConfig("micro");
    const TensorMap weights = ReadSafetensors(SharedPath("sam2/micro/weights.safetensors")).tensors;
    prompt_encoder_ = PromptEncoder(config_);
    LoadStateDict(*prompt_encoder_, Subset(weights, "sam_prompt_encoder."));
    decoder_ = MaskDecoder(config_);
    const LoadReport report = LoadStateDict(*decoder_, Subset(weights, "sam_mask_decoder."));
    ASSERT_TRUE(report.missing.empty() && report.unexpected.empty());
    prompt_encoder_->eval();
    decoder_->eval();
    golden_ = ReadSafetensors(SharedPath("sam2/micro/golden/image_predictor.safetensors")).tensors;
    encoder_golden_ = ReadSafetensors(SharedPath("sam2/micro/golden/image_encoder.safetensors")).tensors;
    manifest_ = ReadJson(SharedPath("sam2/micro/golden/manifest.json"));
    image_embed_ = encoder_golden_.At("predictor.image_embed");
    high_res_ = {encoder_golden_.At("forward_image.backbone_fpn0"), encoder_golden_.At("forward_image.backbone_fpn1")};
  }

  // The decoder call of one predictor call, from the stored prompt-encoder outputs.
  MaskDecoderOutput RunStored(const std::string& tag, bool multimask) {
    const torch::Tensor& sparse = golden_.At(tag + ".sparse_embeddings");
    const torch::Tensor* mask_input = golden_.Find(tag + ".mask_input");
    const PromptEmbeddings prompts = prompt_encoder_->forward(
        golden_.At(tag + ".prompt_coords"), golden_.At(tag + ".prompt_labels"), {}, mask_input ? *mask_input : torch::Tensor());
    return decoder_->forward(image_embed_, golden_.At("dense_pe"), sparse, prompts.dense, multimask,
                             /*repeat_image=*/sparse.size(0) > 1, high_res_);
  }

  Sam2Config config_;
  PromptEncoder prompt_encoder_{nullptr};
  MaskDecoder decoder_{nullptr};
  TensorMap golden_, encoder_golden_;
  nlohmann::json manifest_;
  torch::Tensor image_embed_;
  std::vector<torch::Tensor> high_res_;
};

TEST_F(MicroMaskDecoder, HighResProjectionsAreForwardImagesBackboneFpn) {
  torch::NoGradGuard no_grad;
  const std::vector<torch::Tensor> projected =
      decoder_->ProjectHighResFeatures(encoder_golden_.At("neck.fpn0"), encoder_golden_.At("neck.fpn1"));
  const double d0 = MaxAbsDiff(projected[0], high_res_[0]), d1 = MaxAbsDiff(projected[1], high_res_[1]);
  std::cout << "conv_s0 max|d| = " << d0 << ", conv_s1 max|d| = " << d1 << "\n";
  EXPECT_LE(d0, 1e-5);
  EXPECT_LE(d1, 1e-5);
}

TEST_F(MicroMaskDecoder, EveryPredictorCallMatchesTheReference) {
  torch::NoGradGuard no_grad;
  double worst_logits = 0, worst_iou = 0, worst_tokens = 0, worst_obj = 0;
  for (const auto& call : manifest_.at("image_predictor_calls")) {
    const std::string tag = call.at("tag");
    SCOPED_TRACE(tag);
    const bool multimask = call.at("args").at("multimask_output");
    const MaskDecoderOutput out = RunStored(tag, multimask);

    // Raw outputs of all four tokens.
    const double raw_masks = MaxAbsDiff(out.raw.masks, golden_.At(tag + ".decoder_all_masks"));
    const double raw_ious = MaxAbsDiff(out.raw.iou_pred, golden_.At(tag + ".decoder_all_ious"));
    const double tokens = MaxAbsDiff(out.raw.mask_tokens_out, golden_.At(tag + ".decoder_mask_tokens_out"));
    const double obj = MaxAbsDiff(out.object_score_logits, golden_.At(tag + ".object_score_logits"));
    // Selected outputs as predict() returns them (batch dim squeezed for one prompt).
    const torch::Tensor& low_res_ref = golden_.At(tag + ".low_res_masks");
    const torch::Tensor& iou_ref = golden_.At(tag + ".iou_predictions");
    const torch::Tensor low_res = out.masks.clamp(-32.0, 32.0).reshape(low_res_ref.sizes());
    const double sel_masks = MaxAbsDiff(low_res, low_res_ref);
    const double sel_ious = MaxAbsDiff(out.iou_pred.reshape(iou_ref.sizes()), iou_ref);
    std::cout << "  " << tag << ": all-token logits " << raw_masks << ", all IoUs " << raw_ious << ", tokens "
              << tokens << ", object score " << obj << ", selected logits " << sel_masks << ", selected IoUs "
              << sel_ious << "\n";
    EXPECT_LE(raw_masks, kLogitTolerance);
    EXPECT_LE(sel_masks, kLogitTolerance);
    EXPECT_LE(raw_ious, kIouTolerance);
    EXPECT_LE(sel_ious, kIouTolerance);
    EXPECT_LE(tokens, 1e-4);
    EXPECT_LE(obj, 1e-4);
    worst_logits = std::max({worst_logits, raw_masks, sel_masks});
    worst_iou = std::max({worst_iou, raw_ious, sel_ious});
    worst_tokens = std::max(worst_tokens, tokens);
    worst_obj = std::max(worst_obj, obj);

    // Discrete decisions.
    const int64_t batch = out.raw.masks.size(0);
    const torch::Tensor ref_all_ious = golden_.At(tag + ".decoder_all_ious");
    EXPECT_TRUE(torch::equal(out.best_multimask_index, ref_all_ious.narrow(1, 1, 3).argmax(-1)));
    const auto& objects = call.at("object_score_logits");
    for (int64_t b = 0; b < batch; ++b)
      EXPECT_EQ(out.object_score_logits[b][0].item<float>() > 0, objects.at(b).get<double>() > 0);
    const auto& fallback = call.at("dynamic_fallback_to_multimask");
    if (multimask) {
      EXPECT_TRUE(fallback.is_null());
      EXPECT_FALSE(out.used_multimask_fallback.defined());
      EXPECT_EQ(out.masks.size(1), 3);
      EXPECT_EQ(out.sam_tokens_out.size(1), 3);
      EXPECT_TRUE(torch::equal(out.iou_pred.argmax(-1), iou_ref.reshape({batch, 3}).argmax(-1)));
    } else {
      ASSERT_TRUE(out.used_multimask_fallback.defined());
      ASSERT_EQ(static_cast<int64_t>(fallback.size()), batch);
      const auto& stability = call.at("singlemask_token0_stability");
      for (int64_t b = 0; b < batch; ++b) {
        EXPECT_EQ(out.used_multimask_fallback[b].item<bool>(), fallback.at(b).get<bool>());
        EXPECT_NEAR(out.stability_scores[b].item<double>(), stability.at(b).get<double>(), 1e-6);
      }
      EXPECT_EQ(out.sam_tokens_out.size(1), 1);
      EXPECT_TRUE(torch::equal(out.sam_tokens_out, out.raw.mask_tokens_out.narrow(1, 0, 1)));
    }
  }
  std::cout << "micro mask decoder worst max|d|: logits " << worst_logits << ", IoUs " << worst_iou
            << ", mask tokens " << worst_tokens << ", object scores " << worst_obj << "\n";
  RecordProperty("logits_max_abs_diff", std::to_string(worst_logits));
  RecordProperty("iou_max_abs_diff", std::to_string(worst_iou));
}

// From the predictor's arguments to its outputs with only our code: point helper, prompt
// encoder, dense PE, conv_s0/conv_s1 and the decoder (only the image features are stored).
TEST_F(MicroMaskDecoder, EndToEndFromPromptsMatchesThePredictor) {
  torch::NoGradGuard no_grad;
  const auto& size = manifest_.at("input_frames").at("size_WH");
  const int width = size.at(0), height = size.at(1);
  const std::vector<torch::Tensor> high_res =
      decoder_->ProjectHighResFeatures(encoder_golden_.At("neck.fpn0"), encoder_golden_.At("neck.fpn1"));
  const torch::Tensor image_embed = encoder_golden_.At("forward_image.backbone_fpn2") +
                                    ReadSafetensors(SharedPath("sam2/micro/weights.safetensors"))
                                        .tensors.At("no_mem_embed")
                                        .view({1, -1, 1, 1});
  for (const auto& call : manifest_.at("image_predictor_calls")) {
    const std::string tag = call.at("tag");
    SCOPED_TRACE(tag);
    const auto& args = call.at("args");
    std::vector<PromptPoint> clicks;
    if (args.contains("point_coords"))
      for (size_t i = 0; i < args["point_coords"].size(); ++i)
        clicks.push_back({args["point_coords"][i][0].get<float>(), args["point_coords"][i][1].get<float>(),
                          args["point_labels"][i].get<int>()});
    std::vector<PointPrompt> prompts;
    if (!args.contains("box")) {
      prompts.push_back(MakePointPrompt(clicks, std::nullopt, width, height, config_.image_size));
    } else if (args["box"][0].is_array()) {
      for (const auto& b : args["box"])
        prompts.push_back(MakePointPrompt(clicks, PromptBox{b[0].get<float>(), b[1].get<float>(), b[2].get<float>(), b[3].get<float>()}, width, height, config_.image_size));
    } else {
      const auto& b = args["box"];
      prompts.push_back(MakePointPrompt(clicks, PromptBox{b[0].get<float>(), b[1].get<float>(), b[2].get<float>(), b[3].get<float>()}, width, height, config_.image_size));
    }
    const PointPrompt prompt = StackPointPrompts(prompts);
    const torch::Tensor* mask_input = golden_.Find(tag + ".mask_input");
    const PromptEmbeddings e = prompt_encoder_->Encode(prompt, mask_input ? *mask_input : torch::Tensor());
    const bool multimask = args.at("multimask_output");
    const MaskDecoderOutput out = decoder_->forward(image_embed, prompt_encoder_->GetDensePe(), e.sparse, e.dense,
                                                    multimask, prompt.coords.size(0) > 1, high_res);
    const torch::Tensor& low_res_ref = golden_.At(tag + ".low_res_masks");
    const torch::Tensor& iou_ref = golden_.At(tag + ".iou_predictions");
    const double logits = MaxAbsDiff(out.masks.clamp(-32.0, 32.0).reshape(low_res_ref.sizes()), low_res_ref);
    const double ious = MaxAbsDiff(out.iou_pred.reshape(iou_ref.sizes()), iou_ref);
    std::cout << "  " << tag << " end to end: low-res logits max|d| = " << logits << ", IoUs " << ious << "\n";
    EXPECT_LE(logits, kLogitTolerance);
    EXPECT_LE(ious, kIouTolerance);
  }
  // p4 fed p1's best low-res mask back: that choice is the argmax of p1's IoUs.
  EXPECT_EQ(golden_.At("p1_point_multimask.iou_predictions").argmax().item<int64_t>(),
            manifest_.at("image_predictor_p1_best_index").get<int64_t>());
}

TEST_F(MicroMaskDecoder, NamedAttentionsCoverEveryAttention) {
  const auto attentions = decoder_->NamedAttentions();
  std::vector<std::string> names;
  for (const auto& [name, attention] : attentions) names.push_back(name);
  const std::vector<std::string> expected = {
      "transformer.layers.0.self_attn", "transformer.layers.0.cross_attn_token_to_image",
      "transformer.layers.0.cross_attn_image_to_token", "transformer.layers.1.self_attn",
      "transformer.layers.1.cross_attn_token_to_image", "transformer.layers.1.cross_attn_image_to_token",
      "transformer.final_attn_token_to_image"};
  EXPECT_EQ(names, expected);
  // Each is the registered submodule of that name, and they are all the attentions there are.
  const auto params = decoder_->named_parameters();
  for (const auto& [name, attention] : attentions) {
    SCOPED_TRACE(name);
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      const torch::Tensor* registered = params.find(name + "." + proj + ".weight");
      ASSERT_NE(registered, nullptr);
      const torch::Tensor& own = std::string(proj) == "q_proj"   ? attention->q_proj->weight
                                 : std::string(proj) == "k_proj" ? attention->k_proj->weight
                                 : std::string(proj) == "v_proj" ? attention->v_proj->weight
                                                                 : attention->out_proj->weight;
      EXPECT_TRUE(registered->is_same(own));
    }
  }
  int q_proj_count = 0;
  for (const auto& p : params)
    if (p.key().find(".q_proj.weight") != std::string::npos) ++q_proj_count;
  EXPECT_EQ(q_proj_count, static_cast<int>(expected.size()));
}

TEST_F(MicroMaskDecoder, AdaptersChangeOutputsWithoutTouchingTheBaseModel) {
  torch::NoGradGuard no_grad;
  const std::string tag = "p5_box_plus_neg_point";
  const auto before = Fingerprint(*decoder_);
  const size_t parameter_tensors = decoder_->parameters().size();
  const MaskDecoderOutput base = RunStored(tag, /*multimask=*/true);

  // Zero deltas (B = 0) on every q, k and v: bit-identical outputs.
  uint64_t seed = 1;
  for (auto& [name, attention] : decoder_->NamedAttentions())
    for (Projection p : {Projection::kQ, Projection::kK, Projection::kV})
      attention->SetAdapter(p, std::make_shared<LowRankAdapter>(attention->projection(p)->options.in_features(),
                                                                attention->projection(p)->options.out_features(), 4,
                                                                0.0, false, seed++));
  const MaskDecoderOutput zero = RunStored(tag, true);
  EXPECT_TRUE(torch::equal(zero.raw.masks, base.raw.masks));
  EXPECT_TRUE(torch::equal(zero.raw.iou_pred, base.raw.iou_pred));

  // A non-zero delta on one projection changes the outputs.
  auto& target = decoder_->transformer->blocks[1]->cross_attn_token_to_image;
  target->SetAdapter(Projection::kV, std::make_shared<LowRankAdapter>(64, 32, 4, 0.5, false, 99));
  const MaskDecoderOutput changed = RunStored(tag, true);
  const double change = MaxAbsDiff(changed.raw.masks, base.raw.masks);
  std::cout << "non-zero adapter changes logits by up to " << change << "\n";
  EXPECT_GT(change, 1e-2);
  EXPECT_GT(MaxAbsDiff(changed.raw.iou_pred, base.raw.iou_pred), 1e-5);

  // Adapters are not part of the model: same parameters, same values, same state dict.
  EXPECT_EQ(decoder_->parameters().size(), parameter_tensors);
  EXPECT_EQ(Fingerprint(*decoder_), before);

  // A delta of the wrong shape is an error, not a silent broadcast.
  target->SetAdapter(Projection::kQ, std::make_shared<LowRankAdapter>(64, 16, 4, 0.5, false, 7));
  EXPECT_THROW(RunStored(tag, true), Error);

  for (auto& [name, attention] : decoder_->NamedAttentions()) attention->ClearAdapters();
  const MaskDecoderOutput cleared = RunStored(tag, true);
  EXPECT_TRUE(torch::equal(cleared.raw.masks, base.raw.masks));
}

TEST_F(MicroMaskDecoder, GradientsReachTheWeightsAndTheAdapters) {
  decoder_->train();
  auto adapter = std::make_shared<LowRankAdapter>(64, 32, 4, 0.1, /*trainable=*/true, 5);
  decoder_->transformer->blocks[0]->cross_attn_token_to_image->SetAdapter(Projection::kQ, adapter);
  const std::string tag = "p2_pos_neg_single";
  const MaskDecoderOutput out = decoder_->forward(image_embed_, golden_.At("dense_pe"), golden_.At(tag + ".sparse_embeddings"),
                                                  prompt_encoder_->no_mask_embed->weight.view({1, -1, 1, 1}).expand({1, -1, 16, 16}),
                                                  /*multimask_output=*/false, false, high_res_);
  // Training mode: single-mask output is token 0, no stability fallback (as in the reference).
  EXPECT_FALSE(out.used_multimask_fallback.defined());
  EXPECT_TRUE(torch::equal(out.masks, out.raw.masks.narrow(1, 0, 1)));
  ASSERT_TRUE(out.masks.requires_grad());
  const torch::Tensor loss = torch::sigmoid(out.masks).mean() + out.iou_pred.sum() + out.object_score_logits.sum();
  loss.backward();
  const auto params = decoder_->named_parameters();
  for (const char* name : {"transformer.layers.0.self_attn.q_proj.weight",
                           "transformer.layers.0.cross_attn_token_to_image.q_proj.weight",
                           "transformer.final_attn_token_to_image.v_proj.weight", "output_upscaling.0.weight",
                           "output_hypernetworks_mlps.0.layers.0.weight", "iou_prediction_head.layers.2.bias",
                           "pred_obj_score_head.layers.0.weight", "mask_tokens.weight"}) {
    SCOPED_TRACE(name);
    const torch::Tensor& grad = params.find(name)->grad();
    ASSERT_TRUE(grad.defined());
    EXPECT_GT(grad.abs().sum().item<double>(), 0.0);
  }
  for (const torch::Tensor* t : {&adapter->a, &adapter->b}) {
    ASSERT_TRUE(t->grad().defined());
    EXPECT_GT(t->grad().abs().sum().item<double>(), 0.0);
  }
  decoder_->zero_grad();
  decoder_->eval();
}

TEST(MaskDecoder, StabilityScoreCountsThresholdCrossings) {
  MaskDecoder decoder(LoadNamedConfig("micro"));
  // delta 0.05: above +delta: {0.1, 0.06}; above -delta: {0.1, 0.06, 0.0, -0.04}.
  const torch::Tensor logits = torch::tensor({0.1f, 0.06f, 0.0f, -0.04f, -0.06f, -3.f}).view({1, 1, 2, 3});
  EXPECT_NEAR(decoder->StabilityScores(logits).item<float>(), 2.0 / 4.0, 1e-7);
  // Nothing above -delta: defined as fully stable.
  EXPECT_EQ(decoder->StabilityScores(torch::full({2, 1, 4, 4}, -1.f)).sizes().vec(), (std::vector<int64_t>{2, 1}));
  EXPECT_TRUE(torch::equal(decoder->StabilityScores(torch::full({2, 1, 4, 4}, -1.f)), torch::ones({2, 1})));
}

TEST(MaskDecoder, SingleMaskFallsBackToTheBestMultimaskTokenWhenUnstable) {
  MaskDecoder decoder(LoadNamedConfig("micro"));
  decoder->eval();
  MaskDecoderRawOutput raw;
  // Prompt 0: token 0 stable (all clearly positive). Prompt 1: token 0 unstable.
  raw.masks = torch::zeros({2, 4, 4, 4});
  raw.masks[0][0].fill_(5.0);
  raw.masks[1][0].fill_(0.01);
  for (int t = 1; t < 4; ++t) raw.masks.select(1, t).fill_(static_cast<float>(t));
  raw.iou_pred = torch::tensor({0.9f, 0.1f, 0.7f, 0.3f, 0.9f, 0.2f, 0.3f, 0.8f}).view({2, 4});
  raw.mask_tokens_out = torch::randn({2, 4, 64});
  raw.object_score_logits = torch::zeros({2, 1});
  const MaskDecoderOutput single = decoder->SelectOutputs(raw, false);
  EXPECT_FALSE(single.used_multimask_fallback[0].item<bool>());
  EXPECT_TRUE(single.used_multimask_fallback[1].item<bool>());
  EXPECT_TRUE(torch::equal(single.masks[0][0], raw.masks[0][0]));
  EXPECT_TRUE(torch::equal(single.masks[1][0], raw.masks[1][3]));  // best IoU 0.8 = token 3
  EXPECT_FLOAT_EQ(single.iou_pred[0][0].item<float>(), 0.9f);
  EXPECT_FLOAT_EQ(single.iou_pred[1][0].item<float>(), 0.8f);
  EXPECT_TRUE(torch::equal(single.sam_tokens_out, raw.mask_tokens_out.narrow(1, 0, 1)));  // pointer: token 0
  EXPECT_EQ(single.best_multimask_index[0].item<int64_t>(), 1);
  EXPECT_EQ(single.best_multimask_index[1].item<int64_t>(), 2);
  const MaskDecoderOutput multi = decoder->SelectOutputs(raw, true);
  EXPECT_TRUE(torch::equal(multi.masks, raw.masks.narrow(1, 1, 3)));
  EXPECT_TRUE(torch::equal(multi.sam_tokens_out, raw.mask_tokens_out.narrow(1, 1, 3)));
}

TEST(MaskDecoder, RejectsBadInputs) {
  MaskDecoder decoder(LoadNamedConfig("micro"));
  torch::NoGradGuard no_grad;
  const torch::Tensor image = torch::zeros({1, 64, 16, 16}), pe = torch::zeros({1, 64, 16, 16});
  const torch::Tensor sparse = torch::zeros({1, 2, 64}), dense = torch::zeros({1, 64, 16, 16});
  const std::vector<torch::Tensor> high_res = {torch::zeros({1, 8, 64, 64}), torch::zeros({1, 16, 32, 32})};
  EXPECT_NO_THROW(decoder->forward(image, pe, sparse, dense, true, false, high_res));
  EXPECT_THROW(decoder->forward(image, pe, sparse, dense, true, false, {}), Error);
  EXPECT_THROW(decoder->forward(image, pe, sparse, dense, true, false, {high_res[1], high_res[0]}), Error);
  EXPECT_THROW(decoder->forward(image, pe, torch::zeros({1, 2, 32}), dense, true, false, high_res), Error);
  EXPECT_THROW(decoder->forward(image, pe, torch::zeros({2, 2, 64}), dense, true, false, high_res), Error);
  EXPECT_THROW(decoder->forward(torch::zeros({2, 64, 16, 16}), pe, torch::zeros({2, 2, 64}), dense, true, true, high_res),
               Error);
  EXPECT_THROW(decoder->forward(image, torch::zeros({1, 64, 8, 8}), sparse, dense, true, false, high_res), Error);
  EXPECT_THROW(decoder->ProjectHighResFeatures(torch::zeros({1, 32, 64, 64}), torch::zeros({1, 64, 32, 32})), Error);
  // Several prompts on one image (repeat_image) with shared high-res features.
  const MaskDecoderOutput batched = decoder->forward(image, pe, torch::zeros({3, 2, 64}), torch::zeros({3, 64, 16, 16}),
                                                     false, true, high_res);
  EXPECT_EQ(batched.masks.sizes().vec(), (std::vector<int64_t>{3, 1, 64, 64}));
}

TEST(MaskDecoder, StateDictMatchesTheOfficialKeys) {
  for (const std::string name : {"sam2.1_hiera_t", "sam2.1_hiera_l"}) {
    SCOPED_TRACE(name);
    const std::string keys_file = "sam2/keys/" + name + ".json";
    if (!std::filesystem::exists(SharedPath(keys_file))) GTEST_SKIP() << "reference data not available: " << keys_file;
    const nlohmann::json keys = ReadJson(SharedPath(keys_file));
    const std::string prefix = "sam_mask_decoder.";
    std::map<std::string, std::vector<int64_t>> expected, ours;
    for (const auto& entry : keys.at("keys")) {
      const std::string key = entry.at("key");
      if (key.rfind(prefix, 0) == 0) expected[key.substr(prefix.size())] = entry.at("shape").get<std::vector<int64_t>>();
    }
    MaskDecoder decoder(LoadNamedConfig(name));
    for (const auto& p : decoder->named_parameters()) ours[p.key()] = p.value().sizes().vec();
    EXPECT_TRUE(decoder->named_buffers().is_empty());
    EXPECT_EQ(ours, expected);
  }
}

}  // namespace
}  // namespace litseg::sam2
