// CUDA Graph on the CPU side: without a device (or without CUDA) a Graph cannot be made, and says why.
#include <gtest/gtest.h>

#include "kernels/check.h"
#include "tensor/cuda_graph.h"
#include "tensor/cuda_runtime.h"

using namespace pneumo;

TEST(CudaGraph, WithoutADeviceConstructionFailsNamingWhy) {
  if (cuda::available()) GTEST_SKIP() << "a CUDA device is present: CudaGraphGpu.* cover it";
  try {
    cuda::Graph g;
    FAIL() << "a Graph without a device";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_TRUE(m.find("built without CUDA") != std::string::npos || m.find("no CUDA device") != std::string::npos)
        << m;
  }
}
