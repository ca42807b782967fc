// The one CPU/CUDA dispatch helper of tensor/ (internal: included only by tensor/*.cpp, the single place
// where an op picks kernels/cpu or kernels/cuda; see docs/architecture.md). It gives every dispatching file
// the same stream (the device's current stream), the same device scratch memory (a U8 tensor from the
// caching allocator, freed stream-ordered) and the same error on a CUDA tensor in a CPU-only build.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/check.h"
#include "tensor/cuda_runtime.h"
#include "tensor/profile.h"
#include "tensor/tensor.h"

namespace pneumo::dispatch {

#if PNEUMO_WITH_CUDA
// The stream every kernel of an op on `t` runs on.
inline cudaStream_t stream_of(const Tensor& t) { return cuda::current_stream(t.device().index); }
#endif

// Device (or host) scratch memory of at least `bytes` bytes (at least 1) for a kernel's workspace.
inline Tensor scratch(size_t bytes, Device device) {
  return Tensor::empty({static_cast<int64_t>(bytes < 1 ? 1 : bytes)}, DType::U8, device);
}

// A CUDA tensor reached an op in a build without the CUDA backend.
[[noreturn]] inline void no_cuda(const char* op) { PNEUMO_FAIL(op, ": this build has no CUDA backend"); }

}  // namespace pneumo::dispatch

// PNEUMO_OP_SCOPE(name, t): the op's profiling scope and NVTX range (tensor/profile.h), from here to the end
// of the enclosing block; `t` gives the device, stream and the shape the time is filed under. One load and
// branch when profiling is off. Placed at the top of every tensor op that launches kernels.
#define PNEUMO_OP_SCOPE_CAT2(a, b) a##b
#define PNEUMO_OP_SCOPE_CAT(a, b) PNEUMO_OP_SCOPE_CAT2(a, b)
#define PNEUMO_OP_SCOPE(name, t) ::pneumo::profile::OpScope PNEUMO_OP_SCOPE_CAT(pneumo_op_scope_, __LINE__)((name), (t))

// PNEUMO_DISPATCH(t, cpu_call, cuda_call): runs kernels::cpu::cpu_call for a CPU tensor `t`, else
// kernels::cuda::cuda_call with `stream` bound to t's current stream.
#if PNEUMO_WITH_CUDA
#define PNEUMO_DISPATCH(t, cpu_call, cuda_call)                             \
  do {                                                                      \
    if ((t).device().is_cpu()) {                                            \
      kernels::cpu::cpu_call;                                               \
    } else {                                                                \
      cudaStream_t stream = ::pneumo::dispatch::stream_of(t);               \
      kernels::cuda::cuda_call;                                             \
    }                                                                       \
  } while (0)
#else
#define PNEUMO_DISPATCH(t, cpu_call, cuda_call)                                          \
  do {                                                                                   \
    PNEUMO_CHECK((t).device().is_cpu(), "tensor on ", (t).device().str(),                 \
                 " but this build has no CUDA backend");                                 \
    kernels::cpu::cpu_call;                                                              \
  } while (0)
#endif
