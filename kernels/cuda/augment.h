// CUDA kernels of the augmentation transforms on 8-bit images (HWC, row-major, `channels` interleaved),
// matching the CPU reference of augment/transforms.h: the per-pixel arithmetic is the shared code of
// kernels/augment_math.h, so geometric and photometric results equal the CPU's (tests allow rounding only).
// Launchers take raw device pointers + sizes + the stream last, and check their launch. Small constant
// inputs (LUTs, the affine matrix, the motion kernel) are passed by value as kernel arguments.
#pragma once
#include <cstdint>

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::kernels::cuda {

struct AugmentLut {
  uint8_t v[256];
};
struct AugmentMotionKernel {
  uint8_t v[49];  // ksize x ksize 0/1, ksize <= 7
};

// cv2.resize INTER_LINEAR (8-bit fixed point) / INTER_NEAREST.
void augment_resize_linear_u8(const uint8_t* src, int src_h, int src_w, int channels, uint8_t* dst, int dst_h,
                              int dst_w, cudaStream_t stream);
void augment_resize_nearest_u8(const uint8_t* src, int src_h, int src_w, int channels, uint8_t* dst, int dst_h,
                               int dst_w, cudaStream_t stream);
// cv2.warpAffine with BORDER_CONSTANT 0; `inverse` is the destination -> source matrix.
void augment_warp_affine_u8(const uint8_t* src, int h, int w, int channels, const double inverse[6], bool nearest,
                            uint8_t* dst, cudaStream_t stream);
void augment_hflip_u8(const uint8_t* src, int h, int w, int channels, uint8_t* dst, cudaStream_t stream);
void augment_lut_u8(const uint8_t* src, int64_t n, const AugmentLut& lut, uint8_t* dst, cudaStream_t stream);
// Exact integer sum of n bytes into *sum (zeroed here first); deterministic (integer atomics).
void augment_sum_u8(const uint8_t* src, int64_t n, unsigned long long* sum, cudaStream_t stream);
// RandomBrightnessContrast on the device without a host round trip: the LUT is built from the device sum
// (mean = sum / n in double) with the float32 arithmetic of brightness_contrast_lut, then applied.
void augment_brightness_contrast_u8(const uint8_t* src, int64_t n, double alpha, double beta,
                                    const unsigned long long* sum, uint8_t* dst, cudaStream_t stream);
// cv::CLAHE on a 1-channel image. `tile_luts` is scratch of tiles_x * tiles_y * 256 bytes. `pre` (optional)
// maps the input before CLAHE and `post` (optional) maps the result (the Lab lightness path).
void augment_clahe_u8(const uint8_t* src, int h, int w, double clip_limit, int tiles_x, int tiles_y,
                      const AugmentLut* pre, const AugmentLut* post, uint8_t* tile_luts, uint8_t* dst,
                      cudaStream_t stream);
// 1-channel blurs: box (BORDER_REFLECT_101), median (BORDER_REPLICATE, ksize 3 or 5), motion (0/1 kernel,
// BORDER_REFLECT_101, sum / n rounded half to even).
void augment_box_blur_u8(const uint8_t* src, int h, int w, int ksize, uint8_t* dst, cudaStream_t stream);
void augment_median_blur_u8(const uint8_t* src, int h, int w, int ksize, uint8_t* dst, cudaStream_t stream);
void augment_motion_blur_u8(const uint8_t* src, int h, int w, const AugmentMotionKernel& kernel, int ksize,
                            uint8_t* dst, cudaStream_t stream);
// albumentations Normalize of a gray image into 3 channels: dst[i*3+c] = (v - mean_c * 255) * (1 / (std_c * 255))
// in float32, the arithmetic of aug::normalize_imagenet.
void augment_normalize_u8_to_f32(const uint8_t* src, int64_t pixels, const float mean[3], const float stddev[3],
                                 float* dst, cudaStream_t stream);

}  // namespace pneumo::kernels::cuda
