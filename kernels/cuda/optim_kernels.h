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

size_t optimizer_workspace_bytes(const OptimTensor* tensors, int count);
void optimizer_step(const OptimTensor* tensors, int count, const OptimHyper& hyper, void* workspace,
                    size_t workspace_bytes, cudaStream_t stream);

size_t clip_workspace_bytes(const int64_t* sizes, int count);
// Writes the global L2 norm of all tensors to total_norm (device float) and multiplies every tensor by
// min(1, max_norm / (norm + 1e-6)) (PyTorch clip_grad_norm_).
void clip_grad_norm(float* const* tensors, const int64_t* sizes, int count, float max_norm, float* total_norm,
                    void* workspace, size_t workspace_bytes, cudaStream_t stream);

}  // namespace pneumo::kernels::cuda
