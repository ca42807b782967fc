// The GPU path of the augmentation pipeline: applies host-drawn AugmentParams (augment/pipeline.h) to
// images already on the device, with the kernels of kernels/cuda/augment.h, in the reference order.
// Convention: images and masks are U8 CUDA tensors of shape [H, W] (one sample) or [B, H, W] (a batch);
// results are new tensors on the same device. In a CPU-only build every function throws a clear error.
#pragma once
#include <vector>

#include "augment/pipeline.h"
#include "tensor/tensor.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::aug {

// Raw form for callers that own device memory: applies `params` to image (and mask, may be null) of h x w
// into image_out / mask_out (out_height x out_width of params), using `scratch` of
// augment_scratch_bytes(params, h, w) device bytes, on `stream`. Inputs and outputs must not overlap.
size_t augment_scratch_bytes(const AugmentParams& params, int height, int width);
void apply_params_cuda_raw(const AugmentParams& params, const uint8_t* image, const uint8_t* mask, int height,
                           int width, uint8_t* image_out, uint8_t* mask_out, uint8_t* scratch, cudaStream_t stream);

struct AugmentedTensors {
  Tensor image;  // U8 [H', W'] or [B, H', W']
  Tensor mask;   // same shape, or undefined when no mask was given
};

// One sample: image [H, W] U8 on CUDA, mask [H, W] U8 on CUDA or an undefined Tensor.
AugmentedTensors apply_params_cuda(const AugmentParams& params, const Tensor& image, const Tensor& mask);

// A batch: images [B, H, W], masks [B, H, W] or undefined, one AugmentParams per sample (all with the same
// output size). Samples run one after another on the current stream.
AugmentedTensors apply_batch_cuda(const std::vector<AugmentParams>& params, const Tensor& images, const Tensor& masks);

// albumentations Normalize(ImageNet mean/std, 255) of gray U8 [..., H, W] on CUDA into F32 [..., H, W, 3],
// the arithmetic of normalize_imagenet (augment/image.h).
Tensor normalize_imagenet_cuda(const Tensor& gray);

}  // namespace pneumo::aug
