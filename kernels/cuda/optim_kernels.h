// CUDA multi-tensor optimiser kernels (arithmetic in kernels/optim_update.h, shared with the CPU):
// the host list of tensors is copied into `workspace` with the chunk table (one entry per 64K-element
// chunk), and ONE launch updates every parameter. Clipping by global norm: per-chunk partial sums of
// squares, a fixed-order finish that writes the norm and the clip coefficient, and one scaling launch;
// no host synchronisation, no atomics.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/optim_update.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::kernels::cuda {

constexpr int64_t kOptimChunk = 65536;

// `host_staging` (every function here): null, or a PINNED host buffer of the workspace size that the
// tables are written into and copied from. A copy from pageable memory cannot be captured in a CUDA Graph;
// from a pinned buffer it becomes a memcpy node, so the buffer must outlive the graph (cuda::Graph keeps
// it) and is not written again.
size_t optimizer_workspace_bytes(const OptimTensor* tensors, int count);
// `capturable` (host struct whose pointers are device memory), when given: the step-dependent scalars are
// computed on the device from its learning rate and step counts, which a second launch then advances.
void optimizer_step(const OptimTensor* tensors, int count, const OptimHyper& hyper, void* workspace,
                    size_t workspace_bytes, cudaStream_t stream, const OptimCapturable* capturable = nullptr,
                    void* host_staging = nullptr);

size_t clip_workspace_bytes(const int64_t* sizes, int count);
// Writes the global L2 norm of all tensors to total_norm (device float) and multiplies every tensor by
// min(1, max_norm / (norm + 1e-6)) (PyTorch clip_grad_norm_).
void clip_grad_norm(float* const* tensors, const int64_t* sizes, int count, float max_norm, float* total_norm,
                    void* workspace, size_t workspace_bytes, cudaStream_t stream, void* host_staging = nullptr);

// bf16 copies of float32 tensors in ONE launch (issue 12 part 2 item 5b: the weights cast once per step
// instead of one cast launch per weight at forward): dst[k][i] = bf16(src[k][i]), round to nearest even
// (kernels/dtype.h float_to_bf16_bits, as Tensor::to(BF16) and the CPU twin
// kernels/cpu/multi_tensor_cast.h), so the copies are bit-identical to per-tensor casts.
size_t multi_cast_workspace_bytes(const int64_t* sizes, int count);
void multi_tensor_cast_bf16(const float* const* src, uint16_t* const* dst, const int64_t* sizes, int count,
                            void* workspace, size_t workspace_bytes, cudaStream_t stream,
                            void* host_staging = nullptr);

}  // namespace pneumo::kernels::cuda
