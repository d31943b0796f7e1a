// Adapters: parameter counts at the real decoder width, identity when fresh, exact
// finite-difference gradients, dropout only in training, reset, frozen base weights,
// determinism.
#include <cmath>
#include <cstdio>

#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include "lit_test_util.h"
#include "litseg/core/error.h"
#include "litseg/lit/adapter.h"
#include "litseg/lit/trainer.h"
#include "litseg/sam2/config.h"
#include "litseg/sam2/mask_decoder.h"

namespace litseg::lit {
namespace {

using test::BitEqual;

// The real decoder width: sam2.1_hiera_l (random initialisation; only shapes matter).
TEST(LitAdapterParameters, LoraAtWidth256Is35328) {
  const sam2::Sam2Config config = sam2::LoadNamedConfig("sam2.1_hiera_l");
  sam2::MaskDecoder decoder(config);
  ASSERT_EQ(decoder->transformer_dim, 256);
  const size_t base_tensors = decoder->parameters().size();
  DecoderLora lora(decoder, {});
  // 2 blocks x (self, token->image, image->token) + final token->image = 7 attentions x q,k,v.
  EXPECT_EQ(lora.projections().size(), 21u);
  int64_t counted = 0;
  for (const auto& t : lora.Parameters()) {
    EXPECT_TRUE(t.requires_grad());
    counted += t.numel();
  }
  EXPECT_EQ(counted, 35328);
  EXPECT_EQ(lora.ParameterCount(), 35328);
  // Not submodules: the decoder's own parameters are unchanged in number.
  EXPECT_EQ(decoder->parameters().size(), base_tensors);
  // Shapes of one self-attention (256 -> 256) and one cross-attention (256 -> 128) projection.
  for (const auto& [name, p] : lora.projections()) {
    if (name == "transformer.layers.0.self_attn.q_proj") {
      EXPECT_EQ(p->a.sizes(), (std::vector<int64_t>{4, 256}));
      EXPECT_EQ(p->b.sizes(), (std::vector<int64_t>{256, 4}));
    }
    if (name == "transformer.final_attn_token_to_image.v_proj") {
      EXPECT_EQ(p->a.sizes(), (std::vector<int64_t>{4, 256}));
      EXPECT_EQ(p->b.sizes(), (std::vector<int64_t>{128, 4}));
    }
  }
}

TEST(LitAdapterParameters, MemoryAdapterAtWidth256IsAbout66k) {
  const sam2::Sam2Config config = sam2::LoadNamedConfig("sam2.1_hiera_l");
  sam2::MaskDecoder decoder(config);
  AdapterConfig c;
  c.kind = AdapterKind::kMemoryAdapter;
  auto adapter = MakeAdapter(decoder, c);
  // 256*128 + 128 + 128*256 + 256
  EXPECT_EQ(adapter->ParameterCount(), 65920);
  auto* memory = dynamic_cast<MemoryAdapter*>(adapter.get());
  ASSERT_NE(memory, nullptr);
  EXPECT_EQ(memory->hidden, 128);
}

TEST(LitAdapterConfig, JsonRoundTripAndBadValues) {
  AdapterConfig c;
  c.kind = AdapterKind::kMemoryAdapter;
  c.lora.rank = 8;
  c.lora.alpha = 16;
  c.lora.adapt_k = false;
  c.seed = 77;
  const AdapterConfig back = AdapterConfigFromJson(AdapterConfigToJson(c));
  EXPECT_EQ(back.kind, c.kind);
  EXPECT_EQ(back.lora.rank, 8);
  EXPECT_EQ(back.lora.alpha, 16);
  EXPECT_FALSE(back.lora.adapt_k);
  EXPECT_EQ(back.seed, 77u);
  EXPECT_THROW(AdapterConfigFromJson("{"), Error);
  EXPECT_THROW(ParseAdapterKind("conv"), Error);

  sam2::MaskDecoder decoder(sam2::LoadNamedConfig("sam2.1_hiera_l"));
  AdapterConfig bad;
  bad.lora.rank = 0;
  EXPECT_THROW(DecoderLora(decoder, bad), Error);
  bad = {};
  bad.lora.dropout = 1.0;
  EXPECT_THROW(DecoderLora(decoder, bad), Error);
}

class LitMicroAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LITSEG_REQUIRE_SHARED("sam2/micro/weights.safetensors");
    LITSEG_REQUIRE_SHARED("data/vos/davis2016/DAVIS/JPEGImages/480p/dog/00000.jpg");
    torch::manual_seed(0);
    model_ = test::LoadMicroModel();
    inputs_ = test::DavisInputs(model_, "dog", 10);
    target_ = PrepareTarget(test::ReadDavisMask("dog", 10), model_->config.image_size);
  }
  sam2::Sam2Model model_{nullptr};
  DecoderInputs inputs_;
  torch::Tensor target_;
};

TEST_F(LitMicroAdapterTest, FreshAdapterChangesNothing) {
  for (AdapterKind kind : {AdapterKind::kDecoderLora, AdapterKind::kMemoryAdapter}) {
    TrainerOptions options;
    options.adapter.kind = kind;
    OnlineTrainer trainer(model_, options);
    const Prediction base = trainer.PredictBase(inputs_);
    const Prediction adapted = trainer.PredictWith(0, inputs_);
    EXPECT_TRUE(BitEqual(base.low_res_logits, adapted.low_res_logits)) << AdapterKindName(kind);
    EXPECT_TRUE(BitEqual(base.iou, adapted.iou));
    EXPECT_TRUE(BitEqual(base.object_score, adapted.object_score));
  }
}

TEST_F(LitMicroAdapterTest, BasePredictionMatchesTheModelsDecoder) {
  // The trainer's private decoder copy computes exactly what the model's decoder computes.
  OnlineTrainer trainer(model_, {});
  const Prediction base = trainer.PredictBase(inputs_);
  torch::NoGradGuard no_grad;
  const sam2::MaskDecoderRawOutput raw = model_->sam_mask_decoder->PredictMasks(
      inputs_.image_embed, inputs_.image_pe, inputs_.sparse, inputs_.dense, false, inputs_.high_res_features);
  torch::Tensor expected = raw.masks.narrow(1, 0, 1);
  expected = torch::where(raw.object_score_logits.gt(0).view({-1, 1, 1, 1}), expected,
                          torch::full_like(expected, -1024.0));
  EXPECT_TRUE(BitEqual(base.low_res_logits, expected));
  EXPECT_TRUE(BitEqual(base.iou, raw.iou_pred.select(1, 0)));
  // The padding-prompt inputs: two not-a-point tokens (the tracker's point plus the encoder's pad).
  EXPECT_EQ(inputs_.sparse.size(1), 2);
  EXPECT_TRUE(torch::allclose(inputs_.sparse[0][0], model_->sam_prompt_encoder->not_a_point_embed->weight[0]));
}

// Central differences in float64 against autograd for entries of A and B of several
// projections (B made non-zero first so that A has a gradient), dropout off.
TEST_F(LitMicroAdapterTest, LoraGradientsMatchFiniteDifferences) {
  sam2::Sam2Model model = test::LoadMicroModel();
  model->to(torch::kFloat64);
  TrainerOptions options;
  options.adapter.lora.dropout = 0.0;
  // Without gating the gradient exists whatever the micro model's object score says.
  options.gate_no_object = false;
  OnlineTrainer trainer(model, options);
  auto to64 = [](const DecoderInputs& in) {
    DecoderInputs out;
    out.image_embed = in.image_embed.to(torch::kFloat64);
    for (const auto& t : in.high_res_features) out.high_res_features.push_back(t.to(torch::kFloat64));
    out.sparse = in.sparse.to(torch::kFloat64);
    out.dense = in.dense.to(torch::kFloat64);
    out.image_pe = in.image_pe.to(torch::kFloat64);
    return out;
  };
  const DecoderInputs in = to64(inputs_);
  const torch::Tensor target = target_.to(torch::kFloat64);
  auto& lora = dynamic_cast<DecoderLora&>(trainer.adapter(0));
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(3);
    for (auto& [name, p] : lora.projections()) p->b.copy_(torch::randn_like(p->b) * 0.05);
  }
  for (auto& t : lora.Parameters()) t.mutable_grad() = torch::Tensor();
  trainer.ComputeLoss(0, {in}, {target}, false).total.backward();
  // Every adapted projection of all 7 attentions influences the loss.
  for (const auto& [name, p] : lora.projections()) {
    ASSERT_TRUE(p->a.grad().defined()) << name;
    EXPECT_GT(p->a.grad().abs().max().item<double>(), 0.0) << name;
    EXPECT_GT(p->b.grad().abs().max().item<double>(), 0.0) << name;
  }

  int checked = 0;
  double worst = 0.0;
  for (size_t pi = 0; pi < lora.projections().size(); pi += 5) {
    const auto& p = lora.projections()[pi].second;
    for (torch::Tensor* t : {&p->a, &p->b}) {
      const torch::Tensor grad = t->grad().clone();
      ASSERT_TRUE(grad.defined());
      for (int64_t flat : {int64_t{0}, t->numel() / 2, t->numel() - 1}) {
        const double h = 1e-6;
        double plus, minus;
        {
          torch::NoGradGuard no_grad;
          auto v = t->view({-1});
          const double original = v[flat].item<double>();
          v[flat].fill_(original + h);
          plus = trainer.ComputeLoss(0, {in}, {target}, false).total.item<double>();
          v[flat].fill_(original - h);
          minus = trainer.ComputeLoss(0, {in}, {target}, false).total.item<double>();
          v[flat].fill_(original);
        }
        const double numeric = (plus - minus) / (2 * h);
        const double analytic = grad.view({-1})[flat].item<double>();
        const double err = std::abs(numeric - analytic) / std::max(1e-6, std::abs(numeric) + std::abs(analytic));
        worst = std::max(worst, err);
        EXPECT_LT(err, 1e-5) << lora.projections()[pi].first << " [" << flat << "] numeric " << numeric
                             << " autograd " << analytic;
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 24);
  RecordProperty("worst_relative_error", std::to_string(worst));
}

TEST_F(LitMicroAdapterTest, DropoutOnlyInTraining) {
  TrainerOptions options;
  options.adapter.lora.dropout = 0.5;
  OnlineTrainer trainer(model_, options);
  auto& lora = dynamic_cast<DecoderLora&>(trainer.adapter(0));
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : lora.projections()) p->b.fill_(0.05);
  }
  const Prediction p1 = trainer.Predict(inputs_);
  const Prediction p2 = trainer.Predict(inputs_);
  EXPECT_TRUE(BitEqual(p1.low_res_logits, p2.low_res_logits));
  const double eval1 = trainer.ComputeLoss(0, {inputs_}, {target_}, false).total.item<double>();
  const double eval2 = trainer.ComputeLoss(0, {inputs_}, {target_}, false).total.item<double>();
  EXPECT_EQ(eval1, eval2);
  const double train1 = trainer.ComputeLoss(0, {inputs_}, {target_}, true).total.item<double>();
  const double train2 = trainer.ComputeLoss(0, {inputs_}, {target_}, true).total.item<double>();
  EXPECT_NE(train1, train2);  // different dropout masks
  EXPECT_NE(train1, eval1);
  // After a training-mode call the adapter is back in inference mode.
  EXPECT_TRUE(BitEqual(trainer.Predict(inputs_).low_res_logits, p1.low_res_logits));
}

TEST_F(LitMicroAdapterTest, ResetGivesBackExactlyTheBaseOutputs) {
  for (AdapterKind kind : {AdapterKind::kDecoderLora, AdapterKind::kMemoryAdapter}) {
    TrainerOptions options;
    options.adapter.kind = kind;
    options.schedule = ParseSchedule("1/1x3");
    OnlineTrainer trainer(model_, options);
    const Prediction base = trainer.PredictBase(inputs_);
    trainer.Train(inputs_, target_, 10);
    EXPECT_TRUE(trainer.trained());
    EXPECT_FALSE(BitEqual(trainer.Predict(inputs_).low_res_logits, base.low_res_logits)) << AdapterKindName(kind);
    trainer.Reset();
    EXPECT_FALSE(trainer.trained());
    EXPECT_TRUE(trainer.history().empty());
    const Prediction after = trainer.Predict(inputs_);
    EXPECT_TRUE(BitEqual(after.low_res_logits, base.low_res_logits)) << AdapterKindName(kind);
    EXPECT_TRUE(BitEqual(after.iou, base.iou));
  }
}

TEST_F(LitMicroAdapterTest, BaseWeightsStayBitIdenticalAfterTraining) {
  std::map<std::string, torch::Tensor> model_before;
  for (const auto& p : model_->named_parameters()) model_before[p.key()] = p.value().detach().clone();
  for (AdapterKind kind : {AdapterKind::kDecoderLora, AdapterKind::kMemoryAdapter}) {
    TrainerOptions options;
    options.adapter.kind = kind;
    options.schedule = ParseSchedule("1/1x4");
    OnlineTrainer trainer(model_, options);
    std::map<std::string, torch::Tensor> decoder_before;
    for (const auto& p : trainer.decoder()->named_parameters()) decoder_before[p.key()] = p.value().detach().clone();
    trainer.Train(inputs_, target_, 10);
    int heads = 0;
    for (const auto& p : trainer.decoder()->named_parameters()) {
      EXPECT_TRUE(BitEqual(p.value(), decoder_before.at(p.key()))) << p.key();
      EXPECT_FALSE(p.value().requires_grad()) << p.key();
      if (p.key().rfind("iou_prediction_head", 0) == 0 || p.key().rfind("pred_obj_score_head", 0) == 0) ++heads;
    }
    EXPECT_GT(heads, 0);  // the IoU and object-score heads are among the checked tensors
  }
  for (const auto& p : model_->named_parameters())
    EXPECT_TRUE(BitEqual(p.value(), model_before.at(p.key()))) << p.key();
}

TEST_F(LitMicroAdapterTest, SameSeedSameAdapterOnOneThread) {
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  auto run = [&](uint64_t seed) {
    TrainerOptions options;
    options.adapter.seed = seed;
    options.schedule = ParseSchedule("1/1x3");
    OnlineTrainer trainer(model_, options);
    torch::manual_seed(seed == 1 ? 99 : 5);  // the global RNG must not matter
    trainer.Train(inputs_, target_, 10);
    std::vector<torch::Tensor> out;
    for (const auto& t : trainer.adapter(0).Parameters()) out.push_back(t.detach().clone());
    return out;
  };
  const auto a = run(1);
  torch::manual_seed(12345);
  const auto b = run(1);
  const auto c = run(2);
  ASSERT_EQ(a.size(), b.size());
  bool all_equal = true, any_diff_seed = false;
  for (size_t i = 0; i < a.size(); ++i) {
    all_equal = all_equal && BitEqual(a[i], b[i]);
    any_diff_seed = any_diff_seed || !BitEqual(a[i], c[i]);
  }
  EXPECT_TRUE(all_equal);
  EXPECT_TRUE(any_diff_seed);
  torch::set_num_threads(threads);
}

// The fused CPU dropout draws the same mask as KeepMask, passes gradients through the same
// mask, advances the stream alike, and gives the same bits on one thread and on two.
TEST(LitDropoutStream, FusedApplyIsTheMaskAndItsGradient) {
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({3, 1001}, torch::kFloat64);  // not a multiple of 4
  for (torch::ScalarType type : {torch::kFloat32, torch::kFloat64}) {
    DropoutStream fused, reference;
    fused.state = reference.state = 12345;
    reference.KeepMask(10, 0.1);  // both streams one call in
    fused.Apply(torch::zeros({10}), 0.1);
    ASSERT_EQ(fused.state, reference.state);
    const torch::Tensor in = x.to(type).requires_grad_(true);
    const torch::Tensor mask = reference.KeepMask(x.numel(), 0.1).view(x.sizes()).to(type);
    const torch::Tensor out = fused.Apply(in, 0.1);
    EXPECT_EQ(fused.state, reference.state);
    EXPECT_TRUE(torch::equal(out, in.detach() * mask));
    const double dropped = mask.eq(0).to(torch::kFloat64).mean().item<double>();
    EXPECT_NEAR(dropped, 0.1, 0.02);
    const torch::Tensor g = torch::randn(x.sizes(), torch::dtype(type));
    (out * g).sum().backward();
    EXPECT_TRUE(torch::equal(in.grad(), g * mask));
  }
  const int threads = at::get_num_threads();
  auto draw = [&](int n) {
    at::set_num_threads(n);
    DropoutStream s;
    s.state = 99;
    return s.Apply(torch::ones({1 << 20}), 0.1);
  };
  const torch::Tensor one = draw(1), two = draw(2);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, two));
}

}  // namespace
}  // namespace litseg::lit
