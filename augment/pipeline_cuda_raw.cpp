// The raw GPU entry point of the augmentation pipeline (see augment/pipeline_cuda.h): drawn parameters applied
// to one device image in the reference order — Resize, photometric, blur, HorizontalFlip, ShiftScaleRotate —
// with the kernels of kernels/cuda/augment.h. Depends on no tensor code, so kernel tools can link it alone.
// Host code only (the kernels are kernels/cuda/augment.cu), compiled only in CUDA builds.
#if PNEUMO_WITH_CUDA
#include <cuda_runtime.h>

#include <algorithm>

#include "augment/pipeline_cuda.h"
#include "augment/transforms.h"
#include "kernels/check.h"
#include "kernels/cuda/augment.h"
#include "kernels/cuda_check.h"

namespace pneumo::aug {

namespace kc = pneumo::kernels::cuda;

namespace {

kc::AugmentLut to_device_lut(const Lut& lut) {
  kc::AugmentLut l;
  for (int i = 0; i < 256; ++i) l.v[i] = lut[i];
  return l;
}

// Scratch layout (offsets 256-byte aligned): image ping-pong buffer, mask ping-pong buffer, the 64-bit
// pixel sum, the CLAHE tile tables.
struct ScratchLayout {
  size_t image_b, mask_b, sum, tables, total;
};
ScratchLayout scratch_layout(const AugmentParams& p, int h, int w) {
  auto align = [](size_t v) { return (v + 255) / 256 * 256; };
  const int oh = p.out_height > 0 ? p.out_height : h, ow = p.out_width > 0 ? p.out_width : w;
  const size_t plane = static_cast<size_t>(oh) * ow;
  ScratchLayout s;
  s.image_b = 0;
  s.mask_b = align(plane);
  s.sum = s.mask_b + align(plane);
  s.tables = s.sum + 256;
  s.total = s.tables + align(static_cast<size_t>(std::max(p.clahe_tiles_x, 1)) * std::max(p.clahe_tiles_y, 1) * 256);
  return s;
}

}  // namespace

size_t augment_scratch_bytes(const AugmentParams& params, int height, int width) {
  return scratch_layout(params, height, width).total;
}

void apply_params_cuda_raw(const AugmentParams& p, const uint8_t* image_in, const uint8_t* mask_in, int h, int w,
                           uint8_t* image_out, uint8_t* mask_out, uint8_t* scratch, cudaStream_t stream) {
  PNEUMO_CHECK(h > 0 && w > 0 && image_in && image_out && scratch, "apply_params_cuda_raw: bad arguments (", h, "x",
               w, ")");
  PNEUMO_CHECK(!mask_in || mask_out, "apply_params_cuda_raw: a mask needs an output buffer");
  const ScratchLayout layout = scratch_layout(p, h, w);
  const int oh = p.out_height > 0 ? p.out_height : h, ow = p.out_width > 0 ? p.out_width : w;
  const int64_t n = static_cast<int64_t>(oh) * ow;
  // Ping-pong between the output buffer and scratch; `a` always holds the current image.
  uint8_t* a = image_out;
  uint8_t* b = scratch + layout.image_b;
  uint8_t* ma = mask_out;
  uint8_t* mb = scratch + layout.mask_b;
  kc::augment_resize_linear_u8(image_in, h, w, 1, a, oh, ow, stream);
  if (mask_in) kc::augment_resize_nearest_u8(mask_in, h, w, 1, ma, oh, ow, stream);
  switch (p.photometric) {
    case Photometric::None: break;
    case Photometric::Gamma:
      kc::augment_lut_u8(a, n, to_device_lut(gamma_lut(p.gamma)), b, stream);
      std::swap(a, b);
      break;
    case Photometric::BrightnessContrast: {
      auto* sum = reinterpret_cast<unsigned long long*>(scratch + layout.sum);
      kc::augment_sum_u8(a, n, sum, stream);
      kc::augment_brightness_contrast_u8(a, n, p.contrast_alpha, p.brightness_beta, sum, b, stream);
      std::swap(a, b);
      break;
    }
    case Photometric::Clahe: {
      const kc::AugmentLut pre = to_device_lut(gray_to_lightness_lut()), post = to_device_lut(lightness_to_gray_lut());
      kc::augment_clahe_u8(a, oh, ow, p.clahe_clip, p.clahe_tiles_x, p.clahe_tiles_y,
                           p.clahe_on_lightness ? &pre : nullptr, p.clahe_on_lightness ? &post : nullptr,
                           scratch + layout.tables, b, stream);
      std::swap(a, b);
      break;
    }
  }
  switch (p.blur) {
    case BlurKind::None: break;
    case BlurKind::Box: kc::augment_box_blur_u8(a, oh, ow, p.blur_ksize, b, stream); std::swap(a, b); break;
    case BlurKind::Median: kc::augment_median_blur_u8(a, oh, ow, p.blur_ksize, b, stream); std::swap(a, b); break;
    case BlurKind::Motion: {
      PNEUMO_CHECK(p.motion_kernel.size() == static_cast<size_t>(p.blur_ksize) * p.blur_ksize && p.blur_ksize <= 7,
                   "augment (CUDA): motion kernel of ", p.motion_kernel.size(), " entries for ksize ", p.blur_ksize);
      kc::AugmentMotionKernel k{};
      for (size_t i = 0; i < p.motion_kernel.size(); ++i) k.v[i] = p.motion_kernel[i];
      kc::augment_motion_blur_u8(a, oh, ow, k, p.blur_ksize, b, stream);
      std::swap(a, b);
      break;
    }
  }
  if (p.hflip) {
    kc::augment_hflip_u8(a, oh, ow, 1, b, stream);
    std::swap(a, b);
    if (mask_in) {
      kc::augment_hflip_u8(ma, oh, ow, 1, mb, stream);
      std::swap(ma, mb);
    }
  }
  if (p.affine) {
    const Affine inv = invert_affine(shift_scale_rotate_matrix(p.angle, p.scale, p.shift_x, p.shift_y, oh, ow));
    kc::augment_warp_affine_u8(a, oh, ow, 1, inv.m, false, b, stream);
    std::swap(a, b);
    if (mask_in) {
      kc::augment_warp_affine_u8(ma, oh, ow, 1, inv.m, true, mb, stream);
      std::swap(ma, mb);
    }
  }
  if (a != image_out) PNEUMO_CUDA_CHECK(cudaMemcpyAsync(image_out, a, n, cudaMemcpyDeviceToDevice, stream));
  if (mask_in && ma != mask_out) PNEUMO_CUDA_CHECK(cudaMemcpyAsync(mask_out, ma, n, cudaMemcpyDeviceToDevice, stream));
}

}  // namespace pneumo::aug
#endif  // PNEUMO_WITH_CUDA
