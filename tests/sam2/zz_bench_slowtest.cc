#include <chrono>
#include <ctime>
#include <cstdlib>
#include <iostream>
#include <gtest/gtest.h>
#include "litseg/sam2/image_encoder.h"
#include "litseg/sam2/weight_fill.h"
#include "litseg/sam2/cpu_tensor_cache.h"
namespace litseg::sam2 {
TEST(ZZBench, Encoder) {
  const char* m = std::getenv("BENCH_MODEL");
  if (!m) GTEST_SKIP();
  const int threads = std::getenv("BENCH_THREADS") ? std::atoi(std::getenv("BENCH_THREADS")) : 1;
  const int reps = std::getenv("BENCH_REPS") ? std::atoi(std::getenv("BENCH_REPS")) : 2;
  at::set_num_threads(threads);
  if (std::getenv("BENCH_CACHE")) EnableCpuTensorCache();
  auto cfg = LoadNamedConfig(m);
  ImageEncoder enc(cfg.image_encoder);
  ApplyLargeFill(*enc, "image_encoder.");
  torch::NoGradGuard ng;
  auto x = torch::randn({1, 3, cfg.image_size, cfg.image_size});
  for (int r = 0; r < reps; ++r) {
    timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    auto t0 = std::chrono::steady_clock::now();
    auto out = enc->forward(x);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu = (c1.tv_sec - c0.tv_sec) + 1e-9 * (c1.tv_nsec - c0.tv_nsec);
    std::cout << m << " threads " << at::get_num_threads() << " forward " << s << " s cpu " << cpu << " s\n";
  }
}
}
