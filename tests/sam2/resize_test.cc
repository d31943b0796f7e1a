// ResizeBilinear against LibTorch's own interpolate (bilinear, align_corners=False): values,
// gradients, shapes, and independence from the thread count.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "litseg/core/error.h"
#include "litseg/sam2/resize.h"

namespace litseg::sam2 {
namespace {
namespace F = torch::nn::functional;

torch::Tensor Reference(const torch::Tensor& x, int64_t height, int64_t width) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{height, width})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

struct Case {
  int64_t batch, channels, h, w, height, width;
};

class ResizeBilinearCases : public ::testing::TestWithParam<Case> {};

TEST_P(ResizeBilinearCases, MatchesInterpolateInValueAndGradient) {
  const Case c = GetParam();
  for (torch::ScalarType type : {torch::kFloat32, torch::kFloat64}) {
    torch::manual_seed(3);
    const torch::Tensor x = torch::randn({c.batch, c.channels, c.h, c.w}, torch::dtype(type)) * 10;
    const torch::Tensor g = torch::randn({c.batch, c.channels, c.height, c.width}, torch::dtype(type));
    const torch::Tensor ours_in = x.clone().requires_grad_(true), ref_in = x.clone().requires_grad_(true);
    const torch::Tensor ours = ResizeBilinear(ours_in, c.height, c.width);
    const torch::Tensor ref = Reference(ref_in, c.height, c.width);
    ASSERT_EQ(ours.sizes(), ref.sizes());
    const double tol = type == torch::kFloat32 ? 1e-5 : 1e-12;
    EXPECT_LE((ours - ref).abs().max().item<double>(), tol) << "values, " << torch::toString(type);
    (ours * g).sum().backward();
    (ref * g).sum().backward();
    EXPECT_LE((ours_in.grad() - ref_in.grad()).abs().max().item<double>(), tol * 10) << "gradients";
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, ResizeBilinearCases,
                         ::testing::Values(Case{1, 1, 256, 256, 1024, 1024},  // SAM 2 logits -> image size
                                           Case{2, 3, 64, 48, 720, 1280},     // to a video frame, both axes
                                           Case{1, 2, 37, 53, 19, 100},       // down one axis, up the other
                                           Case{1, 1, 16, 16, 16, 16},        // same size: a copy
                                           Case{1, 1, 1, 5, 3, 1},            // single row / column
                                           Case{3, 1, 7, 9, 8, 10}));          // just above the input

TEST(ResizeBilinear, TheSameBitsOnOneThreadAndOnTwo) {
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({2, 1, 64, 64});
  const torch::Tensor g = torch::randn({2, 1, 300, 260});
  const int threads = at::get_num_threads();
  auto run = [&](int n) {
    at::set_num_threads(n);
    const torch::Tensor in = x.clone().requires_grad_(true);
    const torch::Tensor y = ResizeBilinear(in, 300, 260);
    (y * g).sum().backward();
    return std::make_pair(y.detach(), in.grad());
  };
  const auto one = run(1), two = run(2);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one.first, two.first));
  EXPECT_TRUE(torch::equal(one.second, two.second));
}

TEST(ResizeBilinear, KeepsLeadingDimensionsAndRejectsBadSizes) {
  EXPECT_EQ(ResizeBilinear(torch::zeros({4, 6}), 8, 12).sizes(), (std::vector<int64_t>{8, 12}));
  EXPECT_EQ(ResizeBilinear(torch::zeros({3, 4, 6}), 2, 3).sizes(), (std::vector<int64_t>{3, 2, 3}));
  // Other types take LibTorch's kernel and give the same shapes.
  EXPECT_EQ(ResizeBilinear(torch::zeros({3, 4, 6}, torch::kBFloat16), 2, 3).sizes(), (std::vector<int64_t>{3, 2, 3}));
  EXPECT_THROW(ResizeBilinear(torch::zeros({4}), 2, 2), Error);
  EXPECT_THROW(ResizeBilinear(torch::zeros({4, 4}), 0, 2), Error);
  EXPECT_THROW(ResizeBilinear(torch::Tensor(), 2, 2), Error);
}

}  // namespace
}  // namespace litseg::sam2
