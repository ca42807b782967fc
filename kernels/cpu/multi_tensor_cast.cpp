#include "kernels/cpu/multi_tensor_cast.h"

#include "kernels/dtype.h"

namespace pneumo::kernels::cpu {

void multi_tensor_cast_bf16(const float* const* src, uint16_t* const* dst, const int64_t* sizes, int count) {
  for (int k = 0; k < count; ++k) {
    const float* s = src[k];
    uint16_t* d = dst[k];
    const int64_t n = sizes[k];
#pragma omp parallel for schedule(static) if (n > (int64_t(1) << 16))
    for (int64_t i = 0; i < n; ++i) d[i] = float_to_bf16_bits(s[i]);
  }
}

}  // namespace pneumo::kernels::cpu
