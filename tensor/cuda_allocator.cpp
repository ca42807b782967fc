// The caching CUDA allocator (cuda_memory in tensor/allocator.h). Convention: a block is cudaMalloc'ed at its
// rounded size (512 B granules up to 1 MiB, 2 MiB granules above), never split, and on release goes back to
// the free list of the (device, stream) it was allocated on, where the next request on that stream takes the
// smallest cached block that fits and is at most twice the rounded request (best fit). Work on one stream is
// ordered, so reuse needs no event. cudaFree happens only in empty_cache() and on the out-of-memory retry
// (never to a live CUDA Graph's pool, nor during a capture), and when a graph's pool is closed.
// allocated_bytes counts rounded request sizes (as CudaMemoryStats documents), reserved_bytes whole blocks,
// so reserved - allocated is the cache plus the slack of blocks reused for smaller requests. One mutex
// guards everything. Built without CUDA: allocate() throws and the
// statistics are zeros; round_size() works everywhere.
#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "kernels/check.h"
#include "tensor/allocator.h"
#include "tensor/cuda_runtime.h"

#if PNEUMO_WITH_CUDA
#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/cuda/cuda_util.h"
#endif

namespace pneumo::cuda_memory {

namespace {
constexpr size_t kSmallGranule = 512;
constexpr size_t kLargeGranule = size_t(2) << 20;
constexpr size_t kSmallLimit = size_t(1) << 20;
}  // namespace

size_t round_size(size_t bytes) {
  if (bytes == 0) return 0;
  if (bytes <= kSmallLimit) return (bytes + kSmallGranule - 1) / kSmallGranule * kSmallGranule;
  PNEUMO_CHECK(bytes <= SIZE_MAX - kLargeGranule, "cuda_memory::round_size: request of ", bytes, " bytes is too large");
  return (bytes + kLargeGranule - 1) / kLargeGranule * kLargeGranule;
}

#if PNEUMO_WITH_CUDA

namespace {

std::string gib(size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f GiB", static_cast<double>(bytes) / static_cast<double>(size_t(1) << 30));
  return buf;
}

using kernels::cuda::DeviceGuard;

struct Block {
  size_t size = 0;       // bytes held from the driver
  size_t in_use = 0;     // rounded size of the request it serves now; 0 when cached
  int device = 0;
  cudaStream_t stream = nullptr;
};

using PoolKey = std::pair<int, cudaStream_t>;

class CachingAllocator {
 public:
  void* allocate(size_t bytes, int device) {
    if (bytes == 0) return nullptr;
    const size_t size = round_size(bytes);
    cudaStream_t stream = cuda::current_stream(device);  // validates `device`; takes its own lock
    std::lock_guard<std::mutex> lock(mutex_);
    CudaMemoryStats& st = stats_for(device);
    void* ptr = nullptr;
    auto& pool = free_[PoolKey{device, stream}];
    auto it = pool.lower_bound(size);
    if (it != pool.end() && it->first <= 2 * size) {
      ptr = it->second;
      pool.erase(it);
      ++st.cache_hits;
    } else {
      ptr = device_malloc(bytes, size, device);
      blocks_[ptr] = Block{size, 0, device, stream};
    }
    Block& b = blocks_[ptr];
    b.in_use = size;
    ++st.allocations;
    st.allocated_bytes += size;
    st.peak_allocated_bytes = std::max(st.peak_allocated_bytes, st.allocated_bytes);
    return ptr;
  }

  void release(void* p, int device) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = blocks_.find(p);
    PNEUMO_CHECK(it != blocks_.end() && it->second.in_use > 0, "cuda_memory::release: pointer ", p,
                 " is not an allocation of the caching allocator in use (freed twice?)");
    Block& b = it->second;
    PNEUMO_CHECK(b.device == device, "cuda_memory::release: pointer ", p, " belongs to device ", b.device,
                 ", released as device ", device);
    stats_for(b.device).allocated_bytes -= b.in_use;
    b.in_use = 0;
    free_[PoolKey{b.device, b.stream}].emplace(b.size, p);
  }

  CudaMemoryStats stats(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (device < 0 || device >= static_cast<int>(stats_.size())) return {};
    return stats_[device];
  }

  void reset_peak(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (device < 0 || device >= static_cast<int>(stats_.size())) return;
    stats_[device].peak_allocated_bytes = stats_[device].allocated_bytes;
    stats_[device].peak_reserved_bytes = stats_[device].reserved_bytes;
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    free_cached_locked(-1);
  }

  void graph_pool_open(int device, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mutex_);
    graph_pools_.insert(PoolKey{device, stream});
  }

  void graph_capture_underway(bool on) {
    std::lock_guard<std::mutex> lock(mutex_);
    captures_underway_ += on ? 1 : -1;
  }

  void graph_pool_close(int device, cudaStream_t stream, cudaStream_t heir) {
    std::lock_guard<std::mutex> lock(mutex_);
    const PoolKey key{device, stream};
    graph_pools_.erase(key);
    // Every block of the pool now belongs to the heir: one in use is released later into its cache.
    for (auto& [ptr, block] : blocks_)
      if (block.device == device && block.stream == stream) block.stream = heir;
    auto pool = free_.find(key);
    if (pool == free_.end()) return;
    if (captures_underway_ > 0) {  // no cudaFree during a capture: the heir caches them for a later free
      free_[PoolKey{device, heir}].merge(pool->second);
      free_.erase(pool);
      return;
    }
    DeviceGuard guard(device);
    CudaMemoryStats& st = stats_for(device);
    for (auto& entry : pool->second) {
      if (cudaFree(entry.second) != cudaSuccess) cudaGetLastError();  // called from ~Graph: never throws
      blocks_.erase(entry.second);
      st.reserved_bytes -= entry.first;
      ++st.cuda_free_calls;
    }
    free_.erase(pool);
  }

 private:
  CudaMemoryStats& stats_for(int device) {
    if (device >= static_cast<int>(stats_.size())) stats_.resize(device + 1);
    return stats_[device];
  }

  // cudaFree of every cached block (of `device`, or all devices for -1). cudaFree waits for the device, so
  // work still queued on a block's stream finishes first.
  void free_cached_locked(int device) {
    if (captures_underway_ > 0) return;
    for (auto pool = free_.begin(); pool != free_.end(); ++pool) {
      if (device >= 0 && pool->first.first != device) continue;
      if (pool->second.empty() || graph_pools_.count(pool->first)) continue;
      DeviceGuard guard(pool->first.first);
      CudaMemoryStats& st = stats_for(pool->first.first);
      for (auto& entry : pool->second) {
        PNEUMO_CUDA_CHECK(cudaFree(entry.second));
        blocks_.erase(entry.second);
        st.reserved_bytes -= entry.first;
        ++st.cuda_free_calls;
      }
      pool->second.clear();
    }
  }

  void* device_malloc(size_t requested, size_t size, int device) {
    DeviceGuard guard(device);
    void* ptr = nullptr;
    cudaError_t e = cudaMalloc(&ptr, size);
    if (e == cudaErrorMemoryAllocation) {  // give the cache back to the driver and try once more
      cudaGetLastError();
      free_cached_locked(device);
      e = cudaMalloc(&ptr, size);
    }
    CudaMemoryStats& st = stats_for(device);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total_bytes = 0;
      if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) cudaGetLastError();
      PNEUMO_FAIL("CUDA out of memory: asked for ", requested, " bytes (", gib(requested), "); in use ",
                  gib(st.allocated_bytes), ", peak ", gib(st.peak_allocated_bytes), ", cached ",
                  gib(st.reserved_bytes - st.allocated_bytes), " on device ", device, " (driver reports ",
                  gib(free_bytes), " free of ", gib(total_bytes), ")");
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      PNEUMO_FAIL("cuda_memory::allocate: cudaMalloc of ", size, " bytes on device ", device, " failed: ",
                  cudaGetErrorString(e));
    }
    ++st.cuda_malloc_calls;
    st.reserved_bytes += size;
    st.peak_reserved_bytes = std::max(st.peak_reserved_bytes, st.reserved_bytes);
    return ptr;
  }

  std::mutex mutex_;
  std::unordered_map<void*, Block> blocks_;                   // every block held from the driver
  std::map<PoolKey, std::multimap<size_t, void*>> free_;     // cached blocks by size, per (device, stream)
  std::vector<CudaMemoryStats> stats_;                       // per device
  std::set<PoolKey> graph_pools_;                            // live CUDA Graphs' pools: never freed
  int captures_underway_ = 0;
};

// Never destroyed: tensors held by other statics may be released after main returns, and the driver may
// already be shut down then.
CachingAllocator& allocator() {
  static auto* instance = new CachingAllocator();
  return *instance;
}

}  // namespace

void* allocate(size_t bytes, int device) { return allocator().allocate(bytes, device); }
void release(void* p, int device) { allocator().release(p, device); }
CudaMemoryStats stats(int device) { return allocator().stats(device); }
void reset_peak(int device) { allocator().reset_peak(device); }
void empty_cache() { allocator().empty_cache(); }
void graph_pool_open(int device, void* stream) {
  allocator().graph_pool_open(device, static_cast<cudaStream_t>(stream));
}
void graph_capture_underway(bool on) { allocator().graph_capture_underway(on); }
void graph_pool_close(int device, void* stream, void* heir) {
  allocator().graph_pool_close(device, static_cast<cudaStream_t>(stream), static_cast<cudaStream_t>(heir));
}

#else  // ---- built without CUDA ----------------------------------------------------------------------

void* allocate(size_t bytes, int device) {
  PNEUMO_FAIL("cuda_memory::allocate: cannot allocate ", bytes, " bytes on cuda:", device,
              ": pneumo was built without CUDA (configure with -DPNEUMO_CUDA=ON)");
}
void release(void*, int) {}
CudaMemoryStats stats(int) { return {}; }
void reset_peak(int) {}
void empty_cache() {}
void graph_pool_open(int, void*) {}
void graph_capture_underway(bool) {}
void graph_pool_close(int, void*, void*) {}

#endif

}  // namespace pneumo::cuda_memory
