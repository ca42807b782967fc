// TEMPORARY CPU-only stand-ins for tensor/cuda_runtime.h and the cuda_memory part of tensor/allocator.h,
// so main links before the cuda-core branch lands. Delete this file when tensor/cuda_runtime.cpp and
// tensor/cuda_allocator.cpp arrive (they define the same symbols, for both CPU-only and CUDA builds).
#include <cstdlib>

#include "kernels/check.h"
#include "tensor/allocator.h"
#include "tensor/cuda_runtime.h"

namespace pneumo {
namespace cuda {
bool compiled_with_cuda() { return false; }
int device_count() { return 0; }
bool available() { return false; }
std::vector<DeviceInfo> devices() { return {}; }
[[noreturn]] static void no_cuda() { PNEUMO_FAIL("this operation needs CUDA, but pneumo was built without CUDA"); }
cudaStream_t current_stream(int) { no_cuda(); }
void synchronize(int) {}
void set_device(int) { no_cuda(); }
std::string runtime_version() { return ""; }
std::string driver_version() { return ""; }
std::string cudnn_version() { return ""; }
std::string cublas_version() { return ""; }
void memcpy_h2d(void*, const void*, size_t, int) { no_cuda(); }
void memcpy_d2h(void*, const void*, size_t, int) { no_cuda(); }
void memcpy_d2d(void*, const void*, size_t, int) { no_cuda(); }
void memset_async(void*, int, size_t, int) { no_cuda(); }
void* pinned_alloc(size_t bytes) { return std::malloc(bytes ? bytes : 1); }
void pinned_free(void* p) { std::free(p); }
}  // namespace cuda

namespace cuda_memory {
void* allocate(size_t, int) { PNEUMO_FAIL("CUDA allocation requested, but pneumo was built without CUDA"); }
void release(void*, int) {}
CudaMemoryStats stats(int) { return {}; }
void reset_peak(int) {}
void empty_cache() {}
size_t round_size(size_t bytes) {
  const size_t small = 512, large = size_t(2) << 20;
  if (bytes < (size_t(1) << 20)) return bytes == 0 ? small : (bytes + small - 1) / small * small;
  return (bytes + large - 1) / large * large;
}
}  // namespace cuda_memory
}  // namespace pneumo
