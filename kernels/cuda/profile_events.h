// CUDA side of the op profiler (tensor/profile.cpp): pooled timing events and NVTX v3 ranges (header-only
// in the CUDA toolkit, nvtx3/nvToolsExt.h; no library to link). Everything here is called only while
// profiling or NVTX is on. Built without CUDA these functions do not exist (tensor/profile.cpp is guarded).
#pragma once
#include <cstddef>

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;
struct CUevent_st;
typedef struct CUevent_st* cudaEvent_t;

namespace pneumo::kernels::cuda {

// An event from a process-wide pool (created with timing on), recorded on `stream` now.
cudaEvent_t profile_event_record(cudaStream_t stream);
// Milliseconds between two recorded events; waits for `end` to complete.
float profile_event_elapsed_ms(cudaEvent_t start, cudaEvent_t end);
// Returns events to the pool (after their times were read).
void profile_events_release(const cudaEvent_t* events, size_t count);

void nvtx_push(const char* message);
void nvtx_pop();

}  // namespace pneumo::kernels::cuda
