#include "litseg/sam2/memory_attention.h"

#include <cmath>
#include <complex>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/shared_data.h"
#include "sam2/micro_test_util.h"
#include "litseg/core/error.h"
#include "litseg/sam2/checkpoint.h"
#include "litseg/sam2/config.h"
#include "litseg/sam2/rope.h"
#include "litseg/sam2/safetensors.h"

namespace litseg::sam2 {
namespace {

using litseg::test::SharedPath;
using test::Subset;
using test::ReadJson;
using test::MaxAbs;
using test::MicroConfig;

// ---------------------------------------------------------------------------------------
// RoPE maths against a direct std::complex evaluation in double precision.

// Angle of channel pair j of token n on an end_x-wide grid (compute_axial_cis, in double).
double ReferenceAngle(int64_t n, int64_t j, int64_t head_dim, int64_t end_x, double theta) {
  const int64_t quarter = head_dim / 4;
  const bool is_x = j < quarter;
  const int64_t i = is_x ? j : j - quarter;
  const double freq = 1.0 / std::pow(theta, static_cast<double>(4 * i) / static_cast<double>(head_dim));
  const double position = is_x ? static_cast<double>(n % end_x) : static_cast<double>(n / end_x);
  return position * freq;
}

TEST(RopeTest, TableMatchesComplexPolar) {
  const int64_t head_dim = 16, end_x = 5, end_y = 3;
  const double theta = 100.0;
  const RopeTable table = ComputeAxialRope(head_dim, end_x, end_y, theta);
  ASSERT_EQ(table.cos.sizes(), (std::vector<int64_t>{end_x * end_y, head_dim / 2}));
  ASSERT_EQ(table.cos.scalar_type(), torch::kFloat32);
  auto c = table.cos.accessor<float, 2>();
  auto s = table.sin.accessor<float, 2>();
  double worst = 0;
  for (int64_t n = 0; n < end_x * end_y; ++n)
    for (int64_t j = 0; j < head_dim / 2; ++j) {
      const std::complex<double> z = std::polar(1.0, ReferenceAngle(n, j, head_dim, end_x, theta));
      worst = std::max({worst, std::abs(c[n][j] - z.real()), std::abs(s[n][j] - z.imag())});
    }
  EXPECT_LT(worst, 1e-5);
}

TEST(RopeTest, RotationMatchesComplexMultiplicationWithRepeatedTable) {
  const int64_t head_dim = 8, end_x = 4, end_y = 3, tokens = end_x * end_y, repeats = 3;
  const double theta = 10000.0;
  torch::manual_seed(7);
  // [batch 2, heads 2, repeats * tokens, head_dim]: the keys of three memory frames.
  const torch::Tensor x = torch::randn({2, 2, repeats * tokens, head_dim});
  const torch::Tensor got = ApplyRope(x, ComputeAxialRope(head_dim, end_x, end_y, theta));
  ASSERT_EQ(got.sizes(), x.sizes());
  auto xa = x.accessor<float, 4>();
  auto ga = got.accessor<float, 4>();
  double worst = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t l = 0; l < repeats * tokens; ++l)
        for (int64_t j = 0; j < head_dim / 2; ++j) {
          // view_as_complex pairs adjacent channels (2j = real, 2j+1 = imaginary).
          const std::complex<double> value(xa[b][h][l][2 * j], xa[b][h][l][2 * j + 1]);
          const std::complex<double> rotated =
              value * std::polar(1.0, ReferenceAngle(l % tokens, j, head_dim, end_x, theta));
          worst = std::max({worst, std::abs(ga[b][h][l][2 * j] - rotated.real()),
                            std::abs(ga[b][h][l][2 * j + 1] - rotated.imag())});
        }
  EXPECT_LT(worst, 1e-5);
}

TEST(RopeTest, RejectsInconsistentShapes) {
  const RopeTable table = ComputeAxialRope(8, 4, 4);
  EXPECT_THROW(ApplyRope(torch::zeros({1, 17, 8}), table), Error);  // not whole copies of 16 tokens
  EXPECT_THROW(ApplyRope(torch::zeros({1, 16, 12}), table), Error);  // head dim 12 vs 8
  EXPECT_THROW(ComputeAxialRope(6, 4, 4), Error);                    // not a multiple of 4
  EXPECT_EQ(ApplyRope(torch::zeros({1, 0, 8}), table).numel(), 0);
}

// RoPEAttention against a hand-written evaluation (explicit projections, complex rotation,
// softmax in double): object-pointer keys must stay unrotated, spatial keys get the query
// table once per frame.
TEST(RoPEAttentionTest, MatchesManualEvaluationWithExcludedKeys) {
  RoPEAttentionOptions options;
  options.embedding_dim = 16;
  options.num_heads = 2;
  options.kv_in_dim = 8;
  options.rope_k_repeat = true;
  options.feat_sizes = {3, 2};
  torch::manual_seed(11);
  RoPEAttention attention(options);
  const int64_t num_q = 6, frames = 2, excluded = 3, num_k = frames * num_q + excluded;
  const torch::Tensor q = torch::randn({1, num_q, 16});
  const torch::Tensor k = torch::randn({1, num_k, 8});
  const torch::Tensor v = torch::randn({1, num_k, 8});
  torch::NoGradGuard no_grad;
  const torch::Tensor got = attention->forward(q, k, v, excluded);

  auto linear = [](const torch::nn::Linear& l, const torch::Tensor& x) {
    return torch::matmul(x.to(torch::kFloat64), l->weight.to(torch::kFloat64).t()) + l->bias.to(torch::kFloat64);
  };
  const torch::Tensor qp = linear(attention->q_proj, q)[0], kp = linear(attention->k_proj, k)[0],
                      vp = linear(attention->v_proj, v)[0];
  const int64_t head_dim = 8;
  auto rotate = [&](torch::Tensor rows, int64_t head, bool rotate_all_rows, int64_t rotated_rows) {
    torch::Tensor out = rows.narrow(1, head * head_dim, head_dim).clone();
    auto a = out.accessor<double, 2>();
    for (int64_t r = 0; r < (rotate_all_rows ? out.size(0) : rotated_rows); ++r)
      for (int64_t j = 0; j < head_dim / 2; ++j) {
        // grid 3 wide (feat_sizes[0] = end_x)
        const std::complex<double> z = std::complex<double>(a[r][2 * j], a[r][2 * j + 1]) *
                                       std::polar(1.0, ReferenceAngle(r % num_q, j, head_dim, 3, 10000.0));
        a[r][2 * j] = z.real();
        a[r][2 * j + 1] = z.imag();
      }
    return out;
  };
  std::vector<torch::Tensor> heads;
  for (int64_t h = 0; h < 2; ++h) {
    const torch::Tensor qh = rotate(qp, h, true, 0);
    const torch::Tensor kh = rotate(kp, h, false, frames * num_q);
    const torch::Tensor vh = vp.narrow(1, h * head_dim, head_dim);
    const torch::Tensor probs = torch::softmax(torch::matmul(qh, kh.t()) / std::sqrt(8.0), -1);
    heads.push_back(torch::matmul(probs, vh));
  }
  const torch::Tensor expected = linear(attention->out_proj, torch::cat(heads, 1).to(torch::kFloat32));
  EXPECT_LT(MaxAbs(got[0], expected), 1e-5);

  // Rotating all 15 keys is impossible: they are not whole 6-token frames.
  EXPECT_THROW(attention->forward(q, k, v, 0), Error);
}

TEST(RoPEAttentionTest, QueriesMustFormAGrid) {
  RoPEAttentionOptions options;
  options.embedding_dim = 8;
  options.feat_sizes = {4, 4};
  RoPEAttention attention(options);
  torch::NoGradGuard no_grad;
  EXPECT_NO_THROW(attention->forward(torch::randn({1, 16, 8}), torch::randn({1, 16, 8}), torch::randn({1, 16, 8})));
  EXPECT_NO_THROW(attention->forward(torch::randn({1, 9, 8}), torch::randn({1, 9, 8}), torch::randn({1, 9, 8})));
  EXPECT_THROW(attention->forward(torch::randn({1, 10, 8}), torch::randn({1, 10, 8}), torch::randn({1, 10, 8})), Error);
  // Without rope_k_repeat keys and queries must be equally many.
  EXPECT_THROW(attention->forward(torch::randn({1, 16, 8}), torch::randn({1, 32, 8}), torch::randn({1, 32, 8})), Error);
}

// ---------------------------------------------------------------------------------------
// Parameter names and shapes equal the official state dict for every SAM 2.1 size.

TEST(MemoryAttentionTest, ParameterNamesMatchOfficialKeys) {
  LITSEG_REQUIRE_SHARED("sam2/keys/sam2.1_hiera_l.json");
  for (const std::string name : {"sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"}) {
    SCOPED_TRACE(name);
    const Sam2Config config = LoadNamedConfig(name);
    MemoryAttention attention(config.memory_attention);
    std::map<std::string, std::vector<int64_t>> expected, got;
    const nlohmann::json keys = ReadJson(SharedPath("sam2/keys/" + name + ".json"));
    for (const auto& entry : keys.at("keys")) {
      const std::string key = entry.at("key");
      if (key.rfind("memory_attention.", 0) == 0) expected[key] = entry.at("shape").get<std::vector<int64_t>>();
    }
    for (const auto& p : attention->named_parameters()) got["memory_attention." + p.key()] = p.value().sizes().vec();
    for (const auto& b : attention->named_buffers()) got["memory_attention." + b.key()] = b.value().sizes().vec();
    EXPECT_FALSE(expected.empty());
    EXPECT_EQ(got, expected);
  }
}

// ---------------------------------------------------------------------------------------
// Parity with the official memory attention on the micro golden set: every stored call.

class MicroMemoryAttention : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(SharedPath("sam2/micro/golden/video.safetensors"))) return;
    config_ = new Sam2Config(MicroConfig());
    weights_ = new TensorMap(ReadSafetensors(SharedPath("sam2/micro/weights.safetensors")).tensors);
    golden_ = new TensorMap(ReadSafetensors(SharedPath("sam2/micro/golden/video.safetensors")).tensors);
  }
  static void TearDownTestSuite() {
    delete config_;
    delete weights_;
    delete golden_;
    config_ = nullptr;
    weights_ = golden_ = nullptr;
  }
  void SetUp() override {
    LITSEG_REQUIRE_SHARED("sam2/micro/golden/video.safetensors");
    attention_ = MemoryAttention(config_->memory_attention);
    LoadStateDict(*attention_, Subset(*weights_, "memory_attention."));
    attention_->eval();
  }

  // Golden name prefixes "<scenario>.<pass>.fNN.objK.memattn." of the stored calls.
  static std::vector<std::string> StoredCalls() {
    std::vector<std::string> calls;
    const std::string suffix = ".memattn.output";
    for (const auto& [name, tensor] : *golden_)
      if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
        calls.push_back(name.substr(0, name.size() - std::string("output").size()));
    return calls;
  }

  torch::Tensor Run(const std::string& call) {
    const int64_t ptr_tokens = golden_->At(call + "num_obj_ptr_tokens").to(torch::kLong).item<int64_t>();
    return attention_->forward(golden_->At(call + "curr"), golden_->At(call + "memory"), golden_->At("video.curr_pos"),
                               golden_->At(call + "memory_pos"), ptr_tokens);
  }

  static Sam2Config* config_;
  static TensorMap* weights_;
  static TensorMap* golden_;
  MemoryAttention attention_{nullptr};
};
Sam2Config* MicroMemoryAttention::config_ = nullptr;
TensorMap* MicroMemoryAttention::weights_ = nullptr;
TensorMap* MicroMemoryAttention::golden_ = nullptr;

// README acceptance for memory-attention outputs: 1e-3 (like the image encoder). Measured on
// the micro set: 1.1e-4 at most (|values| up to ~4); the reference and this port are each
// ~7e-5 from a float64 evaluation (see Float64EvaluationIsAsCloseToTheGoldens): float32
// rounding amplified by the deliberately sharp micro attention, not a difference in maths.
constexpr double kMemoryAttentionTolerance = 5e-4;

TEST_F(MicroMemoryAttention, MatchesEveryStoredCall) {
  torch::NoGradGuard no_grad;
  const std::vector<std::string> calls = StoredCalls();
  ASSERT_FALSE(calls.empty()) << "no memory-attention calls in the golden set";
  double worst = 0;
  for (const std::string& call : calls) {
    SCOPED_TRACE(call);
    const torch::Tensor expected = golden_->At(call + "output");
    const torch::Tensor got = Run(call);
    ASSERT_EQ(got.sizes(), expected.sizes());
    const double diff = MaxAbs(got, expected);
    std::cout << "[ memattn ] " << call << " memory " << golden_->At(call + "memory").size(0)
              << " tokens: max|d| = " << diff << " (|ref| max " << expected.abs().max().item<double>() << ")\n";
    EXPECT_LE(diff, kMemoryAttentionTolerance);
    worst = std::max(worst, diff);
  }
  std::cout << "[ memattn ] " << calls.size() << " calls, worst max|d| = " << worst << "\n";
}

TEST_F(MicroMemoryAttention, Float64EvaluationIsAsCloseToTheGoldens) {
  // The remaining float32 differences are rounding: the same module in float64 is as far
  // from the (float32) reference outputs as our float32 result, and our float32 result is
  // that far from float64 too.
  torch::NoGradGuard no_grad;
  double worst32 = 0, worst64 = 0, worst_32_64 = 0;
  std::vector<torch::Tensor> outputs32;
  for (const std::string& call : StoredCalls()) outputs32.push_back(Run(call));
  attention_->to(torch::kFloat64);
  size_t i = 0;
  for (const std::string& call : StoredCalls()) {
    const int64_t ptr_tokens = golden_->At(call + "num_obj_ptr_tokens").item<int64_t>();
    const auto f64 = [&](const std::string& name) { return golden_->At(name).to(torch::kFloat64); };
    const torch::Tensor out64 =
        attention_->forward(f64(call + "curr"), f64(call + "memory"), f64("video.curr_pos"), f64(call + "memory_pos"),
                            ptr_tokens);
    const torch::Tensor expected = golden_->At(call + "output");
    worst32 = std::max(worst32, MaxAbs(outputs32[i], expected));
    worst64 = std::max(worst64, MaxAbs(out64, expected));
    worst_32_64 = std::max(worst_32_64, MaxAbs(out64, outputs32[i]));
    ++i;
  }
  std::cout << "[ memattn ] max|ours32 - ref| = " << worst32 << ", max|ours64 - ref| = " << worst64
            << ", max|ours32 - ours64| = " << worst_32_64 << "\n";
  EXPECT_LE(worst64, kMemoryAttentionTolerance);
}

TEST_F(MicroMemoryAttention, ExcludedKeysChangeTheResult) {
  // Rotating a frame's keys or leaving them unrotated must be visibly different computations
  // (so the golden comparison above really checks which keys get RoPE). The object pointers
  // are dropped and the last spatial frame is treated once as excluded, once as rotated.
  torch::NoGradGuard no_grad;
  const std::string call = StoredCalls().back();
  const int64_t ptr_tokens = golden_->At(call + "num_obj_ptr_tokens").item<int64_t>();
  const int64_t hw = golden_->At(call + "curr").size(0);
  const int64_t spatial = golden_->At(call + "memory").size(0) - ptr_tokens;
  const torch::Tensor mem = golden_->At(call + "memory").narrow(0, 0, spatial);
  const torch::Tensor pos = golden_->At(call + "memory_pos").narrow(0, 0, spatial);
  const torch::Tensor curr = golden_->At(call + "curr"), curr_pos = golden_->At("video.curr_pos");
  const torch::Tensor excluded = attention_->forward(curr, mem, curr_pos, pos, hw);
  const torch::Tensor rotated = attention_->forward(curr, mem, curr_pos, pos, 0);
  EXPECT_GT(MaxAbs(excluded, rotated), 100 * kMemoryAttentionTolerance);
}

TEST_F(MicroMemoryAttention, SmallAttentionBlocksGiveTheSameResult) {
  torch::NoGradGuard no_grad;
  const std::string call = StoredCalls().back();
  const torch::Tensor reference = Run(call);
  for (const auto& layer : *attention_->layers) {
    auto* l = layer->as<MemoryAttentionLayerImpl>();
    l->self_attn->options.attention.max_score_elements = 1000;
    l->cross_attn_image->options.attention.max_score_elements = 1000;
  }
  // Only the summation order of the products changes (measured 1.1e-5).
  EXPECT_LT(MaxAbs(Run(call), reference), 1e-4);
}

TEST_F(MicroMemoryAttention, SupportsAutograd) {
  const std::string call = StoredCalls().front();
  const torch::Tensor curr = golden_->At(call + "curr").clone().requires_grad_(true);
  const int64_t ptr_tokens = golden_->At(call + "num_obj_ptr_tokens").item<int64_t>();
  const torch::Tensor out = attention_->forward(curr, golden_->At(call + "memory"), golden_->At("video.curr_pos"),
                                                golden_->At(call + "memory_pos"), ptr_tokens);
  out.pow(2).sum().backward();
  ASSERT_TRUE(curr.grad().defined());
  EXPECT_TRUE(torch::isfinite(curr.grad()).all().item<bool>());
  EXPECT_GT(curr.grad().abs().sum().item<double>(), 0.0);
  const auto& w = attention_->named_parameters()["layers.0.cross_attn_image.k_proj.weight"];
  ASSERT_TRUE(w.grad().defined());
  EXPECT_GT(w.grad().abs().sum().item<double>(), 0.0);
}

TEST_F(MicroMemoryAttention, RejectsInconsistentInputs) {
  torch::NoGradGuard no_grad;
  const std::string call = StoredCalls().front();
  const torch::Tensor curr = golden_->At(call + "curr"), memory = golden_->At(call + "memory"),
                      memory_pos = golden_->At(call + "memory_pos"), curr_pos = golden_->At("video.curr_pos");
  const int64_t ptr = golden_->At(call + "num_obj_ptr_tokens").item<int64_t>();
  // Wrong memory channels.
  EXPECT_THROW(attention_->forward(curr, torch::zeros({memory.size(0), 1, 7}), curr_pos, torch::Tensor(), ptr), Error);
  // More pointer tokens than memory tokens.
  EXPECT_THROW(attention_->forward(curr, memory, curr_pos, memory_pos, memory.size(0) + 1), Error);
  // Spatial memory that is not a whole number of frames.
  EXPECT_THROW(attention_->forward(curr, memory, curr_pos, memory_pos, ptr + 1), Error);
  // Batch mismatch.
  EXPECT_THROW(attention_->forward(curr, torch::cat({memory, memory}, 1), curr_pos, torch::Tensor(), ptr), Error);
}

}  // namespace
}  // namespace litseg::sam2
