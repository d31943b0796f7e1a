#include "litseg/sam2/attention.h"

#include <gtest/gtest.h>

#include <limits>

namespace litseg::sam2 {
namespace {

torch::Tensor Reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const auto qd = q.to(torch::kFloat64), kd = k.to(torch::kFloat64), vd = v.to(torch::kFloat64);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  return torch::matmul(torch::softmax(torch::matmul(qd, kd.transpose(-2, -1)) * scale, -1), vd);
}

double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

struct Case {
  std::vector<int64_t> q, k, v;
  int64_t budget;
};

TEST(Attention, BlockedMathMatchesReference) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  const std::vector<Case> cases = {
      {{64, 1, 16, 8}, {64, 1, 64, 8}, {64, 1, 64, 8}, 256 * 1024},  // many windows, q-pooled
      {{5, 3, 49, 16}, {5, 3, 49, 16}, {5, 3, 49, 16}, 3000},        // partial last group
      {{1, 2, 300, 32}, {1, 2, 257, 32}, {1, 2, 257, 24}, 1000},     // row blocks, Dv != D
      {{2, 4, 7, 8}, {2, 4, 1000, 8}, {2, 4, 1000, 8}, 999},         // one row per block
      {{3, 20, 12}, {3, 33, 12}, {3, 33, 12}, 256 * 1024},           // 3-D input
  };
  for (const Case& c : cases) {
    const auto q = torch::randn(c.q) * 2, k = torch::randn(c.k) * 2, v = torch::randn(c.v);
    AttentionOptions options;
    options.max_score_elements = c.budget;
    const torch::Tensor out = ScaledDotProductAttentionMath(q, k, v, options);
    EXPECT_EQ(out.sizes().vec(), Reference(q, k, v).sizes().vec());
    EXPECT_LT(MaxDiff(out, Reference(q, k, v)), 2e-5) << "q " << q.sizes() << " budget " << c.budget;
    EXPECT_LT(MaxDiff(ScaledDotProductAttention(q, k, v), Reference(q, k, v)), 2e-5);
  }
}

// Regression: the score buffer once came from torch::empty, and LibTorch 1.13's small-matrix
// baddbmm (7 x 7 x 8, as the micro decoder's token self-attention) reads its output even with
// beta = 0, so NaN in recycled memory reached the masks (seen as NaN losses in lit training).
TEST(Attention, NaNInRecycledMemoryDoesNotLeakIntoSmallProducts) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  const auto q = torch::randn({1, 8, 7, 8}), k = torch::randn({1, 8, 7, 8}), v = torch::randn({1, 8, 7, 8});
  const torch::Tensor expected = Reference(q, k, v);
  for (int i = 0; i < 50; ++i) {
    {
      // Freed right away: malloc hands this chunk to the next request of the same size.
      const torch::Tensor poison = torch::full({7, 7}, std::numeric_limits<float>::quiet_NaN());
    }
    const torch::Tensor out = ScaledDotProductAttentionMath(q, k, v);
    ASSERT_TRUE(torch::isfinite(out).all().item<bool>()) << "iteration " << i;
    ASSERT_LT(MaxDiff(out, expected), 2e-5);
  }
}

TEST(Attention, AcceptsNonContiguousViews) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  // [B, L, heads, D] storage viewed as [B, heads, L, D], like the decoder's head split.
  const auto q = torch::randn({2, 40, 4, 8}).transpose(1, 2);
  const auto k = torch::randn({2, 50, 4, 8}).transpose(1, 2);
  const auto v = torch::randn({2, 50, 4, 8}).transpose(1, 2);
  AttentionOptions small;
  small.max_score_elements = 100;
  EXPECT_LT(MaxDiff(ScaledDotProductAttentionMath(q, k, v, small), Reference(q, k, v)), 2e-5);
  EXPECT_LT(MaxDiff(ScaledDotProductAttention(q, k, v), Reference(q, k, v)), 2e-5);
}

TEST(Attention, GradientsFlowThroughTheMathPath) {
  torch::manual_seed(5);
  const auto q = torch::randn({1, 2, 30, 8}, torch::requires_grad());
  const auto k = torch::randn({1, 2, 20, 8}, torch::requires_grad());
  const auto v = torch::randn({1, 2, 20, 8}, torch::requires_grad());
  AttentionOptions small;
  small.max_score_elements = 200;  // forces row blocks
  ScaledDotProductAttentionMath(q, k, v, small).pow(2).sum().backward();
  const auto gq = q.grad().clone(), gk = k.grad().clone(), gv = v.grad().clone();
  q.grad().zero_();
  k.grad().zero_();
  v.grad().zero_();
  const double scale = 1.0 / std::sqrt(8.0);
  torch::matmul(torch::softmax(torch::matmul(q, k.transpose(-2, -1)) * scale, -1), v).pow(2).sum().backward();
  EXPECT_LT(MaxDiff(gq, q.grad()), 1e-5);
  EXPECT_LT(MaxDiff(gk, k.grad()), 1e-5);
  EXPECT_LT(MaxDiff(gv, v.grad()), 1e-5);
}

TEST(Attention, RejectsMismatchedShapes) {
  const auto q = torch::randn({1, 2, 3, 8});
  EXPECT_ANY_THROW(ScaledDotProductAttention(q, torch::randn({1, 2, 4, 7}), torch::randn({1, 2, 4, 8})));
  EXPECT_ANY_THROW(ScaledDotProductAttention(q, torch::randn({1, 2, 4, 8}), torch::randn({1, 2, 5, 8})));
}

}  // namespace
}  // namespace litseg::sam2

namespace litseg::sam2 {
namespace {

// Heads interleaved per token on input and output, as the Hiera blocks use it.
TEST(Attention, IntoWritesStridedOutput) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(6);
  const int64_t n = 3, len = 20, heads = 4, hd = 8, c = heads * hd;
  const auto qkv = torch::randn({n, len, 3, c});
  auto split = [&](const torch::Tensor& t) { return t.view({n, t.size(1), heads, hd}).transpose(1, 2); };
  const auto q = split(qkv.select(2, 0)), k = split(qkv.select(2, 1)), v = split(qkv.select(2, 2));
  for (int64_t budget : {int64_t{256} * 1024, int64_t{50}}) {
    torch::Tensor out = torch::full({n, len, c}, 7.0f);
    torch::Tensor out_heads = split(out);
    AttentionOptions options;
    options.max_score_elements = budget;
    ScaledDotProductAttentionInto(q, k, v, out_heads, options);
    EXPECT_LT(MaxDiff(out_heads, Reference(q, k, v)), 2e-5) << "budget " << budget;
  }
  torch::Tensor wrong = torch::empty({n, heads, len, hd + 1});
  EXPECT_ANY_THROW(ScaledDotProductAttentionInto(q, k, v, wrong));
}

}  // namespace
}  // namespace litseg::sam2
