#if PNEUMO_WITH_CUDA
#include "kernels/cuda/profile_events.h"

#include <cuda_runtime_api.h>
#include <nvtx3/nvToolsExt.h>

#include <mutex>
#include <vector>

#include "kernels/cuda/cuda_util.h"

namespace pneumo::kernels::cuda {
namespace {
std::mutex pool_mutex;
std::vector<cudaEvent_t>& pool() {
  static auto* p = new std::vector<cudaEvent_t>();  // never destroyed: events may outlive static teardown
  return *p;
}
}  // namespace

cudaEvent_t profile_event_record(cudaStream_t stream) {
  cudaEvent_t e = nullptr;
  {
    std::lock_guard<std::mutex> lock(pool_mutex);
    if (!pool().empty()) {
      e = pool().back();
      pool().pop_back();
    }
  }
  if (!e) PNEUMO_CUDA_CHECK(cudaEventCreate(&e));
  PNEUMO_CUDA_CHECK(cudaEventRecord(e, stream));
  return e;
}

float profile_event_elapsed_ms(cudaEvent_t start, cudaEvent_t end) {
  PNEUMO_CUDA_CHECK(cudaEventSynchronize(end));
  float ms = 0;
  PNEUMO_CUDA_CHECK(cudaEventElapsedTime(&ms, start, end));
  return ms;
}

void profile_events_release(const cudaEvent_t* events, size_t count) {
  std::lock_guard<std::mutex> lock(pool_mutex);
  pool().insert(pool().end(), events, events + count);
}

void nvtx_push(const char* message) { nvtxRangePushA(message); }
void nvtx_pop() { nvtxRangePop(); }

}  // namespace pneumo::kernels::cuda
#endif
