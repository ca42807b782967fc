// CPU-only builds: the GPU augmentation entry points exist (so callers and GPU tests link) and fail with a
// clear message. With CUDA, augment/pipeline_cuda.cpp defines them instead.
#include "augment/pipeline_cuda.h"

#include "kernels/check.h"

#if !PNEUMO_WITH_CUDA
namespace pneumo::aug {

size_t augment_scratch_bytes(const AugmentParams&, int, int) {
  PNEUMO_FAIL("augment_scratch_bytes: this build has no CUDA backend (configure with -DPNEUMO_CUDA=ON)");
}
void apply_params_cuda_raw(const AugmentParams&, const uint8_t*, const uint8_t*, int, int, uint8_t*, uint8_t*, uint8_t*,
                           cudaStream_t) {
  PNEUMO_FAIL("apply_params_cuda_raw: this build has no CUDA backend (configure with -DPNEUMO_CUDA=ON)");
}
AugmentedTensors apply_params_cuda(const AugmentParams&, const Tensor&, const Tensor&) {
  PNEUMO_FAIL("apply_params_cuda: this build has no CUDA backend (configure with -DPNEUMO_CUDA=ON)");
}
AugmentedTensors apply_batch_cuda(const std::vector<AugmentParams>&, const Tensor&, const Tensor&) {
  PNEUMO_FAIL("apply_batch_cuda: this build has no CUDA backend (configure with -DPNEUMO_CUDA=ON)");
}
Tensor normalize_imagenet_cuda(const Tensor&) {
  PNEUMO_FAIL("normalize_imagenet_cuda: this build has no CUDA backend (configure with -DPNEUMO_CUDA=ON)");
}

}  // namespace pneumo::aug
#endif
