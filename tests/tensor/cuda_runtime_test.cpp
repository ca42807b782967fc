// CPU-side tests of the CUDA runtime and allocator layer: what must hold on every machine, with or without a
// GPU and with or without CUDA compiled in (device_count() never throws, round_size() classes, clear errors
// instead of crashes when there is no device). The GPU behaviour is in cuda_allocator_gpu_test.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <regex>
#include <string>

#include "kernels/check.h"
#include "tensor/allocator.h"
#include "tensor/cuda_runtime.h"
#include "tensor/tensor.h"
#if PNEUMO_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace pneumo {
namespace {

constexpr size_t kMiB = size_t(1) << 20;

TEST(CudaMemory, RoundSizeClasses) {
  EXPECT_EQ(cuda_memory::round_size(0), 0u);
  EXPECT_EQ(cuda_memory::round_size(1), 512u);
  EXPECT_EQ(cuda_memory::round_size(512), 512u);
  EXPECT_EQ(cuda_memory::round_size(513), 1024u);
  EXPECT_EQ(cuda_memory::round_size(kMiB - 1), kMiB);
  EXPECT_EQ(cuda_memory::round_size(kMiB), kMiB);  // the last small class
  EXPECT_EQ(cuda_memory::round_size(kMiB + 1), 2 * kMiB);
  EXPECT_EQ(cuda_memory::round_size(2 * kMiB), 2 * kMiB);
  EXPECT_EQ(cuda_memory::round_size(2 * kMiB + 1), 4 * kMiB);
  EXPECT_EQ(cuda_memory::round_size(size_t(1) << 50), size_t(1) << 50);
  EXPECT_THROW(cuda_memory::round_size(SIZE_MAX - 5), Error);
  for (size_t b = 1; b < 3 * kMiB; b += 4099) {
    const size_t r = cuda_memory::round_size(b);
    ASSERT_GE(r, b);
    ASSERT_EQ(r % (b <= kMiB ? 512 : 2 * kMiB), 0u) << b;
    ASSERT_LT(r - b, b <= kMiB ? 512u : 2 * kMiB) << b;
  }
}

TEST(CudaRuntime, DeviceCountNeverThrowsAndMatchesAvailable) {
  int n = -1;
  EXPECT_NO_THROW(n = cuda::device_count());
  EXPECT_GE(n, 0);
#if PNEUMO_WITH_CUDA
  // The CUDA runtime asked directly, independently of cuda::device_count().
  int direct = 0;
  if (cudaGetDeviceCount(&direct) != cudaSuccess) {
    cudaGetLastError();
    direct = 0;
  }
  EXPECT_EQ(n, direct);
#else
  EXPECT_EQ(n, 0) << "a build without CUDA sees no device";
#endif
  // What available() promises the rest of the engine: a device stream exists exactly when it says so.
  if (cuda::available()) {
    EXPECT_GT(n, 0);
    EXPECT_NO_THROW(cuda::current_stream(0));
  } else {
    EXPECT_EQ(n, 0);
    EXPECT_THROW(cuda::current_stream(0), Error);
  }
  EXPECT_EQ(static_cast<int>(cuda::devices().size()), n);
  // compiled_with_cuda() agrees with what the build links: the CUDA runtime's version is readable exactly then.
  EXPECT_EQ(cuda::compiled_with_cuda(), !cuda::runtime_version().empty());
}

TEST(CudaRuntime, VersionsHaveTheDocumentedForm) {
  if (!cuda::compiled_with_cuda()) {
    EXPECT_EQ(cuda::runtime_version(), "");
    EXPECT_EQ(cuda::driver_version(), "");
    EXPECT_EQ(cuda::cudnn_version(), "");
    EXPECT_EQ(cuda::cublas_version(), "");
    return;
  }
  EXPECT_TRUE(std::regex_match(cuda::runtime_version(), std::regex("[0-9]+\\.[0-9]+"))) << cuda::runtime_version();
  EXPECT_TRUE(std::regex_match(cuda::cudnn_version(), std::regex("9\\.[0-9]+\\.[0-9]+"))) << cuda::cudnn_version();
  EXPECT_TRUE(std::regex_match(cuda::cublas_version(), std::regex("[0-9]+\\.[0-9]+\\.[0-9]+"))) << cuda::cublas_version();
  const std::string driver = cuda::driver_version();  // "" on a machine without a driver
  EXPECT_TRUE(driver.empty() || std::regex_match(driver, std::regex("[0-9]+\\.[0-9]+"))) << driver;
}

TEST(CudaRuntime, PinnedMemoryWorksWithoutADevice) {
  void* p = cuda::pinned_alloc(1 << 16);
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x5a, 1 << 16);
  EXPECT_EQ(static_cast<unsigned char*>(p)[65535], 0x5a);
  cuda::pinned_free(p);
  cuda::pinned_free(nullptr);
}

TEST(CudaRuntime, NoDeviceMeansClearErrors) {
  if (cuda::available()) GTEST_SKIP() << "a CUDA device is present: covered by the GPU tests";
  EXPECT_THROW(cuda::current_stream(0), Error);
  EXPECT_THROW(cuda::set_device(0), Error);
  EXPECT_THROW(cuda_memory::allocate(1024, 0), Error);
  try {
    Tensor::zeros({4}, DType::F32, Device::cuda());
    ADD_FAILURE() << "a CUDA tensor without a device did not throw";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_TRUE(m.find("without CUDA") != std::string::npos || m.find("no CUDA device") != std::string::npos) << m;
  }
  const CudaMemoryStats s = cuda_memory::stats(0);
  EXPECT_EQ(s.allocated_bytes, 0u);
  EXPECT_EQ(s.cuda_malloc_calls, 0u);
  EXPECT_NO_THROW(cuda_memory::empty_cache());
  EXPECT_NO_THROW(cuda_memory::release(nullptr, 0));
}

}  // namespace
}  // namespace pneumo
