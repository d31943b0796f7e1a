// Optional caching of large CPU tensor allocations for repeated inference.
//
//   litseg::sam2::EnableCpuTensorCache();   // once, e.g. at program start
//   ... run the image encoder / tracker many times ...
//   litseg::sam2::ReleaseCpuTensorCache();  // hand cached memory back (optional)
//
// Why: a 1024x1024 forward pass allocates and frees dozens of 25-150 MB activations. glibc
// serves such sizes with fresh mmap()s, so every pass pays page faults and kernel zeroing
// of every page (~10% of the image encoder's time here). Installed as LibTorch's CPU
// allocator (process wide), this keeps freed blocks >= 1 MB and hands them out again.
// Smaller requests go straight to LibTorch's own CPU allocation.
//
// Thread-safety: all functions and the allocator itself are thread-safe. Enabling is
// idempotent; tensors allocated before enabling keep their original deleter.
#pragma once

#include <cstddef>
#include <cstdint>

namespace litseg::sam2 {

struct CpuTensorCacheStats {
  int64_t cached_bytes = 0;  // held for reuse right now
  int64_t hits = 0;          // allocations served from the cache
  int64_t misses = 0;        // large allocations that needed new memory
};

// max_cached_bytes bounds the memory kept for reuse (not the memory in use).
void EnableCpuTensorCache(size_t max_cached_bytes = size_t{2} << 30);
bool CpuTensorCacheEnabled();
void ReleaseCpuTensorCache();
CpuTensorCacheStats GetCpuTensorCacheStats();

}  // namespace litseg::sam2
