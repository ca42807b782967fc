// CPU-only builds: the augmentation CUDA launchers of kernels/cuda/augment.h exist so that GPU tests and
// callers link, and each fails with a clear message. With CUDA, kernels/cuda/augment.cu defines them.
#include "kernels/check.h"
#include "kernels/cuda/augment.h"

#if !PNEUMO_WITH_CUDA
namespace pneumo::kernels::cuda {

namespace {
[[noreturn]] void no_cuda(const char* name) {
  PNEUMO_FAIL(name, ": this build has no CUDA backend (configure with -DPNEUMO_CUDA=ON)");
}
}  // namespace

void augment_resize_linear_u8(const uint8_t*, int, int, int, uint8_t*, int, int, cudaStream_t) { no_cuda("augment_resize_linear_u8"); }
void augment_resize_nearest_u8(const uint8_t*, int, int, int, uint8_t*, int, int, cudaStream_t) { no_cuda("augment_resize_nearest_u8"); }
void augment_warp_affine_u8(const uint8_t*, int, int, int, const double*, bool, uint8_t*, cudaStream_t) { no_cuda("augment_warp_affine_u8"); }
void augment_hflip_u8(const uint8_t*, int, int, int, uint8_t*, cudaStream_t) { no_cuda("augment_hflip_u8"); }
void augment_lut_u8(const uint8_t*, int64_t, const AugmentLut&, uint8_t*, cudaStream_t) { no_cuda("augment_lut_u8"); }
void augment_sum_u8(const uint8_t*, int64_t, unsigned long long*, cudaStream_t) { no_cuda("augment_sum_u8"); }
void augment_brightness_contrast_u8(const uint8_t*, int64_t, double, double, const unsigned long long*, uint8_t*, cudaStream_t) {
  no_cuda("augment_brightness_contrast_u8");
}
void augment_clahe_u8(const uint8_t*, int, int, double, int, int, const AugmentLut*, const AugmentLut*, uint8_t*, uint8_t*,
                      cudaStream_t) {
  no_cuda("augment_clahe_u8");
}
void augment_box_blur_u8(const uint8_t*, int, int, int, uint8_t*, cudaStream_t) { no_cuda("augment_box_blur_u8"); }
void augment_median_blur_u8(const uint8_t*, int, int, int, uint8_t*, cudaStream_t) { no_cuda("augment_median_blur_u8"); }
void augment_motion_blur_u8(const uint8_t*, int, int, const AugmentMotionKernel&, int, uint8_t*, cudaStream_t) {
  no_cuda("augment_motion_blur_u8");
}
void augment_normalize_u8_to_f32(const uint8_t*, int64_t, const float*, const float*, float*, cudaStream_t) {
  no_cuda("augment_normalize_u8_to_f32");
}

}  // namespace pneumo::kernels::cuda
#endif
