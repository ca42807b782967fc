// CUDA Graph capture and replay of a region of ops once shapes are static (issue 12 part 2 item 6; opt-in,
// never run on a GPU yet: `pneumo bench-models --cuda-graph`, tests CudaGraphGpu.*).
// capture(fn) runs fn once with every op of this thread on `device` enqueued on the graph's own stream
// (cuda::StreamOverride) under cudaStreamBeginCapture, so nothing executes; replay() launches the whole
// region as one graph on the device's current stream.
// Memory: the caching allocator keys its free lists by stream, so every block allocated during capture
// belongs to the graph stream's pool and is never handed to work outside a capture: the addresses baked
// into the graph stay reserved to it (PyTorch's "private pool"); empty_cache() and the out-of-memory retry
// leave that pool alone while the graph lives, and free nothing while a capture is underway. ~Graph frees
// the pool's cached blocks. Tensors made inside the region and kept (loss, gradients) are the graph's static
// outputs: each replay overwrites them; one still held when the graph dies stays valid.
// Contract (what blocks capture otherwise: docs/gpu-status.md "CUDA Graph"):
//   - warm up first (one eager run): cuDNN algorithm searches, cuBLAS/cuDNN handles, reduction workspaces
//     and resize tables are created on first use, with host syncs;
//   - no host sync inside (item(), to(cpu), cuda::synchronize(), PNEUMO_SYNC_DEBUG): capture then fails
//     with the CUDA error and capture() throws naming the region;
//   - tensors the region reads that were made before it (inputs, parameters) must stay alive, at the same
//     address, for the graph's life: refill inputs with copy_from(), never rebind them;
//   - host-side scalars are baked in at capture. What is handled: the optimiser in capturable mode
//     (train/optim.h set_capturable: learning rate and step counts live on the device), BatchNorm's
//     num_batches_tracked (incremented on the device), multi-tensor tables (uploaded from pinned buffers the
//     graph keeps), random draws (dropout, drop-connect: random() below, each replay draws the masks the
//     eager step would have);
//   - PNEUMO_PROFILE timing is suspended inside capture (events cannot be timed per replay).
#pragma once
#include <functional>
#include <memory>

#include "tensor/graph_random.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::cuda {

class Graph {
 public:
  explicit Graph(int device = 0);  // throws in a build without CUDA or without a device
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  void capture(const std::function<void()>& region);  // once; throws if the region cannot be captured
  void replay();                                      // on current_stream(device), asynchronous
  bool captured() const;
  int device() const { return device_; }
  size_t nodes() const;  // kernel/memcpy/memset nodes in the captured graph
  // Keeps `resource` alive as long as the graph: a buffer a captured node reads or writes (a pinned table
  // a memcpy node copies from, a device table allocated inside the capture).
  void keep_alive(std::shared_ptr<void> resource);
  // A page-locked host buffer of `bytes` owned by the graph (the source of a captured table upload).
  void* pinned_buffer(size_t bytes);
  // The random draws made in the region (nn::F::dropout asks it during capture; replay() writes their state).
  GraphRandom& random() { return random_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int device_;
  GraphRandom random_;
};

// The Graph this thread is capturing into, or nullptr (always nullptr without CUDA or outside capture()).
// Code that would bake a host value into the graph checks it.
Graph* capturing_graph();

// PNEUMO_CUDA_GRAPH=1 (read once): callers that offer graph capture use it by default.
bool graphs_enabled();

}  // namespace pneumo::cuda
