// FrameCache: LRU budget, read-ahead on the worker thread, concurrent use.
#include <atomic>
#include <filesystem>
#include <chrono>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/video/frame_cache.h"
#include "video/video_test_util.h"

namespace litseg {
namespace {
using test::SameMat;

SynthParams CacheClip() {
  SynthParams p;
  p.width = 320;
  p.height = 200;  // 192,000 bytes per RGB frame
  p.frames = 120;
  return p;
}

bool WaitFor(const std::function<bool()>& condition) {
  for (int i = 0; i < 500; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

TEST(FrameCache, StaysUnderBudgetAndEvictsLeastRecentlyUsed) {
  const SynthParams p = CacheClip();
  FrameCacheOptions options;
  options.limit_mb = 2;  // ten frames
  options.read_ahead = 0;
  FrameCache cache(MakeSyntheticSource(p), options);
  SyntheticClip reference(p);
  for (int k = 0; k < 30; ++k) {
    ASSERT_TRUE(SameMat(cache.Get(k), reference.Render(k).rgb)) << k;
    EXPECT_LE(cache.bytes(), options.limit_mb * 1024 * 1024);
  }
  EXPECT_EQ(cache.frames_cached(), 10u);
  EXPECT_TRUE(cache.Contains(29));
  EXPECT_TRUE(cache.Contains(20));
  EXPECT_FALSE(cache.Contains(19));
  cache.Get(20);  // now the most recent: survives the next insertion, 21 does not
  cache.Get(40);
  EXPECT_TRUE(cache.Contains(20));
  EXPECT_FALSE(cache.Contains(21));
  const FrameCache::Stats stats = cache.stats();
  EXPECT_EQ(stats.misses, 31u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.evicted, 21u);
  EXPECT_EQ(stats.prefetched, 0u);
  EXPECT_THROW(cache.Get(120), Error);
  EXPECT_THROW(cache.Get(-1), Error);
}

TEST(FrameCache, ReadsAheadOnTheWorker) {
  const SynthParams p = CacheClip();
  FrameCacheOptions options;
  options.limit_mb = 4;
  options.read_ahead = 6;
  FrameCache cache(MakeSyntheticSource(p), options);
  SyntheticClip reference(p);
  cache.Get(80);
  EXPECT_TRUE(WaitFor([&] { return cache.Contains(86); })) << "frames after 80 were not prefetched";
  EXPECT_FALSE(cache.Contains(87));
  EXPECT_GE(cache.stats().prefetched, 6u);
  const uint64_t misses = cache.stats().misses;
  for (int k = 81; k <= 86; ++k) ASSERT_TRUE(SameMat(cache.Get(k), reference.Render(k).rgb)) << k;
  EXPECT_EQ(cache.stats().misses, misses) << "prefetched frames must be hits";
  // Stepping forward keeps the window ahead filled, within the budget.
  for (int k = 0; k < 60; ++k) {
    ASSERT_TRUE(SameMat(cache.Get(k), reference.Render(k).rgb)) << k;
    EXPECT_LE(cache.bytes(), options.limit_mb * 1024 * 1024);
  }
  EXPECT_TRUE(WaitFor([&] { return cache.Contains(65); }));
  // Near the end the window stops at the last frame.
  cache.Get(118);
  EXPECT_TRUE(WaitFor([&] { return cache.Contains(119); }));
}

TEST(FrameCache, ConcurrentReadersGetTheRightFrames) {
  const SynthParams p = CacheClip();
  FrameCacheOptions options;
  options.limit_mb = 3;
  options.read_ahead = 4;
  FrameCache cache(MakeSyntheticSource(p), options);
  SyntheticClip reference(p);
  std::vector<uint64_t> hashes;
  for (int k = 0; k < p.frames; ++k) hashes.push_back(test::HashFrame(reference.Render(k).rgb));
  std::atomic<int> wrong{0};
  auto reader = [&](unsigned seed) {
    std::mt19937 rng(seed);
    for (int i = 0; i < 60; ++i) {
      const int k = static_cast<int>(rng() % p.frames);
      if (test::HashFrame(cache.Get(k)) != hashes[k]) ++wrong;
    }
  };
  std::thread a(reader, 1), b(reader, 2);
  reader(3);
  a.join();
  b.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(cache.bytes(), options.limit_mb * 1024 * 1024);
}

TEST(FrameCache, OverARealVideoFile) {
  const auto dir = test::TempDir("cache_file");
  const std::string path = (dir / "clip.mp4").string();
  const SynthParams p = test::SmallClip(40);
  Mp4WriterOptions options;
  options.gop_size = 10;
  ASSERT_TRUE(test::EncodeClip(p, path, options));
  auto direct = OpenVideoSource(path);
  const std::vector<uint64_t> hashes = test::SequentialHashes(*direct, p.frames);
  FrameCache cache(OpenVideoSource(path), {});
  for (int k : {30, 31, 5, 39, 0, 31, 17}) EXPECT_EQ(test::HashFrame(cache.Get(k)), hashes[k]) << k;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace litseg
