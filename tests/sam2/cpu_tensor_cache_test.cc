#include "litseg/sam2/cpu_tensor_cache.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace litseg::sam2 {
namespace {

TEST(CpuTensorCache, ReusesLargeBlocksAndKeepsResultsExact) {
  torch::manual_seed(1);
  const torch::Tensor a = torch::randn({512, 1024});  // 2 MB, allocated before enabling
  const torch::Tensor expected = torch::mm(a, a.t());
  EnableCpuTensorCache();
  EXPECT_TRUE(CpuTensorCacheEnabled());
  const CpuTensorCacheStats before = GetCpuTensorCacheStats();
  for (int i = 0; i < 3; ++i) {
    torch::Tensor big = torch::empty({1024, 1024});  // 4 MB: cached size class
    big.fill_(static_cast<float>(i));
    EXPECT_EQ(big.sum().item<float>(), static_cast<float>(i) * 1024 * 1024);
    EXPECT_TRUE(torch::equal(torch::mm(a, a.t()), expected));
  }
  const CpuTensorCacheStats after = GetCpuTensorCacheStats();
  EXPECT_GT(after.hits, before.hits);  // the second and third 4 MB tensors reused memory
  // Code paths that use raw allocations (convolution workspaces) work as well.
  const torch::Tensor image = torch::randn({1, 3, 256, 256});
  const torch::Tensor weight = torch::randn({16, 3, 7, 7});
  EXPECT_EQ(torch::conv2d(image, weight, {}, 4, 3).sizes(), (std::vector<int64_t>{1, 16, 64, 64}));
  ReleaseCpuTensorCache();
  EXPECT_EQ(GetCpuTensorCacheStats().cached_bytes, 0);
  // Tensors from before enabling are still freed correctly at the end of the test.
}

}  // namespace
}  // namespace litseg::sam2
