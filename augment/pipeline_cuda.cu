// GPU application of drawn augmentation parameters (see augment/pipeline_cuda.h): the same sequence as
// apply_params on the CPU — Resize, photometric, blur, HorizontalFlip, ShiftScaleRotate — with the kernels
// of kernels/cuda/augment.h. Scratch and results are tensors from the caching allocator.
#include "augment/pipeline_cuda.h"

#include "augment/image.h"
#include "augment/transforms.h"
#include "kernels/check.h"
#include "kernels/cuda/augment.h"
#include "tensor/cuda_runtime.h"

namespace pneumo::aug {

namespace kc = pneumo::kernels::cuda;

namespace {

void check_u8_cuda(const Tensor& t, const char* what, int64_t dims) {
  PNEUMO_CHECK(t.defined(), what, ": tensor is undefined");
  PNEUMO_CHECK(t.device().is_cuda() && t.dtype() == DType::U8 && t.dim() == dims, what,
               ": expected a U8 CUDA tensor with ", dims, " dimensions, got ", dtype_name(t.dtype()), " ",
               shape_str(t.shape()), (t.device().is_cuda() ? " on CUDA" : " on the CPU"));
}

kc::AugmentLut to_device_lut(const Lut& lut) {
  kc::AugmentLut l;
  for (int i = 0; i < 256; ++i) l.v[i] = lut[i];
  return l;
}

// Runs the pipeline on one [H, W] plane (image and optional mask); returns new tensors.
void apply_plane(const AugmentParams& p, const uint8_t* image_in, const uint8_t* mask_in, int h, int w,
                 Tensor& image_out, Tensor& mask_out, Device device) {
  cudaStream_t stream = cuda::current_stream(device.index);
  const int oh = p.out_height > 0 ? p.out_height : h, ow = p.out_width > 0 ? p.out_width : w;
  Tensor a = Tensor::empty({oh, ow}, DType::U8, device), b = Tensor::empty({oh, ow}, DType::U8, device);
  Tensor ma, mb;
  kc::augment_resize_linear_u8(image_in, h, w, 1, a.data<uint8_t>(), oh, ow, stream);
  if (mask_in) {
    ma = Tensor::empty({oh, ow}, DType::U8, device);
    mb = Tensor::empty({oh, ow}, DType::U8, device);
    kc::augment_resize_nearest_u8(mask_in, h, w, 1, ma.data<uint8_t>(), oh, ow, stream);
  }
  const int64_t n = static_cast<int64_t>(oh) * ow;
  auto swap_image = [&]() { std::swap(a, b); };
  switch (p.photometric) {
    case Photometric::None: break;
    case Photometric::Gamma:
      kc::augment_lut_u8(a.data<uint8_t>(), n, to_device_lut(gamma_lut(p.gamma)), b.data<uint8_t>(), stream);
      swap_image();
      break;
    case Photometric::BrightnessContrast: {
      Tensor sum = Tensor::empty({1}, DType::I64, device);
      auto* s = reinterpret_cast<unsigned long long*>(sum.raw_data());
      kc::augment_sum_u8(a.data<uint8_t>(), n, s, stream);
      kc::augment_brightness_contrast_u8(a.data<uint8_t>(), n, p.contrast_alpha, p.brightness_beta, s,
                                         b.data<uint8_t>(), stream);
      swap_image();
      break;
    }
    case Photometric::Clahe: {
      Tensor tables = Tensor::empty({int64_t(p.clahe_tiles_x) * p.clahe_tiles_y * 256}, DType::U8, device);
      const kc::AugmentLut pre = to_device_lut(gray_to_lightness_lut()), post = to_device_lut(lightness_to_gray_lut());
      kc::augment_clahe_u8(a.data<uint8_t>(), oh, ow, p.clahe_clip, p.clahe_tiles_x, p.clahe_tiles_y,
                           p.clahe_on_lightness ? &pre : nullptr, p.clahe_on_lightness ? &post : nullptr,
                           tables.data<uint8_t>(), b.data<uint8_t>(), stream);
      swap_image();
      break;
    }
  }
  switch (p.blur) {
    case BlurKind::None: break;
    case BlurKind::Box: kc::augment_box_blur_u8(a.data<uint8_t>(), oh, ow, p.blur_ksize, b.data<uint8_t>(), stream); swap_image(); break;
    case BlurKind::Median: kc::augment_median_blur_u8(a.data<uint8_t>(), oh, ow, p.blur_ksize, b.data<uint8_t>(), stream); swap_image(); break;
    case BlurKind::Motion: {
      PNEUMO_CHECK(p.motion_kernel.size() == static_cast<size_t>(p.blur_ksize) * p.blur_ksize && p.blur_ksize <= 7,
                   "augment (CUDA): motion kernel of ", p.motion_kernel.size(), " entries for ksize ", p.blur_ksize);
      kc::AugmentMotionKernel k{};
      for (size_t i = 0; i < p.motion_kernel.size(); ++i) k.v[i] = p.motion_kernel[i];
      kc::augment_motion_blur_u8(a.data<uint8_t>(), oh, ow, k, p.blur_ksize, b.data<uint8_t>(), stream);
      swap_image();
      break;
    }
  }
  if (p.hflip) {
    kc::augment_hflip_u8(a.data<uint8_t>(), oh, ow, 1, b.data<uint8_t>(), stream);
    swap_image();
    if (mask_in) {
      kc::augment_hflip_u8(ma.data<uint8_t>(), oh, ow, 1, mb.data<uint8_t>(), stream);
      std::swap(ma, mb);
    }
  }
  if (p.affine) {
    const Affine inv = invert_affine(shift_scale_rotate_matrix(p.angle, p.scale, p.shift_x, p.shift_y, oh, ow));
    kc::augment_warp_affine_u8(a.data<uint8_t>(), oh, ow, 1, inv.m, false, b.data<uint8_t>(), stream);
    swap_image();
    if (mask_in) {
      kc::augment_warp_affine_u8(ma.data<uint8_t>(), oh, ow, 1, inv.m, true, mb.data<uint8_t>(), stream);
      std::swap(ma, mb);
    }
  }
  image_out = a;
  mask_out = ma;
}

}  // namespace

AugmentedTensors apply_params_cuda(const AugmentParams& params, const Tensor& image, const Tensor& mask) {
  check_u8_cuda(image, "apply_params_cuda (image)", 2);
  const Tensor img = image;
  Tensor msk;
  if (mask.defined()) {
    check_u8_cuda(mask, "apply_params_cuda (mask)", 2);
    PNEUMO_CHECK(mask.shape() == image.shape(), "apply_params_cuda: mask ", shape_str(mask.shape()),
                 " does not match image ", shape_str(image.shape()));
    msk = mask;
  }
  AugmentedTensors out;
  apply_plane(params, img.data<uint8_t>(), msk.defined() ? msk.data<uint8_t>() : nullptr,
              static_cast<int>(img.shape()[0]), static_cast<int>(img.shape()[1]), out.image, out.mask, img.device());
  return out;
}

AugmentedTensors apply_batch_cuda(const std::vector<AugmentParams>& params, const Tensor& images, const Tensor& masks) {
  check_u8_cuda(images, "apply_batch_cuda (images)", 3);
  const int64_t B = images.shape()[0];
  PNEUMO_CHECK(static_cast<int64_t>(params.size()) == B, "apply_batch_cuda: ", params.size(),
               " parameter sets for a batch of ", B);
  PNEUMO_CHECK(B > 0, "apply_batch_cuda: empty batch");
  const Tensor imgs = images;
  Tensor msks;
  if (masks.defined()) {
    check_u8_cuda(masks, "apply_batch_cuda (masks)", 3);
    PNEUMO_CHECK(masks.shape() == images.shape(), "apply_batch_cuda: masks ", shape_str(masks.shape()),
                 " do not match images ", shape_str(images.shape()));
    msks = masks;
  }
  const int h = static_cast<int>(imgs.shape()[1]), w = static_cast<int>(imgs.shape()[2]);
  const int oh = params[0].out_height > 0 ? params[0].out_height : h;
  const int ow = params[0].out_width > 0 ? params[0].out_width : w;
  AugmentedTensors out;
  out.image = Tensor::empty({B, oh, ow}, DType::U8, imgs.device());
  if (msks.defined()) out.mask = Tensor::empty({B, oh, ow}, DType::U8, imgs.device());
  const int64_t plane_in = static_cast<int64_t>(h) * w, plane_out = static_cast<int64_t>(oh) * ow;
  for (int64_t i = 0; i < B; ++i) {
    const AugmentParams& p = params[i];
    PNEUMO_CHECK((p.out_height > 0 ? p.out_height : h) == oh && (p.out_width > 0 ? p.out_width : w) == ow,
                 "apply_batch_cuda: sample ", i, " has another output size than sample 0");
    Tensor im, mk;
    apply_plane(p, imgs.data<uint8_t>() + i * plane_in, msks.defined() ? msks.data<uint8_t>() + i * plane_in : nullptr,
                h, w, im, mk, imgs.device());
    cuda::memcpy_d2d(out.image.data<uint8_t>() + i * plane_out, im.data<uint8_t>(), plane_out, imgs.device().index);
    if (msks.defined())
      cuda::memcpy_d2d(out.mask.data<uint8_t>() + i * plane_out, mk.data<uint8_t>(), plane_out, imgs.device().index);
  }
  return out;
}

Tensor normalize_imagenet_cuda(const Tensor& gray) {
  PNEUMO_CHECK(gray.defined() && gray.device().is_cuda() && gray.dtype() == DType::U8 && gray.dim() >= 2,
               "normalize_imagenet_cuda: expected a U8 CUDA tensor [..., H, W], got ",
               gray.defined() ? shape_str(gray.shape()) : std::string("undefined"));
  const Tensor g = gray;
  Shape shape = g.shape();
  shape.push_back(3);
  Tensor out = Tensor::empty(shape, DType::F32, g.device());
  kc::augment_normalize_u8_to_f32(g.data<uint8_t>(), g.numel(), kImagenetMean, kImagenetStd, out.data<float>(),
                                  cuda::current_stream(g.device().index));
  return out;
}

}  // namespace pneumo::aug
