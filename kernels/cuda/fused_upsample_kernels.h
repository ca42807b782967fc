// CUDA nearest x2 upsampling written straight into the UNet decoder's concat buffer, and its backward reading
// the slices of the concat gradient (issue 12 part 2 item 5a): the fast twins of
// kernels/cpu/fused_upsample_kernels.h (same contract), dtype F32 or BF16, 16-byte units where the channel
// counts and pointers allow.
// Saves the upsampled tensor's write + read and the split's copy of the upsampled part's gradient.
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::kernels::cuda {

void upsample2x_concat_forward(DType dt, const void* x, const void* skip, int64_t n, int64_t h, int64_t w, int64_t cx,
                               int64_t cs, void* y, cudaStream_t stream);
void upsample2x_concat_backward(DType dt, const void* dy, int64_t n, int64_t h, int64_t w, int64_t cx, int64_t cs,
                                void* dx, void* dskip, cudaStream_t stream);

}  // namespace pneumo::kernels::cuda
