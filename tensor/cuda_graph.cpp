#include "tensor/cuda_graph.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/check.h"
#include "tensor/allocator.h"
#include "tensor/cuda_runtime.h"
#include "tensor/profile.h"

#if PNEUMO_WITH_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_util.h"
#endif

namespace pneumo::cuda {

bool graphs_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("PNEUMO_CUDA_GRAPH");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return on;
}

namespace {
thread_local Graph* t_capturing = nullptr;
}  // namespace

Graph* capturing_graph() { return t_capturing; }

#if PNEUMO_WITH_CUDA

struct Graph::Impl {
  cudaStream_t stream = nullptr;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  size_t nodes = 0;
  std::vector<std::shared_ptr<void>> kept;  // released after the exec and graph (destructor order below)
};

Graph::Graph(int device) : impl_(std::make_unique<Impl>()), device_(device) {
  PNEUMO_CHECK(available(), "cuda::Graph: no CUDA device (", device_status(), ")");
  kernels::cuda::DeviceGuard guard(device);
  PNEUMO_CUDA_CHECK(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking));
  cuda_memory::graph_pool_open(device, impl_->stream);  // its blocks stay reserved to the graph
}

Graph::~Graph() {
  // Never throws. A replay may still run: wait for it before the buffers it reads (kept, pool blocks) are
  // handed out or freed; after a sticky CUDA error the waits fail and the frees are best effort.
  // (Only a captured graph can have replays; a device sync would also break another thread's capture.)
  int previous = 0;
  const bool switched = cudaGetDevice(&previous) == cudaSuccess && cudaSetDevice(device_) == cudaSuccess;
  if (switched && impl_->exec) cudaDeviceSynchronize();
  cudaGetLastError();
  impl_->kept.clear();
  if (impl_->exec) cudaGraphExecDestroy(impl_->exec);
  if (impl_->graph) cudaGraphDestroy(impl_->graph);
  // The pool's cached blocks go back to the driver; outputs still held (loss, gradients) are handed to the
  // device's stream, where the eager code that holds them runs.
  try {
    const cudaStream_t heir = current_stream(device_);
    if (heir != impl_->stream) cuda_memory::graph_pool_close(device_, impl_->stream, heir);
  } catch (...) {  // a CUDA error already in flight: the pool stays cached
  }
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
  if (switched) cudaSetDevice(previous);
  cudaGetLastError();
}

bool Graph::captured() const { return impl_->exec != nullptr; }
size_t Graph::nodes() const { return impl_->nodes; }
void Graph::keep_alive(std::shared_ptr<void> resource) { impl_->kept.push_back(std::move(resource)); }
void* Graph::pinned_buffer(size_t bytes) {
  // Relaxed capture mode (capture() below) admits cudaMallocHost inside the region.
  std::shared_ptr<void> p(pinned_alloc(bytes), [](void* q) {  // freed by ~Graph, which must not throw
    try {
      pinned_free(q);
    } catch (...) {
    }
  });
  keep_alive(p);
  return p.get();
}

void Graph::capture(const std::function<void()>& region) {
  PNEUMO_CHECK(!captured(), "cuda::Graph::capture: already captured (make a new Graph to capture again)");
  kernels::cuda::DeviceGuard guard(device_);
  // The graph stream starts after everything already queued on the device's stream.
  cudaStream_t main = current_stream(device_);
  cudaEvent_t ready;
  PNEUMO_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
  PNEUMO_CUDA_CHECK(cudaEventRecord(ready, main));
  PNEUMO_CUDA_CHECK(cudaStreamWaitEvent(impl_->stream, ready, 0));
  PNEUMO_CUDA_CHECK(cudaEventDestroy(ready));
  // For the capture's duration: no per-op timing (cudaEventRecord in a capture becomes a graph node,
  // untimeable per op), and the allocator gives nothing back to the driver (cudaFree would synchronise).
  struct Underway {
    bool was_timing = profile::timing();
    Underway() {
      profile::set_timing(false);
      cuda_memory::graph_capture_underway(true);
    }
    ~Underway() {
      cuda_memory::graph_capture_underway(false);
      profile::set_timing(was_timing);
    }
  } underway;
  random_.begin_capture();  // a retried capture starts from no draws
  // Relaxed: the allocator may cudaMalloc a new block for the graph's pool during capture (not a stream
  // operation, so not captured; the block simply stays the graph's). Host syncs still fail the capture.
  PNEUMO_CUDA_CHECK(cudaStreamBeginCapture(impl_->stream, cudaStreamCaptureModeRelaxed));
  std::string failure;
  {
    StreamOverride on_graph_stream(device_, impl_->stream);
    Graph* const outer = t_capturing;
    t_capturing = this;
    try {
      region();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    t_capturing = outer;
  }
  random_.end_capture();  // the generators as the region found them: replays draw from there
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(impl_->stream, &graph);
  if (!failure.empty() || end != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    PNEUMO_FAIL("cuda::Graph::capture failed: ",
                failure.empty() ? std::string("cudaStreamEndCapture: ") + cudaGetErrorString(end) : failure,
                " (a host sync, a pageable host copy or a first-use setup inside the region? see tensor/cuda_graph.h)");
  }
  impl_->graph = graph;
  PNEUMO_CUDA_CHECK(cudaGraphGetNodes(graph, nullptr, &impl_->nodes));
  const cudaError_t made = cudaGraphInstantiate(&impl_->exec, graph, 0);
  if (made != cudaSuccess) {  // not captured(): a retry may capture again, into a fresh graph
    cudaGetLastError();
    cudaGraphDestroy(impl_->graph);
    impl_->graph = nullptr;
    impl_->exec = nullptr;
    PNEUMO_FAIL("cuda::Graph::capture: cudaGraphInstantiate: ", cudaGetErrorString(made));
  }
}

void Graph::replay() {
  PNEUMO_CHECK(captured(), "cuda::Graph::replay: nothing captured");
  kernels::cuda::DeviceGuard guard(device_);
  random_.before_replay();  // on the same stream, ahead of the launch
  PNEUMO_CUDA_CHECK(cudaGraphLaunch(impl_->exec, current_stream(device_)));
}

#else  // ---- built without CUDA ----------------------------------------------------------------------

struct Graph::Impl {};
Graph::Graph(int device) : device_(device) {
  PNEUMO_FAIL("cuda::Graph: pneumo was built without CUDA (configure with -DPNEUMO_CUDA=ON)");
}
Graph::~Graph() = default;
bool Graph::captured() const { return false; }
size_t Graph::nodes() const { return 0; }
void Graph::keep_alive(std::shared_ptr<void>) {}
void* Graph::pinned_buffer(size_t) { return nullptr; }
void Graph::capture(const std::function<void()>&) { PNEUMO_FAIL("cuda::Graph: built without CUDA"); }
void Graph::replay() { PNEUMO_FAIL("cuda::Graph: built without CUDA"); }

#endif

}  // namespace pneumo::cuda
