// Memory for tensors. CPU: 64-byte aligned blocks, large ones cached (kernels/cpu/host_memory.h). CUDA: a caching allocator with size classes
// (512 B granules below 1 MiB, 2 MiB granules above), stream-ordered reuse (a block is reused only on the
// stream it was freed on), statistics and empty_cache(). No cudaMalloc in a steady state: once the
// cache holds the working set, allocation is a free-list lookup.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace pneumo {

void* cpu_alloc(size_t bytes);
void cpu_free(void* p, size_t bytes);  // `bytes` as given to cpu_alloc

struct CudaMemoryStats {
  size_t allocated_bytes = 0;       // in use by tensors now (rounded sizes)
  size_t peak_allocated_bytes = 0;  // highest allocated_bytes since start or reset_peak()
  size_t reserved_bytes = 0;        // held from the driver (in use + cached)
  size_t peak_reserved_bytes = 0;
  uint64_t cuda_malloc_calls = 0;   // real cudaMalloc calls
  uint64_t cuda_free_calls = 0;
  uint64_t allocations = 0;         // requests served
  uint64_t cache_hits = 0;
};

namespace cuda_memory {
void* allocate(size_t bytes, int device);  // on the current stream of `device`
void release(void* p, int device);
CudaMemoryStats stats(int device = 0);
void reset_peak(int device = 0);
void empty_cache();  // returns every cached block to the driver (except CUDA Graph pools, below)
// A CUDA Graph's pool (tensor/cuda_graph.cpp): the blocks allocated on its stream. Their addresses are baked
// into the graph, so neither empty_cache() nor the out-of-memory retry gives them back to the driver while
// the graph lives, and nothing is given back at all while a capture is underway (cudaFree synchronises the
// device, which a capture cannot have). graph_pool_close, after the graph's last replay finished, frees the
// pool's cached blocks; those still in use (outputs kept by the caller) join `heir`'s pool when released.
void graph_pool_open(int device, void* stream);
void graph_capture_underway(bool on);
void graph_pool_close(int device, void* stream, void* heir);
// Rounded size a request of `bytes` takes (exposed for tests).
size_t round_size(size_t bytes);
}  // namespace cuda_memory

}  // namespace pneumo
