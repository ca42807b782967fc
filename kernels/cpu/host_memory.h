// Host memory for tensors and kernel scratch: 64-byte aligned, uninitialised. Blocks of 1 MiB and more are
// kept in a cache when freed (size classes of 1/8 octave) and handed out again, because a fresh large block
// from the C library is a fresh mmap: every page faults on first touch and is zeroed by the kernel, which
// cost about 40 % of a CPU training step of unet_se50 at 256x256 (measured). Smaller blocks go straight to
// the C library. The cache holds at most host_cache_limit() bytes of free blocks (PNEUMO_HOST_CACHE_MB,
// default 2048); beyond that freed blocks are returned at once. Thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pneumo::kernels::cpu {

void* host_alloc(size_t bytes);         // throws pneumo::Error naming the size when memory runs out
void host_free(void* p, size_t bytes);  // `bytes` as given to host_alloc; nullptr is fine

struct HostCacheStats {
  size_t cached_bytes = 0;     // free blocks held for reuse
  size_t live_large_bytes = 0;  // large blocks in use
  size_t peak_live_large_bytes = 0;  // the most live_large_bytes since the last host_cache_reset_peak()
  uint64_t hits = 0, misses = 0;
};
HostCacheStats host_cache_stats();
void host_cache_reset_peak();  // the peak restarts from the bytes live now
void host_cache_clear();                  // returns every cached block to the C library
void host_cache_set_limit(size_t bytes);  // 0 disables caching (frees the cache)
size_t host_cache_limit();
size_t host_cache_round(size_t bytes);    // the size class a request takes (exposed for tests)

// RAII scratch of n elements, uninitialised.
template <typename T>
class HostBuffer {
 public:
  explicit HostBuffer(size_t n) : n_(n), p_(n ? static_cast<T*>(host_alloc(n * sizeof(T))) : nullptr) {}
  ~HostBuffer() { host_free(p_, n_ * sizeof(T)); }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  T* data() { return p_; }

 private:
  size_t n_;
  T* p_;
};

}  // namespace pneumo::kernels::cpu
