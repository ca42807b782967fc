// The host memory cache (kernels/cpu/host_memory.h): size classes, reuse of freed large blocks without a
// new allocation, alignment, the limit, and that small blocks bypass the cache.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/host_memory.h"
#include "tensor/tensor.h"

namespace pneumo::kernels::cpu {
namespace {

TEST(HostMemory, SizeClassesAreEighthOctavesAboveOneMiB) {
  EXPECT_EQ(host_cache_round(0), 64u);
  EXPECT_EQ(host_cache_round(1), 64u);
  EXPECT_EQ(host_cache_round(65), 128u);
  EXPECT_EQ(host_cache_round((1u << 20) - 64), (1u << 20) - 64);  // below 1 MiB: 64-byte granules
  EXPECT_EQ(host_cache_round(1u << 20), 1u << 20);
  EXPECT_EQ(host_cache_round((1u << 20) + 1), (1u << 20) + (1u << 17));  // steps of 128 KiB in [1, 2) MiB
  EXPECT_EQ(host_cache_round(3u << 20), 3u << 20);
  EXPECT_EQ(host_cache_round((3u << 20) + 1), (3u << 20) + (1u << 18));  // steps of 256 KiB in [2, 4) MiB
  for (size_t b : {size_t(1) << 20, size_t(5000000), size_t(123456789)}) {
    const size_t r = host_cache_round(b);
    EXPECT_GE(r, b);
    EXPECT_LE(r, b + b / 8 + 64) << "at most 12.5 % waste";
    EXPECT_EQ(r % 64, 0u);
  }
}

TEST(HostMemory, FreedLargeBlockIsReusedAndAligned) {
  host_cache_clear();
  const size_t bytes = (size_t(3) << 20) + 12345;
  const HostCacheStats before = host_cache_stats();
  void* a = host_alloc(bytes);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  std::memset(a, 0x5A, bytes);  // writable over its whole size
  host_free(a, bytes);
  EXPECT_GE(host_cache_stats().cached_bytes, host_cache_round(bytes));
  void* b = host_alloc(bytes - 1000);  // same size class
  EXPECT_EQ(b, a) << "a freed block of the same class is handed out again";
  const HostCacheStats after = host_cache_stats();
  EXPECT_EQ(after.hits, before.hits + 1);
  EXPECT_EQ(after.misses, before.misses + 1);
  host_free(b, bytes - 1000);
  host_cache_clear();
  EXPECT_EQ(host_cache_stats().cached_bytes, 0u);
}

TEST(HostMemory, LimitBoundsTheCache) {
  host_cache_clear();
  const size_t old = host_cache_limit();
  host_cache_set_limit(size_t(4) << 20);
  void* a = host_alloc(size_t(3) << 20);
  void* b = host_alloc(size_t(3) << 20);
  host_free(a, size_t(3) << 20);
  host_free(b, size_t(3) << 20);  // would exceed 4 MiB of cached blocks: returned at once
  EXPECT_EQ(host_cache_stats().cached_bytes, size_t(3) << 20);
  host_cache_set_limit(0);
  EXPECT_EQ(host_cache_stats().cached_bytes, 0u);
  host_cache_set_limit(old);
}

// The peak of live large blocks: the high-water mark since the reset, which restarts from what is live.
TEST(HostMemory, PeakOfLiveLargeBlocksSinceTheReset) {
  const size_t mib3 = size_t(3) << 20;
  void* keep = host_alloc(mib3);
  host_cache_reset_peak();
  const size_t base = host_cache_stats().live_large_bytes;
  EXPECT_EQ(host_cache_stats().peak_live_large_bytes, base);
  void* a = host_alloc(mib3);
  void* b = host_alloc(mib3);
  host_free(a, mib3);
  host_free(b, mib3);
  void* c = host_alloc(mib3);
  EXPECT_EQ(host_cache_stats().peak_live_large_bytes, base + 2 * host_cache_round(mib3));
  host_free(c, mib3);
  host_free(keep, mib3);
  host_cache_reset_peak();
  EXPECT_EQ(host_cache_stats().peak_live_large_bytes, host_cache_stats().live_large_bytes);
}

TEST(HostMemory, SmallBlocksBypassTheCache) {
  host_cache_clear();
  const HostCacheStats before = host_cache_stats();
  void* p = host_alloc(1000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  host_free(p, 1000);
  const HostCacheStats after = host_cache_stats();
  EXPECT_EQ(after.cached_bytes, 0u);
  EXPECT_EQ(after.hits + after.misses, before.hits + before.misses);
}

TEST(HostMemory, TensorsUseTheCache) {
  host_cache_clear();
  const uint64_t hits = host_cache_stats().hits;
  { Tensor t = Tensor::empty({1, 256, 256, 16}); }  // 4 MiB, freed into the cache
  Tensor u = Tensor::zeros({1, 256, 256, 16});
  EXPECT_EQ(host_cache_stats().hits, hits + 1);
  EXPECT_EQ(u.to_vector()[12345], 0.f);  // a reused block is still initialised by zeros()
}

}  // namespace
}  // namespace pneumo::kernels::cpu
