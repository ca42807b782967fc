// Host memory cache (see host_memory.h).
#include "kernels/cpu/host_memory.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "kernels/check.h"

namespace pneumo::kernels::cpu {
namespace {

constexpr size_t kLarge = size_t(1) << 20;

size_t limit_from_env() {
  const char* v = std::getenv("PNEUMO_HOST_CACHE_MB");
  if (!v || !*v) return size_t(2048) << 20;
  char* end = nullptr;
  const long long mb = std::strtoll(v, &end, 10);
  PNEUMO_CHECK(end && *end == '\0' && mb >= 0, "PNEUMO_HOST_CACHE_MB must be a number of MiB >= 0, got '", v, "'");
  return static_cast<size_t>(mb) << 20;
}

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_blocks;  // size class -> blocks
  size_t cached = 0, live_bytes = 0, peak_live_bytes = 0, limit = limit_from_env();
  uint64_t hits = 0, misses = 0;

  void release_all_locked() {
    for (auto& kv : free_blocks)
      for (void* p : kv.second) std::free(p);
    free_blocks.clear();
    cached = 0;
  }
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may be freed during static destruction
  return *c;
}

void* aligned(size_t bytes) {
  void* p = std::aligned_alloc(64, bytes);
  PNEUMO_CHECK(p != nullptr, "CPU out of memory: asked for ", bytes, " bytes");
  return p;
}

}  // namespace

size_t host_cache_round(size_t bytes) {
  size_t r = (bytes + 63) / 64 * 64;
  if (r == 0) r = 64;
  if (r < kLarge) return r;
  size_t octave = kLarge;  // largest power of two <= r
  while (octave <= r / 2) octave *= 2;
  const size_t step = octave / 8;
  return (r + step - 1) / step * step;
}

void* host_alloc(size_t bytes) {
  const size_t r = host_cache_round(bytes);
  if (r < kLarge) return aligned(r);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(r);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached -= r;
      c.live_bytes += r;
      c.peak_live_bytes = std::max(c.peak_live_bytes, c.live_bytes);
      ++c.hits;
      return p;
    }
    ++c.misses;
  }
  void* p = std::aligned_alloc(64, r);
  if (!p) {  // out of memory: give the cached blocks back first, then try once more
    host_cache_clear();
    p = aligned(r);
  }
  std::lock_guard<std::mutex> lock(c.mu);
  c.live_bytes += r;
  c.peak_live_bytes = std::max(c.peak_live_bytes, c.live_bytes);
  return p;
}

void host_free(void* p, size_t bytes) {
  if (!p) return;
  const size_t r = host_cache_round(bytes);
  if (r >= kLarge) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    c.live_bytes -= r;
    if (c.cached + r <= c.limit) {
      c.free_blocks[r].push_back(p);
      c.cached += r;
      return;
    }
  }
  std::free(p);
}

HostCacheStats host_cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  HostCacheStats s;
  s.cached_bytes = c.cached;
  s.live_large_bytes = c.live_bytes;
  s.peak_live_large_bytes = c.peak_live_bytes;
  s.hits = c.hits;
  s.misses = c.misses;
  return s;
}

void host_cache_reset_peak() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.peak_live_bytes = c.live_bytes;
}

void host_cache_clear() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.release_all_locked();
}

void host_cache_set_limit(size_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.limit = bytes;
  if (c.cached > c.limit) c.release_all_locked();
}

size_t host_cache_limit() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.limit;
}

}  // namespace pneumo::kernels::cpu
