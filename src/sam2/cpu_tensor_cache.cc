#include "litseg/sam2/cpu_tensor_cache.h"

#include <atomic>
#include <map>
#include <mutex>

#include <c10/core/Allocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/version.h>

namespace litseg::sam2 {
namespace {

constexpr size_t kMinCachedBytes = size_t{1} << 20;
constexpr size_t kGranule = size_t{64} << 10;

// LibTorch 2.3 made Allocator::allocate non-const and added copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define LITSEG_ALLOCATOR_CONST
#define LITSEG_ALLOCATOR_HAS_COPY_DATA 1
#else
#define LITSEG_ALLOCATOR_CONST const
#define LITSEG_ALLOCATOR_HAS_COPY_DATA 0
#endif

// Every pointer handed out is its own deleter context (LibTorch's raw_allocate and
// raw_deallocate require that), so the sizes of large blocks live in `in_use_`.
class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t nbytes) LITSEG_ALLOCATOR_CONST override {
    void* ptr = nullptr;
    if (nbytes < kMinCachedBytes) {
      ptr = c10::alloc_cpu(nbytes);
    } else {
      const size_t size = (nbytes + kGranule - 1) / kGranule * kGranule;
      ptr = TakeOrAllocate(size);
    }
    return {ptr, ptr, &CachingCpuAllocator::Free, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &CachingCpuAllocator::Free; }

#if LITSEG_ALLOCATOR_HAS_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif

  void SetLimit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
  }

  void Release() {
    std::multimap<size_t, void*> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks.swap(free_);
      cached_ = 0;
    }
    for (auto& item : blocks) c10::free_cpu(item.second);
  }

  CpuTensorCacheStats Stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {static_cast<int64_t>(cached_), hits_, misses_};
  }

  static void Free(void* ptr);

 private:
  // Reuses a cached block at least `size` and at most 1/8 larger (no big block for a
  // small need), else allocates.
  void* TakeOrAllocate(size_t size) const {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.lower_bound(size);
      if (it != free_.end() && it->first <= size + size / 8) {
        void* ptr = it->second;
        in_use_.emplace(ptr, it->first);
        cached_ -= it->first;
        free_.erase(it);
        ++hits_;
        return ptr;
      }
      ++misses_;
    }
    void* ptr = c10::alloc_cpu(size);
    std::lock_guard<std::mutex> lock(mutex_);
    in_use_.emplace(ptr, size);
    return ptr;
  }

  void Return(void* ptr) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = in_use_.find(ptr);
      if (it != in_use_.end()) {
        const size_t size = it->second;
        in_use_.erase(it);
        if (cached_ + size <= limit_) {
          free_.emplace(size, ptr);
          cached_ += size;
          return;
        }
      }
    }
    c10::free_cpu(ptr);  // small, over the limit, or allocated before caching
  }

  mutable std::mutex mutex_;
  mutable std::multimap<size_t, void*> free_;
  mutable std::map<void*, size_t> in_use_;
  mutable size_t cached_ = 0;
  mutable int64_t hits_ = 0, misses_ = 0;
  size_t limit_ = 0;
};

// Never destroyed: tensors may be freed during static destruction.
CachingCpuAllocator& Instance() {
  static auto* allocator = new CachingCpuAllocator();
  return *allocator;
}

void CachingCpuAllocator::Free(void* ptr) {
  if (ptr) Instance().Return(ptr);
}

std::once_flag g_installed;
std::atomic<bool> g_enabled{false};

}  // namespace

void EnableCpuTensorCache(size_t max_cached_bytes) {
  Instance().SetLimit(max_cached_bytes);
  std::call_once(g_installed, [] {
    // Priority 1 wins over LibTorch's default CPU allocator (priority 0).
    c10::SetAllocator(c10::DeviceType::CPU, &Instance(), /*priority=*/1);
    g_enabled = true;
  });
}

bool CpuTensorCacheEnabled() { return g_enabled; }

void ReleaseCpuTensorCache() { Instance().Release(); }

CpuTensorCacheStats GetCpuTensorCacheStats() { return Instance().Stats(); }

}  // namespace litseg::sam2
