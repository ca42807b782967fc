// CPU reference (the oracle) of kernels/cuda/fused_upsample_kernels.h: the UNet decoder's nearest x2
// upsampling written straight into the concat buffer, and its backward reading the slices (issue 12 part 2
// item 5a). NHWC; dtype F32, F64 or BF16 (storage; sums in double, outputs rounded once).
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

namespace pneumo::kernels::cpu {

// y [n, 2h, 2w, cx + cs]: channels [0, cx) = nearest x2 upsampling of x [n, h, w, cx], channels
// [cx, cx + cs) = skip [n, 2h, 2w, cs].
void upsample2x_concat_forward(DType dt, const void* x, const void* skip, int64_t n, int64_t h, int64_t w, int64_t cx,
                               int64_t cs, void* y);
// dx [n, h, w, cx] = the 2x2 block sums of dy's channels [0, cx); dskip [n, 2h, 2w, cs] = dy's channels
// [cx, cx + cs). Either output may be null.
void upsample2x_concat_backward(DType dt, const void* dy, int64_t n, int64_t h, int64_t w, int64_t cx, int64_t cs,
                                void* dx, void* dskip);

}  // namespace pneumo::kernels::cpu
