// CUDA fast path of the training losses; same formulas and conventions as kernels/cpu/loss_kernels.h.
// Logits and targets share one dtype, F32 or BF16; the loss, `stats` and `grad_loss` are float32 device
// memory (the accumulation dtype). Reductions are deterministic (per-block partials, fixed-order finish).
// Dice: one pass for the per-sample sums of p t, p^2, t^2, a tiny finish, then backward is one
// elementwise pass reading the saved stats. Nothing here synchronises with the host.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/op_codes.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::kernels::cuda {

size_t binary_loss_workspace_bytes(int64_t n);
void binary_loss_forward(DType dt, BinaryLoss kind, double gamma, const void* logits, const void* targets, int64_t n,
                         float* loss, void* workspace, cudaStream_t stream);
void binary_loss_backward(DType dt, BinaryLoss kind, double gamma, const void* logits, const void* targets, int64_t n,
                          const float* grad_loss, void* dlogits, cudaStream_t stream);

size_t soft_dice_workspace_bytes(int64_t batch, int64_t per_sample);
void soft_dice_forward(DType dt, const void* logits, const void* targets, int64_t batch, int64_t per_sample,
                       double smooth, float* stats, float* loss, void* workspace, cudaStream_t stream);
void soft_dice_backward(DType dt, const void* logits, const void* targets, int64_t batch, int64_t per_sample,
                        const float* stats, const float* grad_loss, void* dlogits, cudaStream_t stream);

}  // namespace pneumo::kernels::cuda
