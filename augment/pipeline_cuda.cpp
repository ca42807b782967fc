// The tensor form of the GPU augmentation pipeline (see augment/pipeline_cuda.h): validates U8 CUDA tensors,
// allocates outputs and scratch from the caching allocator and runs apply_params_cuda_raw
// (augment/pipeline_cuda_raw.cpp) per sample, plus the ImageNet normalisation kernel on tensors.
// Host code only (the kernels are kernels/cuda/augment.cu), compiled only in CUDA builds.
#if PNEUMO_WITH_CUDA
#include "augment/pipeline_cuda.h"

#include "augment/image.h"
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

// One [H, W] plane through the raw entry point with tensors for the output and scratch.
void apply_plane(const AugmentParams& p, const uint8_t* image_in, const uint8_t* mask_in, int h, int w,
                 uint8_t* image_out, uint8_t* mask_out, Device device) {
  Tensor scratch = Tensor::empty({static_cast<int64_t>(augment_scratch_bytes(p, h, w))}, DType::U8, device);
  apply_params_cuda_raw(p, image_in, mask_in, h, w, image_out, mask_out, scratch.data<uint8_t>(),
                        cuda::current_stream(device.index));
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
  const int h = static_cast<int>(img.shape()[0]), w = static_cast<int>(img.shape()[1]);
  const int oh = params.out_height > 0 ? params.out_height : h, ow = params.out_width > 0 ? params.out_width : w;
  AugmentedTensors out;
  out.image = Tensor::empty({oh, ow}, DType::U8, img.device());
  if (msk.defined()) out.mask = Tensor::empty({oh, ow}, DType::U8, img.device());
  apply_plane(params, img.data<uint8_t>(), msk.defined() ? msk.data<uint8_t>() : nullptr, h, w,
              out.image.data<uint8_t>(), msk.defined() ? out.mask.data<uint8_t>() : nullptr, img.device());
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
    apply_plane(p, imgs.data<uint8_t>() + i * plane_in, msks.defined() ? msks.data<uint8_t>() + i * plane_in : nullptr,
                h, w, out.image.data<uint8_t>() + i * plane_out,
                msks.defined() ? out.mask.data<uint8_t>() + i * plane_out : nullptr, imgs.device());
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
#endif  // PNEUMO_WITH_CUDA
